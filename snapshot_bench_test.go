package raftkit

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/transport/tcp"
)

// blobSM is a state machine whose state is a blob of a given size: its
// snapshot is one file of that many pseudo-random bytes, and loading reads
// it through once, as a real state machine would.
type blobSM struct {
	BaseStateMachine
	size   int64
	loaded chan int64 // bytes read by LoadSnapshot
}

func (b *blobSM) Apply(it *Iterator) error {
	for it.Next() {
	}
	return nil
}

func (b *blobSM) SaveSnapshot() (SnapshotSaveFunc, error) {
	return func(w *SnapshotWriter) error {
		f, err := w.Create("blob")
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		rng := rand.NewChaCha8([32]byte{1})
		if _, err := io.CopyN(bw, rng, b.size); err != nil {
			f.Close()
			return err
		}
		if err := bw.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}, nil
}

func (b *blobSM) LoadSnapshot(r *SnapshotReader) error {
	f, err := r.Open("blob")
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(io.Discard, f)
	if b.loaded != nil {
		b.loaded <- n
	}
	return err
}

// BenchmarkSnapshotInstall measures installing a snapshot (1 GiB, or
// RAFTKIT_BENCH_SNAPSHOT_BYTES) on a new follower over loopback TCP with
// data on the real disk: from the follower's first fetch until its state
// machine has loaded the snapshot, so fetch, per-chunk and per-file
// verification, fsync, commit and load are all inside. It reports MB/s.
//
//	go test -run XXX -bench SnapshotInstall -benchtime 1x -count 3 .
func BenchmarkSnapshotInstall(b *testing.B) {
	if testing.Short() {
		b.Skip("writes a 1 GiB snapshot")
	}
	size := int64(1 << 30)
	if v, err := strconv.ParseInt(os.Getenv("RAFTKIT_BENCH_SNAPSHOT_BYTES"), 10, 64); err == nil && v > 0 {
		size = v
	}
	var total time.Duration
	for range b.N {
		total += installOnce(b, size)
	}
	b.ReportMetric(float64(size)*float64(b.N)/total.Seconds()/1e6, "MB/s")
	b.ReportMetric(0, "ns/op")
}

// installOnce runs one cluster: two members snapshot and compact, then a
// third starts empty and installs.
func installOnce(b *testing.B, size int64) time.Duration {
	b.StopTimer()
	c := newTCPCluster(b, 3, 1)
	c.tick = 10 * time.Millisecond
	root := b.TempDir()
	c.dirs = []string{filepath.Join(root, "0"), filepath.Join(root, "1"), filepath.Join(root, "2")}
	sms := make([]*blobSM, 3)
	c.newSM = func(i int) StateMachine {
		sms[i] = &blobSM{size: size, loaded: make(chan int64, 1)}
		return sms[i]
	}
	c.tune = func(o *NodeOptions) { o.SnapshotEntries, o.SnapshotMarginEntries = -1, 1 }
	c.start(0)
	c.start(1)
	c.applyN(0, 10, "x")
	ctx := context.Background()
	for i := range 2 {
		if _, err := c.node(i, 0).Snapshot(ctx); err != nil {
			b.Fatal(err)
		}
	}
	c.applyN(0, 10, "y") // the new follower needs entries after the snapshot too
	client := tcp.NewClient(tcp.ClientOptions{})
	defer client.Close()
	first := &firstCall{SnapshotCaller: client, called: make(chan struct{})}
	c.caller = first
	c.start(2)
	// Time from the fetch's start: before it, the new follower only waits
	// for the leader's transport to reconnect, which is not install work.
	<-first.called
	b.StartTimer()
	start := time.Now()
	n := <-sms[2].loaded
	elapsed := time.Since(start)
	b.StopTimer()
	if n != size {
		b.Fatalf("loaded %d bytes, want %d", n, size)
	}
	c.close()
	return elapsed
}

// firstCall closes called at its first Call.
type firstCall struct {
	SnapshotCaller
	once   sync.Once
	called chan struct{}
}

func (f *firstCall) Call(ctx context.Context, addr, service string, group uint64, req []byte) ([]byte, error) {
	f.once.Do(func() { close(f.called) })
	return f.SnapshotCaller.Call(ctx, addr, service, group, req)
}

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
// verification, fsync, commit and load are all inside. It reports MB/s,
// and beside it the write+fsync bandwidth of the same disk measured in the
// same run right after each install (writing the same number of bytes to
// a new file in 1 MiB writes, then fdatasync), and the ratio of the two.
// The side-by-side baseline matters on a VM, where writing into page
// cache memory the guest has not touched lately costs several times more
// than writing into memory it has: a baseline measured in another process,
// at another moment, can be off by a factor of four either way. With
// RAFTKIT_BENCH_WARM=1 it writes and deletes 3 GiB before each install, to
// measure both in the warm state.
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
	var total, base time.Duration
	for range b.N {
		d, w := installOnce(b, size)
		total, base = total+d, base+w
	}
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(total), "MB/s")
	b.ReportMetric(mbps(base), "write+fsync-MB/s")
	b.ReportMetric(base.Seconds()/total.Seconds(), "ratio")
	b.ReportMetric(0, "ns/op")
}

// installOnce runs one cluster: two members snapshot and compact, then a
// third starts empty and installs. It returns how long the install took
// and, measured right after, how long writing and syncing as many bytes
// took.
func installOnce(b *testing.B, size int64) (install, writeSync time.Duration) {
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
	if os.Getenv("RAFTKIT_BENCH_WARM") != "" {
		// Write and delete 3 GiB first, so that the install (and the
		// baseline after it) write into memory the guest touched lately.
		writeSyncFile(b, filepath.Join(root, "warm"), 3<<30)
	}
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
	writeSync = writeSyncFile(b, filepath.Join(root, "baseline"), size)
	c.close()
	return elapsed, writeSync
}

// writeSyncFile writes size bytes to a new file at p in 1 MiB writes,
// fdatasyncs it and removes it; it returns the time to write and sync.
func writeSyncFile(b *testing.B, p string, size int64) time.Duration {
	buf := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{2}).Read(buf)
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(p)
	defer f.Close()
	start := time.Now()
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := f.Write(buf[:min(int64(len(buf)), size-off)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
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

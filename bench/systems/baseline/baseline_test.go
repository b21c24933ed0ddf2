package baseline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"

	"github.com/raftkit/raftkit/bench/systems/systemstest"

	"github.com/raftkit/raftkit/bench/systems"
)

func testConfig(t testing.TB, maxPayload int) systems.Config {
	return systems.Config{
		Dirs:              []string{t.TempDir(), t.TempDir(), t.TempDir()},
		Addrs:             systemstest.FreeAddrs(t, 3),
		Groups:            1,
		ElectionTimeout:   500 * time.Millisecond,
		HeartbeatInterval: 50 * time.Millisecond,
		MaxPayload:        maxPayload,
	}
}

// startCluster starts the three replicas in the given order (any order must
// work) and returns them indexed by id. The caller closes them.
func startCluster(t testing.TB, cfg systems.Config, order ...int) (*leader, [2]*follower) {
	t.Helper()
	var nodes [3]systems.Node
	for _, id := range order {
		n, err := System{}.StartNode(cfg, id)
		if err != nil {
			t.Fatalf("StartNode(%d): %v", id, err)
		}
		nodes[id] = n
	}
	return nodes[0].(*leader), [2]*follower{nodes[1].(*follower), nodes[2].(*follower)}
}

// closeAll closes the replicas, leader first, and fails on any error.
func closeAll(t testing.TB, l *leader, fs [2]*follower) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Errorf("leader Close: %v", err)
	}
	for i, f := range fs {
		if err := f.Close(); err != nil {
			t.Errorf("follower %d Close: %v", i+1, err)
		}
	}
}

// waitQuiet waits until every dispatched batch is durable on all three
// replicas, so that the files can be compared in full.
func waitQuiet(t testing.TB, l *leader) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.tmu.Lock()
		quiet := l.diskSeq == l.lastSeq && l.acks[0] == l.lastSeq && l.acks[1] == l.lastSeq
		last, disk, acks := l.lastSeq, l.diskSeq, l.acks
		l.tmu.Unlock()
		if quiet {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not quiet after 10s: last seq %d, leader durable %d, acks %v", last, disk, acks)
		}
		time.Sleep(time.Millisecond)
	}
}

func readLog(t testing.TB, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, logName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStartNodeErrors(t *testing.T) {
	cfg := systems.Config{Dirs: []string{"a", "b", "c"}, Addrs: []string{"x", "y", "z"}, Groups: 16}
	if _, err := (System{}).StartNode(cfg, 0); !errors.Is(err, systems.ErrUnsupported) {
		t.Fatalf("Groups=16: got %v, want ErrUnsupported", err)
	}
	cfg.Groups = 1
	if _, err := (System{}).StartNode(cfg, 3); err == nil {
		t.Fatal("id 3: got nil error")
	}
	if got := (System{}).Name(); got != "baseline" {
		t.Fatalf("Name() = %q", got)
	}
}

// TestReplication is the correctness check: 64 proposers for 2 s, every
// Propose succeeds, the leader's acknowledged prefix holds exactly the
// acknowledged payloads (each proposer's in its order), and each follower's
// durable prefix is byte-for-byte the leader's.
func TestReplication(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 3-replica cluster for 2s")
	}
	testutil.CheckLeaks(t)
	cfg := testConfig(t, 16)
	// Followers before and after the leader: the leader must retry dials.
	l, fs := startCluster(t, cfg, 2, 0, 1)

	for _, f := range fs {
		if f.IsLeader(0) {
			t.Fatal("follower claims to lead")
		}
		if err := f.Propose(context.Background(), 0, []byte("x")); !errors.Is(err, systems.ErrNotLeader) {
			t.Fatalf("Propose on follower: got %v, want ErrNotLeader", err)
		}
	}
	if !l.IsLeader(0) {
		t.Fatal("replica 0 does not lead")
	}

	const workers = 64
	const dur = 2 * time.Second
	counts := make([]uint64, workers)
	var failed atomic.Int64
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			buf := make([]byte, 16)
			for time.Now().Before(stop) {
				binary.LittleEndian.PutUint64(buf[0:8], uint64(w))
				binary.LittleEndian.PutUint64(buf[8:16], counts[w])
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := l.Propose(ctx, 0, buf)
				cancel()
				if err != nil {
					if failed.Add(1) == 1 {
						t.Errorf("Propose: %v", err)
					}
					return
				}
				// The buffer is reused at once: Propose must have copied it.
				clear(buf)
				counts[w]++
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d proposals failed", failed.Load())
	}
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		t.Fatal("no proposal completed")
	}

	waitQuiet(t, l)
	closeAll(t, l, fs)
	t.Logf("%d proposals in %d batches, %d leader rounds, follower rounds %d and %d",
		total, l.batches.Load(), l.rounds.Load(), fs[0].rounds, fs[1].rounds)

	// The acknowledged prefix of the leader's log: every record is 16 bytes,
	// and each proposer's records are 0, 1, ... counts[w]-1 in order.
	committed := l.committed
	if want := int64(total) * (recHeader + 16); committed != want {
		t.Fatalf("acknowledged prefix %d bytes, want %d (%d records)", committed, want, total)
	}
	ld := readLog(t, cfg.Dirs[0])
	if int64(len(ld)) < committed {
		t.Fatalf("leader log has %d bytes, acknowledged %d", len(ld), committed)
	}
	next := make([]uint64, workers)
	for off := int64(0); off < committed; off += recHeader + 16 {
		if n := binary.LittleEndian.Uint32(ld[off:]); n != 16 {
			t.Fatalf("record at %d: length %d, want 16", off, n)
		}
		w := binary.LittleEndian.Uint64(ld[off+4:])
		c := binary.LittleEndian.Uint64(ld[off+12:])
		if w >= workers || c != next[w] {
			t.Fatalf("record at %d: proposer %d #%d, want #%d", off, w, c, next[min(w, workers-1)])
		}
		next[w]++
	}
	for w := range workers {
		if next[w] != counts[w] {
			t.Fatalf("proposer %d: %d records in the log, %d acknowledged", w, next[w], counts[w])
		}
	}

	for i, f := range fs {
		if f.durable != committed {
			t.Errorf("follower %d: %d bytes durable, want %d", i+1, f.durable, committed)
		}
		fd := readLog(t, cfg.Dirs[i+1])
		if int64(len(fd)) < f.durable || !bytes.Equal(fd[:f.durable], ld[:f.durable]) {
			t.Errorf("follower %d: durable prefix (%d bytes) differs from the leader's", i+1, f.durable)
		}
	}
}

// TestWrap makes the logs wrap many times and checks that every replica
// still puts every batch at the same offset (identical files) and that the
// files never grow past their capacity.
func TestWrap(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 3-replica cluster")
	}
	defer func(size int64, limit int) { logFileSize, batchLimit = size, limit }(logFileSize, batchLimit)
	logFileSize, batchLimit = 64<<10, 8<<10
	testutil.CheckLeaks(t)
	cfg := testConfig(t, 1024)
	_, size := limits(cfg)
	l, fs := startCluster(t, cfg, 0, 1, 2)

	stop := time.Now().Add(500 * time.Millisecond)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			buf := bytes.Repeat([]byte{byte(w)}, 1024)
			for i := 0; time.Now().Before(stop); i++ {
				buf[0] = byte(i)
				if err := l.Propose(context.Background(), 0, buf[:1+(i*37+w)%1024]); err != nil {
					t.Errorf("Propose: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitQuiet(t, l)
	closeAll(t, l, fs)

	if l.log.written < 4*size {
		t.Fatalf("only %d bytes written to a %d-byte log: it did not wrap enough", l.log.written, size)
	}
	ld := readLog(t, cfg.Dirs[0])
	if int64(len(ld)) > size {
		t.Fatalf("leader log grew to %d bytes, capacity %d", len(ld), size)
	}
	for i := range fs {
		if !bytes.Equal(readLog(t, cfg.Dirs[i+1]), ld) {
			t.Errorf("follower %d: log differs from the leader's after wrapping", i+1)
		}
	}
	t.Logf("%d bytes through a %d-byte log (%.0f wraps)", l.log.written, size, float64(l.log.written)/float64(size))
}

// TestCloseUnblocks: a leader whose followers never start cannot complete
// anything; Close must release its proposers with ErrClosed and leave no
// goroutine behind (the writers are still dialing).
func TestCloseUnblocks(t *testing.T) {
	testutil.CheckLeaks(t)
	cfg := testConfig(t, 16)
	n, err := System{}.StartNode(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- n.Propose(context.Background(), 0, make([]byte, 16)) }()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := n.Propose(ctx, 0, make([]byte, 16)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Propose without followers: got %v, want DeadlineExceeded", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Propose after Close: got %v, want ErrClosed", err)
	}
	if err := n.Propose(context.Background(), 0, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Propose after Close: got %v, want ErrClosed", err)
	}
}

// TestMeasure reports ops/s at 1, 64 and 256 proposers with 16 B and 1 KiB
// payloads, 3 s a cell, plus this disk's raw write+fdatasync rate for
// reference. Run with
//
//	BASELINE_BENCH=1 go test -run TestMeasure -v ./systems/baseline
func TestMeasure(t *testing.T) {
	if testing.Short() || os.Getenv("BASELINE_BENCH") == "" {
		t.Skip("set BASELINE_BENCH=1 to measure")
	}
	const dur = 3 * time.Second
	for _, r := range []struct{ size, streams int }{{4 << 10, 1}, {4 << 10, 3}, {128 << 10, 3}} {
		t.Logf("raw %3d KiB write+fdatasync, %d concurrent files: %5.0f/s per file",
			r.size>>10, r.streams, rawSyncRate(t, time.Second, r.size, r.streams))
	}
	for _, size := range []int{16, 1024} {
		for _, workers := range []int{1, 64, 256} {
			t.Run(fmt.Sprintf("payload=%dB/goroutines=%d", size, workers), func(t *testing.T) {
				cfg := testConfig(t, size)
				l, fs := startCluster(t, cfg, 0, 1, 2)
				defer closeAll(t, l, fs)
				var ops atomic.Int64
				start := time.Now()
				stop := start.Add(dur)
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						buf := make([]byte, size)
						var n int64
						for time.Now().Before(stop) {
							if err := l.Propose(context.Background(), 0, buf); err != nil {
								t.Errorf("Propose: %v", err)
								break
							}
							n++
						}
						ops.Add(n)
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				n := float64(ops.Load())
				rounds := float64(l.rounds.Load())
				t.Logf("%10.0f ops/s  %7.2f MB/s payload  mean latency %8v  %6.1f ops/leader fsync  %5.0f leader fsyncs/s  %6.1f ops/batch",
					n/elapsed.Seconds(), n*float64(size)/elapsed.Seconds()/1e6,
					(time.Duration(float64(workers) * float64(elapsed) / n)).Round(time.Microsecond),
					n/rounds, rounds/elapsed.Seconds(), n/float64(l.batches.Load()))
			})
		}
	}
}

// rawSyncRate is the rate of write + fdatasync rounds of size bytes, per
// stream, with streams goroutines each appending to its own preallocated
// file as a replica's log does: the disk's limit under any round.
func rawSyncRate(t *testing.T, d time.Duration, size, streams int) float64 {
	var total atomic.Int64
	var wg sync.WaitGroup
	for range streams {
		lf, err := openLog(t.TempDir(), 256<<20)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer lf.close()
			buf := [][]byte{make([]byte, size)}
			var n int64
			for start := time.Now(); time.Since(start) < d; n++ {
				if err := lf.appendRound(buf); err != nil {
					t.Error(err)
					return
				}
			}
			total.Add(n)
		})
	}
	wg.Wait()
	return float64(total.Load()) / float64(streams) / d.Seconds()
}

package etcd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"

	"github.com/raftkit/raftkit/bench/systems/systemstest"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftkit/raftkit/bench/systems"
)

func startCluster(t *testing.T) []systems.Node {
	t.Helper()
	cfg := systems.Config{
		Addrs:             systemstest.FreeAddrs(t, 3),
		Groups:            1,
		ElectionTimeout:   500 * time.Millisecond,
		HeartbeatInterval: 50 * time.Millisecond,
		MaxPayload:        64,
	}
	for range 3 {
		cfg.Dirs = append(cfg.Dirs, t.TempDir())
	}
	// A stale file: StartNode must start fresh rather than fail.
	if err := os.WriteFile(filepath.Join(cfg.Dirs[1], "raft.log"), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	var nodes []systems.Node
	for id := range 3 {
		n, err := System{}.StartNode(cfg, id)
		if err != nil {
			for _, n := range nodes {
				n.Close()
			}
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	return nodes
}

func waitLeader(t *testing.T, nodes []systems.Node) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i, n := range nodes {
			if n.IsLeader(0) {
				return i
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader elected within 10s")
	return -1
}

func closeAll(t *testing.T, nodes []systems.Node) {
	t.Helper()
	for i, n := range nodes {
		if err := n.Close(); err != nil {
			t.Errorf("close %d: %v", i, err)
		}
	}
}

func TestUnsupportedGroups(t *testing.T) {
	_, err := System{}.StartNode(systems.Config{Groups: 16}, 0)
	if !errors.Is(err, systems.ErrUnsupported) {
		t.Fatalf("StartNode with 16 groups: %v, want ErrUnsupported", err)
	}
}

func TestPropose(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-replica cluster")
	}
	testutil.CheckLeaks(t)
	nodes := startCluster(t)
	defer closeAll(t, nodes)
	lead := waitLeader(t, nodes)

	follower := nodes[(lead+1)%3]
	if err := follower.Propose(context.Background(), 0, []byte("x")); !errors.Is(err, systems.ErrNotLeader) {
		t.Fatalf("Propose on a follower: %v, want ErrNotLeader", err)
	}
	for i := range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := nodes[lead].Propose(ctx, 0, fmt.Appendf(nil, "payload %d", i))
		cancel()
		if err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
	}
	// The leader's log holds the 3 bootstrap entries, its empty entry and
	// the 100 proposals, each a valid record.
	if recs := readLog(t, nodes[lead].(*node).wal.f.Name()); recs[recEntry] < 104 || recs[recHardState] == 0 {
		t.Fatalf("leader's log records by kind: %v", recs)
	}
}

// proposeMany proposes count entries through the leader from 64 goroutines.
func proposeMany(t *testing.T, leader systems.Node, count int) {
	t.Helper()
	var left atomic.Int64
	left.Store(int64(count))
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := leader.Propose(ctx, 0, make([]byte, 16))
				cancel()
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("propose: %v", *err)
	}
}

// TestCatchUpBySnapshot cuts a follower off while the leader's log is
// compacted past it: once it is back, the leader must catch it up with a
// snapshot (MsgSnap, ReportSnapshot, the follower's Ready.Snapshot).
func TestCatchUpBySnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-replica cluster")
	}
	testutil.CheckLeaks(t)
	nodes := startCluster(t)
	defer closeAll(t, nodes)
	lead := waitLeader(t, nodes)
	f := nodes[(lead+1)%3].(*node)
	f.partitioned.Store(true)
	proposeMany(t, nodes[lead], snapshotEvery+catchUpEntries+1000)
	f.partitioned.Store(false)
	proposeMany(t, nodes[lead], 100)

	want := nodes[lead].(*node).rn.Status().Applied
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := f.rn.Status()
		if st.Applied >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower applied %d, leader %d", st.Applied, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if recs := readLog(t, f.wal.f.Name()); recs[recSnapshot] == 0 {
		t.Fatalf("follower caught up from the log, not by snapshot (log records by kind: %v)", recs)
	}
}

// readLog checks the records of a replica's log file and counts them by
// kind (an incomplete last record, being written, is ignored).
func readLog(t *testing.T, path string) map[byte]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[byte]int{}
	for len(b) >= recHeader {
		size := int(binary.LittleEndian.Uint32(b))
		if len(b) < recHeader+size {
			break
		}
		kind, body := b[4], b[recHeader:recHeader+size]
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[5:]) {
			t.Fatalf("log record %v: bad CRC", counts)
		}
		var m proto.Message
		switch kind {
		case recHardState:
			m = &pb.HardState{}
		case recEntry:
			m = &pb.Entry{}
		case recSnapshot:
			m = &pb.Snapshot{}
		default:
			t.Fatalf("log record of kind %d", kind)
		}
		if err := proto.Unmarshal(body, m); err != nil {
			t.Fatalf("log record of kind %d: %v", kind, err)
		}
		counts[kind]++
		b = b[recHeader+size:]
	}
	return counts
}

// TestLeaderLoss cuts the leader off while proposals are in flight: every
// Propose on it must end promptly with ErrNotLeader (none may hang until
// its context expires), and the other two replicas must elect a leader that
// takes proposals.
func TestLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-replica cluster")
	}
	testutil.CheckLeaks(t)
	nodes := startCluster(t)
	defer closeAll(t, nodes)
	lead := waitLeader(t, nodes)
	old := nodes[lead].(*node)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ok, notLeader atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				switch err := old.Propose(ctx, 0, make([]byte, 16)); {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, systems.ErrNotLeader):
					notLeader.Add(1)
					return
				default:
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	old.partitioned.Store(true)
	// CheckQuorum makes the old leader step down after an election timeout
	// without hearing from a quorum.
	deadline := time.Now().Add(10 * time.Second)
	for old.IsLeader(0) {
		if time.Now().After(deadline) {
			t.Fatal("cut-off leader did not step down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("proposals on the deposed leader still pending 5s after it stepped down:\n%s", buf[:runtime.Stack(buf, true)])
	}
	if err := failed.Load(); err != nil {
		t.Fatalf("propose on the deposed leader: %v", *err)
	}
	if notLeader.Load() != 64 {
		t.Fatalf("%d of 64 proposers ended with ErrNotLeader", notLeader.Load())
	}
	t.Logf("%d proposals applied before the cut", ok.Load())

	others := []systems.Node{nodes[(lead+1)%3], nodes[(lead+2)%3]}
	nl := others[waitLeader(t, others)]
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer pcancel()
	if err := nl.Propose(pctx, 0, []byte("after")); err != nil {
		t.Fatalf("propose on the new leader: %v", err)
	}
	old.partitioned.Store(false)
}

// TestThroughput measures closed-loop throughput: 64 goroutines proposing
// 16-byte payloads for 3 s. Run with ETCD_THROUGHPUT=1.
func TestThroughput(t *testing.T) {
	if os.Getenv("ETCD_THROUGHPUT") == "" {
		t.Skip("set ETCD_THROUGHPUT=1 to measure throughput")
	}
	const (
		clients  = 64
		duration = 3 * time.Second
	)
	testutil.CheckLeaks(t)
	nodes := startCluster(t)
	defer closeAll(t, nodes)
	waitLeader(t, nodes)

	var ops, notLeader atomic.Int64
	var firstErr atomic.Pointer[error]
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			payload := make([]byte, 16)
			lead := 0
			for ctx.Err() == nil {
				err := nodes[lead].Propose(ctx, 0, payload)
				switch {
				case err == nil:
					ops.Add(1)
				case errors.Is(err, systems.ErrNotLeader):
					notLeader.Add(1)
					lead = (lead + 1) % len(nodes)
				case ctx.Err() != nil:
				default:
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := firstErr.Load(); err != nil {
		t.Errorf("proposal failed: %v", *err)
	}
	t.Logf("etcd raft: %d clients, 16-byte payloads: %d ops in %v = %.0f ops/s (%d ErrNotLeader retries)",
		clients, ops.Load(), elapsed.Round(time.Millisecond), float64(ops.Load())/elapsed.Seconds(), notLeader.Load())
	fmt.Printf("etcd throughput: %.0f ops/s\n", float64(ops.Load())/elapsed.Seconds())
}

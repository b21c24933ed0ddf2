package counter

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/transport/tcp"
)

// TestCatchUpByInstallOverTCP stops a follower for 100,000 increments while
// the other two snapshot and compact every 10,000; restarted, the follower
// catches up by installing a snapshot over TCP and ends with the same value.
func TestCatchUpByInstallOverTCP(t *testing.T) {
	increments := 100_000
	if testing.Short() {
		increments = 20_000
	}
	peers := make([]string, 3)
	for i := range peers {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		peers[i] = l.Addr().String()
		l.Close()
	}
	root := t.TempDir()
	servers := make([]*Server, 3)
	start := func(i int) {
		t.Helper()
		s, err := StartServer(ServerConfig{
			DataDir: filepath.Join(root, fmt.Sprint(i)), Addr: peers[i], Peers: peers,
			TickInterval: 10 * time.Millisecond, SnapshotEntries: 10_000,
		})
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = s
	}
	stop := func(i int) {
		if s := servers[i]; s != nil {
			servers[i] = nil
			if err := s.Close(); err != nil {
				t.Errorf("closing server %d: %v", i, err)
			}
		}
	}
	defer func() {
		for i := range servers {
			stop(i)
		}
	}()
	for i := range peers {
		start(i)
	}
	caller := tcp.NewClient(tcp.ClientOptions{})
	defer caller.Close()
	cl := NewClient(caller, peers, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := cl.IncrementAndGet(ctx, 1); err != nil {
		t.Fatal(err)
	}
	lag := 0
	for servers[lag].Node().IsLeader() {
		lag++
	}
	stop(lag)
	var wg sync.WaitGroup
	var next, fails atomic.Int64
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(increments) {
				if _, err := cl.IncrementAndGet(ctx, 1); err != nil {
					fails.Add(1)
					t.Errorf("increment: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if fails.Load() > 0 {
		t.FailNow()
	}
	want := int64(increments) + 1
	for i, s := range servers {
		if s == nil {
			continue
		}
		st := s.Node().Status()
		if st.SnapshotIndex < 10_000 || st.FirstIndex < 5_000 {
			t.Fatalf("server %d did not compact: snapshot %d, first index %d", i, st.SnapshotIndex, st.FirstIndex)
		}
	}
	start(lag)
	testutil.WaitFor(t, 2*time.Minute, fmt.Sprintf("the restarted follower to reach %d", want), func() bool {
		return servers[lag].StateMachine().Value() == want
	})
	if st := servers[lag].Node().Status(); st.SnapshotIndex < 10_000 {
		t.Fatalf("the follower caught up without installing a snapshot: %+v", st)
	}
	if v, err := cl.Get(ctx); err != nil || v != want {
		t.Fatalf("Get = %d, %v; want %d", v, err, want)
	}
}

// TestSnapshotSavesAndLoadsValue: with a snapshot every 10 commands, a
// restarted server starts from its latest snapshot's value and replays
// only the log after it.
func TestSnapshotSavesAndLoadsValue(t *testing.T) {
	c := newSnapshottingCluster(t, 10)
	cl := NewClient(c.net, c.peers, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var want int64
	for k := range 55 {
		want += int64(k)
		if _, err := cl.IncrementAndGet(ctx, int64(k)); err != nil {
			t.Fatal(err)
		}
	}
	f := (c.leader() + 1) % 3
	testutil.WaitFor(t, 10*time.Second, "a follower's snapshot", func() bool {
		return c.servers[f].Node().Status().SnapshotIndex >= 40
	})
	c.stop(f)
	c.start(f)
	st := c.servers[f].Node().Status()
	if st.SnapshotIndex < 40 {
		t.Fatalf("restarted without its snapshot: %+v", st)
	}
	testutil.WaitFor(t, 10*time.Second, "the restarted value", func() bool {
		return c.servers[f].StateMachine().Value() == want
	})
}

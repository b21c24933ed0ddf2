package raftkit

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/metrics"
	"github.com/raftkit/raftkit/storage/vfs"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/memnet"
)

// waitFor is testutil.WaitFor with the generous deadline this package's
// tests use: conditions here depend on real tick timers and elections.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, what, cond)
}

// recorder is a test state machine: it appends every applied payload and
// records callbacks. Its result for a task is the count applied so far.
type recorder struct {
	BaseStateMachine
	mu       sync.Mutex
	applied  [][]byte
	indexes  []uint64
	events   []string
	failAt   int // Apply fails (error) once len(applied) reaches it; 0: never
	panicAt  int
	gate     chan struct{} // when set, Apply waits on it per batch
	shutdown bool
}

func (r *recorder) Apply(it *Iterator) error {
	r.mu.Lock()
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		<-gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for it.Next() {
		if r.failAt > 0 && len(r.applied)+1 >= r.failAt {
			return errors.New("injected apply failure")
		}
		if r.panicAt > 0 && len(r.applied)+1 >= r.panicAt {
			panic("injected apply panic")
		}
		r.applied = append(r.applied, it.Data())
		r.indexes = append(r.indexes, it.Index())
		it.SetResult(len(r.applied), nil)
	}
	return nil
}

func (r *recorder) event(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *recorder) OnLeaderStart(term uint64) { r.event(fmt.Sprintf("leader-start %d", term)) }
func (r *recorder) OnLeaderStop(c LeaderChangeContext) {
	r.event(fmt.Sprintf("leader-stop %d", c.Term))
}
func (r *recorder) OnStartFollowing(c LeaderChangeContext) {
	r.event(fmt.Sprintf("start-following %d", c.LeaderID))
}
func (r *recorder) OnStopFollowing(c LeaderChangeContext) {
	r.event(fmt.Sprintf("stop-following %d", c.LeaderID))
}
func (r *recorder) OnConfigurationCommitted(c Configuration) {
	r.event(fmt.Sprintf("configuration %d voters", len(c.Voters)))
}
func (r *recorder) OnError(err error) { r.event("error") }
func (r *recorder) OnShutdown() {
	r.mu.Lock()
	r.shutdown = true
	r.mu.Unlock()
	r.event("shutdown")
}

func (r *recorder) snapshot() (data [][]byte, events []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.applied), slices.Clone(r.events)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.applied)
}

func (r *recorder) hasEvent(e string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.events, e)
}

// testCluster is hosts on an in-process network, each with its own MemFS
// that survives host restarts.
type testCluster struct {
	t      testing.TB
	net    *memnet.Network
	addrs  []string
	fs     []*vfs.MemFS
	hosts  []*NodeHost
	groups []uint64
	sms    map[[2]int]*recorder // (host, group index) → state machine
	tune   func(*NodeOptions)
	tcp    bool          // real TCP on loopback instead of the in-process network
	dirs   []string      // when set, host i keeps its data on the real disk here
	tick   time.Duration // TickInterval; default 2ms
	// snapshots makes the state machines snapRecorders; caller, when set,
	// replaces the network as the hosts' SnapshotCaller.
	snapshots bool
	caller    SnapshotCaller
	// newSM, when set, makes host i's state machine (single-group
	// clusters); c.sms then holds nothing for it.
	newSM func(i int) StateMachine
	// voters, when set, makes only the first voters hosts the groups'
	// initial voters; the others start with Join, outside the
	// configuration, until a membership change adds them.
	voters int
	// sinks, when set, gives host i the metrics sink sinks[i].
	sinks []metrics.Sink
	// logger, when set, receives every host's logs; now, when set, is the
	// hosts' clock.
	logger *slog.Logger
	now    func() time.Time
}

// newTCPCluster is a testCluster whose hosts talk over real TCP on
// loopback ports picked free at the start (and reused across restarts).
func newTCPCluster(t testing.TB, hosts, groups int) *testCluster {
	c := newTestCluster(t, hosts, groups)
	c.tcp = true
	for i := range c.addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.addrs[i] = l.Addr().String()
		l.Close()
	}
	return c
}

func newTestCluster(t testing.TB, hosts, groups int) *testCluster {
	c := &testCluster{t: t, net: memnet.New(1), sms: map[[2]int]*recorder{}}
	for i := range hosts {
		c.addrs = append(c.addrs, fmt.Sprintf("host%d:1", i+1))
		c.fs = append(c.fs, vfs.NewMemFS())
		c.hosts = append(c.hosts, nil)
	}
	for g := range groups {
		c.groups = append(c.groups, uint64(100+g))
	}
	t.Cleanup(c.close)
	return c
}

func testLogger() *slog.Logger {
	if os.Getenv("RAFTKIT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// start starts host i and its member of every group.
func (c *testCluster) start(i int) {
	c.t.Helper()
	if err := c.tryStart(i); err != nil {
		c.t.Fatal(err)
	}
}

// tryStart is start returning the error; on error host i is closed.
func (c *testCluster) tryStart(i int) error {
	opts := HostOptions{
		DataDir: "/data", FS: c.fs[i], TickInterval: cmp.Or(c.tick, 2*time.Millisecond), Seed: uint64(i + 1),
		Logger: cmp.Or(c.logger, testLogger()), Addr: c.addrs[i],
	}
	if c.dirs != nil {
		opts.DataDir, opts.FS = c.dirs[i], nil
	}
	if !c.tcp {
		opts.NewTransport = func(th transport.Handler) (transport.Transport, error) {
			return c.net.Listen(c.addrs[i], th)
		}
		opts.SnapshotCaller = c.net
	}
	if c.caller != nil {
		opts.SnapshotCaller = c.caller
	}
	if c.sinks != nil {
		opts.Metrics = c.sinks[i]
	}
	opts.Now = c.now
	h, err := NewNodeHost(opts)
	if err != nil {
		return fmt.Errorf("host %d: %w", i, err)
	}
	c.hosts[i] = h
	var peers []Peer
	for j, a := range c.addrs {
		if c.voters == 0 || j < c.voters {
			peers = append(peers, Peer{ID: uint64(j + 1), Addr: a})
		}
	}
	for g, gid := range c.groups {
		sm := &recorder{}
		c.sms[[2]int{i, g}] = sm
		var smi StateMachine = sm
		if c.snapshots {
			smi = &snapRecorder{recorder: sm}
		}
		if c.newSM != nil {
			smi = c.newSM(i)
		}
		opts := NodeOptions{GroupID: gid, NodeID: uint64(i + 1), Peers: peers, StateMachine: smi,
			Join: c.voters > 0 && i >= c.voters}
		if c.tune != nil {
			c.tune(&opts)
		}
		if _, err := h.StartNode(opts); err != nil {
			c.stop(i)
			return fmt.Errorf("host %d group %d: %w", i, gid, err)
		}
	}
	return nil
}

func (c *testCluster) startAll() {
	for i := range c.hosts {
		c.start(i)
	}
}

// stop closes host i; its MemFS keeps what was synced.
func (c *testCluster) stop(i int) {
	c.t.Helper()
	if h := c.hosts[i]; h != nil {
		c.hosts[i] = nil
		if err := h.Close(); err != nil {
			c.t.Fatalf("closing host %d: %v", i, err)
		}
	}
}

func (c *testCluster) close() {
	for i := range c.hosts {
		if h := c.hosts[i]; h != nil {
			c.hosts[i] = nil
			_ = h.Close()
		}
	}
	c.net.Close()
}

// leader waits for a host that leads group index g and returns its index.
func (c *testCluster) leader(g int) int {
	c.t.Helper()
	lead := -1
	waitFor(c.t, fmt.Sprintf("a leader of group %d", c.groups[g]), func() bool {
		lead = -1
		for i, h := range c.hosts {
			if h == nil {
				continue
			}
			if n := h.Node(c.groups[g]); n != nil && n.IsLeader() {
				lead = i
			}
		}
		return lead >= 0
	})
	return lead
}

func (c *testCluster) node(i, g int) *Node { return c.hosts[i].Node(c.groups[g]) }

// applyN submits n tasks to the leader of group g, retrying refusals, and
// waits for every outcome. It returns the payloads acknowledged.
func (c *testCluster) applyN(g, n int, tag string) [][]byte {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var acked [][]byte
	for k := 0; k < n; {
		data := []byte(fmt.Sprintf("%s-%d", tag, k))
		fut, err := c.node(c.leader(g), g).Apply(Task{Data: data})
		if err != nil {
			if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrBusy) {
				c.t.Fatalf("apply: %v", err)
			}
			continue
		}
		if _, err := fut.Wait(ctx); err != nil {
			if errors.Is(err, ErrTimeout) {
				c.t.Fatalf("task %q: %v", data, err)
			}
			continue // lost to a leader change: retry as a new task
		}
		acked = append(acked, data)
		k++
	}
	return acked
}

func u64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

package raftkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage/vfs"
)

// TestReplicateAndApply: three hosts elect a leader, replicate tasks, and
// every state machine applies the same entries in the same order; each
// task's Future gets the state machine's result.
func TestReplicateAndApply(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	l := c.leader(0)
	ctx := context.Background()
	var futs []*Future
	for k := range 50 {
		fut, err := c.node(l, 0).Apply(Task{Data: []byte(fmt.Sprint(k))})
		if err != nil {
			t.Fatalf("apply %d: %v", k, err)
		}
		futs = append(futs, fut)
	}
	for k, fut := range futs {
		res, err := fut.Wait(ctx)
		if err != nil {
			t.Fatalf("task %d: %v", k, err)
		}
		if res.Value != k+1 || res.Index == 0 || res.Term == 0 {
			t.Fatalf("task %d result %+v, want value %d", k, res, k+1)
		}
	}
	for i := range c.hosts {
		sm := c.sms[[2]int{i, 0}]
		waitFor(t, fmt.Sprintf("host %d to apply 50 entries", i), func() bool { return sm.count() == 50 })
		data, _ := sm.snapshot()
		for k, d := range data {
			if string(d) != fmt.Sprint(k) {
				t.Fatalf("host %d applied %q at %d", i, d, k)
			}
		}
	}
	st := c.node(l, 0).Status()
	if st.Role != RoleLeader || st.CommitIndex < 51 || len(st.Followers) != 2 {
		t.Fatalf("leader status %+v", st)
	}
	for _, f := range st.Followers {
		if f.Addr == "" || f.Next == 0 {
			t.Fatalf("follower status %+v", f)
		}
	}
	waitFor(t, "followers to match the leader", func() bool {
		st := c.node(l, 0).Status()
		return st.Followers[0].Match == st.LastIndex && st.Followers[1].Match == st.LastIndex &&
			st.AppliedIndex == st.CommitIndex
	})
}

// TestApplyRefusals: followers refuse with the leader's address, a stale
// expected term fails the task, and a stopped node refuses.
func TestApplyRefusals(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	l := c.leader(0)
	f := (l + 1) % 3
	waitFor(t, "the follower to learn the leader", func() bool { id, _ := c.node(f, 0).Leader(); return id != 0 })
	_, err := c.node(f, 0).Apply(Task{Data: []byte("x")})
	var e *Error
	if !errors.Is(err, ErrNotLeader) || !errors.As(err, &e) || e.Leader != c.addrs[l] {
		t.Fatalf("follower Apply: %v, want not leader with hint %s", err, c.addrs[l])
	}
	term := c.node(l, 0).Status().Term
	fut, err := c.node(l, 0).Apply(Task{Data: []byte("x"), ExpectedTerm: term + 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fut.Wait(context.Background()); !errors.Is(err, ErrStaleTerm) {
		t.Fatalf("stale term: %v", err)
	}
	done := make(chan Result, 1)
	if _, err := c.node(l, 0).Apply(Task{Data: []byte("y"), ExpectedTerm: term, Done: func(r Result) { done <- r }}); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.Err != nil || r.Term != term {
		t.Fatalf("Done callback got %+v", r)
	}
	n := c.node(f, 0)
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Apply(Task{Data: []byte("z")}); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("Apply after Shutdown: %v", err)
	}
	if st := n.Status(); st.State != StateShutdown {
		t.Fatalf("status after shutdown: %v", st.State)
	}
	if !c.sms[[2]int{f, 0}].hasEvent("shutdown") {
		t.Fatal("OnShutdown not called")
	}
}

// TestCallbacks: the leader hears OnLeaderStart for its term, followers
// OnStartFollowing, everyone OnConfigurationCommitted; a deposed leader
// hears OnLeaderStop.
func TestCallbacks(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	l := c.leader(0)
	term := c.node(l, 0).Status().Term
	lsm := c.sms[[2]int{l, 0}]
	waitFor(t, "OnLeaderStart", func() bool { return lsm.hasEvent(fmt.Sprintf("leader-start %d", term)) })
	for i := range c.hosts {
		sm := c.sms[[2]int{i, 0}]
		if !sm.hasEvent("configuration 3 voters") {
			t.Fatalf("host %d: no OnConfigurationCommitted", i)
		}
		if i != l {
			waitFor(t, "OnStartFollowing", func() bool { return sm.hasEvent(fmt.Sprintf("start-following %d", l+1)) })
		}
	}
	// Cut the leader off: it steps down (check quorum) and says so.
	c.net.Isolate(c.addrs[l])
	waitFor(t, "OnLeaderStop", func() bool {
		return lsm.hasEvent(fmt.Sprintf("leader-stop %d", term)) ||
			lsm.hasEvent(fmt.Sprintf("leader-stop %d", term+1)) || !c.node(l, 0).IsLeader() && hasPrefix(lsm, "leader-stop")
	})
	c.net.Heal()
}

func hasPrefix(r *recorder, p string) bool {
	_, ev := r.snapshot()
	for _, e := range ev {
		if len(e) >= len(p) && e[:len(p)] == p {
			return true
		}
	}
	return false
}

// TestFailoverAndCatchUp: the leader's host goes away, the others elect a
// new leader and keep committing; the old host restarts from its data and
// catches up with every acknowledged entry.
func TestFailoverAndCatchUp(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	acked := c.applyN(0, 20, "before")
	old := c.leader(0)
	c.stop(old)
	acked = append(acked, c.applyN(0, 20, "after")...)
	if c.leader(0) == old {
		t.Fatal("stopped host still leads")
	}
	c.start(old)
	for i := range c.hosts {
		sm := c.sms[[2]int{i, 0}]
		waitFor(t, fmt.Sprintf("host %d to apply every acknowledged task", i), func() bool {
			data, _ := sm.snapshot()
			return containsAll(data, acked)
		})
	}
	// Same log everywhere: compare the applied sequences.
	base, _ := c.sms[[2]int{0, 0}].snapshot()
	for i := 1; i < 3; i++ {
		sm := c.sms[[2]int{i, 0}]
		waitFor(t, "identical applied sequences", func() bool {
			d, _ := sm.snapshot()
			return len(d) >= len(base) && slices.EqualFunc(d[:len(base)], base, bytes.Equal)
		})
	}
}

func containsAll(have, want [][]byte) bool {
	set := map[string]bool{}
	for _, d := range have {
		set[string(d)] = true
	}
	for _, d := range want {
		if !set[string(d)] {
			return false
		}
	}
	return true
}

// TestMultiGroup: three hosts × eight groups on one transport and one log
// engine per host; every group commits, survives a host restart, and the
// engine group-commits across groups.
func TestMultiGroup(t *testing.T) {
	t.Run("memnet", func(t *testing.T) { testMultiGroup(t, newTestCluster(t, 3, 8)) })
	t.Run("tcp", func(t *testing.T) { testMultiGroup(t, newTCPCluster(t, 3, 8)) })
}

func testMultiGroup(t *testing.T, c *testCluster) {
	c.startAll()
	for g := range c.groups {
		c.applyN(g, 5, "a")
	}
	c.stop(1)
	for g := range c.groups {
		c.applyN(g, 5, "b")
	}
	c.start(1)
	for g := range c.groups {
		c.applyN(g, 5, "c")
		sm := c.sms[[2]int{1, g}]
		waitFor(t, "the restarted host to catch up", func() bool { return sm.count() >= 15 })
	}
	st := c.hosts[0].engine.Stats()
	if st.Groups != 8 {
		t.Fatalf("engine holds %d groups, want 8", st.Groups)
	}
}

// TestStateMachineErrorState: an Apply error or panic puts that node into
// the error state (OnError, Status, refusals) without stopping the host;
// the rest of the group carries on.
func TestStateMachineErrorState(t *testing.T) {
	for _, mode := range []string{"error", "panic"} {
		t.Run(mode, func(t *testing.T) {
			c := newTestCluster(t, 3, 1)
			c.startAll()
			l := c.leader(0)
			f := (l + 1) % 3
			sm := c.sms[[2]int{f, 0}]
			sm.mu.Lock()
			if mode == "error" {
				sm.failAt = 3
			} else {
				sm.panicAt = 3
			}
			sm.mu.Unlock()
			c.applyN(0, 5, "x")
			waitFor(t, "the error state", func() bool { return c.node(f, 0).Status().State == StateError })
			st := c.node(f, 0).Status()
			if !errors.Is(st.Err, ErrStateMachine) || !sm.hasEvent("error") {
				t.Fatalf("status err %v, events %v", st.Err, sm.events)
			}
			if _, err := c.node(f, 0).Apply(Task{Data: []byte("y")}); !errors.Is(err, ErrStateMachine) {
				t.Fatalf("Apply on a failed node: %v", err)
			}
			if n := sm.count(); n != 2 {
				t.Fatalf("failed state machine applied %d entries, want it stopped at 2", n)
			}
			c.applyN(0, 5, "z") // the other two still form a quorum
		})
	}
}

// TestBackPressure: a stalled state machine fills the apply queue; Apply
// then fails fast with ErrBusy, and once the state machine resumes every
// accepted task completes.
func TestBackPressure(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.tune = func(o *NodeOptions) { o.MaxApplyQueueBytes = 4 << 10 }
	gate := make(chan struct{})
	c.startAll()
	l := c.leader(0)
	sm := c.sms[[2]int{l, 0}]
	c.applyN(0, 1, "warm")
	sm.mu.Lock()
	sm.gate = gate
	sm.mu.Unlock()
	payload := bytes.Repeat([]byte("p"), 512)
	var futs []*Future
	var busy error
	for range 10000 {
		fut, err := c.node(l, 0).Apply(Task{Data: payload})
		if err != nil {
			busy = err
			break
		}
		futs = append(futs, fut)
		if len(futs)%64 == 0 {
			// A Status round trip lets the worker move the tasks into the
			// log, so that the apply queue, not the task queue, fills.
			c.node(l, 0).Status()
		}
	}
	if !errors.Is(busy, ErrBusy) || !strings.Contains(busy.Error(), "apply queue") {
		t.Fatalf("after %d tasks: %v, want ErrBusy from the apply queue", len(futs), busy)
	}
	if c.node(l, 0).Status().State != StateRunning {
		t.Fatal("back-pressure hurt the node")
	}
	close(gate)
	for i, fut := range futs {
		if _, err := fut.Wait(context.Background()); err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
	}
}

// TestStorageFailure: a failing disk puts the group into the error state
// with a storage error; the host keeps running and closes cleanly.
func TestStorageFailure(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	l := c.leader(0)
	c.applyN(0, 3, "ok")
	c.fs[l].InjectFault(func(op vfs.Op, name string) error {
		if op == vfs.OpSync {
			return vfs.ErrIO
		}
		return nil
	})
	fut, err := c.node(l, 0).Apply(Task{Data: []byte("doomed")})
	if err == nil {
		_, err = fut.Wait(context.Background())
	}
	waitFor(t, "the storage error state", func() bool { return c.node(l, 0).Status().State == StateError })
	if st := c.node(l, 0).Status(); !errors.Is(st.Err, ErrStorage) {
		t.Fatalf("status err %v", st.Err)
	}
	if err == nil {
		t.Fatal("a task succeeded on a leader whose log write failed")
	}
	c.fs[l].InjectFault(nil)
}

// TestMisroutedMessagesDropped: a message for a group the host does not
// serve, or for another member, is dropped and counted (the connection
// carries healthy groups too); only group 0 is a protocol error.
func TestMisroutedMessagesDropped(t *testing.T) {
	c := newTestCluster(t, 1, 1)
	c.start(0)
	h := hostHandler{c.hosts[0]}
	if err := h.HandleRaft(999, &raftpb.Message{To: 1}); err != nil {
		t.Fatalf("unknown group: %v", err)
	}
	if err := h.HandleRaft(c.groups[0], &raftpb.Message{To: 7}); err != nil {
		t.Fatalf("wrong recipient: %v", err)
	}
	if n := c.hosts[0].DroppedMessages(); n != 2 {
		t.Fatalf("dropped %d, want 2", n)
	}
	if err := h.HandleRaft(0, &raftpb.Message{To: 1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("group 0: %v", err)
	}
}

// TestShutdownOneGroupSparesOthers: after some groups shut down on one
// host, their peers' messages to it are dropped, not answered by cutting
// the shared connection, so the host's other groups keep replicating.
func TestShutdownOneGroupSparesOthers(t *testing.T) {
	c := newTCPCluster(t, 3, 4)
	c.startAll()
	for g := 1; g < 4; g++ {
		if err := c.node(1, g).Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "messages for the stopped groups", func() bool { return c.hosts[1].DroppedMessages() > 20 })
	c.applyN(0, 50, "x")
	sm := c.sms[[2]int{1, 0}]
	waitFor(t, "host 1's group 0 to keep up", func() bool { return sm.count() == 50 })
}

// TestDuplicateStartNodeRefused: starting a running group again is refused
// before it touches the running group's files.
func TestDuplicateStartNodeRefused(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	n := c.node(0, 0)
	_, err := c.hosts[0].StartNode(n.opts)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("duplicate StartNode: %v", err)
	}
	c.applyN(0, 5, "after")
	if st := n.Status(); st.State != StateRunning {
		t.Fatalf("running node after a refused duplicate: %v %v", st.State, st.Err)
	}
}

// TestFollowerApplyQueueBounded: a follower whose state machine stalls
// queues no more than its apply budget (plus one entry) in memory while the
// rest of the group goes on committing; it catches up once resumed.
func TestFollowerApplyQueueBounded(t *testing.T) {
	const budget = 16 << 10
	c := newTestCluster(t, 3, 1)
	c.tune = func(o *NodeOptions) { o.MaxApplyQueueBytes = budget }
	c.startAll()
	l := c.leader(0)
	f := (l + 1) % 3
	sm := c.sms[[2]int{f, 0}]
	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	// Registered after the cluster's cleanup, so it runs first: a failing
	// test must not leave the follower's Apply blocked while hosts close.
	t.Cleanup(open)
	sm.mu.Lock()
	sm.gate = gate
	sm.mu.Unlock()
	payload := bytes.Repeat([]byte("q"), 512)
	ctx := context.Background()
	for range 200 {
		fut, err := c.node(l, 0).Apply(Task{Data: payload})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fut.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if q := c.node(f, 0).fsm.bytes.Load(); q > budget+uint64(len(payload))+24 {
			t.Fatalf("stalled follower queues %d bytes, budget %d", q, budget)
		}
	}
	open()
	waitFor(t, "the follower to catch up", func() bool { return sm.count() == 200 })
}

// TestLeaderStateMachineFailsMidBatch: when the leader's state machine
// fails on its third task, the two before it succeed, the rest fail with
// the state machine error, and OnError comes before OnShutdown.
func TestLeaderStateMachineFailsMidBatch(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	l := c.leader(0)
	sm := c.sms[[2]int{l, 0}]
	sm.mu.Lock()
	sm.failAt = 3
	sm.mu.Unlock()
	var futs []*Future
	for k := range 5 {
		fut, err := c.node(l, 0).Apply(Task{Data: []byte(fmt.Sprint(k))})
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, fut)
	}
	for k, fut := range futs {
		res, err := fut.Wait(context.Background())
		if k < 2 && (err != nil || res.Value != k+1) {
			t.Fatalf("task %d before the failure: %+v %v", k, res, err)
		}
		if k >= 2 && !errors.Is(err, ErrStateMachine) {
			t.Fatalf("task %d after the failure: %v", k, err)
		}
	}
	if err := c.node(l, 0).Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, ev := sm.snapshot()
	if i, j := slices.Index(ev, "error"), slices.Index(ev, "shutdown"); i < 0 || j < i || j != len(ev)-1 {
		t.Fatalf("events %v: want error, then shutdown last", ev)
	}
	if st := c.node((l+1)%3, 0).Status(); st.State != StateRunning {
		t.Fatalf("a follower: %v", st.State)
	}
}

// TestShutdownWaitsForLogWrites: Shutdown completes only once the log
// writes the node queued have finished, so a node started again for the
// group finds the log as the old one left it.
func TestShutdownWaitsForLogWrites(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	l := c.leader(0)
	c.applyN(0, 3, "a")
	release := make(chan struct{})
	var once sync.Once
	blocked := make(chan struct{})
	c.fs[l].InjectFault(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.Contains(name, "/log/") {
			once.Do(func() { close(blocked) })
			<-release
		}
		return nil
	})
	if _, err := c.node(l, 0).Apply(Task{Data: []byte("in flight")}); err != nil {
		t.Fatal(err)
	}
	<-blocked
	n := c.node(l, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := n.Shutdown(ctx); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Shutdown with a log write in flight: %v, want it to wait", err)
	}
	close(release)
	c.fs[l].InjectFault(nil)
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

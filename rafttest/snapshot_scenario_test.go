package rafttest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raftpb"
)

// snapOpts configures three nodes that take a snapshot every 5 entries and
// keep 2 entries behind it, with fetches and saves slow enough (per byte)
// to be interrupted.
func snapOpts(seed uint64, byteTime time.Duration) Options {
	return Options{Seed: seed, Nodes: 3, SnapshotEvery: 5, CompactMargin: 2, SnapshotByteTime: byteTime}
}

// laggingFollower elects a leader and, with one follower isolated, commits
// n entries on the other two until the leader has compacted its log past
// the follower's. It returns the leader and the follower, still isolated.
func laggingFollower(t *testing.T, c *Cluster, n int) (l, f uint64) {
	t.Helper()
	l = waitLeader(t, c, 10*time.Second)
	f = l%3 + 1
	commit(t, c, "base", 10*time.Second)
	c.Isolate(f)
	majority := func(idx uint64) bool {
		for id := uint64(1); id <= 3; id++ {
			if id != f && c.Applied(id) < idx {
				return false
			}
		}
		return true
	}
	for i := range n {
		commitOn(t, c, fmt.Sprintf("p%d", i), 10*time.Second, majority)
	}
	behind := func() bool { return c.FirstIndex(c.Leader()) > c.node(f).durable.last()+1 }
	if err := c.RunUntil(behind, 5*time.Second); err != nil {
		t.Fatalf("the leader never compacted past n%d's log: %v", f, err)
	}
	return c.Leader(), f
}

// installFrom returns the index of the newest snapshot node id holds that
// node from took.
func installFrom(c *Cluster, id, from uint64) uint64 {
	var idx uint64
	for _, s := range c.node(id).snaps {
		if s.taker == from {
			idx = s.meta.Index
		}
	}
	return idx
}

func TestScenarioSnapshotCatchUp(t *testing.T) {
	c := newTestCluster(t, snapOpts(11, time.Microsecond))
	l, f := laggingFollower(t, c, 30)
	lastBefore := c.node(f).durable.last()
	c.Heal()
	idx := commit(t, c, "after", 20*time.Second)
	if st := c.Stats(); st.Installs != 1 || st.Fetches != 1 {
		t.Fatalf("%d fetches, %d installs; want one of each: %+v", st.Fetches, st.Installs, st)
	}
	if got := installFrom(c, f, l); got <= lastBefore {
		t.Fatalf("n%d holds no snapshot of n%d past its old log end %d (got %d)", f, l, lastBefore, got)
	}
	if c.FirstIndex(f) <= lastBefore || c.Applied(f) != idx {
		t.Fatalf("n%d: first index %d, applied %d; want past %d and %d", f, c.FirstIndex(f), c.Applied(f), lastBefore, idx)
	}
}

func TestScenarioSnapshotCrashDuringInstall(t *testing.T) {
	for i, tc := range []struct {
		name string
		at   func(n *node) bool
		// loaded: the restart must load the fetched snapshot.
		loaded bool
	}{
		{"during the fetch", func(n *node) bool { return n.install != nil }, false},
		{"after the fetch, before the install", func(n *node) bool {
			return n.pending.len() > 0 && n.pending.peek().Snapshot != nil && !n.switched
		}, true},
		{"after the install, before Advance", func(n *node) bool { return n.switched }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, snapOpts(20+uint64(i), 200*time.Microsecond))
			_, f := laggingFollower(t, c, 30)
			n := c.node(f)
			before, _ := c.Snapshot(f)
			c.Heal()
			if err := c.RunUntil(func() bool { return tc.at(n) }, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			var fetched uint64
			if n.install != nil {
				fetched = n.install.msg.Snapshot.Index
			} else {
				fetched = n.pending.peek().Snapshot.Index
			}
			c.Crash(f)
			if got, _ := c.Snapshot(f); tc.loaded != (got == fetched) || (!tc.loaded && got != before) {
				t.Fatalf("after the crash n%d's latest snapshot is %d; fetched %d, had %d before", f, got, fetched, before)
			}
			mustRun(t, c, 500*time.Millisecond)
			c.Restart(f)
			if c.Err() != nil {
				t.Fatal(c.Err())
			}
			if tc.loaded && (n.smSnap != fetched || c.FirstIndex(f) != fetched+1) {
				t.Fatalf("restart loaded snapshot %d and the log starts at %d; want %d and %d",
					n.smSnap, c.FirstIndex(f), fetched, fetched+1)
			}
			commit(t, c, "after", 30*time.Second)
		})
	}
}

func TestScenarioSnapshotCrashDuringSave(t *testing.T) {
	// Saving a snapshot at index i takes about (64+16i)/4 * 20ms.
	c := newTestCluster(t, Options{Seed: 30, Nodes: 3, SnapshotEvery: 5, SnapshotByteTime: 20 * time.Millisecond})
	waitLeader(t, c, 10*time.Second)
	var n *node
	saving := func() bool {
		for _, nd := range c.nodes {
			if nd.saving != nil && nd.core != nil {
				n = nd
				return true
			}
		}
		return false
	}
	for i := 0; !saving(); i++ {
		if i == 20 {
			t.Fatal("no node started saving a snapshot")
		}
		commit(t, c, fmt.Sprintf("v%d", i), 10*time.Second)
	}
	lost := n.saving.meta.Index
	snapBefore, _ := c.Snapshot(n.id)
	last, hs, first := n.durable.last(), n.hs, c.FirstIndex(n.id)
	c.Crash(n.id)
	mustRun(t, c, 2*time.Second) // past the save's completion
	if got, _ := c.Snapshot(n.id); got != snapBefore {
		t.Fatalf("n%d's latest snapshot is %d after a crash during the save of %d; want %d", n.id, got, lost, snapBefore)
	}
	if n.durable.last() != last || n.hs != hs || c.FirstIndex(n.id) != first {
		t.Fatalf("the crash lost more than the snapshot: log [%d, %d] hs %+v, was [%d, %d] %+v",
			c.FirstIndex(n.id), n.durable.last(), n.hs, first, last, hs)
	}
	if st := c.Stats(); st.SnapshotsLost == 0 {
		t.Fatalf("no snapshot counted lost: %+v", st)
	}
	c.Restart(n.id)
	if n.smSnap != snapBefore {
		t.Fatalf("restart loaded snapshot %d, want %d", n.smSnap, snapBefore)
	}
	idx := commit(t, c, "after", 20*time.Second)
	if c.Applied(n.id) != idx {
		t.Fatalf("n%d applied %d, want %d", n.id, c.Applied(n.id), idx)
	}
}

func TestScenarioNewerSnapshotAbortsInstall(t *testing.T) {
	c := newTestCluster(t, snapOpts(40, 5*time.Millisecond))
	l, f := laggingFollower(t, c, 30)
	c.Heal()
	if err := c.RunUntil(func() bool { return c.Installing(f) }, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	first := c.node(f).install.msg.Snapshot.Index
	others := func(idx uint64) bool { return c.Applied(l) >= idx && c.Applied(6-l-f) >= idx }
	for i := range 10 {
		commitOn(t, c, fmt.Sprintf("q%d", i), 10*time.Second, others)
	}
	newer := func() bool { si, _ := c.Snapshot(l); return si > first }
	if err := c.RunUntil(newer, 5*time.Second); err != nil || !c.Installing(f) {
		t.Fatalf("the fetch finished (%v) before the leader saved a newer snapshot (%v)", !c.Installing(f), err)
	}
	// The leader gives up on the snapshot in flight, as its stall watch
	// would, and offers its latest on the next heartbeat answer.
	c.node(l).core.ReportSnapshot(f, false)
	if err := c.RunUntil(func() bool { return c.Stats().FetchesAborted > 0 }, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if in := c.node(f).install; in == nil || in.msg.Snapshot.Index <= first {
		t.Fatalf("after the abort n%d fetches %v, want a snapshot past %d", f, in, first)
	}
	commit(t, c, "after", 30*time.Second)
	if got := installFrom(c, f, l); got <= first {
		t.Fatalf("n%d installed snapshot %d, want the newer one past %d", f, got, first)
	}
}

func TestScenarioLeaderChangeDuringInstall(t *testing.T) {
	// transfer: the old leader stays up, and the new term aborts the
	// fetch from it. crash: the old leader goes down, and the fetch fails
	// or the new term aborts it first.
	for i, how := range []string{"transfer", "crash"} {
		t.Run(how, func(t *testing.T) {
			c := newTestCluster(t, snapOpts(50+uint64(i), 5*time.Millisecond))
			l, f := laggingFollower(t, c, 30)
			c.Heal()
			if err := c.RunUntil(func() bool { return c.Installing(f) }, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			g := 6 - l - f
			if how == "transfer" {
				if err := c.TransferLeadership(l, g); err != nil {
					t.Fatal(err)
				}
			} else {
				c.Crash(l)
			}
			commitOn(t, c, "new leader", 30*time.Second, func(idx uint64) bool {
				return c.Leader() == g && c.Applied(f) >= idx && c.Applied(g) >= idx
			})
			st := c.Stats()
			if (how == "transfer" && (st.FetchesAborted == 0 || st.FetchesFailed != 0)) ||
				st.FetchesAborted+st.FetchesFailed == 0 || st.Installs == 0 {
				t.Fatalf("want the first fetch aborted (or, on a crash, failed) and an install: %+v", st)
			}
			if installFrom(c, f, g) == 0 {
				t.Fatalf("n%d holds no snapshot of the new leader n%d", f, g)
			}
			c.Restart(l)
			commit(t, c, "healed", 30*time.Second)
		})
	}
}

func TestScenarioRestartLoadsSnapshot(t *testing.T) {
	c := newTestCluster(t, snapOpts(60, time.Microsecond))
	l := waitLeader(t, c, 10*time.Second)
	for i := range 20 {
		commit(t, c, fmt.Sprintf("v%d", i), 10*time.Second)
	}
	mustRun(t, c, time.Second)
	f := l%3 + 1
	si, _ := c.Snapshot(f)
	if si == 0 || c.FirstIndex(f) == 1 {
		t.Fatalf("n%d: snapshot %d, first index %d; want a snapshot and a compacted log", f, si, c.FirstIndex(f))
	}
	c.Crash(f)
	c.Restart(f)
	if n := c.node(f); n.smSnap != si || c.Stats().SnapshotLoads != 1 {
		t.Fatalf("restart loaded snapshot %d (%d loads), want %d", n.smSnap, c.Stats().SnapshotLoads, si)
	}
	idx := commit(t, c, "after", 10*time.Second)
	if c.Applied(f) != idx {
		t.Fatalf("n%d applied %d, want %d", f, c.Applied(f), idx)
	}
}

// staleSnapshot commits entries until the leader holds a snapshot below a
// follower's applied index, and returns a MsgSnap for it from the leader.
func staleSnapshot(t *testing.T, c *Cluster) (f uint64, m raftpb.Message) {
	t.Helper()
	l := waitLeader(t, c, 10*time.Second)
	for i := range 20 {
		commit(t, c, fmt.Sprintf("v%d", i), 10*time.Second)
	}
	mustRun(t, c, time.Second)
	f = l%3 + 1
	old := c.node(l).snaps[0]
	if old.meta.Index >= c.Applied(f) {
		t.Fatalf("n%d's oldest snapshot %d is not below n%d's applied %d", l, old.meta.Index, f, c.Applied(f))
	}
	return f, raftpb.Message{Type: raftpb.MsgSnap, From: l, To: f, Term: c.Term(l), Snapshot: &old.meta}
}

func TestScenarioStaleSnapshotIgnored(t *testing.T) {
	c := newTestCluster(t, snapOpts(70, time.Microsecond))
	f, m := staleSnapshot(t, c)
	applied, fetches := c.Applied(f), c.Stats().Fetches
	c.deliver(m)
	mustRun(t, c, time.Second)
	if c.Applied(f) < applied || c.Stats().Fetches != fetches {
		t.Fatalf("a stale snapshot was fetched (%d fetches, were %d) or applied went back to %d from %d",
			c.Stats().Fetches, fetches, c.Applied(f), applied)
	}
	commit(t, c, "after", 10*time.Second)
}

// TestScenarioSnapshotBugsAreCaught breaks the snapshot handling of the
// simulated runtime on purpose and expects the checker to notice.
func TestScenarioSnapshotBugsAreCaught(t *testing.T) {
	for _, tc := range []struct {
		name      string
		bug       runtimeBug
		invariant string
		run       func(t *testing.T, c *Cluster)
	}{
		{"compact before the snapshot is durable", bugCompactBeforeDurable, "compaction", func(t *testing.T, c *Cluster) {
			waitLeader(t, c, 10*time.Second)
			for i := 0; i < 20 && c.Err() == nil; i++ {
				if l := c.Leader(); l != 0 {
					_, _, _ = c.Propose(l, []byte(fmt.Sprint(i)))
				}
				_ = c.RunFor(100 * time.Millisecond)
			}
		}},
		{"install a stale snapshot", bugInstallStale, "state machine safety", func(t *testing.T, c *Cluster) {
			f, m := staleSnapshot(t, c)
			c.deliver(m)
			_ = c.RunFor(time.Second)
			_ = f
		}},
		{"restart with Applied 0", bugRestartAppliedZero, "state machine safety", func(t *testing.T, c *Cluster) {
			l := waitLeader(t, c, 10*time.Second)
			for i := range 20 {
				commit(t, c, fmt.Sprintf("v%d", i), 10*time.Second)
			}
			mustRun(t, c, time.Second)
			c.Crash(l%3 + 1)
			c.Restart(l%3 + 1)
			_ = c.RunFor(time.Second)
		}},
		{"install the wrong payload", bugWrongSnapshotPayload, "state machine safety", func(t *testing.T, c *Cluster) {
			laggingFollower(t, c, 30)
			c.Heal()
			_ = c.RunFor(10 * time.Second)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := snapOpts(80, time.Microsecond)
			opts.bug = tc.bug
			c := newTestCluster(t, opts)
			tc.run(t, c)
			var v *Violation
			if !errors.As(c.Err(), &v) {
				t.Fatalf("no violation reported; err = %v", c.Err())
			}
			if v.Invariant != tc.invariant {
				t.Fatalf("caught as %q, want %q: %v", v.Invariant, tc.invariant, v)
			}
			t.Logf("caught: %s: %s", v.Invariant, v.Detail)
		})
	}
}

package raftkit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitVoters waits until every running host of group 0 reports voters and
// learners as its configuration.
func (c *testCluster) waitVoters(voters, learners []uint64) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("configuration voters %v learners %v", voters, learners), func() bool {
		for i, h := range c.hosts {
			if h == nil || !slices.Contains(append(slices.Clone(voters), learners...), uint64(i+1)) {
				continue
			}
			st := c.node(i, 0).Status()
			if !sameIDs(st.Voters, voters) || !sameIDs(st.Learners, learners) || len(st.OutgoingVoters) > 0 {
				return false
			}
		}
		return true
	})
}

func sameIDs(a, b []uint64) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// waitApplied waits until host i's state machine of group 0 holds n entries.
func (c *testCluster) waitCount(i, n int) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("host %d to apply %d entries", i, n), func() bool {
		return c.sms[[2]int{i, 0}].count() >= n
	})
}

func (c *testCluster) peer(i int) Peer { return Peer{ID: uint64(i + 1), Addr: c.addrs[i]} }

// TestGrowAndShrink: two hosts that started outside the configuration are
// added as voters (catching up as learners first), receive every entry,
// count in quorums, and are removed again.
func TestGrowAndShrink(t *testing.T) {
	c := newTestCluster(t, 5, 1)
	c.voters = 3
	c.startAll()
	c.applyN(0, 20, "a")
	ctx := ctxFor(t)
	for _, i := range []int{3, 4} {
		if err := c.node(c.leader(0), 0).AddPeer(ctx, c.peer(i)); err != nil {
			t.Fatalf("AddPeer %d: %v", i+1, err)
		}
	}
	c.waitVoters([]uint64{1, 2, 3, 4, 5}, nil)
	c.applyN(0, 20, "b")
	c.waitCount(3, 40)
	c.waitCount(4, 40)
	// With five voters, two down still leaves a quorum.
	lead := c.leader(0)
	var down []int
	for i := 0; i < 5 && len(down) < 2; i++ {
		if i != lead {
			c.stop(i)
			down = append(down, i)
		}
	}
	c.applyN(0, 5, "c")
	for _, i := range down {
		c.start(i)
	}
	for _, i := range []int{3, 4} {
		if err := c.node(c.leader(0), 0).RemovePeer(ctx, uint64(i+1)); err != nil {
			t.Fatalf("RemovePeer %d: %v", i+1, err)
		}
	}
	c.waitVoters([]uint64{1, 2, 3}, nil)
	c.applyN(0, 5, "d")
	for i := range 3 {
		c.waitCount(i, 50)
	}
}

// TestRemoveLeader: the leader removes itself; it hands leadership over and
// the group goes on without it.
func TestRemoveLeader(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	c.applyN(0, 10, "a")
	old := c.leader(0)
	if err := c.node(old, 0).RemovePeer(ctxFor(t), uint64(old+1)); err != nil {
		t.Fatal(err)
	}
	var rest []uint64
	for i := range 3 {
		if i != old {
			rest = append(rest, uint64(i+1))
		}
	}
	c.waitVoters(rest, nil)
	waitFor(t, "a new leader among the remaining voters", func() bool {
		for _, id := range rest {
			if c.node(int(id-1), 0).IsLeader() {
				return true
			}
		}
		return false
	})
	c.applyN(0, 10, "b")
	if c.node(old, 0).IsLeader() {
		t.Fatal("the removed node still leads")
	}
}

// TestLearnersAndPromotion: a learner receives the log without voting and
// is promoted to voter in one change.
func TestLearnersAndPromotion(t *testing.T) {
	c := newTestCluster(t, 4, 1)
	c.voters = 3
	c.startAll()
	c.applyN(0, 10, "a")
	ctx := ctxFor(t)
	if err := c.node(c.leader(0), 0).AddLearners(ctx, []Peer{c.peer(3)}); err != nil {
		t.Fatal(err)
	}
	c.waitVoters([]uint64{1, 2, 3}, []uint64{4})
	c.waitCount(3, 10)
	if r := c.node(3, 0).Status().Role; r != RoleLearner {
		t.Fatalf("role %v, want learner", r)
	}
	if err := c.node(c.leader(0), 0).AddLearners(ctx, []Peer{c.peer(3)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("adding a learner twice: %v, want ErrInvalid", err)
	}
	if err := c.node(c.leader(0), 0).PromoteLearner(ctx, 4); err != nil {
		t.Fatal(err)
	}
	c.waitVoters([]uint64{1, 2, 3, 4}, nil)
	c.applyN(0, 10, "b")
	c.waitCount(3, 20)
	if err := c.node(c.leader(0), 0).RemoveLearners(ctx, []uint64{4}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("removing a voter as a learner: %v, want ErrInvalid", err)
	}
}

// TestCatchUpTimeoutRollsBack: a new voter that never catches up (its host
// is down) is not left in the configuration, and a second change while the
// first waits is refused as busy.
func TestCatchUpTimeoutRollsBack(t *testing.T) {
	c := newTestCluster(t, 4, 1)
	c.voters = 3
	c.tune = func(o *NodeOptions) { o.CatchupTimeout = 300 * time.Millisecond }
	for i := range 3 {
		c.start(i)
	}
	c.applyN(0, 10, "a")
	lead := c.node(c.leader(0), 0)
	done := make(chan error, 1)
	go func() { done <- lead.AddPeer(ctxFor(t), c.peer(3)) }()
	waitFor(t, "the change to start", func() bool {
		select {
		case err := <-done:
			t.Fatalf("AddPeer returned before the catch-up: %v", err)
		default:
		}
		return lead.changing.Load()
	})
	if err := lead.AddLearners(ctxFor(t), []Peer{{ID: 9, Addr: "nowhere:1"}}); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second change: %v, want ErrBusy", err)
	}
	if err := <-done; !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "within 300ms") {
		t.Fatalf("AddPeer of a down host: %v, want ErrTimeout after CatchupTimeout", err)
	}
	c.waitVoters([]uint64{1, 2, 3}, nil)
}

// TestMembershipSurvivesRestart: the configuration and the addresses of
// added members come back after every host restarts, from the log and then
// from a snapshot once the log is compacted.
func TestMembershipSurvivesRestart(t *testing.T) {
	c := newTestCluster(t, 4, 1)
	c.voters = 3
	c.snapshots = true
	c.tune = func(o *NodeOptions) { o.SnapshotMarginEntries = 1 }
	c.startAll()
	ctx := ctxFor(t)
	if err := c.node(c.leader(0), 0).AddPeer(ctx, c.peer(3)); err != nil {
		t.Fatal(err)
	}
	all := []uint64{1, 2, 3, 4}
	c.waitVoters(all, nil)
	restart := func() {
		for i := range 4 {
			c.stop(i)
		}
		c.startAll()
		c.waitVoters(all, nil)
		c.applyN(0, 5, "r")
	}
	restart()
	for i := range 4 {
		// A host that has not yet applied anything since its restart has
		// nothing to snapshot (ErrTryAgain); it will shortly.
		var err error
		waitFor(t, fmt.Sprintf("a snapshot on host %d", i), func() bool {
			_, err = c.node(i, 0).Snapshot(ctx)
			return !errors.Is(err, ErrTryAgain)
		})
		if err != nil {
			t.Fatalf("snapshot on host %d: %v", i, err)
		}
	}
	restart()
	if a := c.node(0, 0).addr(4); a != c.addrs[3] {
		t.Fatalf("host 1 knows node 4 at %q, want %q", a, c.addrs[3])
	}
}

// TestTransferLeadership moves leadership to a named voter, then to the
// best one.
func TestTransferLeadership(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	c.applyN(0, 10, "a")
	ctx := ctxFor(t)
	old := c.leader(0)
	target := (old + 1) % 3
	if err := c.node(old, 0).TransferLeadershipTo(ctx, uint64(target+1)); err != nil {
		t.Fatal(err)
	}
	if got := c.leader(0); got != target {
		t.Fatalf("leader %d, want %d", got, target)
	}
	if err := c.node(target, 0).TransferLeadershipTo(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if c.node(target, 0).IsLeader() {
		t.Fatal("still leading after transferring to the best peer")
	}
	if err := c.node(c.leader(0), 0).TransferLeadershipTo(ctx, 42); !errors.Is(err, ErrInvalid) {
		t.Fatalf("transfer to a non-member: %v, want ErrInvalid", err)
	}
	c.applyN(0, 10, "b")
}

// TestResetPeers: the unsafe recovery makes a lone survivor of three a
// working one-voter group.
func TestResetPeers(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	c.applyN(0, 10, "a")
	c.stop(1)
	c.stop(2)
	if err := c.node(0, 0).ResetPeers(ctxFor(t), []Peer{c.peer(0)}); err != nil {
		t.Fatal(err)
	}
	if got := c.leader(0); got != 0 {
		t.Fatalf("leader %d, want the survivor", got)
	}
	// The survivor may have missed the last of the earlier entries (the
	// reset is unsafe precisely because it can lose them); what it must do
	// is accept and apply new writes on its own.
	acked := c.applyN(0, 5, "b")
	sm := c.sms[[2]int{0, 0}]
	waitFor(t, "the survivor to apply the new writes", func() bool {
		data, _ := sm.snapshot()
		for _, want := range acked {
			if !slices.ContainsFunc(data, func(d []byte) bool { return string(d) == string(want) }) {
				return false
			}
		}
		return true
	})
}

// TestInstallTeachesAddresses: a member that was down while another was
// added, and catches up by installing a snapshot (the configuration entry
// naming the new member was compacted), learns its address from the
// snapshot.
func TestInstallTeachesAddresses(t *testing.T) {
	c := newTestCluster(t, 4, 1)
	c.voters = 3
	c.snapshots = true
	c.tune = func(o *NodeOptions) { o.SnapshotMarginEntries = 1 }
	c.startAll()
	c.applyN(0, 5, "a")
	lag := (c.leader(0) + 1) % 3
	c.stop(lag)
	ctx := ctxFor(t)
	if err := c.node(c.leader(0), 0).AddPeer(ctx, c.peer(3)); err != nil {
		t.Fatal(err)
	}
	c.applyN(0, 5, "b")
	for i := range 4 {
		if i == lag {
			continue
		}
		if _, err := c.node(i, 0).Snapshot(ctx); err != nil {
			t.Fatalf("snapshot on host %d: %v", i, err)
		}
	}
	c.applyN(0, 5, "c")
	c.start(lag)
	c.waitVoters([]uint64{1, 2, 3, 4}, nil)
	waitFor(t, "the lagging member to install a snapshot", func() bool {
		return c.node(lag, 0).Status().SnapshotIndex > 0
	})
	if a := c.node(lag, 0).addr(4); a != c.addrs[3] {
		t.Fatalf("the lagging member knows node 4 at %q, want %q", a, c.addrs[3])
	}
}

// A member address longer than the address book holds is refused up front:
// kept in memory only, it would make every later snapshot's address list
// unreadable. Found by review.
func TestOverlongAddressRefused(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	c.applyN(0, 1, "a")
	lead := c.node(c.leader(0), 0)
	long := strings.Repeat("h", 1100) + ":1"
	if err := lead.AddLearners(ctxFor(t), []Peer{{ID: 9, Addr: long}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("AddLearners with a %d-byte address: %v, want ErrInvalid", len(long), err)
	}
}

// Read contexts start at a random point, so a member restarted in the same
// term cannot meet its previous run's contexts at the leader. Found by
// review.
func TestReadContextsDifferAcrossRestarts(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	first := c.node(1, 0).reads.next
	c.stop(1)
	c.start(1)
	if again := c.node(1, 0).reads.next; again == first || first == 0 {
		t.Fatalf("read contexts start at %d, then %d after a restart", first, again)
	}
}

// TestMembershipCallFailsFastWhenItsEntryIsOverwritten: a leader cut off
// right after accepting RemovePeer loses its entry to the next leader's
// log; once it rejoins and applies that index, the call reports
// ErrLeaderChanged (the change did not take effect) instead of waiting for
// the caller's deadline, and the configuration is unchanged.
func TestMembershipCallFailsFastWhenItsEntryIsOverwritten(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.startAll()
	for attempt := 1; ; attempt++ {
		c.applyN(0, 3, fmt.Sprintf("before-%d", attempt))
		l := c.leader(0)
		victim := (l + 1) % 3
		c.net.Isolate(c.addrs[l])
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		errc := make(chan error, 1)
		go func() { errc <- c.node(l, 0).RemovePeer(ctx, uint64(victim+1)) }()
		waitFor(t, "the cut-off leader to step down and another to lead", func() bool {
			if c.node(l, 0).IsLeader() {
				return false
			}
			for i := range 3 {
				if i != l && c.node(i, 0).IsLeader() {
					return true
				}
			}
			return false
		})
		c.applyN(0, 3, fmt.Sprintf("after-%d", attempt))
		c.net.Heal()
		err := <-errc
		cancel()
		if errors.Is(err, ErrNotLeader) && attempt < 3 {
			continue // it stepped down before the worker took the call
		}
		if !errors.Is(err, ErrLeaderChanged) {
			t.Fatalf("RemovePeer whose entry was overwritten: %v, want ErrLeaderChanged", err)
		}
		break
	}
	c.waitVoters([]uint64{1, 2, 3}, nil)
}

// TestPromoteLearnerWaitsForCatchUp: a learner that has fallen behind (its
// host is down) is not promoted: the catch-up a new voter goes through
// applies to it too, and on timeout it stays a learner.
func TestPromoteLearnerWaitsForCatchUp(t *testing.T) {
	c := newTestCluster(t, 4, 1)
	c.voters = 3
	c.tune = func(o *NodeOptions) { o.CatchupTimeout, o.CatchupMarginEntries = 300*time.Millisecond, 5 }
	c.startAll()
	c.applyN(0, 10, "a")
	ctx := ctxFor(t)
	if err := c.node(c.leader(0), 0).AddLearners(ctx, []Peer{c.peer(3)}); err != nil {
		t.Fatal(err)
	}
	c.waitVoters([]uint64{1, 2, 3}, []uint64{4})
	c.stop(3)
	c.applyN(0, 10, "b")
	err := c.node(c.leader(0), 0).PromoteLearner(ctx, 4)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "within 300ms") {
		t.Fatalf("promoting a learner that is down: %v, want ErrTimeout after CatchupTimeout", err)
	}
	c.waitVoters([]uint64{1, 2, 3}, []uint64{4})
}

package rafttest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/core"
	"github.com/raftkit/raftkit/raftpb"
)

// changeConf moves the cluster to the configuration with voters and
// learners: it proposes the change to whichever node leads, again whenever
// it was refused or lost, until that configuration (not joint) is
// committed.
func changeConf(t *testing.T, c *Cluster, voters, learners []uint64, limit time.Duration) {
	t.Helper()
	want := raftpb.ConfState{Voters: voters, Learners: learners}
	done := func() bool { cs := c.CommittedConf(); return !cs.IsJoint() && cs.Equal(want) }
	deadline := c.Now() + limit
	for !done() {
		if c.Now() >= deadline {
			t.Fatalf("configuration %+v not committed within %v (committed: %+v, seed %d)", want, limit,
				c.CommittedConf(), c.Seed())
		}
		if l := c.Leader(); l != 0 {
			_, _ = c.ProposeConfChange(l, voters, learners) // refused while busy: retried
		}
		if err := c.RunUntil(done, time.Second); err != nil && !errors.Is(err, ErrTimeout) {
			t.Fatal(err)
		}
	}
}

// commitMembers is commit, waiting only for the members of the committed
// configuration.
func commitMembers(t *testing.T, c *Cluster, data string, limit time.Duration) uint64 {
	t.Helper()
	return commitOn(t, c, data, limit, c.MembersApplied)
}

// TestScenarioMembershipGrowShrinkLossy grows a group from three voters to
// five and back to three others, under message loss and duplication,
// committing along the way.
func TestScenarioMembershipGrowShrinkLossy(t *testing.T) {
	c := newTestCluster(t, Options{Seed: 11, Nodes: 5, Voters: 3, DupRate: 0.05})
	c.SetDropRate(0.1)
	waitLeader(t, c, 30*time.Second)
	commitMembers(t, c, "three", 30*time.Second)
	changeConf(t, c, []uint64{1, 2, 3, 4, 5}, nil, 60*time.Second)
	idx := commitMembers(t, c, "five", 30*time.Second)
	if !c.AllApplied(idx) {
		t.Fatal("a voter of five did not apply")
	}
	changeConf(t, c, []uint64{3, 4, 5}, nil, 60*time.Second)
	commitMembers(t, c, "three again", 30*time.Second)
	if l := c.Leader(); l < 3 {
		t.Fatalf("removed node %d leads", l)
	}
	if st := c.Stats(); st.ConfsCommitted < 4 || st.MessagesDropped == 0 {
		t.Fatalf("%d configuration entries committed, %d messages dropped: want both changes joint, under loss",
			st.ConfsCommitted, st.MessagesDropped)
	}
}

// TestScenarioMembershipRemoveLeader removes the leader: it hands over to
// another voter and never leads again.
func TestScenarioMembershipRemoveLeader(t *testing.T) {
	c := newTestCluster(t, Options{Seed: 12, Nodes: 3})
	old := waitLeader(t, c, 10*time.Second)
	commit(t, c, "before", 10*time.Second)
	var rest []uint64
	for id := uint64(1); id <= 3; id++ {
		if id != old {
			rest = append(rest, id)
		}
	}
	changeConf(t, c, rest, nil, 20*time.Second)
	if err := c.RunUntil(func() bool { l := c.Leader(); return l != 0 && l != old }, 10*time.Second); err != nil {
		t.Fatalf("no other voter took over from n%d: %v", old, err)
	}
	commitMembers(t, c, "after", 10*time.Second)
	err := c.RunUntil(func() bool { return c.Role(old) == core.RoleLeader }, 20*time.Second)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("the removed leader n%d led again (err %v)", old, err)
	}
	if st, _ := c.Status(old); slices.Contains(st.Config.Voters, old) {
		t.Fatalf("n%d does not know it was removed: %+v", old, st.Config)
	}
}

// TestScenarioMembershipPromoteLearner: a learner follows the log without
// voting; promoted, it can take over leadership.
func TestScenarioMembershipPromoteLearner(t *testing.T) {
	c := newTestCluster(t, Options{Seed: 13, Nodes: 4, Voters: 3, Learners: 1})
	waitLeader(t, c, 10*time.Second)
	idx := commit(t, c, "learned", 10*time.Second)
	if c.Role(4) != core.RoleLearner || c.Applied(4) < idx {
		t.Fatalf("n4 is %s and applied %d, want a learner that applied %d", c.Role(4), c.Applied(4), idx)
	}
	changeConf(t, c, []uint64{1, 2, 3, 4}, nil, 20*time.Second)
	if err := c.RunUntil(func() bool { return c.Role(4) == core.RoleFollower }, 5*time.Second); err != nil {
		t.Fatalf("promoted learner n4 is %s: %v", c.Role(4), err)
	}
	if err := c.TransferLeadership(c.Leader(), 4); err != nil {
		t.Fatal(err)
	}
	if err := c.RunUntil(func() bool { return c.Leader() == 4 }, 5*time.Second); err != nil {
		t.Fatalf("leadership did not move to the promoted learner: %v", err)
	}
	commit(t, c, "promoted", 10*time.Second)
}

// TestScenarioMembershipPartitionDuringJoint partitions the group right
// after the leader entered the joint configuration (1 2 3 4 5)&&(1 2 3).
// The leader's side holds a majority of one half only, so it commits
// nothing, whichever half that is; the other side can commit only in the
// old configuration, which the joint one then never reaches. After the
// partition heals the change completes.
func TestScenarioMembershipPartitionDuringJoint(t *testing.T) {
	for _, tc := range []struct {
		name        string
		withLeader  func(l uint64, old []uint64) []uint64 // the leader's side
		otherCommit bool                                  // whether the other side can commit
	}{
		{"leader with the new voters", func(l uint64, old []uint64) []uint64 { return []uint64{l, 4, 5} }, true},
		{"leader with an old voter", func(l uint64, old []uint64) []uint64 { return []uint64{l, old[0]} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, Options{Seed: 14, Nodes: 5, Voters: 3})
			l := waitLeader(t, c, 10*time.Second)
			commitMembers(t, c, "before", 10*time.Second)
			var old, side, other []uint64
			for id := uint64(1); id <= 3; id++ {
				if id != l {
					old = append(old, id)
				}
			}
			side = tc.withLeader(l, old)
			for id := uint64(1); id <= 5; id++ {
				if !slices.Contains(side, id) {
					other = append(other, id)
				}
			}
			idx, err := c.ProposeConfChange(l, []uint64{1, 2, 3, 4, 5}, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.Partition(side, other) // the change's first messages are lost
			before := c.Committed()
			_, _, _ = c.Propose(l, []byte("leader side"))
			mustRun(t, c, 20*time.Second)
			if _, typ, _, ok := c.CommittedEntry(idx); ok && typ == raftpb.EntryConfChange {
				t.Fatal("the joint configuration was committed by one side")
			}
			if got := c.Committed() > before; got != tc.otherCommit {
				t.Fatalf("commit moved from %d to %d; want progress: %v (only on the old voters' side)",
					before, c.Committed(), tc.otherCommit)
			}
			c.Heal()
			changeConf(t, c, []uint64{1, 2, 3, 4, 5}, nil, 30*time.Second)
			final := commitMembers(t, c, "healed", 20*time.Second)
			if !c.AllApplied(final) {
				t.Fatal("a voter of five did not apply")
			}
		})
	}
}

// TestScenarioMembershipDeterministic: a run with membership changes is a
// pure function of its options.
func TestScenarioMembershipDeterministic(t *testing.T) {
	run := func() Stats {
		c := newTestCluster(t, Options{Seed: 15, Nodes: 5, Voters: 2, DropRate: 0.05})
		for i, voters := range [][]uint64{{1, 2, 3}, {2, 3, 4, 5}, {5}} {
			changeConf(t, c, voters, nil, 60*time.Second)
			commitMembers(t, c, fmt.Sprint(i), 30*time.Second)
		}
		return c.Stats()
	}
	if a, b := run(), run(); a != b {
		t.Fatalf("same seed, different runs:\n%+v\n%+v", a, b)
	}
}

package core

import (
	"errors"
	"slices"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
)

// TestMembershipAddVoter: adding a voter goes through a joint configuration
// that takes effect on the leader at once; once it is committed the leader
// leaves it on its own, and every node, the new one included, ends in the
// target configuration with both entries applied.
func TestMembershipAddVoter(t *testing.T) {
	nw := newMemberNet(t, confState(ids(1, 2, 3), nil), ids(4))
	nw.campaign(1)
	l := nw.node(1)
	addrs := []raftpb.PeerAddr{{ID: 4, Addr: "n4:7000"}}
	idx, err := l.ProposeConfChange(raftpb.ConfChange{Voters: ids(4, 1, 2, 3), Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	nw.requireConf(1, jointConf(ids(1, 2, 3, 4), ids(1, 2, 3), nil))
	cc := nw.decodeConf(nw.entryAt(1, idx))
	if cc.Kind != raftpb.ConfChangeEnterJoint || !slices.Equal(cc.Voters, ids(1, 2, 3, 4)) ||
		!slices.Equal(cc.Addrs, addrs) {
		t.Fatalf("logged change %+v, want EnterJoint to (1 2 3 4) with the addresses", cc)
	}
	nw.stabilize()
	want := confState(ids(1, 2, 3, 4), nil)
	for _, id := range nw.ids {
		nw.requireConf(id, want)
		if got := nw.appliedConfKinds(id); !slices.Equal(got, []raftpb.ConfChangeKind{
			raftpb.ConfChangeEnterJoint, raftpb.ConfChangeLeaveJoint}) {
			t.Fatalf("node %d applied configuration entries %v, want EnterJoint, LeaveJoint", id, got)
		}
	}
	nw.requireRole(4, RoleFollower, 1)
	nw.requireSameLogs(1)
	// The new voter counts: with two of four voters cut off, nothing commits.
	nw.partition(ids(1, 4), ids(2, 3))
	nw.propose(1, "x")
	if c, last := l.Committed(), l.log.lastIndex(); c == last {
		t.Fatalf("entry %d committed by two of four voters", last)
	}
}

// TestMembershipRemoveFollower: a removed voter hears of its removal (the
// leader keeps replicating to it until its removal commits), never
// campaigns again, and is forgotten at the leader's next check-quorum round.
func TestMembershipRemoveFollower(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.campaign(1)
	nw.proposeConf(1, ids(1, 2), nil)
	nw.stabilize()
	want := confState(ids(1, 2), nil)
	for _, id := range nw.ids {
		nw.requireConf(id, want)
	}
	if err := nw.node(3).Campaign(); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("removed node campaigns: err %v", err)
	}
	mark := len(nw.trace)
	nw.tick(3, 5*nw.node(3).cfg.ElectionTick)
	if campaigned(nw.trace[mark:], 3) {
		t.Fatal("removed node asked for votes")
	}
	l := nw.node(1)
	nw.tick(1, l.cfg.ElectionTick)
	if pr := l.trk.Progress[3]; pr != nil || slices.Contains(l.trk.IDs(), 3) {
		t.Fatalf("leader still tracks the removed node: %v", pr)
	}
	mark = len(nw.trace)
	nw.propose(1, "after")
	if n := len(filterMsgs(nw.trace[mark:], raftpb.MsgApp, 1, 3)); n != 0 {
		t.Fatalf("leader sent %d appends to the removed node", n)
	}
}

// TestMembershipRemoveLeader: a leader that removes itself leads through
// the joint phase, then, once the configuration without it is committed,
// tells the most up-to-date voter (the lowest ID among equals) to campaign
// and steps down in its term; it never campaigns again.
func TestMembershipRemoveLeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  []uint64 // voters the leader cannot reach during the change
		want uint64
	}{
		{"all up to date: lowest ID", nil, 2},
		{"2 lags", ids(2), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nw := newNetwork(t, 5)
			nw.campaign(1)
			nw.partition(ids(1), tc.cut)
			mark := len(nw.trace)
			nw.proposeConf(1, ids(2, 3, 4, 5), nil)
			nw.stabilize()
			tn := filterMsgs(nw.trace[mark:], raftpb.MsgTimeoutNow, 1, 0)
			if len(tn) != 1 || tn[0].To != tc.want {
				t.Fatalf("old leader sent %v, want one MsgTimeoutNow to %d", tn, tc.want)
			}
			nw.requireRole(1, RoleFollower, 1)
			nw.requireRole(tc.want, RoleLeader, 2)
			nw.requireConf(1, confState(ids(2, 3, 4, 5), nil))
			nw.heal()
			mark = len(nw.trace)
			nw.tickAll(5 * nw.node(1).cfg.ElectionTick)
			if campaigned(nw.trace[mark:], 1) {
				t.Fatal("the removed leader asked for votes")
			}
			nw.propose(tc.want, "after")
			for _, id := range ids(2, 3, 4, 5) {
				nw.requireConf(id, confState(ids(2, 3, 4, 5), nil))
			}
		})
	}
}

// TestMembershipLearners: learners are added and removed without a joint
// phase, receive the log, count in no quorum and never campaign.
func TestMembershipLearners(t *testing.T) {
	nw := newMemberNet(t, confState(ids(1, 2, 3), nil), ids(4))
	nw.campaign(1)
	l := nw.node(1)
	idx := nw.proposeConf(1, ids(1, 2, 3), ids(4))
	if cc := nw.decodeConf(nw.entryAt(1, idx)); cc.Kind != raftpb.ConfChangeSimple {
		t.Fatalf("adding a learner logged %v, want Simple", cc)
	}
	nw.stabilize()
	nw.requireRole(4, RoleLearner, 1)
	nw.requireConf(4, confState(ids(1, 2, 3), ids(4)))
	if err := nw.node(4).Campaign(); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("learner campaigns: err %v", err)
	}
	nw.partition(ids(1, 4), ids(2, 3))
	nw.propose(1, "x")
	if l.trk.Progress[4].Match != l.log.lastIndex() || l.Committed() == l.log.lastIndex() {
		t.Fatalf("learner match %d, commit %d, last %d: want the learner to hold x and x uncommitted",
			l.trk.Progress[4].Match, l.Committed(), l.log.lastIndex())
	}
	nw.heal()
	nw.tick(1, 1)
	idx = nw.proposeConf(1, ids(1, 2, 3), nil)
	if cc := nw.decodeConf(nw.entryAt(1, idx)); cc.Kind != raftpb.ConfChangeSimple {
		t.Fatalf("removing a learner logged %v, want Simple", cc)
	}
	nw.stabilize()
	nw.requireConf(4, confState(ids(1, 2, 3), nil))
	nw.requireRole(4, RoleFollower, 1)
}

// TestMembershipPromoteLearner: promoting a learner is a voter change, so it
// is joint; the promoted node becomes a follower that may campaign and win.
func TestMembershipPromoteLearner(t *testing.T) {
	nw := newNetworkConf(t, confState(ids(1, 2, 3), ids(4)))
	nw.campaign(1)
	idx := nw.proposeConf(1, ids(1, 2, 3, 4), nil)
	if cc := nw.decodeConf(nw.entryAt(1, idx)); cc.Kind != raftpb.ConfChangeEnterJoint {
		t.Fatalf("promotion logged %v, want EnterJoint", cc)
	}
	nw.stabilize()
	nw.requireRole(4, RoleFollower, 1)
	nw.requireConf(4, confState(ids(1, 2, 3, 4), nil))
	nw.expireLease(1, 2, 3)
	nw.campaignUntilLeader(4)
}

// TestProposeConfChangeBusy: a new change waits while an earlier one is
// unfinished, and only a leader outside a transfer takes one at all.
func TestProposeConfChangeBusy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(nw *network) uint64 // returns the node to propose at
		want  error
	}{
		{"configuration entry not committed", func(nw *network) uint64 {
			nw.campaign(1)
			nw.isolate(1)
			nw.proposeConf(1, ids(1, 2, 3), ids(4))
			nw.stabilize()
			return 1
		}, ErrConfChangeBusy},
		{"joint configuration", func(nw *network) uint64 {
			// A group bootstrapped joint stays joint (membership.bootstrapped).
			*nw = *newNetworkConf(nw.t, joint123_145)
			nw.campaign(1)
			nw.requireConf(1, joint123_145)
			return 1
		}, ErrConfChangeBusy},
		{"no entry of the term committed", func(nw *network) uint64 {
			if err := nw.node(1).Campaign(); err != nil {
				nw.t.Fatal(err)
			}
			nw.stabilizeHold(holdType(raftpb.MsgApp))
			nw.requireRole(1, RoleLeader, 1)
			return 1
		}, ErrConfChangeBusy},
		{"follower", func(nw *network) uint64 { nw.campaign(1); return 2 }, ErrNotLeader},
		{"leadership transfer", func(nw *network) uint64 {
			nw.campaign(1)
			nw.isolate(2)
			if err := nw.node(1).TransferLeadership(2); err != nil {
				nw.t.Fatal(err)
			}
			return 1
		}, ErrProposalDropped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nw := newMemberNet(t, confState(ids(1, 2, 3), nil), ids(4))
			id := tc.setup(nw)
			last := nw.node(id).log.lastIndex()
			_, err := nw.node(id).ProposeConfChange(raftpb.ConfChange{Voters: ids(1, 2, 3, 4)})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if got := nw.node(id).log.lastIndex(); got != last {
				t.Fatalf("a refused change appended entries: last %d, was %d", got, last)
			}
		})
	}
}

// TestProposeConfChangeInvalid: a target that is no valid configuration,
// demotes a voter or changes nothing is refused and appends nothing.
func TestProposeConfChangeInvalid(t *testing.T) {
	for _, tc := range []struct {
		name             string
		voters, learners []uint64
	}{
		{"no voters", nil, ids(4)},
		{"zero voter", ids(1, 2, 0), nil},
		{"zero learner", ids(1, 2, 3), ids(0)},
		{"voter twice", ids(1, 2, 2), nil},
		{"voter and learner", ids(1, 2, 3, 4), ids(4)},
		{"demote voter", ids(1, 2), ids(3)},
		{"no change", ids(3, 2, 1), ids(5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nw := newNetworkConf(t, confState(ids(1, 2, 3), ids(5)))
			nw.campaign(1)
			l := nw.node(1)
			last := l.log.lastIndex()
			_, err := l.ProposeConfChange(raftpb.ConfChange{Voters: tc.voters, Learners: tc.learners})
			if !errors.Is(err, ErrInvalidConfChange) {
				t.Fatalf("err %v, want ErrInvalidConfChange", err)
			}
			if l.log.lastIndex() != last {
				t.Fatal("a refused change appended an entry")
			}
		})
	}
}

// TestMembershipTruncationReverts: a follower that appended a configuration
// entry which a later leader overwrites goes back to the configuration
// before it, as does the deposed leader that proposed it.
func TestMembershipTruncationReverts(t *testing.T) {
	all := confState(ids(1, 2, 3, 4, 5), nil)
	nw := newNetwork(t, 5)
	nw.campaign(1)
	// Only 2 hears of the change, and its answer is lost.
	nw.partition(ids(1, 2), ids(3, 4, 5))
	nw.drop = func(m raftpb.Message) bool { return m.From == 2 && m.To == 1 }
	idx := nw.proposeConf(1, ids(1, 2, 3, 4, 5, 6), nil)
	nw.stabilize()
	nw.drop = nil
	joint := jointConf(ids(1, 2, 3, 4, 5, 6), ids(1, 2, 3, 4, 5), nil)
	nw.requireConf(2, joint)
	if nw.node(2).log.lastIndex() != idx || nw.node(2).Committed() >= idx {
		t.Fatal("node 2 should hold the configuration entry uncommitted")
	}
	// The majority elects 3, whose entry of term 2 replaces it.
	nw.isolate(1)
	nw.isolate(2)
	nw.expireLease(3, 4, 5)
	nw.campaignUntilLeader(3)
	nw.heal()
	nw.tick(3, 1) // probes paused while 1 and 2 were cut off resume
	nw.propose(3, "x")
	for _, id := range nw.ids {
		nw.requireConf(id, all)
		if e := nw.entryAt(id, idx); e.Type == raftpb.EntryConfChange {
			t.Fatalf("node %d still holds the configuration entry at %d", id, idx)
		}
	}
	nw.requireSameLogs(3)
}

// TestMembershipJointElection: a node that has appended an EnterJoint entry
// campaigns in the joint configuration and needs a majority of both halves;
// once elected and its own entry committed, it leaves the joint
// configuration.
func TestMembershipJointElection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reach []uint64 // whom node 2 can reach
		win   bool
	}{
		{"old majority only", ids(3), false},
		{"new majority only", ids(4, 5), false},
		{"both majorities", ids(3, 4), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nw := newMemberNet(t, confState(ids(1, 2, 3), nil), ids(4, 5))
			nw.campaign(1)
			// Everyone appends the change; the leader hears no answer.
			nw.proposeConf(1, ids(2, 3, 4, 5), nil)
			nw.stabilizeHold(func(m raftpb.Message) bool { return m.To == 1 })
			joint := jointConf(ids(2, 3, 4, 5), ids(1, 2, 3), nil)
			nw.requireConf(2, joint)
			nw.isolate(1)
			for _, id := range ids(3, 4, 5) {
				if !slices.Contains(tc.reach, id) {
					nw.partition(ids(2), ids(id))
				}
			}
			nw.expireLease(2, 3, 4, 5)
			nw.campaign(2)
			if won := nw.node(2).Role() == RoleLeader; won != tc.win {
				t.Fatalf("node 2 is %s, want leader=%v", nw.node(2).Role(), tc.win)
			}
			if !tc.win {
				return
			}
			nw.heal()
			nw.isolate(1)
			nw.tick(2, 1)
			for _, id := range ids(2, 3, 4, 5) {
				nw.requireConf(id, confState(ids(2, 3, 4, 5), nil))
			}
		})
	}
}

// TestMembershipTransferToLeavingVoter: leadership is never handed to a
// voter of the outgoing half only, which is being removed.
func TestMembershipTransferToLeavingVoter(t *testing.T) {
	nw := newNetworkConf(t, joint123_145)
	nw.campaign(1)
	if err := nw.node(1).TransferLeadership(4); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("transfer to a leaving voter: err %v, want ErrUnknownPeer", err)
	}
	if err := nw.node(1).TransferLeadership(2); err != nil {
		t.Fatal(err)
	}
}

// TestMembershipReadyConfState: a Ready reports the configuration exactly
// when it changed since the previous one.
func TestMembershipReadyConfState(t *testing.T) {
	nw := newMemberNet(t, confState(ids(1, 2, 3), nil), ids(4))
	nw.campaign(1)
	l := nw.node(1)
	if rd := l.Ready(); rd.ConfState != nil {
		t.Fatalf("Ready reports configuration %+v without a change", rd.ConfState)
	}
	nw.proposeConf(1, ids(1, 2, 3), ids(4))
	if !l.HasReady() {
		t.Fatal("no Ready after a configuration change")
	}
	rd := l.Ready()
	if want := confState(ids(1, 2, 3), ids(4)); rd.ConfState == nil || !rd.ConfState.Equal(want) {
		t.Fatalf("Ready.ConfState %+v, want %+v", rd.ConfState, want)
	}
	rd.ConfState.Voters[0] = 99 // a copy
	nw.requireConf(1, confState(ids(1, 2, 3), ids(4)))
	nw.persistReady(1, rd)
	if rd := l.Ready(); rd.ConfState != nil {
		t.Fatalf("configuration reported twice: %+v", rd.ConfState)
	}
}

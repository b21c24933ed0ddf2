package core

import (
	"errors"
	"slices"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// TestMembershipRestartRecoversConf: a restarted node finds its
// configuration again in its log, read one entry at a time here, on top of
// the configuration its storage starts from (the bootstrap one, or that of
// the snapshot the log was compacted to).
func TestMembershipRestartRecoversConf(t *testing.T) {
	defer func(old uint64) { confScanBytes = old }(confScanBytes)
	confScanBytes = 1
	target := confState(ids(1, 2, 3, 4), nil)
	for _, tc := range []struct {
		name string
		run  func(nw *network)
		want raftpb.ConfState
	}{
		{"after a change", func(nw *network) {
			nw.proposeConf(1, ids(1, 2, 3, 4), nil)
			nw.stabilize()
		}, target},
		{"in the joint phase", func(nw *network) {
			nw.proposeConf(1, ids(1, 2, 3, 4), nil)
			nw.stabilizeHold(func(m raftpb.Message) bool { return m.To == 1 })
		}, jointConf(ids(1, 2, 3, 4), ids(1, 2, 3), nil)},
		{"compacted behind a snapshot of the joint phase", func(nw *network) {
			enter := nw.proposeConf(1, ids(1, 2, 3, 4), nil)
			nw.stabilize()
			// A runtime's snapshot records the configuration at its index;
			// the LeaveJoint entry after it stays in the log.
			st := nw.nodes[2].st
			st.SetConfState(jointConf(ids(1, 2, 3, 4), ids(1, 2, 3), nil))
			if err := st.Compact(enter); err != nil {
				t.Fatal(err)
			}
		}, target},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nw := newMemberNet(t, confState(ids(1, 2, 3), nil), ids(4))
			nw.campaign(1)
			for range 3 {
				nw.propose(1, "filler")
			}
			tc.run(nw)
			nw.requireConf(2, tc.want)
			nw.restart(2)
			nw.requireConf(2, tc.want)
			if nw.node(2).HasReady() && nw.node(2).Ready().ConfState != nil {
				t.Fatal("a restart reports a configuration change")
			}
		})
	}
}

// TestMembershipSnapshotCarriesConf: a node that catches up through a
// snapshot takes the snapshot's configuration.
func TestMembershipSnapshotCarriesConf(t *testing.T) {
	nw := newMemberNet(t, confState(ids(1, 2, 3), nil), ids(4))
	nw.campaign(1)
	nw.partition(ids(4), ids(1, 2, 3))
	nw.proposeConf(1, ids(1, 2, 3), ids(4))
	nw.stabilize()
	nw.propose(1, "x")
	st := nw.nodes[1].st
	st.SetConfState(confState(ids(1, 2, 3), ids(4)))
	if err := st.Compact(nw.node(1).Committed()); err != nil {
		t.Fatal(err)
	}
	nw.requireConf(4, confState(ids(1, 2, 3), nil))
	nw.heal()
	nw.tick(1, 2)
	if n := len(nw.delivered(raftpb.MsgSnap, 1, 4)); n != 1 {
		t.Fatalf("%d snapshots sent to the learner, want 1", n)
	}
	nw.requireConf(4, confState(ids(1, 2, 3), ids(4)))
	nw.requireRole(4, RoleLearner, 1)
}

// TestMembershipLeavesSnapshotJoint: a leader whose configuration is joint
// because its log starts from a snapshot taken in the joint phase leaves it
// once it has committed an entry of its term.
func TestMembershipLeavesSnapshotJoint(t *testing.T) {
	joint := jointConf(ids(1, 2, 4), ids(1, 2, 3), nil)
	nw := &network{t: t, nodes: map[uint64]*testNode{}, cut: map[[2]uint64]bool{}}
	for _, id := range ids(1, 2, 3, 4) {
		st := storage.NewMemoryStorage()
		if err := st.ApplySnapshot(raftpb.SnapshotMeta{Index: 5, Term: 1, ConfState: joint}); err != nil {
			t.Fatal(err)
		}
		st.SetHardState(raftpb.HardState{Term: 1, Commit: 5})
		nw.nodes[id] = &testNode{r: newTestRaft(t, id, st), st: st}
		nw.ids = append(nw.ids, id)
	}
	nw.requireConf(1, joint)
	nw.expireLease(nw.ids...)
	nw.campaignUntilLeader(1)
	for _, id := range ids(1, 2, 4) {
		nw.requireConf(id, confState(ids(1, 2, 4), nil))
	}
	if e := nw.entryAt(1, 7); nw.decodeConf(e).Kind != raftpb.ConfChangeLeaveJoint {
		t.Fatalf("entry 7 is %v, want the LeaveJoint after the no-op", e)
	}
}

// TestMembershipIgnoresBadEntry: a configuration entry that does not decode
// or cannot follow the configuration is kept in the log but changes
// nothing, the same on every node that reads it.
func TestMembershipIgnoresBadEntry(t *testing.T) {
	leave := (&raftpb.ConfChange{Kind: raftpb.ConfChangeLeaveJoint}).MarshalAppend(nil)
	for _, data := range [][]byte{{0xff}, nil, leave} {
		nw := newNetwork(t, 3)
		nw.campaign(1)
		f := nw.node(2)
		last := f.log.lastIndex()
		err := f.Step(raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Term: 1, Index: last, LogTerm: 1,
			Entries: []raftpb.Entry{{Term: 1, Index: last + 1, Type: raftpb.EntryConfChange, Data: data}}})
		if err != nil {
			t.Fatal(err)
		}
		if f.log.lastIndex() != last+1 {
			t.Fatalf("entry %x not appended", data)
		}
		nw.requireConf(2, confState(ids(1, 2, 3), nil))
		if f.conf.lastIndex() != 0 {
			t.Fatalf("entry %x recorded as a configuration change", data)
		}
	}
}

// TestResetConf: survivors of a group that lost its majority for good reset
// their configuration, elect a leader in it, which logs the reset as the
// first entry of its term, and go on committing; the reset then survives
// restarts.
func TestResetConf(t *testing.T) {
	nw := newNetwork(t, 5)
	nw.campaign(1)
	nw.propose(1, "before")
	for _, id := range ids(3, 4, 5) {
		nw.isolate(id) // lost for good
	}
	nw.tickAll(5 * nw.node(1).cfg.ElectionTick)
	if l := nw.leader(); l == 1 || l == 2 {
		t.Fatalf("node %d leads without a majority", l)
	}
	for _, id := range ids(1, 2) {
		r := nw.node(id)
		term := r.Term()
		if err := r.ResetConf(ids(2, 1), nil); err != nil {
			t.Fatal(err)
		}
		if r.Term() != term+1 || r.vote != raftpb.None || r.Role() != RoleFollower {
			t.Fatalf("after ResetConf node %d is %s in term %d voting %d; want a follower in term %d without vote",
				id, r.Role(), r.Term(), r.vote, term+1)
		}
		nw.requireConf(id, confState(ids(1, 2), nil))
	}
	nw.stabilize()
	var l uint64
	for range 100 {
		if l = nw.leader(); l != 0 {
			break
		}
		nw.tickAll(1)
	}
	if l != 1 && l != 2 {
		t.Fatalf("no survivor leads after the reset (leader %d)", l)
	}
	first := nw.node(l).log.lastIndex()
	for ; nw.entryAt(l, first-1).Term == nw.node(l).Term(); first-- {
	}
	cc := nw.decodeConf(nw.entryAt(l, first))
	if cc.Kind != raftpb.ConfChangeSimple || !slices.Equal(cc.Voters, ids(1, 2)) {
		t.Fatalf("first entry of the new leader's term is %+v, want the reset configuration", cc)
	}
	nw.propose(l, "after")
	if c := nw.node(l).Committed(); c != nw.node(l).log.lastIndex() {
		t.Fatalf("commit %d, last %d: the reset group does not commit", c, nw.node(l).log.lastIndex())
	}
	for _, id := range ids(1, 2) {
		nw.restart(id)
		nw.requireConf(id, confState(ids(1, 2), nil))
	}
}

// TestResetConfLostOnRestart: a reset not yet logged does not survive a
// restart.
func TestResetConfLostOnRestart(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.campaign(1)
	if err := nw.node(2).ResetConf(ids(2), nil); err != nil {
		t.Fatal(err)
	}
	nw.requireConf(2, confState(ids(2), nil))
	nw.stabilize()
	nw.restart(2)
	nw.requireConf(2, confState(ids(1, 2, 3), nil))
}

// TestResetConfInvalid: ResetConf refuses what is not a configuration and
// then changes nothing.
func TestResetConfInvalid(t *testing.T) {
	for _, tc := range []struct {
		name             string
		voters, learners []uint64
	}{
		{"no voters", nil, ids(1)},
		{"zero ID", ids(0), nil},
		{"voter twice", ids(1, 1), nil},
		{"voter and learner", ids(1, 2), ids(2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nw := newNetwork(t, 3)
			r := nw.node(1)
			if err := r.ResetConf(tc.voters, tc.learners); !errors.Is(err, ErrInvalidConfChange) {
				t.Fatalf("err %v, want ErrInvalidConfChange", err)
			}
			if r.Term() != 0 {
				t.Fatalf("a refused reset moved the term to %d", r.Term())
			}
			nw.requireConf(1, confState(ids(1, 2, 3), nil))
		})
	}
}

// TestMembershipRemovedNodeStillNeeded: a node that appended the entry
// removing it still campaigns until that entry commits (Raft thesis
// §4.2.2). Here the leader of (1 2) removes 2, sends 2 the LeaveJoint
// entry and crashes before its own copy is durable: 1 is back in
// (1)&&(1 2) and needs 2's vote, which 2 refuses for 1's shorter log, so
// only 2 can be elected; it commits its removal and hands back to 1.
func TestMembershipRemovedNodeStillNeeded(t *testing.T) {
	nw := newNetwork(t, 2)
	nw.campaign(1)
	l := nw.node(1)
	nw.proposeConf(1, ids(1), nil)
	acks := nw.stabilizeHold(func(m raftpb.Message) bool { return m.Type == raftpb.MsgAppResp && m.From == 2 })
	for _, m := range acks {
		if err := l.Step(m); err != nil {
			t.Fatal(err)
		}
	}
	nw.requireConf(1, confState(ids(1), nil)) // LeaveJoint appended, not durable
	rd := l.Ready()
	for _, m := range rd.Messages {
		nw.deliver(m)
	}
	nw.flushReadies() // persists 2's log, not 1's Ready, which the crash loses
	nw.pending = nil
	nw.restart(1)
	nw.requireConf(1, jointConf(ids(1), ids(1, 2), nil))
	nw.requireConf(2, confState(ids(1), nil))

	nw.expireLease(1, 2)
	if err := nw.node(1).Campaign(); err != nil {
		t.Fatal(err)
	}
	nw.stabilize()
	if nw.leader() != 0 {
		t.Fatalf("node %d elected without 2's vote", nw.leader())
	}
	nw.expireLease(1, 2)
	nw.campaign(2)
	nw.stabilize()
	nw.requireRole(1, RoleLeader, nw.node(2).Term()+1)
	nw.requireRole(2, RoleFollower, nw.node(1).Term()-1)
	for _, id := range ids(1, 2) {
		nw.requireConf(id, confState(ids(1), nil))
	}
	if nw.node(2).promotable() {
		t.Fatal("node 2 may still campaign once its removal is committed")
	}
}

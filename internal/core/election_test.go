package core

import (
	"testing"

	"github.com/raftkit/raftkit/raftpb"
)

func TestElectionWithPreVote(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.campaign(1)
	nw.requireRole(1, RoleLeader, 1)
	for _, id := range []uint64{2, 3} {
		nw.requireRole(id, RoleFollower, 1)
		if got := nw.node(id).Lead(); got != 1 {
			t.Fatalf("node %d follows %d, want 1", id, got)
		}
	}
	if nw.count(raftpb.MsgPreVote) != 2 || nw.count(raftpb.MsgVote) != 2 {
		t.Fatalf("pre-votes %d, votes %d: want 2 each", nw.count(raftpb.MsgPreVote), nw.count(raftpb.MsgVote))
	}
	// The leader's no-op commits and is applied everywhere.
	for _, id := range nw.ids {
		n := nw.nodes[id]
		if len(n.applied) != 1 || n.applied[0].Type != raftpb.EntryNoop || n.applied[0].Term != 1 {
			t.Fatalf("node %d applied %v, want the term-1 no-op", id, n.applied)
		}
	}
}

func TestElectionByTimeout(t *testing.T) {
	nw := newNetwork(t, 5)
	nw.tickAll(20) // 2T: someone's randomized timeout in [T, 2T) must fire
	lead := nw.leader()
	if lead == 0 {
		t.Fatal("no leader after two election timeouts")
	}
	for _, id := range nw.ids {
		if nw.node(id).Lead() != lead {
			t.Fatalf("node %d follows %d, want %d", id, nw.node(id).Lead(), lead)
		}
	}
}

func TestRandomizedElectionTimeoutRange(t *testing.T) {
	nw := newNetwork(t, 1)
	r := nw.node(1)
	seen := map[int]bool{}
	for range 1000 {
		r.resetRandomizedElectionTimeout()
		to := r.randomizedElectionTimeout
		if to < r.cfg.ElectionTick || to >= 2*r.cfg.ElectionTick {
			t.Fatalf("timeout %d outside [%d, %d)", to, r.cfg.ElectionTick, 2*r.cfg.ElectionTick)
		}
		seen[to] = true
	}
	if len(seen) != r.cfg.ElectionTick {
		t.Fatalf("drew %d distinct timeouts, want all %d", len(seen), r.cfg.ElectionTick)
	}
}

func TestSingleNodeElectsItselfAndCommitsAfterPersist(t *testing.T) {
	nw := newNetwork(t, 1)
	r := nw.node(1)
	if err := r.Campaign(); err != nil {
		t.Fatal(err)
	}
	nw.requireRole(1, RoleLeader, 1)
	rd := r.Ready()
	if rd.HardState.Term != 1 || rd.HardState.Vote != 1 || len(rd.Entries) != 1 {
		t.Fatalf("first ready: hs %+v entries %v", rd.HardState, rd.Entries)
	}
	if r.log.committed != 0 {
		t.Fatalf("committed %d before the leader's own append is durable", r.log.committed)
	}
	nw.nodes[1].st.Append(rd.Entries)
	nw.nodes[1].st.SetHardState(rd.HardState)
	r.Advance(rd)
	if r.log.committed != 1 {
		t.Fatalf("committed %d after the append is durable, want 1", r.log.committed)
	}
}

func TestReelectionAfterLeaderIsolated(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.campaign(1)
	nw.isolate(1)
	// Within the leader lease nobody grants a pre-vote.
	nw.campaign(2)
	nw.requireRole(2, RolePreCandidate, 1)
	// Once the lease has lapsed a new leader is elected (a split vote may
	// cost a term), and check quorum has made the isolated leader step down.
	nw.tickAll(4 * nw.node(1).cfg.ElectionTick)
	lead := nw.leader()
	if lead != 2 && lead != 3 {
		t.Fatalf("leader is %d, want 2 or 3", lead)
	}
	term := nw.node(lead).Term()
	if r := nw.node(1); r.Role() == RoleLeader || r.Term() != 1 {
		t.Fatalf("isolated leader is %s in term %d: check quorum did not depose it", r.Role(), r.Term())
	}
	nw.heal()
	nw.tick(lead, 1) // a heartbeat brings the old leader into the new term
	nw.requireRole(1, RoleFollower, term)
	if nw.node(1).Lead() != lead {
		t.Fatalf("old leader follows %d, want %d", nw.node(1).Lead(), lead)
	}
	nw.propose(lead, "x")
	for _, id := range nw.ids {
		if got := nw.nodes[id].applied; string(got[len(got)-1].Data) != "x" {
			t.Fatalf("node %d did not apply x: %v", id, got)
		}
	}
}

func TestVoteRequiresUpToDateLog(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.campaign(1)
	nw.isolate(3)
	nw.propose(1, "a") // 3 misses it
	nw.heal()
	nw.isolate(1)
	// Node 3's log is behind node 2's: node 2 refuses it, so no quorum.
	nw.tick(3, 3*nw.node(3).cfg.ElectionTick)
	if nw.leader() == 3 {
		t.Fatal("node 3 with a stale log became leader")
	}
	nw.campaign(2)
	nw.requireRole(2, RoleLeader, 2)
}

func TestPreVoteIsolatedNodeDoesNotDisruptLeader(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.campaign(1)
	nw.isolate(3)
	for range 5 * nw.node(3).cfg.ElectionTick {
		nw.node(3).Tick()
		nw.stabilize()
	}
	// Pre-vote never bumped its term while it was cut off.
	if r := nw.node(3); r.Term() != 1 || r.Role() != RolePreCandidate {
		t.Fatalf("isolated node: %s in term %d, want PreCandidate in term 1", r.Role(), r.Term())
	}
	nw.heal()
	// Rejoining: its pre-votes are refused by nodes that hear the leader.
	nw.node(3).Tick()
	nw.tickAll(2 * nw.node(1).cfg.ElectionTick)
	nw.requireRole(1, RoleLeader, 1)
	nw.requireRole(3, RoleFollower, 1)
}

func TestPreVoteRefusedWithinLeaderLease(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.campaign(1)
	last := nw.node(2).log.lastIndex()
	err := nw.node(2).Step(raftpb.Message{From: 3, To: 2, Type: raftpb.MsgPreVote, Term: 2, Index: last, LogTerm: 1})
	if err != nil {
		t.Fatal(err)
	}
	rd := nw.node(2).Ready()
	if len(rd.Messages) != 1 || rd.Messages[0].Type != raftpb.MsgPreVoteResp || !rd.Messages[0].Reject {
		t.Fatalf("want a refused pre-vote, got %v", rd.Messages)
	}
	nw.node(2).Advance(rd)
	// Once the lease has run out (no leader heard for T ticks) it grants.
	for range nw.node(2).cfg.ElectionTick {
		nw.node(2).electionElapsed++
	}
	nw.node(2).Step(raftpb.Message{From: 3, To: 2, Type: raftpb.MsgPreVote, Term: 2, Index: last, LogTerm: 1})
	rd = nw.node(2).Ready()
	if len(rd.Messages) != 1 || rd.Messages[0].Reject || rd.Messages[0].Term != 2 {
		t.Fatalf("want a granted pre-vote at term 2, got %v", rd.Messages)
	}
	if nw.node(2).Term() != 1 {
		t.Fatalf("granting a pre-vote changed the term to %d", nw.node(2).Term())
	}
}

func TestVoteAndRequestWaitForDurableTerm(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.DisablePreVote = true })
	r := nw.node(1)
	r.Campaign()
	rd := r.Ready()
	if rd.HardState.Term != 1 || rd.HardState.Vote != 1 {
		t.Fatalf("hard state %+v, want term 1 vote 1", rd.HardState)
	}
	if len(rd.Messages) != 0 || len(rd.MessagesAfterPersist) != 2 {
		t.Fatalf("vote requests must wait for persistence: now=%v after=%v", rd.Messages, rd.MessagesAfterPersist)
	}
	voter := nw.node(2)
	voter.Step(rd.MessagesAfterPersist[0])
	vrd := voter.Ready()
	if len(vrd.Messages) != 0 || len(vrd.MessagesAfterPersist) != 1 || vrd.MessagesAfterPersist[0].Type != raftpb.MsgVoteResp {
		t.Fatalf("vote must wait for persistence: now=%v after=%v", vrd.Messages, vrd.MessagesAfterPersist)
	}
	if vrd.HardState.Vote != 1 {
		t.Fatalf("voter hard state %+v does not record the vote", vrd.HardState)
	}
}

func TestPreVoteGoesOutAtOnce(t *testing.T) {
	nw := newNetwork(t, 3)
	r := nw.node(1)
	r.Campaign()
	rd := r.Ready()
	if len(rd.Messages) != 2 || rd.Messages[0].Type != raftpb.MsgPreVote || rd.Messages[0].Term != 1 {
		t.Fatalf("pre-votes should be sendable at once for term 1: %v", rd.Messages)
	}
	if !rd.HardState.IsEmpty() && rd.HardState.Term != 0 {
		t.Fatalf("pre-vote changed the hard state: %+v", rd.HardState)
	}
}

func TestLearnerNeverCampaignsButReplicates(t *testing.T) {
	nw := newNetworkConf(t, raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}})
	nw.requireRole(4, RoleLearner, 0)
	if err := nw.node(4).Campaign(); err == nil {
		t.Fatal("a learner accepted Campaign")
	}
	nw.tick(4, 5*nw.node(4).cfg.ElectionTick)
	if nw.count(raftpb.MsgPreVote)+nw.count(raftpb.MsgVote) != 0 {
		t.Fatal("the learner campaigned")
	}
	nw.campaign(1)
	nw.propose(1, "a")
	nw.requireRole(4, RoleLearner, 1)
	if got := nw.nodes[4].applied; len(got) != 2 || string(got[1].Data) != "a" {
		t.Fatalf("learner applied %v", got)
	}
}

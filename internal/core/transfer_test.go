package core

import (
	"errors"
	"slices"
	"testing"

	"github.com/raftkit/raftkit/internal/core/tracker"
	"github.com/raftkit/raftkit/raftpb"
)

// TestTransferLeadershipToUpToDateFollower: the leader sends MsgTimeoutNow
// at once, refuses proposals meanwhile, and the target wins an election whose
// vote requests carry Transfer and are granted despite the leader lease.
func TestTransferLeadershipToUpToDateFollower(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.campaign(1)
	nw.propose(1, "a")
	l := nw.node(1)
	if !nw.node(3).inLeaderLease(raftpb.MsgVote) {
		t.Fatal("node 3 should be within its leader lease")
	}
	if err := l.TransferLeadership(2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Propose([]byte("b")); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("proposal during transfer: err %v, want ErrProposalDropped", err)
	}
	rd := nw.takeReady(1)
	if tn := filterMsgs(rd.Messages, raftpb.MsgTimeoutNow, 1, 2); len(tn) != 1 {
		t.Fatalf("leader Ready messages %v, want MsgTimeoutNow to 2 sendable at once", rd.Messages)
	}
	mark := len(nw.trace)
	nw.persistReady(1, rd)
	nw.stabilize()

	nw.requireRole(2, RoleLeader, 2)
	for _, id := range []uint64{1, 3} {
		nw.requireRole(id, RoleFollower, 2)
		if nw.node(id).Lead() != 2 {
			t.Fatalf("node %d follows %d, want 2", id, nw.node(id).Lead())
		}
	}
	tr := nw.trace[mark:]
	if pv := filterMsgs(tr, raftpb.MsgPreVote, 2, 0); len(pv) != 0 {
		t.Fatalf("transfer target ran a pre-vote: %v", pv)
	}
	votes := filterMsgs(tr, raftpb.MsgVote, 2, 0)
	if len(votes) != 2 {
		t.Fatalf("vote requests %v, want 2", votes)
	}
	for _, v := range votes {
		if !v.Transfer || v.Term != 2 {
			t.Fatalf("vote request %v: want Transfer in term 2", v)
		}
	}
	for _, from := range []uint64{1, 3} {
		resp := filterMsgs(tr, raftpb.MsgVoteResp, from, 2)
		if len(resp) != 1 || resp[0].Reject {
			t.Fatalf("vote answer of %d: %v, want a grant", from, resp)
		}
	}
	nw.propose(2, "c")
	nw.requireSameLogs(2)
	for _, id := range nw.ids {
		if a := nw.nodes[id].applied; string(a[len(a)-1].Data) != "c" {
			t.Fatalf("node %d did not apply c: %v", id, a)
		}
	}
	if _, _, err := l.Propose([]byte("d")); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("proposal at the old leader: err %v, want ErrProposalDropped", err)
	}
}

// TestTransferLeadershipToLaggingFollower: a target whose acknowledgements
// are late is told to campaign only once it has acknowledged the leader's
// whole log.
func TestTransferLeadershipToLaggingFollower(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.campaign(1)
	l := nw.node(1)
	with3 := func(m raftpb.Message) bool { return m.To == 3 || m.From == 3 }
	var held []raftpb.Message
	for _, d := range []string{"a", "b", "c"} {
		if _, _, err := l.Propose([]byte(d)); err != nil {
			t.Fatal(err)
		}
		held = append(held, nw.stabilizeHold(with3)...)
	}
	if m := l.trk.Progress[3].Match; m != 1 {
		t.Fatalf("match of 3 is %d, want 1", m)
	}
	if err := l.TransferLeadership(3); err != nil {
		t.Fatal(err)
	}
	held = append(held, nw.stabilizeHold(with3)...)
	if tn := filterMsgs(held, raftpb.MsgTimeoutNow, 0, 0); len(tn) != 0 {
		t.Fatalf("MsgTimeoutNow sent to a lagging target: %v", tn)
	}
	if _, _, err := l.Propose([]byte("x")); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("proposal during transfer: err %v, want ErrProposalDropped", err)
	}
	// Node 3 receives everything; its acknowledgements reach the leader one
	// by one, and only the one covering index 4 may trigger MsgTimeoutNow.
	acks := nw.deliverHold(with3, held...)
	if len(acks) == 0 || acks[len(acks)-1].Index != 4 {
		t.Fatalf("node 3 answered %v, want acknowledgements ending at 4", acks)
	}
	var timeoutNow []raftpb.Message
	for _, a := range acks {
		out := nw.deliverHold(with3, a)
		tn := filterMsgs(out, raftpb.MsgTimeoutNow, 1, 3)
		if len(tn) > 0 && a.Index != 4 {
			t.Fatalf("MsgTimeoutNow after node 3 acknowledged only %d of 4", a.Index)
		}
		if len(tn) > 0 && l.trk.Progress[3].Match != 4 {
			t.Fatalf("MsgTimeoutNow with match %d", l.trk.Progress[3].Match)
		}
		timeoutNow = append(timeoutNow, tn...)
	}
	if len(timeoutNow) != 1 {
		t.Fatalf("sent %v, want one MsgTimeoutNow", timeoutNow)
	}
	nw.deliverHold(holdNone, timeoutNow...)
	nw.requireRole(3, RoleLeader, 2)
	nw.requireSameLogs(3)
	if got := nw.logOf(3); len(got) != 5 || got[3] != "1/4:c" || got[4] != "2/5:" {
		t.Fatalf("new leader's log %v", got)
	}
}

// TestTransferLeadershipCatchesUpProbingTarget: when the target is probing,
// TransferLeadership itself sends it the missing entries first.
func TestTransferLeadershipCatchesUpProbingTarget(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.campaign(1)
	l := nw.node(1)
	nw.isolate(3)
	nw.proposeN(1, "a", 3)
	nw.stabilize()
	nw.heal()
	l.ReportUnreachable(3) // the runtime saw the sends to 3 fail
	if pr := l.trk.Progress[3]; pr.State != tracker.StateProbe || pr.ProbeSent || pr.Match != 1 {
		t.Fatalf("progress of 3: %v", pr)
	}
	mark := len(nw.trace)
	if err := l.TransferLeadership(3); err != nil {
		t.Fatal(err)
	}
	nw.stabilize()
	tr := nw.trace[mark:]
	var kinds []string
	for _, m := range tr {
		if m.To == 3 && (m.Type == raftpb.MsgApp || m.Type == raftpb.MsgTimeoutNow) {
			kinds = append(kinds, m.Type.String())
		}
	}
	if len(kinds) < 2 || kinds[0] != "MsgApp" || !slices.Contains(kinds, "MsgTimeoutNow") {
		t.Fatalf("messages to 3: %v, want the missing entries then MsgTimeoutNow", kinds)
	}
	first := filterMsgs(tr, raftpb.MsgApp, 1, 3)[0]
	if first.Index != 1 || !slices.Equal(entryIndexes(first.Entries), []uint64{2, 3, 4}) {
		t.Fatalf("first append to 3: %v, want entries 2..4 after 1", first)
	}
	nw.requireRole(3, RoleLeader, 2)
	nw.requireSameLogs(3)
}

// TestTransferLeadershipToUnreachableFollowerTimesOut: a transfer whose
// target never takes over is abandoned after an election timeout, after
// which the leader accepts proposals again.
func TestTransferLeadershipToUnreachableFollowerTimesOut(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.campaign(1)
	nw.propose(1, "a")
	l := nw.node(1)
	nw.isolate(2)
	if err := l.TransferLeadership(2); err != nil {
		t.Fatal(err)
	}
	nw.stabilize()
	T := l.cfg.ElectionTick
	for i := 1; i < T; i++ {
		nw.tick(1, 1)
		nw.requireRole(1, RoleLeader, 1)
		if _, _, err := l.Propose([]byte("x")); !errors.Is(err, ErrProposalDropped) {
			t.Fatalf("tick %d: proposal during transfer: err %v, want ErrProposalDropped", i, err)
		}
	}
	nw.tick(1, 1)
	nw.requireRole(1, RoleLeader, 1)
	if l.leadTransferee != raftpb.None {
		t.Fatalf("transfer to %d still pending after %d ticks", l.leadTransferee, T)
	}
	nw.propose(1, "b")
	if a := nw.nodes[3].applied; string(a[len(a)-1].Data) != "b" {
		t.Fatalf("node 3 did not apply b: %v", a)
	}
	nw.requireRole(2, RoleFollower, 1)
}

func TestTransferLeadershipErrors(t *testing.T) {
	nw := newNetworkConf(t, raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}})
	nw.campaign(1)
	if err := nw.node(2).TransferLeadership(3); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("on a follower: %v, want ErrNotLeader", err)
	}
	for _, to := range []uint64{1, 4, 9} {
		if err := nw.node(1).TransferLeadership(to); !errors.Is(err, ErrUnknownPeer) {
			t.Fatalf("to %d: %v, want ErrUnknownPeer", to, err)
		}
	}
	if nw.node(1).leadTransferee != raftpb.None {
		t.Fatal("a refused transfer left a transferee behind")
	}
	nw.propose(1, "a")
}

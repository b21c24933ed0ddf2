package core

import (
	"errors"
	"slices"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
)

// readNet is the scripted test network, except that it keeps the ReadStates
// of every Ready, which the network's own persistReady drops.
type readNet struct {
	*network
	states map[uint64][]ReadState
}

func newReadNet(t *testing.T, cs raftpb.ConfState, opts ...configOpt) *readNet {
	return &readNet{network: newNetworkConf(t, cs, opts...), states: map[uint64][]ReadState{}}
}

// flush persists every pending Ready, keeping their ReadStates.
func (rn *readNet) flush() {
	for _, id := range rn.ids {
		for rn.node(id).HasReady() {
			rd := rn.node(id).Ready()
			rn.states[id] = append(rn.states[id], rd.ReadStates...)
			rn.persistReady(id, rd)
		}
	}
}

// stabilize is network.stabilize keeping ReadStates.
func (rn *readNet) stabilize() {
	rn.t.Helper()
	for i := 0; ; i++ {
		if i > 10000 {
			rn.t.Fatalf("network did not stabilize")
		}
		rn.flush()
		if rn.deliverAll() == 0 {
			return
		}
	}
}

// tick ticks node id n times, stabilizing after each.
func (rn *readNet) tick(id uint64, n int) {
	for range n {
		rn.node(id).Tick()
		rn.stabilize()
	}
}

// take returns and forgets the ReadStates node id has handed out.
func (rn *readNet) take(id uint64) []ReadState {
	rn.flush()
	s := rn.states[id]
	delete(rn.states, id)
	return s
}

// read requests a read at id, failing the test on error.
func (rn *readNet) read(id, ctx uint64, lease bool) {
	rn.t.Helper()
	if err := rn.node(id).ReadIndex(ctx, lease); err != nil {
		rn.t.Fatalf("ReadIndex(%d, %v) at %d: %v", ctx, lease, id, err)
	}
}

// elect makes node 1 leader and lets it commit its first entry.
func (rn *readNet) elect() *Raft {
	rn.t.Helper()
	rn.campaign(1)
	rn.stabilize()
	l := rn.node(1)
	if l.Role() != RoleLeader || l.log.committed < l.read.termStart {
		rn.t.Fatalf("node 1: %s, committed %d, want leader with its term started", l.Role(), l.log.committed)
	}
	return l
}

// heartbeatsSince counts the heartbeats delivered after trace position mark.
func (rn *readNet) heartbeatsSince(mark int) int {
	return len(filterMsgs(rn.trace[mark:], raftpb.MsgHeartbeat, 1, 0))
}

func wantStates(t *testing.T, got []ReadState, want ...ReadState) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("read states %v, want %v", got, want)
	}
}

// TestReadIndexSafeNeedsRound: a safe read on a three-node leader is
// released only after a quorum acknowledged a heartbeat round sent after it,
// at the commit index it was requested at.
func TestReadIndexSafeNeedsRound(t *testing.T) {
	rn := newReadNet(t, majority3)
	l := rn.elect()
	rn.read(1, 7, false)
	commit := l.log.committed
	rd := rn.takeReady(1)
	if len(rd.ReadStates) != 0 {
		t.Fatalf("safe read answered before any round: %v", rd.ReadStates)
	}
	hb := filterMsgs(rd.Messages, raftpb.MsgHeartbeat, 1, 0)
	if len(hb) != 2 || hb[0].Context == 0 || hb[0].Context != hb[1].Context {
		t.Fatalf("heartbeats %v, want one round to both followers carrying its sequence", hb)
	}
	rn.persistReady(1, rd)
	// One acknowledgement (plus the leader) is a quorum of three.
	rn.deliver(hb[0])
	rn.flush()
	ack := filterMsgs(rn.pending, raftpb.MsgHeartbeatResp, 2, 1)
	if len(ack) != 1 || ack[0].Context != hb[0].Context {
		t.Fatalf("follower answered %v, want the round's sequence echoed", rn.pending)
	}
	rn.deliver(ack[0])
	wantStates(t, rn.take(1), ReadState{Index: commit, RequestCtx: 7})
}

// TestReadIndexBatching: reads arriving while a round is outstanding send
// no round of their own; they share the next one, sent when the outstanding
// round is acknowledged.
func TestReadIndexBatching(t *testing.T) {
	rn := newReadNet(t, majority3)
	l := rn.elect()
	mark := len(rn.trace)
	rn.read(1, 1, false)
	rn.flush()
	if n := len(filterMsgs(rn.pending, raftpb.MsgHeartbeat, 1, 0)); n != 2 {
		t.Fatalf("first read sent %d heartbeats, want a round of 2", n)
	}
	for ctx := uint64(2); ctx <= 10; ctx++ {
		rn.read(1, ctx, ctx%2 == 0) // lease reads without a lease also wait
	}
	rn.flush()
	if n := len(filterMsgs(rn.pending, raftpb.MsgHeartbeat, 1, 0)); n != 2 {
		t.Fatalf("%d heartbeats pending after 10 reads, want the first round only", n)
	}
	rn.stabilize()
	if n := rn.heartbeatsSince(mark); n != 4 {
		t.Fatalf("%d heartbeats for 10 reads, want 2 rounds of 2", n)
	}
	var want []ReadState
	for ctx := uint64(1); ctx <= 10; ctx++ {
		want = append(want, ReadState{Index: l.log.committed, RequestCtx: ctx})
	}
	wantStates(t, rn.take(1), want...)
}

// TestReadIndexSingleVoter: a one-voter group answers at once.
func TestReadIndexSingleVoter(t *testing.T) {
	for _, lease := range []bool{false, true} {
		rn := newReadNet(t, raftpb.ConfState{Voters: []uint64{1}})
		l := rn.elect()
		rn.read(1, 3, lease)
		rd := rn.takeReady(1)
		wantStates(t, rd.ReadStates, ReadState{Index: l.log.committed, RequestCtx: 3})
		if len(rd.Messages) != 0 {
			t.Fatalf("lease=%v: single voter sent %v", lease, rd.Messages)
		}
	}
}

// TestReadIndexDeferredUntilTermCommit: a new leader holds reads, local and
// forwarded, until it has committed an entry of its term, then serves them
// at an index covering that entry.
func TestReadIndexDeferredUntilTermCommit(t *testing.T) {
	for _, lease := range []bool{false, true} {
		rn := newReadNet(t, majority3)
		rn.drop = func(m raftpb.Message) bool { return m.Type == raftpb.MsgAppResp && m.To == 1 }
		rn.campaign(1)
		rn.stabilize()
		l := rn.node(1)
		rn.requireRole(1, RoleLeader, 1)
		if l.log.committed >= l.read.termStart {
			t.Fatalf("noop committed %d despite dropped acks", l.log.committed)
		}
		mark := len(rn.trace)
		rn.read(1, 1, lease)
		rn.read(2, 2, lease)
		rn.stabilize()
		if got := rn.take(1); len(got) != 0 {
			t.Fatalf("lease=%v: leader answered %v before committing in its term", lease, got)
		}
		if n := rn.heartbeatsSince(mark); n != 0 {
			t.Fatalf("lease=%v: %d heartbeats for deferred reads", lease, n)
		}
		rn.drop = nil
		rn.tick(1, 1) // a heartbeat makes the followers re-acknowledge
		if l.log.committed < l.read.termStart {
			t.Fatalf("lease=%v: noop still not committed", lease)
		}
		wantStates(t, rn.take(1), ReadState{Index: l.log.committed, RequestCtx: 1})
		wantStates(t, rn.take(2), ReadState{Index: l.log.committed, RequestCtx: 2})
	}
}

// TestReadIndexForwarding: followers and learners forward reads to the
// leader and turn its answer into a ReadState; a node without a leader
// refuses; a duplicated request is answered once.
func TestReadIndexForwarding(t *testing.T) {
	cs := raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}
	rn := newReadNet(t, cs)
	if err := rn.node(2).ReadIndex(1, false); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("read without a leader: %v, want ErrNotLeader", err)
	}
	l := rn.elect()
	rn.propose(1, "x")
	for _, id := range []uint64{2, 4} {
		for _, lease := range []bool{false, true} {
			mark := len(rn.trace)
			rn.read(id, 10*id, lease)
			rn.flush()
			reqs := filterMsgs(rn.pending, raftpb.MsgReadIndex, id, 1)
			if len(reqs) != 1 || reqs[0].Context != 10*id {
				t.Fatalf("node %d sent %v, want one MsgReadIndex with its context", id, rn.pending)
			}
			rn.pending = append(rn.pending, reqs[0]) // duplicated by the network
			rn.stabilize()
			wantStates(t, rn.take(id), ReadState{Index: l.log.committed, RequestCtx: 10 * id})
			if n := rn.heartbeatsSince(mark); n == 0 {
				t.Fatalf("node %d: forwarded read answered without a round", id)
			}
		}
	}
}

// TestReadIndexRefusedDuringTransfer: a leader transferring leadership
// refuses local reads and rejects forwarded ones, which the requester drops.
func TestReadIndexRefusedDuringTransfer(t *testing.T) {
	rn := newReadNet(t, majority3)
	l := rn.elect()
	rn.drop = func(m raftpb.Message) bool { return m.Type == raftpb.MsgTimeoutNow }
	if err := l.TransferLeadership(2); err != nil {
		t.Fatal(err)
	}
	rn.stabilize()
	for _, lease := range []bool{false, true} {
		if err := l.ReadIndex(1, lease); !errors.Is(err, ErrReadDropped) {
			t.Fatalf("lease=%v read during transfer: %v, want ErrReadDropped", lease, err)
		}
	}
	rn.read(3, 5, false)
	rn.stabilize()
	if rej := rn.delivered(raftpb.MsgReadIndexResp, 1, 3); len(rej) != 1 || !rej[0].Reject {
		t.Fatalf("answers to the forwarded read: %v, want one rejection", rej)
	}
	if got := rn.take(3); len(got) != 0 {
		t.Fatalf("rejected read produced %v", got)
	}
}

// TestReadIndexJointQuorum: in a joint configuration a read, safe or under
// a lease, needs the acknowledgement of a majority of each half.
func TestReadIndexJointQuorum(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reach []uint64
		want  bool
	}{
		{"incoming half only", []uint64{2, 3}, false},
		{"outgoing half only", []uint64{4, 5}, false},
		{"both halves", []uint64{2, 4}, true},
		{"everyone", []uint64{2, 3, 4, 5}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rn := newReadNet(t, joint123_145)
			l := rn.elect()
			rn.tick(1, 1)
			cutLeaderFrom(rn.network, tc.reach)
			rn.read(1, 1, false)
			rn.stabilize()
			c := l.log.committed
			safe := []ReadState{{Index: c, RequestCtx: 1}}
			if !tc.want {
				safe = nil
			}
			wantStates(t, rn.take(1), safe...)

			// Only rounds acknowledged by a joint quorum renew the lease:
			// the last such round went out before the cut.
			rn.tick(1, l.cfg.LeaseTicks)
			rn.requireRole(1, RoleLeader, 1)
			rn.read(1, 2, true)
			lease := []ReadState{{Index: c, RequestCtx: 2}}
			if !tc.want {
				lease = nil
			}
			wantStates(t, rn.take(1), lease...)

			if !tc.want {
				rn.heal()
				rn.tick(1, 1)
				wantStates(t, rn.take(1), ReadState{Index: c, RequestCtx: 1}, ReadState{Index: c, RequestCtx: 2})
			}
		})
	}
}

// TestReadIndexDroppedOnStepDown: a leader that steps down forgets the
// reads it holds; they are never answered, not even after it leads again.
func TestReadIndexDroppedOnStepDown(t *testing.T) {
	rn := newReadNet(t, majority3)
	rn.elect()
	rn.isolate(1)
	rn.read(1, 1, false)
	rn.read(2, 2, false) // lost with the link
	// The first check-quorum round counts the followers as heard from.
	rn.tick(1, 2*rn.node(1).cfg.ElectionTick)
	rn.requireRole(1, RoleFollower, 1)
	rn.heal()
	rn.expireLease(2, 3)
	rn.campaignUntilLeader(1)
	rn.tick(1, 2)
	if got := rn.take(1); len(got) != 0 {
		t.Fatalf("read of a previous term answered: %v", got)
	}
	if l := rn.node(1); l.read.held() != 0 {
		t.Fatalf("new term still holds %d reads", l.read.held())
	}
}

// TestReadIndexBoundedWithoutQuorum: a leader that never hears back (check
// quorum off, so it keeps leading) keeps only the rounds that could still
// start a lease, and refuses reads beyond maxPendingReads.
func TestReadIndexBoundedWithoutQuorum(t *testing.T) {
	rn := newReadNet(t, majority3, func(c *Config) { c.DisableCheckQuorum = true })
	l := rn.elect()
	rn.isolate(1)
	rn.tick(1, 50*l.cfg.ElectionTick)
	if n := len(l.read.rounds); n > l.cfg.LeaseTicks+1 {
		t.Fatalf("%d rounds kept after 500 unacknowledged heartbeats", n)
	}
	rn.read(1, 1, false)
	// Stand-ins for the reads that would fill the bound.
	l.read.waiting = append(l.read.waiting, make([]readRequest, maxPendingReads-l.read.held())...)
	if err := l.ReadIndex(0, false); !errors.Is(err, ErrReadDropped) {
		t.Fatalf("read beyond the bound: %v, want ErrReadDropped", err)
	}
}

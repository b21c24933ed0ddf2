package core

import (
	"math/rand/v2"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// TestLeaseReadWithoutRound: within its lease the leader answers a lease
// read at once with its commit index, sending nothing.
func TestLeaseReadWithoutRound(t *testing.T) {
	rn := newReadNet(t, majority3)
	l := rn.elect()
	rn.tick(1, 1)
	rn.read(1, 9, true)
	rd := rn.takeReady(1)
	wantStates(t, rd.ReadStates, ReadState{Index: l.log.committed, RequestCtx: 9})
	if len(rd.Messages) != 0 || len(rd.MessagesAfterPersist) != 0 {
		t.Fatalf("lease read sent %v %v", rd.Messages, rd.MessagesAfterPersist)
	}
}

// TestLeaseReadFallsBack: a lease read falls back to a safe round when the
// lease has expired, after a leadership transfer started in the term, and
// when check quorum is off.
func TestLeaseReadFallsBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opt   configOpt
		setup func(rn *readNet)
	}{
		{"lease expired", nil, func(rn *readNet) {
			rn.tick(1, 1)
			rn.isolate(1)
			rn.tick(1, rn.node(1).cfg.LeaseTicks)
			rn.heal()
		}},
		{"transfer timed out", nil, func(rn *readNet) {
			rn.drop = func(m raftpb.Message) bool { return m.Type == raftpb.MsgTimeoutNow }
			if err := rn.node(1).TransferLeadership(2); err != nil {
				rn.t.Fatal(err)
			}
			rn.tick(1, rn.node(1).cfg.ElectionTick) // the transfer times out
			rn.drop = nil
			if rn.node(1).leadTransferee != raftpb.None {
				rn.t.Fatal("transfer did not time out")
			}
			rn.tick(1, 1)
		}},
		{"check quorum disabled", func(c *Config) { c.DisableCheckQuorum = true }, func(rn *readNet) {
			rn.tick(1, 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []configOpt
			if tc.opt != nil {
				opts = append(opts, tc.opt)
			}
			rn := newReadNet(t, majority3, opts...)
			l := rn.elect()
			tc.setup(rn)
			rn.requireRole(1, RoleLeader, 1)
			rn.read(1, 4, true)
			if got := rn.take(1); len(got) != 0 {
				t.Fatalf("answered without a lease: %v", got)
			}
			// A round confirms it: at once, or at the next heartbeat when
			// an unanswered one is outstanding (lease expired).
			rn.stabilize()
			rn.tick(1, 1)
			wantStates(t, rn.take(1), ReadState{Index: l.log.committed, RequestCtx: 4})
		})
	}
}

// TestIsolatedLeaderReads: an isolated leader answers lease reads only
// while no other leader can exist, and never answers a safe read, while the
// rest of the group elects a new leader and commits without it. All clocks
// run at the same rate.
func TestIsolatedLeaderReads(t *testing.T) {
	rn := newReadNet(t, majority3)
	l := rn.elect()
	rn.tickAll(1)
	rn.isolate(1)
	rn.read(1, 1, false)
	answered, ctx := 0, uint64(100)
	newLeader := uint64(0)
	for tick := 1; tick <= 4*l.cfg.ElectionTick; tick++ {
		for _, id := range rn.ids {
			rn.node(id).Tick()
		}
		rn.stabilize()
		if newLeader == 0 {
			for _, id := range []uint64{2, 3} {
				if rn.node(id).Role() == RoleLeader {
					newLeader = id
					rn.propose(id, "after")
				}
			}
		}
		if l.Role() == RoleLeader {
			ctx++
			rn.read(1, ctx, true)
		}
		for _, s := range rn.take(1) {
			if s.RequestCtx == 1 {
				t.Fatalf("isolated leader released a safe read at tick %d", tick)
			}
			if newLeader != 0 {
				t.Fatalf("isolated leader answered lease read %d at tick %d; node %d leads term %d",
					s.RequestCtx, tick, newLeader, rn.node(newLeader).Term())
			}
			if tick >= l.cfg.LeaseTicks {
				t.Fatalf("lease read answered at tick %d, after a lease of %d", tick, l.cfg.LeaseTicks)
			}
			answered++
		}
	}
	if answered == 0 || newLeader == 0 {
		t.Fatalf("%d lease reads answered, new leader %d: the scenario did not happen", answered, newLeader)
	}
	rn.heal()
	rn.tickAll(3)
	if got := rn.take(1); len(got) != 0 {
		t.Fatalf("old leader answered after healing: %v", got)
	}
}

// TestLeaseKeptAfterRestart: a voter that restarts honours the lease it may
// have promised before the crash for an election timeout: it refuses to
// elect anyone else meanwhile (with check quorum; without, it votes at once).
func TestLeaseKeptAfterRestart(t *testing.T) {
	for _, disable := range []bool{false, true} {
		opt := func(c *Config) { c.DisableCheckQuorum = disable }
		rn := newReadNet(t, majority3, opt)
		rn.elect()
		rn.tick(1, 1)
		rn.isolate(1)
		rn.restart(2, opt)
		rn.expireLease(3)
		rn.campaign(3)
		if won := rn.node(3).Role() == RoleLeader; won != disable {
			t.Fatalf("check quorum off=%v: node 3 won=%v right after node 2 restarted", disable, won)
		}
		if disable {
			continue
		}
		rn.tick(2, rn.node(2).cfg.ElectionTick-1) // short of node 2's own timeout
		rn.campaign(3)
		if rn.node(3).Role() == RoleLeader {
			t.Fatal("node 3 won while node 2 still honoured the lease")
		}
		rn.expireLease(2)
		rn.campaign(3)
		if rn.node(3).Role() != RoleLeader {
			t.Fatalf("node 3 is %s after node 2's lease ended", rn.node(3).Role())
		}
	}
}

// TestLeaseKeptOnForcedCampaign: a follower forced to campaign while it
// honours the leader's lease keeps honouring it, so it cannot help elect
// someone else while the old leader may still serve lease reads.
func TestLeaseKeptOnForcedCampaign(t *testing.T) {
	rn := newReadNet(t, majority3)
	rn.elect()
	rn.tick(1, 1)
	rn.isolate(1)
	rn.campaign(2) // refused by node 3, which honours the lease
	if r := rn.node(2); r.Role() == RoleLeader || r.Lead() != raftpb.None {
		t.Fatalf("node 2: %s following %d, want a failed campaign", r.Role(), r.Lead())
	}
	rn.expireLease(3)
	rn.campaign(3)
	if rn.node(3).Role() == RoleLeader {
		t.Fatal("node 2 helped elect node 3 within the lease it had acknowledged")
	}
	rn.expireLease(2)
	rn.campaign(3)
	if rn.node(3).Role() != RoleLeader {
		t.Fatalf("node 3 is %s after node 2's lease ended", rn.node(3).Role())
	}
}

// TestLeaseKeptOnStrayHigherTerm: a follower that learns a higher term from
// a stray response forgets its leader but not the lease it acknowledged: it
// refuses a vote in that term and in later ones until its timeout ends.
func TestLeaseKeptOnStrayHigherTerm(t *testing.T) {
	for _, voteTerm := range []uint64{5, 6} {
		rn := newReadNet(t, majority3)
		rn.elect()
		rn.tick(1, 1)
		f := rn.node(2)
		last, lastTerm := f.log.lastIndex(), f.log.lastTerm()
		if err := f.Step(raftpb.Message{Type: raftpb.MsgAppResp, From: 3, To: 2, Term: 5}); err != nil {
			t.Fatal(err)
		}
		if f.Term() != 5 || f.Lead() != raftpb.None {
			t.Fatalf("node 2 in term %d following %d, want term 5 without a leader", f.Term(), f.Lead())
		}
		vote := raftpb.Message{Type: raftpb.MsgVote, From: 3, To: 2, Term: voteTerm, Index: last, LogTerm: lastTerm}
		if err := f.Step(vote); err != nil {
			t.Fatal(err)
		}
		if f.vote != raftpb.None {
			t.Fatalf("vote in term %d: node 2 voted for %d within the lease", voteTerm, f.vote)
		}
		rn.expireLease(2)
		if err := f.Step(vote); err != nil {
			t.Fatal(err)
		}
		if f.vote != 3 {
			t.Fatalf("vote in term %d after the lease: node 2 voted for %d, want 3", voteTerm, f.vote)
		}
	}
}

// TestLeaseTicksConfig: LeaseTicks defaults to 9/10 of the election timeout
// and must stay below it.
func TestLeaseTicksConfig(t *testing.T) {
	for _, tc := range []struct {
		election, lease int
		want            int // 0: invalid
	}{
		{10, 0, 9},
		{3, 0, 2},
		{2, 0, 1},
		{10, 5, 5},
		{10, 9, 9},
		{10, 10, 0},
		{10, -1, 0},
	} {
		cfg := Config{ID: 1, ElectionTick: tc.election, LeaseTicks: tc.lease,
			Storage: storage.NewMemoryStorageWithConf(majority3), Rand: rand.New(rand.NewPCG(1, 1))}
		err := cfg.validate()
		switch {
		case tc.want == 0 && err == nil:
			t.Errorf("ElectionTick %d LeaseTicks %d accepted", tc.election, tc.lease)
		case tc.want != 0 && (err != nil || cfg.LeaseTicks != tc.want):
			t.Errorf("ElectionTick %d LeaseTicks %d: got %d, %v; want %d", tc.election, tc.lease, cfg.LeaseTicks, err, tc.want)
		}
	}
}

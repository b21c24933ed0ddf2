package core

import (
	"fmt"
	"slices"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
)

var (
	majority3 = raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	// joint123_145 is a joint configuration moving from (1 4 5) to (1 2 3).
	joint123_145 = raftpb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{1, 4, 5}}
)

// cutLeaderFrom cuts every link between node 1 and the members not in reach.
func cutLeaderFrom(nw *network, reach []uint64) {
	for _, id := range nw.ids {
		if id != 1 && !slices.Contains(reach, id) {
			nw.partition([]uint64{1}, []uint64{id})
		}
	}
}

// TestCheckQuorumStepDown: a leader that has not heard from a quorum (of
// both halves of a joint configuration) during one election timeout steps
// down; one that has keeps leading. Only the leader's clock runs, so no
// follower campaigns.
func TestCheckQuorumStepDown(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cs           raftpb.ConfState
		reach        []uint64
		disable      bool
		wantStepDown bool
	}{
		{"majority: cut from both followers", majority3, nil, false, true},
		{"majority: hears one of two followers", majority3, []uint64{2}, false, false},
		{"majority: hears both", majority3, []uint64{2, 3}, false, false},
		{"majority: cut off, check quorum disabled", majority3, nil, true, false},
		{"joint: hears 2 and 3, outgoing half has no quorum", joint123_145, []uint64{2, 3}, false, true},
		{"joint: hears 4 and 5, incoming half has no quorum", joint123_145, []uint64{4, 5}, false, true},
		{"joint: hears 2 and 4, both halves have a quorum", joint123_145, []uint64{2, 4}, false, false},
		{"joint: hears 3 and 5", joint123_145, []uint64{3, 5}, false, false},
		{"joint: hears 2, 3 and 4", joint123_145, []uint64{2, 3, 4}, false, false},
		{"joint: hears nobody", joint123_145, nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nw := newNetworkConf(t, tc.cs, func(c *Config) { c.DisableCheckQuorum = tc.disable })
			nw.campaign(1)
			nw.requireRole(1, RoleLeader, 1)
			l := nw.node(1)
			T := l.cfg.ElectionTick
			// Run to the end of the first check-quorum round, and cut the
			// links as it completes: its heartbeats (the first of the next
			// round) are already lost.
			nw.tick(1, T-1)
			l.Tick()
			cutLeaderFrom(nw, tc.reach)
			nw.stabilize()
			for i := 1; i < T; i++ {
				nw.tick(1, 1)
				if l.Role() != RoleLeader {
					t.Fatalf("stepped down after %d ticks of the round, want %d", i, T)
				}
			}
			nw.tick(1, 1)
			if tc.wantStepDown {
				nw.requireRole(1, RoleFollower, 1)
				if l.Lead() != raftpb.None {
					t.Fatalf("stepped-down leader still names %d as leader", l.Lead())
				}
				if _, _, err := l.Propose([]byte("x")); err == nil {
					t.Fatal("stepped-down leader accepted a proposal")
				}
				return
			}
			nw.tick(1, 3*T)
			nw.requireRole(1, RoleLeader, 1)
			for _, id := range nw.ids {
				if id != 1 && !slices.Contains(tc.reach, id) && !tc.disable {
					if l.trk.Progress[id].RecentActive {
						t.Fatalf("unreachable %d marked recently active", id)
					}
				}
			}
		})
	}
}

// TestJointConfigCommitNeedsBothHalves: in the joint configuration
// (1 2 3)&&(1 4 5) an entry commits only once a majority of each half holds
// it durably.
func TestJointConfigCommitNeedsBothHalves(t *testing.T) {
	for _, tc := range []struct {
		reach      []uint64
		wantCommit bool
	}{
		{nil, false},
		{[]uint64{2, 3}, false},
		{[]uint64{4, 5}, false},
		{[]uint64{2}, false},
		{[]uint64{4}, false},
		{[]uint64{2, 4}, true},
		{[]uint64{3, 5}, true},
		{[]uint64{2, 3, 4}, true},
		{[]uint64{2, 3, 4, 5}, true},
	} {
		t.Run(fmt.Sprint("reach", tc.reach), func(t *testing.T) {
			nw := newNetworkConf(t, joint123_145)
			nw.campaign(1)
			nw.requireRole(1, RoleLeader, 1)
			l := nw.node(1)
			if c := l.log.committed; c != 1 {
				t.Fatalf("election no-op committed to %d, want 1", c)
			}
			cutLeaderFrom(nw, tc.reach)
			nw.propose(1, "x")
			want := uint64(1)
			if tc.wantCommit {
				want = 2
			}
			if c := l.log.committed; c != want {
				t.Fatalf("committed %d, want %d", c, want)
			}
			for _, id := range tc.reach {
				if m := l.trk.Progress[id].Match; m != 2 {
					t.Fatalf("match of reachable %d is %d, want 2", id, m)
				}
			}
			// Once the rest are reachable again (the runtime reports the
			// failed sends), the entry commits everywhere.
			nw.heal()
			for _, id := range nw.ids {
				if id != 1 && !slices.Contains(tc.reach, id) {
					l.ReportUnreachable(id)
				}
			}
			nw.tick(1, 2)
			for _, id := range nw.ids {
				if c := nw.node(id).log.committed; c != 2 {
					t.Fatalf("after heal node %d committed %d, want 2", id, c)
				}
			}
		})
	}
}

// TestJointConfigElectionNeedsBothHalves: a candidate needs a majority of
// both halves of a joint configuration.
func TestJointConfigElectionNeedsBothHalves(t *testing.T) {
	for _, tc := range []struct {
		reach   []uint64
		wantWin bool
	}{
		{[]uint64{2, 3}, false},
		{[]uint64{4, 5}, false},
		{[]uint64{2, 4}, true},
		{[]uint64{3, 5}, true},
	} {
		t.Run(fmt.Sprint("reach", tc.reach), func(t *testing.T) {
			nw := newNetworkConf(t, joint123_145)
			cutLeaderFrom(nw, tc.reach)
			nw.campaign(1)
			if got := nw.node(1).Role() == RoleLeader; got != tc.wantWin {
				t.Fatalf("node 1 is %s in term %d, want leader=%v", nw.node(1).Role(), nw.node(1).Term(), tc.wantWin)
			}
		})
	}
}

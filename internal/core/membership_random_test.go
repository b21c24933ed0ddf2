package core

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/raftkit/raftkit/internal/core/confchange"
	"github.com/raftkit/raftkit/raftpb"
)

// TestMembershipConfFollowsLog runs random schedules of membership
// changes, proposals, partitions, message loss, elections and restarts on
// a pool of five nodes, and checks after every step that each node's
// configuration is the one its log describes (the start-of-log
// configuration followed by every configuration entry), that no term has
// two leaders and that no committed entry differs between nodes.
func TestMembershipConfFollowsLog(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			nw := newMemberNet(t, confState(ids(1, 2, 3), nil), ids(4, 5), func(c *Config) {
				c.DisablePreVote = seed%3 == 0
			})
			leaders := map[uint64]uint64{}
			for step := range 400 {
				randomMembershipStep(nw, rng)
				nw.flushReadies()
				checkMembershipInvariants(t, nw, leaders, fmt.Sprintf("seed %d step %d", seed, step))
			}
		})
	}
}

// randomMembershipStep performs one random operation on nw, then delivers
// a few rounds of messages, losing a tenth of them.
func randomMembershipStep(nw *network, rng *rand.Rand) {
	target := nw.leader()
	if target == 0 || rng.IntN(5) == 0 {
		target = uint64(1 + rng.IntN(len(nw.ids)))
	}
	r := nw.node(target)
	switch p := rng.IntN(100); {
	case p < 20:
		voters, learners := perturbConf(r.Status().Config, uint64(1+rng.IntN(len(nw.ids))), rng)
		_, _ = r.ProposeConfChange(raftpb.ConfChange{Voters: voters, Learners: learners})
	case p < 40:
		_, _, _ = r.Propose([]byte(fmt.Sprint("p", rng.Uint32())))
	case p < 50:
		nw.heal()
		a := []uint64{target, uint64(1 + rng.IntN(len(nw.ids)))}
		var b []uint64
		for _, x := range nw.ids {
			if !slices.Contains(a, x) {
				b = append(b, x)
			}
		}
		nw.partition(a, b)
	case p < 60:
		nw.heal()
	case p < 64:
		nw.restart(uint64(1 + rng.IntN(len(nw.ids))))
	case p < 67:
		_ = nw.node(uint64(1 + rng.IntN(len(nw.ids)))).Campaign()
	default:
		for _, id := range nw.ids {
			nw.node(id).Tick()
		}
	}
	for range 3 {
		nw.flushReadies()
		msgs := nw.pending
		nw.pending = nil
		for _, m := range msgs {
			if rng.IntN(10) != 0 {
				nw.deliver(m)
			}
		}
	}
}

// perturbConf returns cs's voters and learners with id moved: a voter is
// removed, a learner promoted or removed, an outsider added as voter or
// learner.
func perturbConf(cs raftpb.ConfState, id uint64, rng *rand.Rand) (voters, learners []uint64) {
	voters, learners = slices.Clone(cs.Voters), slices.Clone(cs.Learners)
	without := func(l []uint64) []uint64 { return slices.DeleteFunc(l, func(x uint64) bool { return x == id }) }
	switch {
	case slices.Contains(voters, id):
		voters = without(voters)
	case slices.Contains(learners, id):
		learners = without(learners)
		if rng.IntN(2) == 0 {
			voters = append(voters, id)
		}
	case rng.IntN(2) == 0:
		voters = append(voters, id)
	default:
		learners = append(learners, id)
	}
	return voters, learners
}

func checkMembershipInvariants(t *testing.T, nw *network, leaders map[uint64]uint64, at string) {
	t.Helper()
	for _, id := range nw.ids {
		r := nw.node(id)
		if r.Role() == RoleLeader {
			if l, ok := leaders[r.Term()]; ok && l != id {
				t.Fatalf("%s: nodes %d and %d lead term %d", at, l, id, r.Term())
			}
			leaders[r.Term()] = id
		}
		if r.conf.resetPending {
			continue
		}
		if got, want := r.trk.ConfState(), confFromLog(t, nw, id); !got.Equal(want) {
			t.Fatalf("%s: node %d is in %+v, its log says %+v", at, id, got, want)
		}
		_, learner := r.trk.Learners[id]
		if (r.Role() == RoleLearner) != learner {
			t.Fatalf("%s: node %d is %s, learner in its configuration: %v", at, id, r.Role(), learner)
		}
	}
	// Committed prefixes agree: compare each node with the one that has
	// committed the most.
	var best uint64
	for _, id := range nw.ids {
		if best == 0 || nw.node(id).Committed() > nw.node(best).Committed() {
			best = id
		}
	}
	for _, id := range nw.ids {
		r := nw.node(id)
		for i := r.log.firstIndex(); i <= r.Committed(); i++ {
			if i < nw.node(best).log.firstIndex() {
				continue
			}
			if a, b := nw.entryAt(id, i), nw.entryAt(best, i); a.Term != b.Term || string(a.Data) != string(b.Data) {
				t.Fatalf("%s: committed entry %d differs: node %d %v, node %d %v", at, i, id, a, best, b)
			}
		}
	}
}

// confFromLog computes node id's configuration from its storage's starting
// configuration and the configuration entries of its log.
func confFromLog(t *testing.T, nw *network, id uint64) raftpb.ConfState {
	t.Helper()
	_, cs, err := nw.nodes[id].st.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	r := nw.node(id)
	for i := r.log.firstIndex(); i <= r.log.lastIndex(); i++ {
		e := nw.entryAt(id, i)
		if e.Type != raftpb.EntryConfChange {
			continue
		}
		var cc raftpb.ConfChange
		if cc.Unmarshal(e.Data) != nil {
			continue
		}
		if next, err := confchange.Apply(cs, &cc); err == nil {
			cs = next
		}
	}
	return cs
}

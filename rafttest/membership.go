package rafttest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/raftkit/raftkit/internal/core/confchange"
	"github.com/raftkit/raftkit/raftpb"
)

// This file is membership change in the simulator: the cluster's record of
// the configuration along the committed log, which snapshots and compaction
// need (a snapshot carries the configuration at its index), the Cluster
// API to propose changes, and the chaos driver's random changes.
//
// Every node, in the configuration or not, is bootstrapped with the initial
// configuration (Options.Voters, Options.Learners), as a runtime starts a
// node that waits to be added.

// confPoint is the configuration in force from a committed index on.
type confPoint struct {
	index uint64
	cs    raftpb.ConfState
}

// initialConf is the bootstrap configuration: voters 1..Voters, learners
// after them, the rest of the pool outside.
func initialConf(o *Options) raftpb.ConfState {
	var cs raftpb.ConfState
	for id := 1; id <= o.Voters; id++ {
		cs.Voters = append(cs.Voters, uint64(id))
	}
	for id := o.Voters + 1; id <= o.Voters+o.Learners; id++ {
		cs.Learners = append(cs.Learners, uint64(id))
	}
	return cs
}

// noteCommittedConf follows the configuration entry, if it is one, that
// has just been committed at index: the configuration from there on is the
// one every node computes from that log prefix.
func (c *Cluster) noteCommittedConf(index uint64, d *digest) {
	if d.typ != raftpb.EntryConfChange {
		return
	}
	var cc raftpb.ConfChange
	if err := cc.Unmarshal(d.data); err != nil {
		return // the core ignores it too
	}
	prev := c.confs[len(c.confs)-1].cs
	next, err := confchange.Apply(prev, &cc)
	if err != nil {
		return
	}
	c.stats.ConfsCommitted++
	c.confs = append(c.confs, confPoint{index: index, cs: next})
	c.trace.add(traceRec{at: c.now, kind: trConfCommitted, a: index, b: idMask(next.Voters),
		c: idMask(next.VotersOutgoing), node: idMask(next.Learners)})
}

// confAt returns the configuration in force at committed index i.
func (c *Cluster) confAt(i uint64) raftpb.ConfState {
	k := sort.Search(len(c.confs), func(k int) bool { return c.confs[k].index > i })
	return c.confs[k-1].cs
}

// CommittedConf returns the configuration in force at the highest index
// known committed. Every node computes it from that log prefix; a node may
// already be in a later one (configuration entries take effect when
// appended).
func (c *Cluster) CommittedConf() raftpb.ConfState { return c.confAt(c.chk.commitMax()).Clone() }

// isMember reports whether id is a voter (of either half) or a learner of cs.
func isMember(cs raftpb.ConfState, id uint64) bool {
	return slices.Contains(cs.Voters, id) || slices.Contains(cs.VotersOutgoing, id) ||
		slices.Contains(cs.Learners, id)
}

// MembersApplied reports whether every member of the committed
// configuration is up and has applied index. Nodes outside it are not
// waited for: no leader replicates to them.
func (c *Cluster) MembersApplied(index uint64) bool {
	cs := c.confAt(c.chk.commitMax())
	for _, n := range c.nodes {
		if isMember(cs, n.id) && (n.core == nil || n.applied < index) {
			return false
		}
	}
	return true
}

// ProposeConfChange asks node id's core to move the group to the
// configuration with voters and learners, and processes the resulting
// Ready. It returns the core's answer: the index of the configuration entry,
// or an error such as core.ErrNotLeader or core.ErrConfChangeBusy.
func (c *Cluster) ProposeConfChange(id uint64, voters, learners []uint64) (uint64, error) {
	n := c.node(id)
	if n.core == nil {
		return 0, fmt.Errorf("rafttest: node %d is down", id)
	}
	before := n.core.Status().Config
	idx, err := n.core.ProposeConfChange(raftpb.ConfChange{Voters: voters, Learners: learners})
	if err != nil {
		c.stats.ConfChangesRefused++
		return 0, err
	}
	c.stats.ConfChanges++
	if !slices.Contains(voters, id) {
		c.stats.LeaderRemovals++
	}
	if slices.ContainsFunc(voters, func(v uint64) bool { return slices.Contains(before.Learners, v) }) {
		c.stats.Promotions++
	}
	c.trace.add(traceRec{at: c.now, kind: trConfChange, node: id, a: idx, b: idMask(voters), c: idMask(learners)})
	c.drain(n)
	return idx, nil
}

// idMask is the set ids (all in 1..64, as node IDs are) as a bit mask, so
// that trace records keep configurations as plain numbers.
func idMask(ids []uint64) uint64 {
	var m uint64
	for _, id := range ids {
		m |= 1 << (id - 1)
	}
	return m
}

// maskIDs formats a mask of idMask as a list of IDs.
func maskIDs(m uint64) string {
	var ids []uint64
	for id := uint64(1); m != 0; id, m = id+1, m>>1 {
		if m&1 != 0 {
			ids = append(ids, id)
		}
	}
	return fmt.Sprint(ids)
}

// changeMembership proposes one random change at the leader: add a voter
// (a learner is promoted), remove a voter, add or remove a learner, among
// the pool of node IDs. The leader refuses it while a change is unfinished.
func (ch *chaos) changeMembership() {
	c := ch.c
	l := c.Leader()
	if l == 0 {
		return
	}
	cs := c.node(l).core.Status().Config
	if cs.IsJoint() {
		return
	}
	var outside []uint64
	for _, n := range c.nodes {
		if !isMember(cs, n.id) {
			outside = append(outside, n.id)
		}
	}
	voters, learners := slices.Clone(cs.Voters), slices.Clone(cs.Learners)
	switch op := c.rng.IntN(4); {
	case op == 0 && len(outside)+len(learners) > 0: // add a voter
		cand := append(slices.Clone(outside), learners...)
		id := cand[c.rng.IntN(len(cand))]
		voters = append(voters, id)
		learners = slices.DeleteFunc(learners, func(x uint64) bool { return x == id })
	case op == 1 && len(voters) > 1: // remove a voter, possibly the leader
		voters = removeRandom(c.rng, voters)
	case op == 2 && len(outside) > 0: // add a learner
		learners = append(learners, outside[c.rng.IntN(len(outside))])
	case op == 3 && len(learners) > 0:
		learners = removeRandom(c.rng, learners)
	default:
		return
	}
	_, _ = c.ProposeConfChange(l, voters, learners)
}

// decommission shuts down, for the liveness phase, the nodes that are
// members neither of the committed configuration nor of the configuration
// of any of its members, as an operator stops a removed server, when the
// cores run without both pre-vote and check quorum. A removed node that
// never heard of its removal still believes it votes; without those two
// defences its elections depose every leader (Raft thesis §4.2.3), which
// no runtime can prevent and the liveness check must not wait out.
func (ch *chaos) decommission() {
	c := ch.c
	if !c.opts.MembershipChanges || !c.opts.DisablePreVote || !c.opts.DisableCheckQuorum {
		return
	}
	committed := c.CommittedConf()
	for _, n := range c.nodes {
		counted := isMember(committed, n.id)
		for _, o := range c.nodes {
			if !counted && o != n && o.core != nil && isMember(committed, o.id) &&
				isMember(o.core.Status().Config, n.id) {
				counted = true
			}
		}
		if !counted {
			c.trace.add(traceRec{at: c.now, kind: trPhase, note: "decommissioning a node no other node counts as a member"})
			c.Crash(n.id)
		}
	}
}

func removeRandom(rng *rand.Rand, ids []uint64) []uint64 {
	i := rng.IntN(len(ids))
	return slices.Delete(slices.Clone(ids), i, i+1)
}

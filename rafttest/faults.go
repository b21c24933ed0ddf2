package rafttest

import (
	"fmt"
	"time"
)

// This file holds the fault injection API of Cluster; Crash and Restart are
// in cluster.go with the node life cycle.

// Partition cuts every link between nodes of different groups, in both
// directions, on top of the cuts already in place. Nodes in no group form
// one more group together.
func (c *Cluster) Partition(groups ...[]uint64) {
	c.stats.Faults++
	side := make([]int, len(c.nodes)) // group number + 1; 0 for "no group"
	for g, ids := range groups {
		for _, id := range ids {
			side[id-1] = g + 1
		}
	}
	for i := range c.nodes {
		for j := range c.nodes {
			if side[i] != side[j] {
				c.net.cut(uint64(i+1), uint64(j+1))
			}
		}
	}
	c.trace.add(traceRec{at: c.now, kind: trPartition, note: fmt.Sprint(groups)})
}

// Isolate cuts node id off from every other node in both directions.
func (c *Cluster) Isolate(id uint64) {
	c.Partition([]uint64{id})
}

// Cut cuts the one-way link from -> to.
func (c *Cluster) Cut(from, to uint64) {
	c.stats.Faults++
	c.net.cut(from, to)
	c.trace.add(traceRec{at: c.now, kind: trCut, a: from, b: to})
}

// Heal restores every link. Rates and delays stay as they are.
func (c *Cluster) Heal() {
	c.stats.Faults++
	c.net.heal()
	c.trace.add(traceRec{at: c.now, kind: trHeal})
}

// SetDropRate sets the probability that a message is lost.
func (c *Cluster) SetDropRate(p float64) {
	c.stats.Faults++
	c.net.drop = p
	c.trace.add(traceRec{at: c.now, kind: trDropRate, f: p})
}

// SetDupRate sets the probability that a message is delivered twice.
func (c *Cluster) SetDupRate(p float64) {
	c.stats.Faults++
	c.net.dup = p
	c.trace.add(traceRec{at: c.now, kind: trDupRate, f: p})
}

// SetDelay sets the bounds of the per-message network delay.
func (c *Cluster) SetDelay(minDelay, maxDelay time.Duration) {
	c.stats.Faults++
	c.net.minDelay, c.net.maxDelay = minDelay, max(minDelay, maxDelay)
	c.trace.add(traceRec{at: c.now, kind: trDelay, a: uint64(minDelay), b: uint64(maxDelay)})
}

// SetFsync sets the bounds of the time node id's disk takes to make a Ready
// durable; id 0 sets them for every node.
func (c *Cluster) SetFsync(id uint64, minFsync, maxFsync time.Duration) {
	c.stats.Faults++
	maxFsync = max(minFsync, maxFsync)
	for _, n := range c.nodes {
		if id == 0 || n.id == id {
			n.minFsync, n.maxFsync = minFsync, maxFsync
		}
	}
	c.trace.add(traceRec{at: c.now, kind: trFsync, node: id, a: uint64(minFsync), b: uint64(maxFsync)})
}

// TransferLeadership asks node from, which must lead, to hand leadership to
// node to, and processes the resulting Ready.
func (c *Cluster) TransferLeadership(from, to uint64) error {
	n := c.node(from)
	if n.core == nil {
		return fmt.Errorf("rafttest: node %d is down", from)
	}
	if err := n.core.TransferLeadership(to); err != nil {
		return err
	}
	c.stats.Faults++
	c.trace.add(traceRec{at: c.now, kind: trTransfer, node: from, a: to})
	c.drain(n)
	return nil
}

// Campaign makes node id start an election at once, as if its election
// timeout had fired, and processes the resulting Ready.
func (c *Cluster) Campaign(id uint64) error {
	n := c.node(id)
	if n.core == nil {
		return fmt.Errorf("rafttest: node %d is down", id)
	}
	if err := n.core.Campaign(); err != nil {
		return err
	}
	c.stats.Faults++
	c.trace.add(traceRec{at: c.now, kind: trCampaign, node: id})
	c.drain(n)
	return nil
}

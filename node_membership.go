package raftkit

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/raftkit/raftkit/raftpb"
)

// confWatch publishes the configuration the apply loop has applied, for
// membership changes waiting for theirs to take effect.
//
// Concurrency: safe for concurrent use.
type confWatch struct {
	mu    sync.Mutex
	cs    raftpb.ConfState
	index uint64
	ch    chan struct{} // closed at the next change
}

func (c *confWatch) set(cs raftpb.ConfState, index uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cs, c.index = cs.Clone(), index
	if c.ch != nil {
		close(c.ch)
	}
	c.ch = make(chan struct{})
}

func (c *confWatch) get() (raftpb.ConfState, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.cs.Clone(), c.ch
}

// configuration names the members of cs with their addresses.
func (n *Node) configuration(cs raftpb.ConfState) Configuration {
	var c Configuration
	for _, id := range cs.Voters {
		c.Voters = append(c.Voters, Peer{ID: id, Addr: n.addr(id)})
	}
	for _, id := range cs.Learners {
		c.Learners = append(c.Learners, Peer{ID: id, Addr: n.addr(id)})
	}
	return c
}

// AddPeer adds p as a voter: it first joins as a learner and catches up
// (see NodeOptions.CatchupMarginEntries), then the group passes through a
// joint configuration to one that counts it. A learner named p is
// promoted. It returns once the new configuration is applied here.
//
// Errors: ErrNotLeader (with the leader's address when known), ErrBusy
// while another change is in progress, ErrInvalid for a member
// already voting, ErrTimeout when ctx ends or the catch-up takes longer
// than CatchupTimeout (the change may still complete; look at Status),
// ErrLeaderChanged when a new leader's log replaced the proposed entry
// (the change did not take effect; it may be retried).
//
// Concurrency: safe for concurrent use; one membership change runs at a
// time per node, and the core refuses a second while one is unfinished.
func (n *Node) AddPeer(ctx context.Context, p Peer) error {
	return n.changeConf(ctx, "add peer", func(c *Configuration) error {
		if hasPeer(c.Voters, p.ID) {
			return fmt.Errorf("%d is already a voter", p.ID)
		}
		c.Learners = dropPeers(c.Learners, p.ID)
		c.Voters = append(c.Voters, p)
		return nil
	})
}

// RemovePeer removes member id (voter or learner). Removing the leader
// makes it hand leadership to the most up-to-date remaining voter once the
// new configuration is committed. Errors and concurrency as AddPeer.
func (n *Node) RemovePeer(ctx context.Context, id uint64) error {
	return n.changeConf(ctx, "remove peer", func(c *Configuration) error {
		if !hasPeer(c.Voters, id) && !hasPeer(c.Learners, id) {
			return fmt.Errorf("%d is not a member", id)
		}
		c.Voters, c.Learners = dropPeers(c.Voters, id), dropPeers(c.Learners, id)
		return nil
	})
}

// ChangePeers makes voters the group's voters, through a joint
// configuration; new voters catch up as learners first. Learners that
// become voters are promoted; other learners stay. Errors and concurrency
// as AddPeer.
func (n *Node) ChangePeers(ctx context.Context, voters []Peer) error {
	return n.changeConf(ctx, "change peers", func(c *Configuration) error {
		ids := make([]uint64, 0, len(voters))
		for _, p := range voters {
			ids = append(ids, p.ID)
		}
		c.Learners = dropPeers(c.Learners, ids...)
		c.Voters = slices.Clone(voters)
		return nil
	})
}

// AddLearners adds non-voting members, which receive the log but never
// count in a quorum. Errors and concurrency as AddPeer.
func (n *Node) AddLearners(ctx context.Context, learners []Peer) error {
	return n.changeConf(ctx, "add learners", func(c *Configuration) error {
		for _, p := range learners {
			if hasPeer(c.Voters, p.ID) || hasPeer(c.Learners, p.ID) {
				return fmt.Errorf("%d is already a member", p.ID)
			}
			c.Learners = append(c.Learners, p)
		}
		return nil
	})
}

// RemoveLearners removes non-voting members. Errors and concurrency as
// AddPeer.
func (n *Node) RemoveLearners(ctx context.Context, ids []uint64) error {
	return n.changeConf(ctx, "remove learners", func(c *Configuration) error {
		for _, id := range ids {
			if !hasPeer(c.Learners, id) {
				return fmt.Errorf("%d is not a learner", id)
			}
		}
		c.Learners = dropPeers(c.Learners, ids...)
		return nil
	})
}

// PromoteLearner makes learner id a voter in one configuration change
// (through a joint configuration), after it has caught up. Errors and
// concurrency as AddPeer.
func (n *Node) PromoteLearner(ctx context.Context, id uint64) error {
	return n.changeConf(ctx, "promote learner", func(c *Configuration) error {
		i := slices.IndexFunc(c.Learners, func(p Peer) bool { return p.ID == id })
		if i < 0 {
			return fmt.Errorf("%d is not a learner", id)
		}
		c.Voters = append(c.Voters, c.Learners[i])
		c.Learners = dropPeers(c.Learners, id)
		return nil
	})
}

func hasPeer(ps []Peer, id uint64) bool {
	return slices.ContainsFunc(ps, func(p Peer) bool { return p.ID == id })
}

func dropPeers(ps []Peer, ids ...uint64) []Peer {
	return slices.DeleteFunc(slices.Clone(ps), func(p Peer) bool { return slices.Contains(ids, p.ID) })
}

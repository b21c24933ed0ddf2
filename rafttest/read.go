package rafttest

import (
	"errors"
	"fmt"
	"time"

	"github.com/raftkit/raftkit/internal/core"
)

// Reads: the cluster issues linearizable reads (core.ReadIndex, safe or
// lease) and checks every answer (a ReadState) against what was known
// committed when the read was issued:
//
//   - Read linearizability: a read issued at time t and released with read
//     index R must have R >= every index any node reported committed before
//     t. A state machine that has applied R then reflects every write
//     acknowledged before the read began, which is what makes serving the
//     read from it linearizable. (Entries committed between issue and
//     release may be missed: the read is linearized at its start.)
//   - The read index is committed: R <= the highest index known committed
//     when it is released, so serving it never waits for, or exposes, an
//     entry that might still be lost.
//   - A read is answered on the node that issued it, under the context it
//     was issued with.
//
// A read may be answered more than once (a duplicated request, or a
// forwarded read answered to a node that has since restarted); every answer
// is checked.

// readRec is one read the cluster issued.
type readRec struct {
	node    uint64
	lease   bool
	issued  time.Duration
	floor   uint64 // highest index known committed at issue
	index   uint64 // read index of the first answer
	answers int
	at      time.Duration // time of the first answer
}

// readTracker holds every read issued, by context.
type readTracker struct {
	last  uint64 // the last context handed out; contexts start at 1
	reads map[uint64]*readRec
}

// ReadIndex issues a linearizable read at node id (core.ReadIndex with a
// fresh context), safe or under the leader's lease, and processes the
// resulting Ready. It returns the read's context, to look its answer up with
// ReadResult, or the core's refusal (core.ErrNotLeader, core.ErrReadDropped).
func (c *Cluster) ReadIndex(id uint64, lease bool) (ctx uint64, err error) {
	n := c.node(id)
	if n.core == nil {
		return 0, fmt.Errorf("rafttest: node %d is down", id)
	}
	rt := &c.reads
	rt.last++
	ctx = rt.last
	var leaseBit uint64
	if lease {
		leaseBit = 1
	}
	rec := traceRec{at: c.now, kind: trRead, node: id, a: ctx, b: leaseBit, c: c.chk.commitMax()}
	if err := n.core.ReadIndex(ctx, lease); err != nil {
		c.stats.ReadsRefused++
		rec.note = "not leader"
		if errors.Is(err, core.ErrReadDropped) {
			rec.note = "dropped"
		}
		c.trace.add(rec)
		return 0, err
	}
	c.trace.add(rec)
	if rt.reads == nil {
		rt.reads = map[uint64]*readRec{}
	}
	rt.reads[ctx] = &readRec{node: id, lease: lease, issued: c.now, floor: c.chk.commitMax()}
	c.stats.Reads++
	c.drain(n)
	if r := rt.reads[ctx]; r.answers > 0 {
		c.stats.ReadsImmediate++
	}
	return ctx, nil
}

// ReadResult returns the read index and the virtual time of the first
// answer to the read with context ctx; ok is false while it has none.
func (c *Cluster) ReadResult(ctx uint64) (index uint64, at time.Duration, ok bool) {
	r := c.reads.reads[ctx]
	if r == nil || r.answers == 0 {
		return 0, 0, false
	}
	return r.index, r.at, true
}

// onReadStates checks the answers node n's core released in a Ready.
func (c *Cluster) onReadStates(n *node, states []core.ReadState) {
	for _, rs := range states {
		c.trace.add(traceRec{at: c.now, kind: trReadState, node: n.id, a: rs.RequestCtx, b: rs.Index})
		r := c.reads.reads[rs.RequestCtx]
		switch {
		case r == nil:
			c.failf(n.id, "read", "answer to read #%d, which was never issued", rs.RequestCtx)
		case r.node != n.id:
			c.failf(n.id, "read", "answer to read #%d, which n%d issued", rs.RequestCtx, r.node)
		case rs.Index < r.floor:
			c.failf(n.id, "read linearizability",
				"read #%d (lease %v) issued at %.6fs, when %d was known committed (%v), released with read index %d",
				rs.RequestCtx, r.lease, r.issued.Seconds(), r.floor, &c.chk.committed[r.floor], rs.Index)
		case rs.Index > c.chk.commitMax():
			c.failf(n.id, "read", "read #%d released with read index %d, beyond the highest index known committed, %d",
				rs.RequestCtx, rs.Index, c.chk.commitMax())
		}
		if c.err != nil {
			return
		}
		if r.answers == 0 {
			r.index, r.at = rs.Index, c.now
			c.stats.ReadsReleased++
		}
		r.answers++
	}
}

// read issues one random read during Run: usually at a node that believes
// it leads, sometimes at any running node (which forwards it or refuses).
func (ch *chaos) read() {
	c := ch.c
	id := ch.randomNode(0.6)
	if !c.Up(id) {
		return
	}
	_, _ = c.ReadIndex(id, c.rng.IntN(2) == 0)
}

// readGap draws the time of the next random read.
func (ch *chaos) readGap() time.Duration {
	return ch.c.now + 10*time.Millisecond + time.Duration(ch.c.rng.Int64N(int64(400*time.Millisecond)))
}

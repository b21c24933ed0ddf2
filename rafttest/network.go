package rafttest

import (
	"slices"
	"time"

	"github.com/raftkit/raftkit/raftpb"
)

// network is the simulated transport's state: which one-way links are cut,
// the loss and duplication probabilities and the delay bounds. Every random
// draw comes from the cluster's generator, in event order.
type network struct {
	n                  int
	cuts               []bool // cuts[(from-1)*n + to-1]
	ncut               int
	drop, dup          float64
	minDelay, maxDelay time.Duration
}

func newNetwork(n int, minDelay, maxDelay time.Duration, drop, dup float64) network {
	return network{n: n, cuts: make([]bool, n*n), drop: drop, dup: dup, minDelay: minDelay, maxDelay: maxDelay}
}

func (nw *network) isCut(from, to uint64) bool {
	return nw.ncut > 0 && nw.cuts[int(from-1)*nw.n+int(to-1)]
}

func (nw *network) cut(from, to uint64) {
	if from == to {
		return
	}
	i := int(from-1)*nw.n + int(to-1)
	if !nw.cuts[i] {
		nw.cuts[i] = true
		nw.ncut++
	}
}

func (nw *network) heal() {
	clear(nw.cuts)
	nw.ncut = 0
}

// copyMessage returns m with its own Entries array and snapshot metadata,
// so that no two nodes (and no core and the network) share a backing array.
// Entry payloads are shared: nobody mutates a payload once it is in a log.
func copyMessage(m raftpb.Message) raftpb.Message {
	if len(m.Entries) > 0 {
		m.Entries = slices.Clone(m.Entries)
	} else {
		m.Entries = nil
	}
	if m.Snapshot != nil {
		s := *m.Snapshot
		s.ConfState = s.ConfState.Clone()
		m.Snapshot = &s
	}
	return m
}

func (c *Cluster) delay() time.Duration {
	d := c.net.minDelay
	if span := c.net.maxDelay - c.net.minDelay; span > 0 {
		d += time.Duration(c.rng.Int64N(int64(span) + 1))
	}
	return d
}

// sendAll puts msgs on the network.
func (c *Cluster) sendAll(msgs []raftpb.Message) {
	for i := range msgs {
		c.send(&msgs[i])
	}
}

// send puts one message on the network: lost with the drop probability or
// when its link is cut, otherwise delivered after a random delay, and with
// the duplication probability delivered a second time after another.
func (c *Cluster) send(m *raftpb.Message) {
	c.stats.MessagesSent++
	if !c.validID(m.To) || m.To == m.From || !c.validID(m.From) {
		c.failf(m.From, "message addressing", "node sent %v", m)
		return
	}
	if c.chaos != nil {
		c.chaos.onSend(m)
	}
	if m.Type == raftpb.MsgSnap {
		c.noteSnapshotSent(m)
	}
	if c.net.isCut(m.From, m.To) {
		c.stats.MessagesDropped++
		if c.trace.wants() {
			c.trace.add(traceRec{at: c.now, kind: trSendDropped, msg: *m, note: "link cut"})
		}
		// A transport notices a broken connection, sometimes; it reports
		// it to the sender once the current Ready is handled.
		if c.rng.IntN(4) == 0 {
			c.q.push(event{at: c.now, kind: evUnreachable, node: m.From, peer: m.To})
		}
		return
	}
	if c.net.drop > 0 && c.rng.Float64() < c.net.drop {
		c.stats.MessagesDropped++
		if c.trace.wants() {
			c.trace.add(traceRec{at: c.now, kind: trSendDropped, msg: *m, note: "random loss"})
		}
		return
	}
	if c.trace.wants() {
		c.trace.add(traceRec{at: c.now, kind: trSend, msg: *m})
	}
	c.q.push(event{at: c.now + c.delay(), kind: evDeliver, msg: c.q.putMsg(copyMessage(*m))})
	if c.net.dup > 0 && c.rng.Float64() < c.net.dup {
		c.stats.MessagesDuplicated++
		if c.trace.wants() {
			c.trace.add(traceRec{at: c.now, kind: trSendDup, msg: *m})
		}
		c.q.push(event{at: c.now + c.delay(), kind: evDeliver, msg: c.q.putMsg(copyMessage(*m))})
	}
}

// reportUnreachable tells node id's core that peer could not be reached.
func (c *Cluster) reportUnreachable(id, peer uint64) {
	n := c.node(id)
	if n.core == nil {
		return
	}
	c.trace.add(traceRec{at: c.now, kind: trUnreachable, node: id, a: peer})
	n.core.ReportUnreachable(peer)
	c.drain(n)
}

// deliver hands m to its destination unless the link was cut while it was in
// flight or the destination is down.
func (c *Cluster) deliver(m raftpb.Message) {
	n := c.node(m.To)
	var lost string
	switch {
	case c.net.isCut(m.From, m.To):
		lost = "link cut"
	case n.core == nil:
		lost = "node down"
	}
	if lost != "" {
		c.stats.MessagesDropped++
		c.trace.add(traceRec{at: c.now, kind: trLost, msg: m, note: lost})
		return
	}
	c.stats.MessagesDelivered++
	c.trace.add(traceRec{at: c.now, kind: trDeliver, msg: m})
	if m.Type == raftpb.MsgSnap && m.Snapshot != nil && c.interceptSnapshot(n, m) {
		return // fetching it first
	}
	_ = n.core.Step(m) // stale or unexpected messages are the core's to refuse
	c.drain(n)
}

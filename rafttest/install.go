package rafttest

import (
	"time"

	"github.com/raftkit/raftkit/internal/core"
	"github.com/raftkit/raftkit/raftpb"
)

// This file is snapshot install, modelled on the runtime's: a follower's
// runtime intercepts a MsgSnap the core would install, fetches the
// snapshot's payload from the sender (taking virtual time, during which the
// follower may crash, the sender may go away, or a newer snapshot or term
// may supersede the fetch), makes it durable locally, and only then hands
// the MsgSnap to its core. The core restores and emits a Ready carrying the
// snapshot; the runtime installs it (switches the log and loads the state
// machine) before the Ready's other writes, and advances the core one fsync
// later. A leader that sent a snapshot and hears nothing of it for a few
// election timeouts reports it failed, and so offers one again.

// installState is a follower's fetch in progress.
type installState struct {
	msg  raftpb.Message // the MsgSnap that started it
	snap snapshot       // the sender's payload, pinned when the fetch started
	id   uint64         // names the fetch's completion event
}

// snapStallTimeouts is how many election timeouts a leader waits for a
// follower it sent a snapshot to, while that follower fetches nothing from
// it, before reporting the snapshot failed.
const snapStallTimeouts = 4

// interceptSnapshot decides what to do with MsgSnap m before n's core sees
// it, and reports whether it consumed m. A snapshot the core would not
// install (at or below its commit index, or fetched already) goes to the
// core, which answers, and so does one of an older term, which the core
// ignores (a runtime would start fetching it and abort at once: a newer
// term); otherwise the payload is fetched first.
func (c *Cluster) interceptSnapshot(n *node, m raftpb.Message) bool {
	meta := m.Snapshot
	stale := meta.Index <= n.core.Committed()
	if stale && c.opts.bug == bugInstallStale && m.Term == n.core.Term() && n.install == nil {
		stale = false // the broken runtime fetches and loads it all the same
	}
	if m.Term < n.core.Term() || stale || (meta.Index == n.fetched.Index && meta.Term == n.fetched.Term) {
		return false
	}
	if in := n.install; in != nil {
		if meta.Index <= in.msg.Snapshot.Index && m.Term <= in.msg.Term {
			return true // a duplicate, or older than the fetch under way
		}
		c.abortInstall(n, "a newer snapshot or term")
	}
	src := c.node(m.From)
	s, ok := src.find(meta.Index, meta.Term)
	if c.opts.bug == bugWrongSnapshotPayload && ok {
		s.state = src.snaps[0].state // the state of another snapshot
	}
	if !ok || src.core == nil {
		c.rejectSnapshot(n, m, "the sender no longer holds it or is down")
		return true
	}
	n.fetchID++
	n.install = &installState{msg: m, snap: s, id: n.fetchID}
	d := c.byteDelay(s.size, 1, 5*time.Millisecond)
	c.q.push(event{at: c.now + d, kind: evSnapFetched, node: n.id, gen: n.gen, id: n.fetchID})
	c.stats.Fetches++
	c.trace.add(traceRec{at: c.now, kind: trFetchStart, node: n.id, a: meta.Index, b: meta.Term, c: m.From, f: d.Seconds()})
	if c.chaos != nil {
		c.chaos.crashWithin(n, crashFetching, d, 8)
	}
	return true
}

// snapshotFetched completes n's fetch id: the payload becomes durable in
// n's snapshot store and the MsgSnap goes to the core. A fetch the crash,
// a newer snapshot or a newer term aborted is forgotten; one whose sender
// went down or became unreachable fails, and the sender is told.
func (c *Cluster) snapshotFetched(n *node, gen, id uint64) {
	if n.core == nil || gen != n.gen || n.install == nil || n.install.id != id {
		return
	}
	in := n.install
	n.install = nil
	from := in.msg.From
	if c.node(from).core == nil || c.net.isCut(from, n.id) || c.net.isCut(n.id, from) {
		c.rejectSnapshot(n, in.msg, "the sender went down or became unreachable")
		return
	}
	meta := in.msg.Snapshot
	n.add(in.snap)
	n.fetched = meta.Clone()
	c.trace.add(traceRec{at: c.now, kind: trFetched, node: n.id, a: meta.Index, b: meta.Term, c: from})
	if c.opts.bug == bugInstallStale && meta.Index <= n.core.Committed() {
		c.loadStateMachine(n, &in.snap, "installed from a stale MsgSnap")
		return
	}
	if c.chaos != nil {
		c.chaos.crashWithin(n, crashFetched, 3*time.Millisecond, 6)
	}
	_ = n.core.Step(in.msg)
	c.drain(n)
}

// abortInstall cancels n's fetch in progress.
func (c *Cluster) abortInstall(n *node, why string) {
	in := n.install
	n.install = nil
	c.stats.FetchesAborted++
	c.trace.add(traceRec{at: c.now, kind: trFetchAbort, node: n.id, a: in.msg.Snapshot.Index, b: in.msg.Term, note: why})
}

// rejectSnapshot tells m's sender that n could not fetch its snapshot, as a
// MsgSnapStatus rejection, so that it may offer one again.
func (c *Cluster) rejectSnapshot(n *node, m raftpb.Message, why string) {
	c.stats.FetchesFailed++
	c.trace.add(traceRec{at: c.now, kind: trFetchFail, node: n.id, a: m.Snapshot.Index, b: m.Snapshot.Term, c: m.From, note: why})
	c.send(&raftpb.Message{Type: raftpb.MsgSnapStatus, From: n.id, To: m.From, Term: n.core.Term(), Reject: true})
}

// takeSnapshotReady handles the Snapshot of a Ready n's core just handed
// out: the core's log is now the snapshot, so the in-memory mirror is too.
// The payload must have been fetched: the core may see a MsgSnap to install
// only once it is durable here.
func (c *Cluster) takeSnapshotReady(n *node, meta *raftpb.SnapshotMeta) {
	s, ok := n.find(meta.Index, meta.Term)
	if !ok {
		c.failf(n.id, "snapshot install", "the core installs snapshot %d/%d, which was never fetched", meta.Term, meta.Index)
		return
	}
	c.resetMirror(n, &n.volatile, &s, "in-memory log")
}

// installSnapshot is the first step of persisting a Ready that carries
// snapshot meta: the durable log is replaced by the snapshot and the state
// machine loads it. The Ready's other writes and the core's Advance follow
// at its second step.
func (c *Cluster) installSnapshot(n *node, meta *raftpb.SnapshotMeta) {
	s, ok := n.find(meta.Index, meta.Term)
	if !ok {
		c.failf(n.id, "snapshot install", "snapshot %d/%d is not durable here", meta.Term, meta.Index)
		return
	}
	c.switchLog(n, &s, "install")
	if c.err != nil {
		return
	}
	n.store.setSnapshot(s.meta)
	n.fetched = raftpb.SnapshotMeta{}
	n.switched = true
	c.loadStateMachine(n, &s, "installed")
	if c.err != nil {
		return
	}
	n.core.AppliedTo(n.applied)
	c.stats.Installs++
	if c.chaos != nil {
		c.chaos.crashWithin(n, crashInstalled, n.persistAt-c.now, 4)
	}
}

// noteSnapshotSent remembers when a leader sent a MsgSnap.
func (c *Cluster) noteSnapshotSent(m *raftpb.Message) {
	n := c.node(m.From)
	if n.snapSent == nil {
		n.snapSent = make([]time.Duration, len(c.nodes))
	}
	n.snapSent[m.To-1] = c.now + 1 // so that 0 means "none"
}

// checkSnapshotStalls reports failed, on leader n, every snapshot it sent
// that its follower has not been fetching from it for snapStallTimeouts
// election timeouts, as the runtime does: the follower's progress leaves
// Snapshot state and probing offers the latest snapshot again. A fetch
// that keeps going is never interrupted.
func (c *Cluster) checkSnapshotStalls(n *node) {
	if n.snapSent == nil || n.role != core.RoleLeader {
		return
	}
	stall := time.Duration(snapStallTimeouts*c.opts.ElectionTick) * c.opts.TickInterval
	for i, at := range n.snapSent {
		if at == 0 || c.now+1-at < stall {
			continue
		}
		if in := c.nodes[i].install; in != nil && in.msg.From == n.id {
			continue
		}
		n.snapSent[i] = 0
		c.trace.add(traceRec{at: c.now, kind: trSnapStall, node: n.id, a: uint64(i + 1)})
		n.core.ReportSnapshot(uint64(i+1), false)
	}
}

// countSnapshotCrash counts a crash of n by the snapshot work it cuts short.
func (c *Cluster) countSnapshotCrash(n *node) {
	if n.saving != nil {
		c.stats.CrashesSaving++
	}
	switch {
	case n.install != nil:
		c.stats.CrashesFetching++
	case n.switched:
		c.stats.CrashesInstalled++
	case n.pending.hasSnapshot():
		c.stats.CrashesFetched++
	}
}

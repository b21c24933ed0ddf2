package rafttest

import (
	"time"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// This file is the snapshot side of a node's runtime: the state machine's
// snapshots, saving them, compacting the log behind a durable one, and
// loading the latest at restart. Installing a leader's snapshot is in
// install.go.

// snapshot is one snapshot as the simulator keeps it: the metadata the core
// sees and what a real state machine would write, reduced to what the checks
// need. Payloads live with the node that took them (and, once fetched, with
// the follower that fetched a copy).
type snapshot struct {
	meta raftpb.SnapshotMeta
	// state is the state machine's hash (stateStep) at meta.Index.
	state uint64
	// chain is the log's chain hash at meta.Index. No real payload carries
	// it: it lets the checker's mirror of an installing follower go on from
	// the snapshot as the log it replaces would have.
	chain uint64
	// size is the simulated payload size in bytes; saving and fetching
	// take time in proportion.
	size uint64
	// taker is the node that took the snapshot.
	taker uint64
}

// keepSnapshots is how many durable snapshots a node keeps, newest last, as
// a runtime deletes old ones after each save. A follower fetching one that
// has been deleted fails, and the leader offers its latest again.
const keepSnapshots = 3

// snapState is a node's snapshot bookkeeping.
type snapState struct {
	// snaps are the durable snapshots (saved or fetched), by index, oldest
	// first; they survive crashes.
	snaps []snapshot
	// saving is the snapshot being saved, nil when none; saveID names its
	// completion event.
	saving *snapshot
	saveID uint64
	// install is the leader's snapshot being fetched, nil when none.
	install *installState
	fetchID uint64
	// fetched is the meta of the snapshot fetched last and not installed
	// since: a MsgSnap for it goes straight to the core.
	fetched raftpb.SnapshotMeta
	// switched: the oldest pending Ready carries a snapshot that is
	// installed already (log switched, state machine loaded); its other
	// writes and the core's Advance are still to come.
	switched bool
	// snapSent[p-1] is 1ns past when this node last sent a MsgSnap to node
	// p, or 0 when none is watched: a leader's watch for installs that
	// never finish.
	snapSent []time.Duration
}

// crash drops what a crash loses: the save and the fetch under way.
func (s *snapState) crash() {
	s.saving = nil
	s.install = nil
	s.fetched = raftpb.SnapshotMeta{}
	s.switched = false
	clear(s.snapSent)
}

// latest returns the newest durable snapshot; ok is false when none.
func (s *snapState) latest() (snap snapshot, ok bool) {
	if len(s.snaps) == 0 {
		return snapshot{}, false
	}
	return s.snaps[len(s.snaps)-1], true
}

// find returns the durable snapshot at (index, term).
func (s *snapState) find(index, term uint64) (snap snapshot, ok bool) {
	for i := len(s.snaps) - 1; i >= 0; i-- {
		if m := &s.snaps[i].meta; m.Index == index && m.Term == term {
			return s.snaps[i], true
		}
	}
	return snapshot{}, false
}

// add records snap as durable, keeping the list ordered by index and no
// longer than keepSnapshots.
func (s *snapState) add(snap snapshot) {
	i := len(s.snaps)
	for i > 0 && s.snaps[i-1].meta.Index >= snap.meta.Index {
		if s.snaps[i-1].meta.Index == snap.meta.Index && s.snaps[i-1].meta.Term == snap.meta.Term {
			return // already held
		}
		i--
	}
	s.snaps = append(s.snaps, snapshot{})
	copy(s.snaps[i+1:], s.snaps[i:])
	s.snaps[i] = snap
	if n := len(s.snaps); n > keepSnapshots {
		s.snaps = append(s.snaps[:0], s.snaps[n-keepSnapshots:]...)
	}
}

// simStorage is a node's durable log as its core reads it: the
// MemoryStorage holding entries and HardState, with the latest durable
// snapshot recorded beside it, as the runtime's log manager keeps it.
type simStorage struct {
	*storage.MemoryStorage
	// snap is the snapshot offered to followers that need compacted
	// entries: the newest saved or installed one. Index 0: none yet.
	snap raftpb.SnapshotMeta
}

// Snapshot returns the latest durable snapshot's metadata (the log may be
// compacted only up to a point at or below it).
func (s *simStorage) Snapshot() (raftpb.SnapshotMeta, error) {
	if s.snap.Index > 0 {
		return s.snap.Clone(), nil
	}
	return s.MemoryStorage.Snapshot()
}

// InitialState reports a commit index at least the snapshot's: what a
// snapshot covers is committed, though the HardState may not say so yet (a
// crash after a snapshot's install and before the Ready's HardState).
//
// Like the runtime's log manager, it reports the latest snapshot's
// configuration, not the one at the start of the (possibly longer) log:
// the core replays only the configuration entries after the snapshot.
func (s *simStorage) InitialState() (raftpb.HardState, raftpb.ConfState, error) {
	hs, cs, err := s.MemoryStorage.InitialState()
	if !hs.IsEmpty() || s.snap.Index > 0 {
		hs.Commit = max(hs.Commit, s.snap.Index)
	}
	if s.snap.Index > 0 {
		cs = s.snap.ConfState.Clone()
	}
	return hs, cs, err
}

// setSnapshot records meta as the latest durable snapshot unless a newer
// one is recorded.
func (s *simStorage) setSnapshot(meta raftpb.SnapshotMeta) {
	if meta.Index > s.snap.Index {
		s.snap = meta.Clone()
	}
}

// stateStep folds the entry d into the state machine hash h. The state is
// never 0, which the checker reserves for "unknown".
func stateStep(h uint64, d *digest) uint64 {
	h = mix64(h + d.hash + uint64(d.typ)*0x9e3779b97f4a7c15)
	if h == 0 {
		h = 1
	}
	return h
}

// maxStateEntries bounds the simulated state machine: it behaves as a store
// of at most that many keys, later payloads overwriting earlier ones. An
// unbounded state would make fetches of long runs outlast the liveness
// timeout, however healthy the cluster.
const maxStateEntries = 2048

// payloadSize is the simulated size of a snapshot at index: 16 bytes per
// key held, plus a header.
func payloadSize(index uint64) uint64 { return 64 + 16*min(index, maxStateEntries) }

// byteDelay draws a time for size bytes at the configured rate: uniform in
// [base/2, 3*base/2] plus fixed.
func (c *Cluster) byteDelay(size uint64, scale int64, fixed time.Duration) time.Duration {
	base := int64(size) * int64(c.opts.SnapshotByteTime) / scale
	return fixed + time.Duration(base/2+c.rng.Int64N(base+1))
}

// maybeSnapshot takes a snapshot of n's state machine once it has applied
// Options.SnapshotEvery entries past its last one, and starts saving it.
func (c *Cluster) maybeSnapshot(n *node) {
	every := c.opts.SnapshotEvery
	if every == 0 || n.saving != nil || n.applied < n.smSnap+every {
		return
	}
	idx := n.applied
	base := n.durable.at(max(idx, n.durable.off)) // durable: the core applies only durable entries
	s := &snapshot{
		meta:  raftpb.SnapshotMeta{Index: idx, Term: base.term, ConfState: c.confAt(idx).Clone()},
		state: n.smHash,
		chain: base.chain,
		size:  payloadSize(idx),
		taker: n.id,
	}
	n.saving, n.smSnap = s, idx
	n.saveID++
	d := c.byteDelay(s.size, 4, n.minFsync)
	c.q.push(event{at: c.now + d, kind: evSnapSaved, node: n.id, gen: n.gen, id: n.saveID})
	c.trace.add(traceRec{at: c.now, kind: trSnapTake, node: n.id, a: idx, b: s.meta.Term, c: uint64(d)})
	if c.chaos != nil {
		c.chaos.crashWithin(n, crashSaving, d, 8)
	}
	if c.opts.bug == bugCompactBeforeDurable {
		c.compactLog(n, idx)
	}
}

// snapshotSaved makes n's snapshot durable, unless n crashed meanwhile,
// and compacts the log behind it.
func (c *Cluster) snapshotSaved(n *node, gen, id uint64) {
	if n.core == nil || gen != n.gen || n.saving == nil || id != n.saveID {
		c.stats.SnapshotsLost++
		return // the crash lost it
	}
	s := *n.saving
	n.saving = nil
	n.add(s)
	c.stats.Snapshots++
	c.trace.add(traceRec{at: c.now, kind: trSnapSaved, node: n.id, a: s.meta.Index, b: s.meta.Term})
	if s.meta.Index <= n.store.snap.Index {
		return // an installed snapshot overtook it
	}
	n.store.setSnapshot(s.meta)
	c.compactLog(n, s.meta.Index)
}

// compactLog discards n's log before index+1-CompactMargin, keeping that
// margin of entries for followers a little behind. Compaction only ever
// follows a durable snapshot: a crash must find a snapshot covering
// everything the log no longer holds.
func (c *Cluster) compactLog(n *node, index uint64) {
	margin := c.opts.CompactMargin
	if index+1 <= margin {
		return
	}
	to := index + 1 - margin
	if to <= n.durable.off+1 {
		return
	}
	if latest, _ := n.latest(); latest.meta.Index < to-1 {
		c.failf(n.id, "compaction", "compacting the log up to %d, but the latest durable snapshot is at %d",
			to-1, latest.meta.Index)
		return
	}
	// The storage's snapshot at the compaction point records the
	// configuration there, where a restart starts following the log.
	n.store.SetConfState(c.confAt(to - 1))
	if err := n.store.Compact(to - 1); err != nil {
		c.failf(n.id, "storage", "compact %d: %v", to-1, err)
		return
	}
	n.durable.compact(to)
	if n.volatile.off < to-1 {
		n.volatile.compact(to)
	}
	c.stats.Compactions++
	c.trace.add(traceRec{at: c.now, kind: trCompact, node: n.id, a: to, b: index})
}

// loadSnapshot prepares node n, about to restart, from its latest durable
// snapshot: the log is reconciled with it (reset to start after it if the
// crash came between a fetch and the install's log switch) and the state
// machine loads it. The core then starts with Applied at its index.
func (c *Cluster) loadSnapshot(n *node) {
	n.applied, n.smHash, n.smSnap = 0, 0, 0
	s, ok := n.latest()
	if !ok {
		if n.durable.off > 0 {
			c.failf(n.id, "compaction", "restart: the log is compacted up to %d but no snapshot is durable", n.durable.off)
		}
		return
	}
	idx := s.meta.Index
	if n.durable.off > idx {
		c.failf(n.id, "compaction", "restart: the log is compacted up to %d, past the latest durable snapshot at %d",
			n.durable.off, idx)
		return
	}
	if n.durable.last() < idx || n.durable.at(idx).term != s.meta.Term {
		c.switchLog(n, &s, "restart")
		if c.err != nil {
			return
		}
	}
	n.store.setSnapshot(s.meta)
	n.volatile = n.durable.clone()
	c.loadStateMachine(n, &s, "loaded at restart")
	if c.opts.bug == bugRestartAppliedZero {
		n.applied = 0
	}
	c.stats.SnapshotLoads++
}

// switchLog replaces n's durable log by snapshot s, as the runtime's log
// reset does, checking that no committed entry past it is lost.
func (c *Cluster) switchLog(n *node, s *snapshot, why string) {
	c.resetMirror(n, &n.durable, s, "durable log")
	if c.err != nil {
		return
	}
	if err := n.store.ApplySnapshot(s.meta); err != nil {
		c.failf(n.id, "storage", "apply snapshot %d/%d: %v", s.meta.Term, s.meta.Index, err)
		return
	}
	c.trace.add(traceRec{at: c.now, kind: trSnapSwitch, node: n.id, a: s.meta.Index, b: s.meta.Term, note: why})
}

// loadStateMachine makes snapshot s the state of n's state machine.
func (c *Cluster) loadStateMachine(n *node, s *snapshot, how string) {
	if s.meta.Index < n.applied {
		c.failf(n.id, "state machine safety", "snapshot %d/%d %s below the applied index %d",
			s.meta.Term, s.meta.Index, how, n.applied)
		return
	}
	n.applied, n.smHash, n.smSnap = s.meta.Index, s.state, s.meta.Index
	c.checkState(n, s.meta.Index, s.state, how)
}

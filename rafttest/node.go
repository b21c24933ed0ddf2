package rafttest

import (
	"math/rand/v2"
	"time"

	"github.com/raftkit/raftkit/internal/core"
	"github.com/raftkit/raftkit/raftpb"
)

// maxReadysPerDrain bounds the Readys taken in a row from one core; a core
// that keeps reporting HasReady is livelocked, which the run reports.
const maxReadysPerDrain = 10000

// node is one simulated server: a core (nil while crashed), its durable
// storage and snapshots, the Readys it has taken but not yet made durable,
// its state machine (the applied index and a chained hash of what it
// applied; payloads are checked against the cluster's committed log instead
// of being stored) and the mirrors the checker reads.
type node struct {
	id    uint64
	rng   *rand.Rand // the core's election randomness, derived from the seed
	store *simStorage

	core *core.Raft // nil while the node is down
	gen  uint64     // incarnation: bumped by each crash, stamped on persist events

	// pending are the Readys taken and not yet durable, oldest first; they
	// complete in this order. persistAt is when the newest one completes.
	pending   readyQueue
	persistAt time.Duration
	// minFsync and maxFsync bound the time this node's disk takes to make
	// one Ready durable.
	minFsync, maxFsync time.Duration

	role core.Role
	lead uint64

	// hs is the durable HardState (what the storage holds).
	hs raftpb.HardState
	// durable mirrors the storage's log; volatile mirrors the core's log:
	// durable plus the Entries of every pending Ready. After a crash the
	// volatile mirror is reset to the durable one.
	durable, volatile logMirror

	// The state machine: applied is the last index it applied or loaded
	// from a snapshot since start, smHash the chained hash of every entry
	// applied up to there (see stateStep), and smSnap the index of the
	// snapshot it last took or loaded: no entry at or below it is ever
	// applied again.
	applied, smHash, smSnap uint64
	// commit is the last commit index the core reported.
	commit uint64

	snapState // snapshot.go, install.go
}

// start attaches a fresh core.
func (n *node) start(r *core.Raft, now time.Duration) {
	n.core = r
	n.role, n.lead = core.RoleFollower, 0
	n.commit = n.hs.Commit
	n.persistAt = now
}

// crash drops everything not durable: the core, the writes in flight, the
// state machine, a snapshot being saved, a fetch under way.
func (n *node) crash() {
	n.core = nil
	n.gen++
	n.pending.reset()
	n.volatile = n.durable.clone()
	n.role, n.lead = core.RoleFollower, 0
	n.snapState.crash()
}

// drain takes and handles Readys from n's core until it has none.
func (c *Cluster) drain(n *node) {
	for i := 0; c.err == nil && n.core != nil && n.core.HasReady(); i++ {
		if i == maxReadysPerDrain {
			c.failf(n.id, "progress", "HasReady still true after %d Readys in a row", i)
			return
		}
		c.handleReady(n, n.core.Ready())
	}
	if n.install != nil && n.core != nil && n.core.Term() > n.install.msg.Term {
		c.abortInstall(n, "a newer term")
	}
}

// handleReady follows the protocol of core.Ready: record the new state,
// send Messages, apply CommittedEntries, then either finish the Ready at once
// (nothing to persist and nothing ahead of it) or queue it behind the
// in-flight ones for a simulated fsync.
func (c *Cluster) handleReady(n *node, rd core.Ready) {
	c.stats.Readys++
	if rd.Snapshot != nil {
		c.takeSnapshotReady(n, rd.Snapshot)
		if c.err != nil {
			return
		}
	}
	if len(rd.Entries) > 0 {
		c.writeMirror(n, &n.volatile, rd.Entries, "in-memory log")
	}
	if rd.SoftState != nil {
		c.onSoftState(n, *rd.SoftState)
	}
	if !rd.HardState.IsEmpty() && rd.HardState.Commit > 0 {
		c.onCommit(n, rd.HardState.Commit)
	}
	if n.role == core.RoleLeader {
		c.checkLeaderComplete(n)
	}
	if len(rd.ReadStates) > 0 && c.err == nil {
		c.onReadStates(n, rd.ReadStates)
	}
	if c.err != nil {
		return
	}
	c.sendAll(rd.Messages)
	if len(rd.CommittedEntries) > 0 {
		c.apply(n, rd.CommittedEntries)
		if c.err != nil {
			return
		}
		n.core.AppliedTo(n.applied)
		c.maybeSnapshot(n)
	}
	if n.pending.len() == 0 && !rd.MustPersist() {
		c.sendAll(rd.MessagesAfterPersist)
		n.core.Advance(rd)
		return
	}
	if c.opts.bug == bugSendBeforePersist {
		c.sendAll(rd.MessagesAfterPersist)
		rd.MessagesAfterPersist = nil
	}
	at := n.persistAt
	if rd.MustPersist() {
		at = max(at, c.now+c.fsyncDelay(n))
	}
	at = max(at, c.now)
	if rd.Snapshot != nil {
		// Two steps: the snapshot is installed at at (the log switched and
		// the state machine loaded), the rest of the Ready is durable one
		// more fsync later, and only then is the core advanced.
		c.q.push(event{at: at, kind: evPersist, node: n.id, gen: n.gen})
		at += c.fsyncDelay(n)
	}
	n.persistAt = at
	n.pending.push(rd)
	c.q.push(event{at: at, kind: evPersist, node: n.id, gen: n.gen})
}

// fsyncDelay draws the time n's disk takes to make one write durable.
func (c *Cluster) fsyncDelay(n *node) time.Duration {
	d := n.minFsync
	if span := n.maxFsync - n.minFsync; span > 0 {
		d += time.Duration(c.rng.Int64N(int64(span) + 1))
	}
	return d
}

func (c *Cluster) onSoftState(n *node, ss core.SoftState) {
	n.role, n.lead = ss.Role, ss.Lead
	term := n.core.Term()
	c.trace.add(traceRec{at: c.now, kind: trRole, node: n.id, a: uint64(ss.Role), b: term, c: ss.Lead})
	if ss.Role == core.RoleLeader {
		c.checkElection(n, term)
	} else if ss.Lead != 0 {
		c.checkKnownLeader(n, term, ss.Lead)
	}
}

// persist completes n's oldest in-flight Ready: it writes the Ready to the
// durable storage, sends its MessagesAfterPersist and advances the core. A
// Ready carrying a snapshot takes two calls: the first installs the
// snapshot.
func (c *Cluster) persist(n *node, gen uint64) {
	if n.core == nil || gen != n.gen {
		return // the node crashed; its in-flight writes were lost
	}
	if rd := n.pending.peek(); rd.Snapshot != nil && !n.switched {
		c.installSnapshot(n, rd.Snapshot)
		return
	}
	rd := n.pending.pop()
	n.switched = false
	c.stats.Persists++
	if len(rd.Entries) > 0 {
		if err := n.store.Append(rd.Entries); err != nil {
			c.failf(n.id, "storage", "append %d entries at %d: %v", len(rd.Entries), rd.Entries[0].Index, err)
			return
		}
		c.writeMirror(n, &n.durable, rd.Entries, "durable log")
		c.checkLogMatching(n, rd.Entries)
	}
	if !rd.HardState.IsEmpty() {
		c.checkHardState(n, rd.HardState)
		n.store.SetHardState(rd.HardState)
		n.hs = rd.HardState
	}
	if c.err != nil {
		return
	}
	var last uint64
	if len(rd.Entries) > 0 {
		last = rd.Entries[len(rd.Entries)-1].Index
	}
	c.trace.add(traceRec{at: c.now, kind: trPersist, node: n.id, a: uint64(len(rd.Entries)), b: last, hs: rd.HardState})
	c.sendAll(rd.MessagesAfterPersist)
	n.core.Advance(rd)
	c.drain(n)
}

// apply feeds committed entries to n's state machine, checking that they
// come in order, above its snapshot, are durable locally and agree with the
// committed log, and that the state reached equals every other node's.
func (c *Cluster) apply(n *node, ents []raftpb.Entry) {
	for i := range ents {
		e := &ents[i]
		if e.Index <= n.smSnap {
			c.failf(n.id, "state machine safety", "applying %d/%d, at or below the snapshot at %d the state machine holds",
				e.Term, e.Index, n.smSnap)
			return
		}
		if e.Index != n.applied+1 {
			c.failf(n.id, "state machine safety", "applied index %d after %d (gap or reorder)", e.Index, n.applied)
			return
		}
		c.checkApply(n, e)
		if c.err != nil {
			return
		}
		n.applied = e.Index
		n.smHash = stateStep(n.smHash, n.durable.at(e.Index))
		c.checkState(n, e.Index, n.smHash, "applied")
		if c.err != nil {
			return
		}
	}
}

// readyQueue is a FIFO of Readys that reuses its backing array.
type readyQueue struct {
	q    []core.Ready
	head int
}

func (r *readyQueue) len() int { return len(r.q) - r.head }

func (r *readyQueue) push(rd core.Ready) { r.q = append(r.q, rd) }

// hasSnapshot reports whether a queued Ready carries a snapshot.
func (r *readyQueue) hasSnapshot() bool {
	for i := r.head; i < len(r.q); i++ {
		if r.q[i].Snapshot != nil {
			return true
		}
	}
	return false
}

// peek returns the oldest Ready; the queue must not be empty.
func (r *readyQueue) peek() *core.Ready { return &r.q[r.head] }

func (r *readyQueue) pop() core.Ready {
	rd := r.q[r.head]
	r.q[r.head] = core.Ready{}
	r.head++
	if r.head == len(r.q) {
		r.q, r.head = r.q[:0], 0
	}
	return rd
}

func (r *readyQueue) reset() {
	clear(r.q)
	r.q, r.head = r.q[:0], 0
}

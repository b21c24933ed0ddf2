package rafttest

import (
	"math/rand/v2"
	"time"

	"github.com/raftkit/raftkit/internal/core"
	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// maxReadysPerDrain bounds the Readys taken in a row from one core; a core
// that keeps reporting HasReady is livelocked, which the run reports.
const maxReadysPerDrain = 10000

// node is one simulated server: a core (nil while crashed), its durable
// storage, the Readys it has taken but not yet made durable, its state
// machine (the applied index; payloads are checked against the cluster's
// committed log instead of being stored) and the mirrors the checker reads.
type node struct {
	id    uint64
	rng   *rand.Rand // the core's election randomness, derived from the seed
	store *storage.MemoryStorage

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

	// applied is the last index the state machine applied since start.
	applied uint64
	// commit is the last commit index the core reported.
	commit uint64
}

// start attaches a fresh core.
func (n *node) start(r *core.Raft, now time.Duration) {
	n.core = r
	n.role, n.lead = core.RoleFollower, 0
	n.applied = 0
	n.commit = n.hs.Commit
	n.persistAt = now
}

// crash drops everything not durable.
func (n *node) crash() {
	n.core = nil
	n.gen++
	n.pending.reset()
	n.volatile = n.durable.clone()
	n.role, n.lead = core.RoleFollower, 0
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
}

// handleReady follows the protocol of core.Ready: record the new state,
// send Messages, apply CommittedEntries, then either finish the Ready at once
// (nothing to persist and nothing ahead of it) or queue it behind the
// in-flight ones for a simulated fsync.
func (c *Cluster) handleReady(n *node, rd core.Ready) {
	c.stats.Readys++
	if rd.Snapshot != nil {
		// The simulator never compacts, so no leader should need to send a
		// snapshot and no follower should install one.
		c.failf(n.id, "snapshot", "unexpected snapshot %d/%d in Ready (storage is never compacted)",
			rd.Snapshot.Term, rd.Snapshot.Index)
		return
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
		d := n.minFsync
		if span := n.maxFsync - n.minFsync; span > 0 {
			d += time.Duration(c.rng.Int64N(int64(span) + 1))
		}
		at = max(at, c.now+d)
	}
	at = max(at, c.now)
	n.persistAt = at
	n.pending.push(rd)
	c.q.push(event{at: at, kind: evPersist, node: n.id, gen: n.gen})
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
// durable storage, sends its MessagesAfterPersist and advances the core.
func (c *Cluster) persist(n *node, gen uint64) {
	if n.core == nil || gen != n.gen {
		return // the node crashed; its in-flight writes were lost
	}
	rd := n.pending.pop()
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
// come in order, are durable locally and agree with the committed log.
func (c *Cluster) apply(n *node, ents []raftpb.Entry) {
	for i := range ents {
		e := &ents[i]
		if e.Index != n.applied+1 {
			c.failf(n.id, "state machine safety", "applied index %d after %d (gap or reorder)", e.Index, n.applied)
			return
		}
		c.checkApply(n, e)
		if c.err != nil {
			return
		}
		n.applied = e.Index
	}
}

// readyQueue is a FIFO of Readys that reuses its backing array.
type readyQueue struct {
	q    []core.Ready
	head int
}

func (r *readyQueue) len() int { return len(r.q) - r.head }

func (r *readyQueue) push(rd core.Ready) { r.q = append(r.q, rd) }

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

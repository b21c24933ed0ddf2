package core

import (
	"errors"
	"fmt"
	"math"

	"github.com/raftkit/raftkit/internal/core/quorum"
	"github.com/raftkit/raftkit/raftpb"
)

// ErrReadDropped is returned by ReadIndex when the leader cannot take the
// read now: it is transferring leadership, or too many reads are already
// waiting for confirmation. The caller retries, after the transfer at the
// new leader.
var ErrReadDropped = errors.New("core: read dropped")

// maxPendingReads bounds the reads a leader holds unanswered (local and
// forwarded together), so that a leader without a quorum — which never
// answers — cannot be made to grow without bound by requests.
const maxPendingReads = 1 << 16

// ReadState is a read whose index is known: once the state machine has
// applied up to Index, it reflects every entry committed before the read
// with context RequestCtx was requested, so the runtime may serve it.
type ReadState struct {
	Index      uint64
	RequestCtx uint64
}

// ReadIndex requests a linearizable read barrier identified by ctx (chosen
// by the caller, echoed in the answer). The answer arrives later as a
// ReadState in a Ready; the runtime serves the read once its state machine
// has applied up to ReadState.Index.
//
// On the leader, in safe mode (lease false), the read index is the commit
// index at the time of the request, released once a heartbeat round sent
// after the request has been acknowledged by a quorum (both majorities of a
// joint configuration; the leader counts itself): no other leader can then
// have committed anything the index misses. Reads arriving while a round is
// outstanding share the next round. A one-voter group answers at once. A
// leader that has not yet committed an entry of its own term does not know
// the true commit index: it holds reads until it has, then serves them.
//
// In lease mode (lease true), the leader answers at once with its commit
// index while its lease holds: the lease starts at the tick at which a
// heartbeat round was sent that a quorum then acknowledged, and lasts
// Config.LeaseTicks ticks. It is safe because each follower that
// acknowledged refuses (pre-)votes for ElectionTick of its own ticks after
// hearing the leader (and after restarting, see doc.go), so no other leader
// can be elected before the lease ends — assuming that ticks on different
// nodes advance at the same rate to within the margin
// 1 - LeaseTicks/ElectionTick. A paused process or a clock that runs slow
// on the leader breaks that assumption; safe mode does not depend on it.
// The lease is not used, and the read falls back to a safe round, when the
// lease has expired, when check quorum is disabled (followers then grant
// votes regardless of leases), and once a leadership transfer has started in
// this term: the transferee campaigns with votes that ignore leases.
//
// A follower or learner forwards the request to the leader it knows
// (MsgReadIndex); the leader always confirms a forwarded read with a round,
// whatever lease says, and the answer becomes a ReadState here.
//
// Errors: ErrNotLeader when this node is not the leader and knows of none
// (nothing to forward to); ErrReadDropped on a leader that is transferring
// leadership or holds maxPendingReads reads. Otherwise the request is
// accepted, but it may still be lost silently: a leader that steps down
// drops the reads it holds, a forwarded request or its answer may be lost,
// and a leader that cannot serve a forwarded read rejects it, which the
// requester drops. The runtime therefore times reads out and retries them,
// and fails the reads it waits for when the term changes.
//
// Concurrency: owner goroutine only, like every Raft method.
func (r *Raft) ReadIndex(ctx uint64, lease bool) error {
	if r.role != RoleLeader {
		if r.lead == raftpb.None {
			return fmt.Errorf("%w: no leader known to forward the read to", ErrNotLeader)
		}
		r.send(raftpb.Message{To: r.lead, Type: raftpb.MsgReadIndex, Context: ctx})
		return nil
	}
	return r.leaderRead(readRequest{ctx: ctx, lease: lease})
}

// readRequest is one read the leader holds.
type readRequest struct {
	from  uint64 // the follower to answer; None for a local read
	ctx   uint64
	lease bool
	index uint64 // the read index, once registered
	round uint64 // the heartbeat round that confirms it, once assigned
}

type readKey struct{ from, ctx uint64 }

// readRound is a heartbeat round the leader sent, with the tick it left at.
type readRound struct{ seq, tick uint64 }

// readOnly is the leader's read-index bookkeeping (SOFAJRaft's
// ReadOnlyService decisions, without its threads), plus the node's tick
// counter that lease arithmetic needs.
//
// Invariants: pending is sorted by round; every request in pending has
// round <= seq, every one in waiting and deferred has none yet; rounds is
// sorted by seq and holds no round below the quorum-acknowledged one.
type readOnly struct {
	// now counts Tick calls since the core started.
	now uint64
	// seq is the sequence of the latest heartbeat round; it only grows,
	// across terms too, so a late acknowledgement can never be mistaken
	// for one of a newer round.
	seq uint64

	// Everything below belongs to the current leadership term and is
	// cleared when the node stops leading.

	// termStart is the index of the leader's first entry of its term: the
	// leader serves no read before its commit index reaches it.
	termStart uint64
	// termSeq is seq when the leader took office: rounds above it are
	// this term's.
	termSeq uint64
	// acked maps a peer to the highest round it echoed in this term.
	acked map[uint64]uint64
	// rounds are the rounds sent in this term, from the latest one a quorum
	// acknowledged on, dropping those too old to start a lease.
	rounds []readRound
	// leaseRevoked is set once a leadership transfer has started in this
	// term: a MsgTimeoutNow may be in flight, and its election ignores
	// leases, until the term ends.
	leaseRevoked bool

	deferred []readRequest // before the first commit in this term
	waiting  []readRequest // registered, to be confirmed by the next round
	pending  []readRequest // confirmed by their round, once a quorum acknowledges it
	// forwarded holds the forwarded requests in the three lists, so that a
	// duplicated MsgReadIndex is not served twice.
	forwarded map[readKey]struct{}

	// states are the released local reads the next Ready hands out; they
	// survive a step-down, having been answered while leading.
	states []ReadState
}

// held counts the reads the leader has not answered yet.
func (ro *readOnly) held() int { return len(ro.deferred) + len(ro.waiting) + len(ro.pending) }

// resetTerm drops every read held and the round bookkeeping of the term.
func (ro *readOnly) resetTerm() {
	ro.termStart, ro.termSeq = 0, ro.seq
	clear(ro.acked)
	ro.rounds = ro.rounds[:0]
	ro.leaseRevoked = false
	clear(ro.deferred)
	clear(ro.waiting)
	clear(ro.pending)
	ro.deferred, ro.waiting, ro.pending = ro.deferred[:0], ro.waiting[:0], ro.pending[:0]
	clear(ro.forwarded)
}

// startLeading prepares the bookkeeping of a new leadership term whose first
// entry is at index first.
func (ro *readOnly) startLeading(first uint64) {
	ro.resetTerm()
	ro.termStart = first
}

// leaderRead accepts a read on the leader.
func (r *Raft) leaderRead(req readRequest) error {
	ro := &r.read
	if r.leadTransferee != raftpb.None {
		return fmt.Errorf("%w: leadership transfer to %d in progress", ErrReadDropped, r.leadTransferee)
	}
	if ro.held() >= maxPendingReads {
		return fmt.Errorf("%w: %d reads already waiting", ErrReadDropped, ro.held())
	}
	if req.from != raftpb.None {
		if ro.forwarded == nil {
			ro.forwarded = map[readKey]struct{}{}
		}
		ro.forwarded[readKey{req.from, req.ctx}] = struct{}{}
	}
	if r.log.committed < ro.termStart {
		ro.deferred = append(ro.deferred, req)
		return nil
	}
	r.registerRead(req)
	return nil
}

// registerRead fixes the read's index at the current commit index, which
// covers everything committed so far since the leader has committed in its
// term, and answers it at once under a lease or queues it for a round.
func (r *Raft) registerRead(req readRequest) {
	req.index = r.log.committed
	if req.lease && req.from == raftpb.None && r.leaseValid() {
		r.releaseRead(req)
		return
	}
	r.read.waiting = append(r.read.waiting, req)
	r.maybeStartReadRound()
}

// releaseDeferredReads serves the reads that waited for the leader's first
// commit in its term; it runs whenever the leader's commit index moves.
func (r *Raft) releaseDeferredReads() {
	ro := &r.read
	if len(ro.deferred) == 0 || r.log.committed < ro.termStart {
		return
	}
	reqs := ro.deferred
	ro.deferred = nil
	for _, req := range reqs {
		r.registerRead(req)
	}
}

// maybeStartReadRound sends a heartbeat round for the waiting reads unless
// one is already outstanding; the waiting reads then ride on the next round,
// sent when the outstanding one is acknowledged or at the next heartbeat.
func (r *Raft) maybeStartReadRound() {
	ro := &r.read
	outstanding := ro.seq > ro.termSeq && r.readQuorumSeq() < ro.seq
	if len(ro.waiting) > 0 && !outstanding {
		r.bcastHeartbeat()
		r.releaseReads()
	}
}

// startReadRound is called for every heartbeat round the leader sends. It
// assigns the waiting reads to the new round and returns its sequence, which
// the heartbeats carry in Context.
func (r *Raft) startReadRound() uint64 {
	ro := &r.read
	// Trim here too: without acknowledgements (a partitioned leader without
	// check quorum) nothing else would, and rounds would grow each tick.
	r.trimReadRounds(r.readQuorumSeq())
	ro.seq++
	ro.rounds = append(ro.rounds, readRound{seq: ro.seq, tick: ro.now})
	for _, req := range ro.waiting {
		req.round = ro.seq
		ro.pending = append(ro.pending, req)
	}
	clear(ro.waiting)
	ro.waiting = ro.waiting[:0]
	return ro.seq
}

// onHeartbeatAck records that from echoed round seq, then releases the reads
// a quorum has now confirmed and starts the next round if reads wait for one.
func (r *Raft) onHeartbeatAck(from, seq uint64) {
	ro := &r.read
	if seq == 0 || seq > ro.seq || seq <= ro.acked[from] {
		return // no round, not ours, or nothing new
	}
	if ro.acked == nil {
		ro.acked = map[uint64]uint64{}
	}
	ro.acked[from] = seq
	r.releaseReads()
	r.maybeStartReadRound()
}

// releaseReads answers the pending reads whose round a quorum acknowledged
// and forgets rounds that can no longer start a lease.
//
// Pending reads all belong to rounds of this term, above termSeq; a quorum
// seq at or below termSeq (no round of this term acknowledged) releases none.
func (r *Raft) releaseReads() {
	ro := &r.read
	q := r.readQuorumSeq()
	n := 0
	for n < len(ro.pending) && ro.pending[n].round <= q {
		r.releaseRead(ro.pending[n])
		n++
	}
	if n > 0 {
		clear(ro.pending[:n])
		ro.pending = append(ro.pending[:0], ro.pending[n:]...)
	}
	r.trimReadRounds(q)
}

// trimReadRounds drops the rounds before the quorum-acknowledged round q
// (a later round can only start a later lease) and those sent LeaseTicks
// or more ticks ago (they start a lease that has already ended).
func (r *Raft) trimReadRounds(q uint64) {
	ro := &r.read
	n := 0
	for n < len(ro.rounds) {
		rd := ro.rounds[n]
		if rd.seq >= q && rd.tick+uint64(r.cfg.LeaseTicks) > ro.now {
			break
		}
		n++
	}
	if n > 0 {
		ro.rounds = append(ro.rounds[:0], ro.rounds[n:]...)
	}
}

// releaseRead answers one read: a ReadState for a local read, a
// MsgReadIndexResp for a forwarded one.
func (r *Raft) releaseRead(req readRequest) {
	if req.from == raftpb.None {
		r.read.states = append(r.read.states, ReadState{Index: req.index, RequestCtx: req.ctx})
		return
	}
	delete(r.read.forwarded, readKey{req.from, req.ctx})
	r.send(raftpb.Message{To: req.from, Type: raftpb.MsgReadIndexResp, Index: req.index, Context: req.ctx})
}

// readAcks presents the acknowledged rounds to the quorum maths; the leader
// has always acknowledged its own latest round.
type readAcks struct {
	acked map[uint64]uint64
	self  uint64
	seq   uint64
}

func (a readAcks) AckedIndex(id uint64) (quorum.Index, bool) {
	if id == a.self {
		return quorum.Index(a.seq), true
	}
	s, ok := a.acked[id]
	return quorum.Index(s), ok
}

// readQuorumSeq returns the latest round acknowledged by a quorum of the
// current configuration (by both halves of a joint one). It is computed from
// the acknowledgements each time rather than kept, so a configuration change
// takes effect at once.
func (r *Raft) readQuorumSeq() uint64 {
	q := r.trk.Voters.CommittedIndex(readAcks{acked: r.read.acked, self: r.id, seq: r.read.seq})
	if q == math.MaxUint64 {
		return 0 // no voters: nothing is ever confirmed
	}
	return uint64(q)
}

// leaseValid reports whether the leader may answer a lease read without a
// round: see ReadIndex for the argument and its clock assumption.
func (r *Raft) leaseValid() bool {
	ro := &r.read
	if r.cfg.DisableCheckQuorum || ro.leaseRevoked || r.leadTransferee != raftpb.None {
		return false
	}
	q := r.readQuorumSeq()
	for _, rd := range ro.rounds {
		if rd.seq == q {
			return ro.now < rd.tick+uint64(r.cfg.LeaseTicks)
		}
	}
	return false // the round was trimmed: its lease is over
}

// handleReadIndex serves a follower's or learner's forwarded read.
func (r *Raft) handleReadIndex(m raftpb.Message) {
	if _, dup := r.read.forwarded[readKey{m.From, m.Context}]; dup {
		return // a duplicate of a read already held
	}
	if err := r.leaderRead(readRequest{from: m.From, ctx: m.Context}); err != nil {
		r.logger.Debug("rejecting forwarded read", "from", m.From, "ctx", m.Context, "err", err)
		r.send(raftpb.Message{To: m.From, Type: raftpb.MsgReadIndexResp, Context: m.Context, Reject: true})
	}
}

// rejectReadIndex answers a forwarded read that reached a node that does
// not lead (any more) in the requester's term.
func (r *Raft) rejectReadIndex(m raftpb.Message) {
	r.send(raftpb.Message{To: m.From, Type: raftpb.MsgReadIndexResp, Context: m.Context, Reject: true})
}

// handleReadIndexResp turns the leader's answer to a forwarded read into a
// ReadState. A rejection is dropped: the runtime's timeout retries the read.
func (r *Raft) handleReadIndexResp(m raftpb.Message) {
	if m.Reject {
		r.logger.Debug("forwarded read rejected by the leader", "from", m.From, "ctx", m.Context)
		return
	}
	r.read.states = append(r.read.states, ReadState{Index: m.Index, RequestCtx: m.Context})
}

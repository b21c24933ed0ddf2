package core

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/raftkit/raftkit/internal/core/tracker"
	"github.com/raftkit/raftkit/raftpb"
)

var (
	// ErrProposalDropped is returned by Propose when the proposal cannot be
	// accepted here: this node is not the leader, a leadership transfer is in
	// progress, or the uncommitted log exceeds its byte budget. The caller
	// retries, at the leader Lead() names when it names one.
	ErrProposalDropped = errors.New("core: proposal dropped")
	// ErrUnknownPeer is returned when a message or request names a node that
	// is not a member of the configuration.
	ErrUnknownPeer = errors.New("core: unknown peer")
	// ErrInvalidMessage is returned by Step for a message that is malformed.
	ErrInvalidMessage = errors.New("core: invalid message")
	// ErrNotLeader is returned by leader-only operations on a non-leader.
	ErrNotLeader = errors.New("core: not leader")
)

// Raft is the deterministic state machine of one Raft group member. It does
// no IO, starts no goroutine, reads no clock and draws randomness only from
// Config.Rand: its output is a function of its inputs alone.
//
// Concurrency: a Raft is not safe for concurrent use. One goroutine (or a
// caller holding a lock) owns it and makes every call.
type Raft struct {
	id   uint64
	term uint64
	vote uint64
	role Role
	lead uint64

	log *raftLog
	trk *tracker.ProgressTracker

	msgs             []raftpb.Message
	msgsAfterPersist []raftpb.Message

	// electionElapsed counts ticks since the last election timeout reset (a
	// follower hearing its leader, a leader's check-quorum round).
	electionElapsed  int
	heartbeatElapsed int
	// randomizedElectionTimeout is drawn from [electionTick, 2*electionTick)
	// at every reset so that candidates rarely collide.
	randomizedElectionTimeout int

	// leadTransferee is the peer leadership is being handed to, or None.
	leadTransferee uint64
	// uncommittedSize is the payload a leader has appended beyond its commit
	// index in this term.
	uncommittedSize uint64

	// durableTerm and durableVote are the term and vote the runtime last
	// reported durable; a message sent while they lag r.term or r.vote waits
	// for persistence.
	durableTerm, durableVote uint64
	// prevHardState and prevSoftState are what the last Ready handed out.
	prevHardState raftpb.HardState
	prevSoftState SoftState

	// leaseKept makes a node that no longer knows a leader keep refusing
	// votes as if it did, until electionElapsed reaches the election
	// timeout: set when it forgets a leader it heard within the timeout
	// (a forced campaign, a higher term learned from a response), and on
	// a restart, which may have forgotten one. The leader's lease reads
	// rely on it (readindex.go).
	leaseKept bool
	// read is the read-index and lease bookkeeping (readindex.go).
	read readOnly
	// conf follows the configuration entries of the log (membership.go).
	conf membership

	cfg    Config
	logger *slog.Logger
}

// New builds a core from the durable state in cfg.Storage. The node starts as
// a follower (or learner) with no known leader.
func New(cfg Config) (*Raft, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	hs, cs, err := cfg.Storage.InitialState()
	if err != nil {
		return nil, fmt.Errorf("core: reading initial state: %w", err)
	}
	log, err := newRaftLog(cfg.Storage, cfg.MaxApplyBytes)
	if err != nil {
		return nil, err
	}
	log.maxApplyingBytes = cfg.MaxApplyingBytes
	r := &Raft{
		id:     cfg.ID,
		log:    log,
		trk:    tracker.NewProgressTracker(cfg.MaxInflightMsgs, cfg.MaxInflightBytes),
		cfg:    cfg,
		logger: cfg.Logger.With("node", cfg.ID),
	}
	if err := r.initConf(cs, hs.Commit); err != nil {
		return nil, err
	}
	log.onAppend = r.onLogAppend
	if !hs.IsEmpty() {
		if hs.Commit < log.committed || hs.Commit > log.lastIndex() {
			return nil, fmt.Errorf("core: hard state commit %d outside log [%d, %d]",
				hs.Commit, log.committed, log.lastIndex())
		}
		log.commitTo(hs.Commit)
		r.term, r.vote = hs.Term, hs.Vote
	}
	if cfg.Applied > 0 {
		if cfg.Applied > log.committed {
			return nil, fmt.Errorf("core: applied %d beyond committed %d", cfg.Applied, log.committed)
		}
		log.appliedTo(cfg.Applied)
	}
	r.durableTerm, r.durableVote = r.term, r.vote
	r.prevHardState = r.hardState()
	r.becomeFollower(r.term, 0)
	// This node may have acknowledged a leader's heartbeat just before it
	// stopped, and that leader may be serving lease reads on the strength
	// of it: honour the lease as if the leader had just been heard.
	r.leaseKept = hs.Term > 0 && !cfg.DisableCheckQuorum
	r.prevSoftState = r.softState()
	r.logger.Info("raft core started", "term", r.term, "commit", log.committed,
		"applied", log.applied, "last", log.lastIndex(), "conf", r.trk.Voters.String())
	return r, nil
}

func (r *Raft) hardState() raftpb.HardState {
	return raftpb.HardState{Term: r.term, Vote: r.vote, Commit: r.log.committed}
}

func (r *Raft) softState() SoftState { return SoftState{Lead: r.lead, Role: r.role} }

// send queues m, stamping it with this node and term. Messages that promise
// something about durable state — a vote, a vote request, an acknowledgement
// of appended entries — or that are sent under a term or vote not yet durable
// wait for the Ready that persists it. This is where "term and vote are
// durable before any vote or request leaves the node" is enforced, so no
// runtime can get it wrong.
func (r *Raft) send(m raftpb.Message) {
	m.From = r.id
	if m.Term == 0 {
		m.Term = r.term
	}
	switch {
	case m.Type == raftpb.MsgVote, m.Type == raftpb.MsgVoteResp, m.Type == raftpb.MsgAppResp,
		r.term != r.durableTerm, r.vote != r.durableVote:
		if n := len(r.msgsAfterPersist); n > 0 && supersedes(m, r.msgsAfterPersist[n-1]) {
			r.msgsAfterPersist[n-1] = m
			return
		}
		r.msgsAfterPersist = append(r.msgsAfterPersist, m)
	default:
		r.msgs = append(r.msgs, m)
	}
}

// supersedes reports whether acknowledgement m makes prev, queued just
// before it, redundant: both accept appends from the same leader in the
// same term and m acknowledges at least as much. Acknowledgements are
// cumulative, so under load — a follower stepping dozens of single-entry
// appends per Ready — the leader gets one message instead of dozens.
// Rejections are never merged: each carries its own hint.
func supersedes(m, prev raftpb.Message) bool {
	return m.Type == raftpb.MsgAppResp && prev.Type == raftpb.MsgAppResp && !m.Reject && !prev.Reject &&
		m.To == prev.To && m.Term == prev.Term && m.Index >= prev.Index
}

// HasReady reports whether Ready would return anything.
//
// Concurrency: owner goroutine only, like every Raft method.
func (r *Raft) HasReady() bool {
	if r.softState() != r.prevSoftState || r.hardState() != r.prevHardState ||
		r.conf.version != r.conf.readyVersion {
		return true
	}
	if len(r.msgs) > 0 || len(r.msgsAfterPersist) > 0 || len(r.read.states) > 0 {
		return true
	}
	if r.log.unstable.nextSnapshot() != nil || len(r.log.unstable.nextEntries()) > 0 {
		return true
	}
	return r.log.hasNextCommittedEnts()
}

// Ready takes the pending work for the runtime; see Ready for the protocol.
// What it returns is handed out once: the next Ready holds only newer work.
func (r *Raft) Ready() Ready {
	var rd Ready
	if ss := r.softState(); ss != r.prevSoftState {
		rd.SoftState = &ss
		r.prevSoftState = ss
	}
	if hs := r.hardState(); hs != r.prevHardState {
		rd.HardState = hs
		r.prevHardState = hs
	}
	if r.conf.version != r.conf.readyVersion {
		cs := r.trk.ConfState()
		rd.ConfState = &cs
		r.conf.readyVersion = r.conf.version
	}
	rd.logEpoch = r.log.unstable.epoch
	rd.Snapshot = r.log.unstable.nextSnapshot()
	rd.Entries = r.log.unstable.nextEntries()
	r.log.unstable.acceptInProgress()
	if ents := r.log.nextCommittedEnts(); len(ents) > 0 {
		rd.CommittedEntries = ents
		r.log.applying = ents[len(ents)-1].Index
		if r.role == RoleLeader {
			r.reduceUncommittedSize(ents)
		}
	}
	rd.Messages, r.msgs = r.msgs, nil
	rd.MessagesAfterPersist, r.msgsAfterPersist = r.msgsAfterPersist, nil
	rd.ReadStates, r.read.states = r.read.states, nil
	return rd
}

// Advance reports that rd's Snapshot, Entries and HardState are durable and
// its MessagesAfterPersist have been sent. Readys must be advanced in the
// order they were taken. On the leader this is where its own log counts
// towards the commit quorum.
func (r *Raft) Advance(rd Ready) {
	if !rd.HardState.IsEmpty() {
		r.durableTerm, r.durableVote = rd.HardState.Term, rd.HardState.Vote
	}
	if rd.Snapshot != nil {
		r.log.unstable.stableSnapTo(rd.Snapshot.Index)
	}
	if n := len(rd.Entries); n > 0 {
		last := rd.Entries[n-1]
		r.log.unstable.stableTo(last.Index, last.Term, rd.logEpoch)
	}
	if self := r.trk.Progress[r.id]; r.role == RoleLeader && self != nil {
		if self.MaybeUpdate(r.log.durableIndex()) && r.maybeCommit() {
			r.bcastAppend()
			r.onCommitAdvanced()
		}
	}
}

// AppliedTo reports that the state machine has applied every entry up to
// index. index must not exceed the commit index.
func (r *Raft) AppliedTo(index uint64) { r.log.appliedTo(index) }

// Lead returns the leader this node knows of, or 0.
func (r *Raft) Lead() uint64 { return r.lead }

// Role returns this node's current role.
func (r *Raft) Role() Role { return r.role }

// Term returns the current term.
func (r *Raft) Term() uint64 { return r.term }

// Committed is the commit index this node knows of.
func (r *Raft) Committed() uint64 { return r.log.committed }

// Status returns a copy of the node's state for introspection.
func (r *Raft) Status() Status {
	s := Status{
		ID:        r.id,
		Role:      r.role,
		Lead:      r.lead,
		HardState: r.hardState(),
		Applied:   r.log.applied,
		LastIndex: r.log.lastIndex(),
		Config:    r.trk.ConfState(),
	}
	if r.role != RoleLeader {
		return s
	}
	for _, id := range r.trk.IDs() {
		pr := r.trk.Progress[id]
		s.Progress = append(s.Progress, FollowerStatus{
			ID: id, Match: pr.Match, Next: pr.Next, State: pr.State.String(),
			Inflight: pr.Inflights.Count(), InflightSize: pr.Inflights.Bytes(),
			RecentActive: pr.RecentActive, IsLearner: pr.IsLearner,
		})
	}
	return s
}

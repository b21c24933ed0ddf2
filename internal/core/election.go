package core

import (
	"github.com/raftkit/raftkit/internal/core/quorum"
	"github.com/raftkit/raftkit/raftpb"
)

// Tick advances the core's logical clock by one tick. The runtime calls it
// at a fixed interval; ElectionTick and HeartbeatTick are counted in ticks.
func (r *Raft) Tick() {
	r.read.now++
	switch r.role {
	case RoleLeader:
		r.tickLeader()
	case RoleLearner:
		// Learners never campaign but keep time for their leader lease.
		r.electionElapsed++
	default:
		r.tickElection()
	}
}

func (r *Raft) tickElection() {
	r.electionElapsed++
	if r.promotable() && r.electionElapsed >= r.randomizedElectionTimeout {
		// startElection restarts the timer; it must see the elapsed time
		// to tell that the leader lease has run out (carryLease).
		r.startElection(false)
	}
}

// promotable reports whether this node may become leader: it must be a voter
// of the configuration it knows, or still be needed as one until the
// configuration entries that removed it commit (membership.go).
func (r *Raft) promotable() bool { return r.trk.IsVoter(r.id) || r.removalUncommitted() }

// Campaign starts an election now (with pre-vote unless disabled), as if the
// election timeout had elapsed. It fails on a node that cannot be leader.
func (r *Raft) Campaign() error {
	if !r.promotable() {
		return ErrUnknownPeer
	}
	if r.role != RoleLeader {
		r.startElection(false)
	}
	return nil
}

func (r *Raft) resetRandomizedElectionTimeout() {
	r.randomizedElectionTimeout = r.cfg.ElectionTick + r.cfg.Rand.IntN(r.cfg.ElectionTick)
}

// reset prepares the node for a role in term: the vote is kept only within
// the same term, timers restart and leader-only state is cleared.
func (r *Raft) reset(term uint64) {
	r.carryLease()
	r.read.resetTerm()
	if r.term != term {
		r.term = term
		r.vote = raftpb.None
	}
	r.lead = raftpb.None
	r.electionElapsed = 0
	r.heartbeatElapsed = 0
	r.resetRandomizedElectionTimeout()
	r.leadTransferee = raftpb.None
	r.uncommittedSize = 0
	r.trk.ResetVotes()
	r.dropRetained()
}

func (r *Raft) becomeFollower(term, lead uint64) {
	r.reset(term)
	r.lead = lead
	r.role = RoleFollower
	if _, learner := r.trk.Learners[r.id]; learner {
		r.role = RoleLearner
	}
}

func (r *Raft) becomePreCandidate() {
	// The term does not change, so a failed pre-vote leaves no trace on the
	// group; only the election timer and the votes restart.
	r.carryLease()
	r.trk.ResetVotes()
	r.lead = raftpb.None
	r.electionElapsed = 0
	r.resetRandomizedElectionTimeout()
	r.role = RolePreCandidate
	r.logger.Info("starting pre-vote", "term", r.term)
}

func (r *Raft) becomeCandidate() {
	r.reset(r.term + 1)
	r.vote = r.id
	r.role = RoleCandidate
	r.logger.Info("starting election", "term", r.term)
}

// startElection runs pre-vote (unless disabled or transferring) or a real
// election. A single-voter group wins at once.
func (r *Raft) startElection(transfer bool) {
	if !r.cfg.DisablePreVote && !transfer {
		r.becomePreCandidate()
		r.requestVotes(raftpb.MsgPreVote, r.term+1, false)
		return
	}
	r.becomeCandidate()
	r.requestVotes(raftpb.MsgVote, r.term, transfer)
}

func (r *Raft) requestVotes(t raftpb.MessageType, term uint64, transfer bool) {
	r.trk.RecordVote(r.id, true)
	if _, _, res := r.trk.TallyVotes(); res == quorum.VoteWon {
		r.electionWon()
		return
	}
	last, lastTerm := r.log.lastIndex(), r.log.lastTerm()
	for _, id := range r.trk.IDs() {
		if id == r.id || !r.trk.IsVoter(id) {
			continue
		}
		r.send(raftpb.Message{To: id, Type: t, Term: term, Index: last, LogTerm: lastTerm, Transfer: transfer})
	}
}

func (r *Raft) electionWon() {
	if r.role == RolePreCandidate {
		r.becomeCandidate()
		r.requestVotes(raftpb.MsgVote, r.term, false)
		return
	}
	r.becomeLeader()
}

// handleVoteRequest answers MsgVote and MsgPreVote in every role. A vote is
// granted to a candidate whose log is at least as up to date as ours, if we
// have not voted for someone else in this term; a pre-vote, to a candidate
// that would win such a vote in the next term. Term checks ran in Step.
func (r *Raft) handleVoteRequest(m raftpb.Message) {
	canVote := r.vote == m.From ||
		(r.vote == raftpb.None && r.lead == raftpb.None && (m.Transfer || !r.inLeaderLease(m.Type))) ||
		(m.Type == raftpb.MsgPreVote && m.Term > r.term)
	resp := raftpb.Message{To: m.From, Type: raftpb.MsgVoteResp}
	if m.Type == raftpb.MsgPreVote {
		resp.Type = raftpb.MsgPreVoteResp
	}
	if canVote && r.log.isUpToDate(m.Index, m.LogTerm) {
		// Answer a pre-vote in the term asked about so the pre-candidate
		// counts it rather than discarding it as stale.
		resp.Term = m.Term
		if m.Type == raftpb.MsgVote {
			r.electionElapsed = 0
			r.leaseKept = false // voting ends any lease this node honoured
			r.vote = m.From
		}
	} else {
		resp.Reject = true
	}
	// Elections are rare and are what operators ask about first, so every
	// answer is logged.
	r.logger.Info("answering "+m.Type.String(), "candidate", m.From, "candidate_term", m.Term,
		"granted", !resp.Reject, "term", r.term, "voted_for", r.vote)
	r.send(resp)
}

func (r *Raft) handleVoteResponse(m raftpb.Message) {
	r.trk.RecordVote(m.From, !m.Reject)
	switch _, _, res := r.trk.TallyVotes(); res {
	case quorum.VoteWon:
		r.electionWon()
	case quorum.VoteLost:
		r.becomeFollower(r.term, raftpb.None)
	}
}

// handleTimeoutNow starts an election at once because the leader is handing
// over leadership; pre-vote and leases are skipped since the leader asked.
func (r *Raft) handleTimeoutNow(m raftpb.Message) {
	if r.promotable() {
		r.logger.Info("leadership transfer: campaigning at leader's request", "from", m.From, "term", r.term)
		r.startElection(true)
	}
}

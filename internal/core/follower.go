package core

import (
	"github.com/raftkit/raftkit/raftpb"
)

// heardFromLeader records contact with the leader of the current term, which
// restarts the election timer and renews the leader lease.
func (r *Raft) heardFromLeader(from uint64) {
	r.electionElapsed = 0
	if r.role == RolePreCandidate || r.role == RoleCandidate {
		// A leader of our term exists; stop campaigning.
		r.becomeFollower(r.term, from)
	}
	r.lead = from
}

// handleAppendEntries appends the leader's entries if the log holds the
// entry before them, and answers with the last index the message vouches for
// (sent once durable), or with a rejection carrying a conflict hint: the term
// of our entry at the probed index and the first index of that term, so the
// leader can skip a whole term per round trip instead of one index.
func (r *Raft) handleAppendEntries(m raftpb.Message) {
	r.heardFromLeader(m.From)
	if m.Index < r.log.committed {
		// Everything up to committed already matches the leader.
		r.send(raftpb.Message{To: m.From, Type: raftpb.MsgAppResp, Index: r.log.committed})
		return
	}
	if last, ok := r.log.maybeAppend(m.Index, m.LogTerm, m.Commit, m.Entries); ok {
		r.send(raftpb.Message{To: m.From, Type: raftpb.MsgAppResp, Index: last})
		return
	}
	resp := raftpb.Message{To: m.From, Type: raftpb.MsgAppResp, Index: m.Index, Reject: true}
	if last := r.log.lastIndex(); m.Index > last {
		resp.RejectHint = last + 1 // LogTerm 0: our log is too short
	} else {
		t := r.log.termOrZero(m.Index)
		resp.LogTerm = t
		resp.RejectHint = r.log.firstIndexOfTerm(max(r.log.committed+1, r.log.firstIndex()), m.Index, t)
	}
	r.send(resp)
}

func (r *Raft) handleHeartbeat(m raftpb.Message) {
	r.heardFromLeader(m.From)
	// The leader caps Commit at what it knows we hold, so this is safe.
	r.log.commitTo(min(m.Commit, r.log.lastIndex()))
	// Echo the round so the leader can count this towards its reads.
	r.send(raftpb.Message{To: m.From, Type: raftpb.MsgHeartbeatResp, Context: m.Context})
}

// handleSnapshot installs a snapshot that covers entries this log lacks and
// acknowledges the new last index once the snapshot is durable.
func (r *Raft) handleSnapshot(m raftpb.Message) {
	r.heardFromLeader(m.From)
	s := *m.Snapshot
	if r.restore(s) {
		r.logger.Info("installing snapshot", "index", s.Index, "term", s.Term, "from", m.From)
		r.send(raftpb.Message{To: m.From, Type: raftpb.MsgAppResp, Index: r.log.lastIndex()})
		return
	}
	r.send(raftpb.Message{To: m.From, Type: raftpb.MsgAppResp, Index: r.log.committed})
}

// restore replaces the log with snapshot s unless s adds nothing: when it is
// not beyond the commit index, or when the log already holds its last entry
// (then the snapshot just proves those entries committed).
func (r *Raft) restore(s raftpb.SnapshotMeta) bool {
	if s.Index <= r.log.committed {
		return false
	}
	if r.log.matchTerm(s.Index, s.Term) {
		r.log.commitTo(s.Index)
		return false
	}
	if err := r.restoreConf(s.ConfState, s.Index); err != nil {
		r.logger.Error("rejecting snapshot with invalid configuration", "err", err)
		return false
	}
	r.log.restore(s)
	if _, learner := r.trk.Learners[r.id]; learner {
		r.role = RoleLearner
	} else if r.role == RoleLearner {
		r.role = RoleFollower
	}
	return true
}

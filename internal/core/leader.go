package core

import (
	"errors"
	"fmt"

	"github.com/raftkit/raftkit/internal/core/tracker"
	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

func (r *Raft) becomeLeader() {
	r.reset(r.term)
	r.lead = r.id
	r.role = RoleLeader
	last := r.log.lastIndex()
	for _, id := range r.trk.IDs() {
		pr := r.trk.Progress[id]
		*pr = *tracker.NewProgress(last, r.cfg.MaxInflightMsgs, r.cfg.MaxInflightBytes, pr.IsLearner)
		// Reachable until the first check-quorum round says otherwise.
		pr.RecentActive = true
	}
	// A leader its latest configuration removed has no Progress: it counts
	// in no quorum (membership.go).
	if self := r.trk.Progress[r.id]; self != nil {
		self.BecomeReplicate()
		self.MaybeUpdate(r.log.durableIndex())
	}
	r.logger.Info("became leader", "term", r.term, "last", last)
	// An entry of the new term lets entries of earlier terms commit (Raft
	// §5.4.2): a leader never commits an older entry by counting replicas.
	r.appendEntries([]raftpb.Entry{r.firstEntryOfTerm()})
	r.read.startLeading(r.log.lastIndex())
}

func (r *Raft) tickLeader() {
	r.heartbeatElapsed++
	r.electionElapsed++
	if r.electionElapsed >= r.cfg.ElectionTick {
		r.electionElapsed = 0
		r.maybeDropRetained()
		if !r.cfg.DisableCheckQuorum {
			if !r.trk.QuorumActive() {
				r.logger.Warn("stepping down: no quorum heard within election timeout", "term", r.term)
				r.becomeFollower(r.term, raftpb.None)
				return
			}
			for _, id := range r.trk.IDs() {
				if id != r.id {
					r.trk.Progress[id].RecentActive = false
				}
			}
		}
		if r.leadTransferee != raftpb.None {
			r.logger.Info("leadership transfer timed out", "to", r.leadTransferee, "term", r.term)
			r.leadTransferee = raftpb.None
			// A MsgTimeoutNow may still be in flight; the election it
			// starts ignores leases (readindex.go).
			r.read.leaseRevoked = true
		}
	}
	if r.heartbeatElapsed >= r.cfg.HeartbeatTick {
		r.heartbeatElapsed = 0
		r.bcastHeartbeat()
	}
}

// Propose appends entries carrying data to the leader's log and starts
// replicating them. It returns the index of the first new entry and the term
// they were appended in; the entries are committed once the commit index
// reaches them in that term.
func (r *Raft) Propose(data ...[]byte) (first, term uint64, err error) {
	if r.role != RoleLeader {
		return 0, 0, fmt.Errorf("%w: not leader (leader is %d)", ErrProposalDropped, r.lead)
	}
	if r.leadTransferee != raftpb.None {
		return 0, 0, fmt.Errorf("%w: leadership transfer to %d in progress", ErrProposalDropped, r.leadTransferee)
	}
	if r.log.lastIndex()+uint64(len(data)) >= MaxIndex {
		return 0, 0, fmt.Errorf("%w: log index would exceed %d", ErrProposalDropped, uint64(MaxIndex))
	}
	ents := make([]raftpb.Entry, len(data))
	var size uint64
	for i, d := range data {
		ents[i] = raftpb.Entry{Type: raftpb.EntryNormal, Data: d}
		size += ents[i].Size()
	}
	if limit := r.cfg.MaxUncommittedBytes; limit > 0 && r.uncommittedSize > 0 && r.uncommittedSize+size > limit {
		return 0, 0, fmt.Errorf("%w: uncommitted log exceeds %d bytes", ErrProposalDropped, limit)
	}
	first = r.log.lastIndex() + 1
	r.appendEntries(ents)
	return first, r.term, nil
}

// appendEntries stamps ents with this term and the next indexes, appends them
// to the unstable log and sends them. The leader's own acknowledgement comes
// later, from Advance, once the entries are durable.
func (r *Raft) appendEntries(ents []raftpb.Entry) {
	last := r.log.lastIndex()
	for i := range ents {
		ents[i].Term = r.term
		ents[i].Index = last + 1 + uint64(i)
		r.uncommittedSize += ents[i].Size()
	}
	r.log.append(ents)
	r.bcastAppend()
}

func (r *Raft) reduceUncommittedSize(ents []raftpb.Entry) {
	r.uncommittedSize -= min(r.uncommittedSize, raftpb.EntriesSize(ents))
}

// bcastAppend sends pending entries to every peer that can take them, and an
// empty append to those with nothing new that have not yet been told the
// current commit index.
func (r *Raft) bcastAppend() {
	for _, id := range r.trk.IDs() {
		if id != r.id {
			r.sendAppend(id, r.trk.Progress[id].SentCommit < r.log.committed)
		}
	}
}

// sendAppend sends to one peer as many AppendEntries as its state allows: a
// single probe in StateProbe, up to the Inflights window in StateReplicate.
// With sendIfEmpty an empty append goes even when no entry is pending, so the
// peer learns the commit index.
func (r *Raft) sendAppend(to uint64, sendIfEmpty bool) {
	pr := r.trk.Progress[to]
	for !pr.IsPaused() {
		if !r.sendOneAppend(to, pr, sendIfEmpty) {
			return
		}
		sendIfEmpty = false
		if pr.State != tracker.StateReplicate {
			return
		}
	}
}

// sendOneAppend sends one AppendEntries (or the snapshot, if the entries are
// compacted) and reports whether it sent anything.
func (r *Raft) sendOneAppend(to uint64, pr *tracker.Progress, sendIfEmpty bool) bool {
	prevIndex := pr.Next - 1
	prevTerm, errTerm := r.log.term(prevIndex)
	var ents []raftpb.Entry
	var errEnts error
	if last := r.log.lastIndex(); pr.Next <= last {
		hi := min(last+1, pr.Next+uint64(r.cfg.MaxBatchEntries))
		ents, errEnts = r.log.slice(pr.Next, hi, r.cfg.MaxBatchBytes)
	}
	if errTerm != nil || errEnts != nil {
		return r.sendSnapshot(to, pr)
	}
	if len(ents) == 0 && !sendIfEmpty {
		return false
	}
	r.send(raftpb.Message{
		To: to, Type: raftpb.MsgApp, Index: prevIndex, LogTerm: prevTerm,
		Entries: ents, Commit: r.log.committed,
	})
	pr.SentEntries(prevIndex+uint64(len(ents)), raftpb.EntriesSize(ents), len(ents))
	pr.SentCommit = max(pr.SentCommit, r.log.committed)
	return true
}

// sendSnapshot sends the latest snapshot to a peer that needs compacted
// entries. It reports false when no snapshot is available yet; the next
// heartbeat round retries.
func (r *Raft) sendSnapshot(to uint64, pr *tracker.Progress) bool {
	if !pr.RecentActive {
		return false // no point streaming a snapshot into a dead link
	}
	if r.log.unstable.snapshot != nil {
		// This node's own snapshot is not durable yet; storage would offer an
		// older one. Retry once it is persisted.
		return false
	}
	meta, err := r.log.storage.Snapshot()
	if errors.Is(err, storage.ErrSnapshotTemporarilyUnavailable) {
		return false
	}
	mustStorage(err)
	if meta.IsEmpty() || meta.Index < pr.Next-1 {
		r.logger.Error("peer needs compacted entries but storage has no snapshot covering them",
			"to", to, "next", pr.Next, "snapshot", meta.Index)
		return false
	}
	pr.BecomeSnapshot(meta.Index)
	r.logger.Info("sending snapshot", "to", to, "index", meta.Index, "term", meta.Term)
	r.send(raftpb.Message{To: to, Type: raftpb.MsgSnap, Snapshot: &meta})
	return true
}

// bcastHeartbeat sends a heartbeat round. Every round carries a new
// sequence in Context, which followers echo, so that the acknowledgements
// confirm the reads waiting for it and renew the lease (readindex.go).
func (r *Raft) bcastHeartbeat() {
	seq := r.startReadRound()
	for _, id := range r.trk.IDs() {
		if id == r.id {
			continue
		}
		// Only what the peer is known to hold may be committed there.
		pr := r.trk.Progress[id]
		commit := min(pr.Match, r.log.committed)
		pr.SentCommit = max(pr.SentCommit, commit)
		r.send(raftpb.Message{To: id, Type: raftpb.MsgHeartbeat, Commit: commit, Context: seq})
	}
}

// maybeCommit advances the commit index to what a quorum holds durably,
// provided that entry is of the current term. It reports whether it moved.
func (r *Raft) maybeCommit() bool {
	c := r.trk.Committed()
	if c <= r.log.committed || r.log.termOrZero(c) != r.term {
		return false
	}
	r.log.commitTo(c)
	r.releaseDeferredReads()
	return true
}

func (r *Raft) handleAppendResponse(m raftpb.Message) {
	pr := r.trk.Progress[m.From]
	if pr == nil {
		return
	}
	pr.RecentActive = true
	if m.Reject {
		wasReplicating := pr.State == tracker.StateReplicate
		if pr.MaybeDecrTo(m.Index, min(r.nextIndexFromHint(&m), r.log.lastIndex()+1)) {
			if wasReplicating {
				r.logger.Info("follower's log differs: probing for the last match", "to", m.From,
					"rejected", m.Index, "next", pr.Next, "term", r.term)
			}
			r.sendAppend(m.From, false)
		}
		return
	}
	wasPaused := pr.IsPaused()
	if !pr.MaybeUpdate(m.Index) {
		if wasPaused && !pr.IsPaused() {
			r.sendAppend(m.From, false)
		}
		return
	}
	switch pr.State {
	case tracker.StateProbe:
		pr.BecomeReplicate()
		r.logger.Info("follower matches: replicating in a pipeline", "to", m.From, "match", pr.Match, "term", r.term)
	case tracker.StateSnapshot:
		if pr.Match >= pr.PendingSnapshot {
			pr.BecomeProbe()
			pr.BecomeReplicate()
			r.logger.Info("follower installed the snapshot: replicating in a pipeline", "to", m.From,
				"match", pr.Match, "term", r.term)
		}
	case tracker.StateReplicate:
		pr.Inflights.FreeLE(m.Index)
	}
	if r.maybeCommit() {
		r.bcastAppend()
		r.onCommitAdvanced()
	} else {
		r.sendAppend(m.From, pr.SentCommit < r.log.committed)
	}
	if m.From == r.leadTransferee && pr.Match == r.log.lastIndex() {
		r.sendTimeoutNow(m.From)
	}
}

// nextIndexFromHint turns a follower's conflict hint into the next index to
// probe. The follower reports the term of its entry at the rejected index and
// the first index of that term. If this log has entries of that term, both
// logs agree up to the last of them (entries of one term come from one leader
// and start at the same index everywhere), so probing resumes right after it;
// otherwise no entry of that term can match and the whole term is skipped.
func (r *Raft) nextIndexFromHint(m *raftpb.Message) uint64 {
	if m.LogTerm == 0 {
		return m.RejectHint // the follower's log ends before the probe
	}
	idx, term, ok := r.log.lastIndexAtOrBelowTerm(m.Index, m.LogTerm)
	if ok && term == m.LogTerm {
		return idx + 1
	}
	return m.RejectHint
}

func (r *Raft) handleHeartbeatResponse(m raftpb.Message) {
	pr := r.trk.Progress[m.From]
	if pr == nil {
		return
	}
	pr.RecentActive = true
	pr.ProbeSent = false
	r.onHeartbeatAck(m.From, m.Context)
	if pr.State == tracker.StateReplicate && pr.Inflights.Full() {
		pr.Inflights.FreeFirstOne()
	}
	// A lagging peer gets an append even if nothing new is pending: in a
	// pipeline whose messages were lost, Next is already past the last index,
	// and only an (empty) append at Next-1 makes the peer reveal the gap by
	// rejecting it, after which the peer probes and is repaired.
	if pr.Match < r.log.lastIndex() {
		r.sendAppend(m.From, true)
	}
}

// ReportUnreachable tells the leader that a message to id could not be
// delivered; a pipeline to it is assumed broken and falls back to probing.
func (r *Raft) ReportUnreachable(id uint64) {
	if pr := r.trk.Progress[id]; r.role == RoleLeader && pr != nil && pr.State == tracker.StateReplicate {
		pr.BecomeProbe()
	}
}

// handleSnapStatus is a follower's report that it failed to install the
// snapshot it was sent.
func (r *Raft) handleSnapStatus(m raftpb.Message) {
	if m.Reject {
		r.ReportSnapshot(m.From, false)
	}
}

// ReportSnapshot tells the leader how sending a snapshot to id ended. On
// failure the peer probes again after the next heartbeat.
func (r *Raft) ReportSnapshot(id uint64, ok bool) {
	pr := r.trk.Progress[id]
	if r.role != RoleLeader || pr == nil || pr.State != tracker.StateSnapshot {
		return
	}
	if !ok {
		pr.PendingSnapshot = 0
	}
	pr.BecomeProbe()
	// Wait for the follower's answer (or a heartbeat) before probing.
	pr.ProbeSent = true
}

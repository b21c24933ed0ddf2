package core

import (
	"fmt"

	"github.com/raftkit/raftkit/raftpb"
)

// stepFunc handles one message type in one role. Handlers run after the term
// checks in Step, so m.Term == r.term except where a handler says otherwise.
type stepFunc func(r *Raft, m raftpb.Message)

// handlers is the dispatch table handlers[role][type]. A nil entry means the
// role ignores that message. The table is built once and never modified.
var handlers = buildHandlers()

func buildHandlers() (t [numRoles][raftpb.NumMessageTypes]stepFunc) {
	// Every role answers vote requests by the same rules.
	for role := range numRoles {
		t[role][raftpb.MsgPreVote] = (*Raft).handleVoteRequest
		t[role][raftpb.MsgVote] = (*Raft).handleVoteRequest
	}
	for _, role := range []Role{RoleFollower, RoleLearner, RolePreCandidate, RoleCandidate} {
		t[role][raftpb.MsgApp] = (*Raft).handleAppendEntries
		t[role][raftpb.MsgHeartbeat] = (*Raft).handleHeartbeat
		t[role][raftpb.MsgSnap] = (*Raft).handleSnapshot
	}
	t[RoleFollower][raftpb.MsgTimeoutNow] = (*Raft).handleTimeoutNow
	t[RolePreCandidate][raftpb.MsgPreVoteResp] = (*Raft).handleVoteResponse
	t[RoleCandidate][raftpb.MsgVoteResp] = (*Raft).handleVoteResponse
	t[RoleLeader][raftpb.MsgAppResp] = (*Raft).handleAppendResponse
	t[RoleLeader][raftpb.MsgHeartbeatResp] = (*Raft).handleHeartbeatResponse
	t[RoleLeader][raftpb.MsgSnapStatus] = (*Raft).handleSnapStatus
	t[RoleLeader][raftpb.MsgReadIndex] = (*Raft).handleReadIndex
	for _, role := range []Role{RoleFollower, RoleLearner, RolePreCandidate, RoleCandidate} {
		t[role][raftpb.MsgReadIndex] = (*Raft).rejectReadIndex
		t[role][raftpb.MsgReadIndexResp] = (*Raft).handleReadIndexResp
	}
	return t
}

// Step feeds a message from a peer into the core. Errors report a message
// that could not be considered at all (malformed, from an unknown sender);
// stale or irrelevant messages are dropped silently, as the protocol expects
// of a network that reorders and duplicates.
func (r *Raft) Step(m raftpb.Message) error {
	if err := r.validate(&m); err != nil {
		return err
	}
	if !r.stepTerm(&m) {
		return nil
	}
	if h := handlers[r.role][m.Type]; h != nil {
		h(r, m)
	}
	return nil
}

// MaxIndex bounds every term and log index the core accepts. Nothing honest
// comes near it (2^62 entries at a billion a second last 146 years), and the
// margin keeps index arithmetic (Index+len(Entries), term+1) from wrapping
// when a peer sends garbage.
const MaxIndex = 1 << 62

func (r *Raft) validate(m *raftpb.Message) error {
	switch {
	case m.Term >= MaxIndex || m.Index >= MaxIndex || m.LogTerm >= MaxIndex ||
		m.Commit >= MaxIndex || m.RejectHint >= MaxIndex || uint64(len(m.Entries)) >= MaxIndex-m.Index:
		return fmt.Errorf("%w: %s term or index out of range", ErrInvalidMessage, m.Type)
	case m.Snapshot != nil && (m.Snapshot.Index >= MaxIndex || m.Snapshot.Term >= MaxIndex):
		return fmt.Errorf("%w: %s snapshot index out of range", ErrInvalidMessage, m.Type)
	case m.Type >= raftpb.NumMessageTypes:
		return fmt.Errorf("%w: type %d", ErrInvalidMessage, m.Type)
	case m.Term == 0:
		return fmt.Errorf("%w: %s without a term", ErrInvalidMessage, m.Type)
	case m.From == raftpb.None || m.From == r.id:
		return fmt.Errorf("%w: %s from %d", ErrInvalidMessage, m.Type, m.From)
	case m.To != r.id:
		return fmt.Errorf("%w: %s addressed to %d, this is %d", ErrInvalidMessage, m.Type, m.To, r.id)
	case m.Type == raftpb.MsgSnap && m.Snapshot == nil:
		return fmt.Errorf("%w: MsgSnap without snapshot", ErrInvalidMessage)
	}
	for i := range m.Entries {
		if m.Entries[i].Index != m.Index+uint64(i)+1 {
			return fmt.Errorf("%w: %s entry %d has index %d, want %d", ErrInvalidMessage,
				m.Type, i, m.Entries[i].Index, m.Index+uint64(i)+1)
		}
		if m.Entries[i].Term > m.Term || m.Entries[i].Term == 0 {
			return fmt.Errorf("%w: %s entry %d has term %d in a term-%d message", ErrInvalidMessage,
				m.Type, m.Entries[i].Index, m.Entries[i].Term, m.Term)
		}
	}
	// A leader's own log bounds what any follower of its term can have
	// acknowledged or been probed at; anything beyond is not an honest answer
	// and would send Next past the log.
	if r.role == RoleLeader && m.Type == raftpb.MsgAppResp && m.Term == r.term && m.Index > r.log.lastIndex() {
		return fmt.Errorf("%w: %s at index %d beyond the leader's last index %d", ErrInvalidMessage,
			m.Type, m.Index, r.log.lastIndex())
	}
	return nil
}

// stepTerm applies the rules every role shares about the message's term and
// reports whether the message should go on to the role's handler.
func (r *Raft) stepTerm(m *raftpb.Message) bool {
	switch {
	case m.Term > r.term:
		return r.stepHigherTerm(m)
	case m.Term < r.term:
		r.stepLowerTerm(m)
		return false
	}
	return true
}

func (r *Raft) stepHigherTerm(m *raftpb.Message) bool {
	isVoteRequest := m.Type == raftpb.MsgVote || m.Type == raftpb.MsgPreVote
	if isVoteRequest && !m.Transfer && r.inLeaderLease(m.Type) {
		// A live leader was heard within the election timeout: whoever asks
		// is partitioned or slow, and must not disturb the group. A pre-vote
		// is refused outright; a vote is ignored without changing term.
		if m.Type == raftpb.MsgPreVote {
			r.send(raftpb.Message{To: m.From, Type: raftpb.MsgPreVoteResp, Reject: true})
		}
		return false
	}
	switch {
	case m.Type == raftpb.MsgPreVote:
		// Pre-votes never change the receiver's term.
	case m.Type == raftpb.MsgPreVoteResp && !m.Reject:
		// A granted pre-vote carries the term we would campaign in.
	case m.Type == raftpb.MsgApp || m.Type == raftpb.MsgHeartbeat || m.Type == raftpb.MsgSnap:
		r.becomeFollower(m.Term, m.From)
	default:
		r.becomeFollower(m.Term, raftpb.None)
	}
	return true
}

// inLeaderLease reports whether this node heard from a leader (or, as
// leader, from a quorum) within the last election timeout, or keeps a lease
// it may have promised (leaseKept).
func (r *Raft) inLeaderLease(t raftpb.MessageType) bool {
	if t == raftpb.MsgVote && r.cfg.DisableCheckQuorum {
		return false
	}
	return (r.lead != raftpb.None || r.leaseKept) && r.electionElapsed < r.cfg.ElectionTick
}

// carryLease runs before the node forgets its leader or restarts its
// election timer: a follower that was still honouring a leader's lease keeps
// honouring it for the rest of the timeout, counted anew (conservatively)
// from now. Without this, a forced campaign or a higher term learned from a
// stray response would let the node vote for another leader while the old
// one still serves lease reads on its acknowledgement.
func (r *Raft) carryLease() {
	r.leaseKept = !r.cfg.DisableCheckQuorum && r.role != RoleLeader && r.inLeaderLease(raftpb.MsgVote)
}

func (r *Raft) stepLowerTerm(m *raftpb.Message) {
	switch m.Type {
	case raftpb.MsgApp, raftpb.MsgHeartbeat:
		// A stale leader: tell it our term so it steps down. This also frees
		// a node whose term ran ahead (it lost an election): without the
		// answer the leader would never learn of that term, and pre-vote would
		// keep the node from ever catching up by campaigning.
		r.send(raftpb.Message{To: m.From, Type: raftpb.MsgAppResp})
	case raftpb.MsgPreVote:
		// Answer so that a pre-candidate with an old term learns ours and
		// stops campaigning.
		r.send(raftpb.Message{To: m.From, Type: raftpb.MsgPreVoteResp, Reject: true})
	case raftpb.MsgVote:
		// Likewise for a candidate with an old term. Configurations can
		// differ while a change is under way: the candidate may need this
		// node's vote while this node, in an older configuration, never
		// asks it for one, so without the answer it would campaign below
		// this node's term for ever.
		r.send(raftpb.Message{To: m.From, Type: raftpb.MsgVoteResp, Reject: true})
	}
}

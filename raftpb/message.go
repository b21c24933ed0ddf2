package raftpb

import "fmt"

// MessageType names a message exchanged between the Raft cores of one group.
type MessageType uint8

const (
	// MsgPreVote asks whether the receiver would vote for the sender at
	// Term (the sender's term plus one) without anyone changing term.
	MsgPreVote MessageType = iota
	MsgPreVoteResp
	// MsgVote requests a vote at Term for a log ending at (LogTerm, Index).
	MsgVote
	MsgVoteResp
	// MsgApp carries Entries following the entry at (LogTerm, Index), and the
	// leader's Commit.
	MsgApp
	// MsgAppResp acknowledges a durable log prefix up to Index, or (Reject)
	// reports a mismatch at Index with a conflict hint: LogTerm is the
	// follower's term at the conflict and RejectHint the first index of that
	// term in the follower's log (LogTerm zero: the follower's log ends at
	// RejectHint-1).
	MsgAppResp
	// MsgHeartbeat asserts leadership and carries a commit index that the
	// receiver caps at what it knows to match.
	MsgHeartbeat
	MsgHeartbeatResp
	// MsgSnap tells a follower to install the snapshot described by Snapshot.
	MsgSnap
	// MsgTimeoutNow tells the receiver to start an election at once, skipping
	// pre-vote and leader lease checks; it is how leadership is transferred.
	MsgTimeoutNow
	// MsgSnapStatus tells the leader that the follower could not install
	// the snapshot of the leader's MsgSnap (Reject is set; the files could
	// not be fetched or verified), so the leader may offer one again. A
	// successful install is acknowledged with MsgAppResp instead.
	MsgSnapStatus
	// MsgReadIndex asks the leader for a read index on behalf of a follower
	// or learner; Context identifies the request and is echoed back.
	MsgReadIndex
	// MsgReadIndexResp answers MsgReadIndex: Index is the read index (the
	// leader's commit index once its leadership was confirmed) and Context
	// the request's. Reject says the receiver could not serve the read (it
	// no longer leads, or it is transferring leadership); the requester
	// retries.
	MsgReadIndexResp

	// NumMessageTypes bounds the message types; handler tables use it.
	NumMessageTypes
)

var messageTypeNames = [...]string{
	MsgPreVote:       "MsgPreVote",
	MsgPreVoteResp:   "MsgPreVoteResp",
	MsgVote:          "MsgVote",
	MsgVoteResp:      "MsgVoteResp",
	MsgApp:           "MsgApp",
	MsgAppResp:       "MsgAppResp",
	MsgHeartbeat:     "MsgHeartbeat",
	MsgHeartbeatResp: "MsgHeartbeatResp",
	MsgSnap:          "MsgSnap",
	MsgTimeoutNow:    "MsgTimeoutNow",
	MsgSnapStatus:    "MsgSnapStatus",
	MsgReadIndex:     "MsgReadIndex",
	MsgReadIndexResp: "MsgReadIndexResp",
}

func (t MessageType) String() string {
	if int(t) < len(messageTypeNames) {
		return messageTypeNames[t]
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// IsResponse reports whether t answers another message.
func (t MessageType) IsResponse() bool {
	switch t {
	case MsgPreVoteResp, MsgVoteResp, MsgAppResp, MsgHeartbeatResp, MsgSnapStatus, MsgReadIndexResp:
		return true
	}
	return false
}

// Message is one unit of communication between the cores of a group. Which
// fields are meaningful depends on Type; see the MessageType constants.
type Message struct {
	Type MessageType
	From uint64
	To   uint64
	Term uint64

	// LogTerm and Index name a log position: the entry preceding Entries in
	// MsgApp, the candidate's last entry in vote requests, the acknowledged or
	// rejected index in MsgAppResp.
	LogTerm uint64
	Index   uint64
	Entries []Entry
	Commit  uint64

	Reject     bool
	RejectHint uint64

	// Snapshot is set on MsgSnap only.
	Snapshot *SnapshotMeta

	// Transfer marks the vote requests of an election started by
	// MsgTimeoutNow: the outgoing leader asked for it, so receivers ignore
	// their leader lease.
	Transfer bool

	// Context correlates a request with its answer: the request's identity
	// on MsgReadIndex and MsgReadIndexResp, the leader's heartbeat round
	// sequence on MsgHeartbeat, echoed by MsgHeartbeatResp so that the
	// leader knows which round a quorum has acknowledged. Zero elsewhere.
	Context uint64
}

func (m Message) String() string {
	s := fmt.Sprintf("%s %d->%d t%d", m.Type, m.From, m.To, m.Term)
	switch m.Type {
	case MsgApp:
		s += fmt.Sprintf(" prev=%d/%d commit=%d ents=%d", m.LogTerm, m.Index, m.Commit, len(m.Entries))
	case MsgAppResp:
		if m.Reject {
			s += fmt.Sprintf(" reject idx=%d hint=%d/%d", m.Index, m.LogTerm, m.RejectHint)
		} else {
			s += fmt.Sprintf(" idx=%d", m.Index)
		}
	case MsgVote, MsgPreVote:
		s += fmt.Sprintf(" last=%d/%d", m.LogTerm, m.Index)
	case MsgVoteResp, MsgPreVoteResp:
		if m.Reject {
			s += " reject"
		} else {
			s += " grant"
		}
	case MsgHeartbeat:
		s += fmt.Sprintf(" commit=%d ctx=%d", m.Commit, m.Context)
	case MsgHeartbeatResp, MsgReadIndex:
		s += fmt.Sprintf(" ctx=%d", m.Context)
	case MsgReadIndexResp:
		if m.Reject {
			s += fmt.Sprintf(" reject ctx=%d", m.Context)
		} else {
			s += fmt.Sprintf(" idx=%d ctx=%d", m.Index, m.Context)
		}
	case MsgSnap:
		if m.Snapshot != nil {
			s += fmt.Sprintf(" snap=%d/%d", m.Snapshot.Term, m.Snapshot.Index)
		}
	}
	return s
}

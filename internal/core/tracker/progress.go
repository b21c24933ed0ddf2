package tracker

import "fmt"

// StateType is the replication state of one follower as the leader sees it.
type StateType uint8

const (
	// StateProbe: the leader does not know where the follower's log matches
	// its own. It sends at most one AppendEntries per heartbeat interval and
	// waits for the answer, moving Next back on rejection.
	StateProbe StateType = iota
	// StateReplicate: the follower's log is known to match up to Match. The
	// leader pipelines AppendEntries optimistically, advancing Next as it
	// sends, within the Inflights window.
	StateReplicate
	// StateSnapshot: the follower needs entries the leader has compacted. The
	// leader sends a snapshot and nothing else until the install reports back.
	StateSnapshot
)

var stateNames = [...]string{"Probe", "Replicate", "Snapshot"}

func (s StateType) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("StateType(%d)", uint8(s))
}

// Progress is the leader's knowledge of one peer's log. Every transition of
// State goes through Progress's own methods so that Next, the Inflights window
// and the probe flag stay consistent.
//
// Invariant: Match < Next. Entries in (Match, Next) may be in flight.
type Progress struct {
	Match, Next uint64
	State       StateType

	// PendingSnapshot is the index of the snapshot being sent in
	// StateSnapshot; the follower leaves that state once Match reaches it.
	PendingSnapshot uint64

	// RecentActive is set whenever the peer is heard from and cleared by the
	// leader's check-quorum round; it says whether the peer was reachable
	// during the last election timeout.
	RecentActive bool

	// ProbeSent is set in StateProbe after one AppendEntries has been sent,
	// pausing further sends until a response or a heartbeat interval passes.
	ProbeSent bool

	// Inflights holds the AppendEntries sent in StateReplicate that have not
	// yet been acknowledged.
	Inflights *Inflights

	// IsLearner is true for peers that receive the log but do not vote.
	IsLearner bool

	// SentCommit is the highest commit index sent to the peer. When the
	// leader's commit index passes it and no entry is pending, the leader
	// sends an empty append so the peer can apply without waiting for the
	// next heartbeat.
	SentCommit uint64
}

// NewProgress returns the progress of a peer whose log is assumed to end at
// lastIndex, in StateProbe.
func NewProgress(lastIndex uint64, maxInflight int, maxInflightBytes uint64, learner bool) *Progress {
	return &Progress{
		Next:      lastIndex + 1,
		Inflights: NewInflights(maxInflight, maxInflightBytes),
		IsLearner: learner,
	}
}

func (pr *Progress) resetState(state StateType) {
	pr.ProbeSent = false
	pr.PendingSnapshot = 0
	pr.State = state
	pr.Inflights.Reset()
}

// BecomeProbe returns the peer to StateProbe. Coming back from a snapshot,
// the probe starts after the snapshot index; otherwise right after Match.
func (pr *Progress) BecomeProbe() {
	if pr.State == StateSnapshot {
		pending := pr.PendingSnapshot
		pr.resetState(StateProbe)
		pr.Next = max(pr.Match+1, pending+1)
		return
	}
	pr.resetState(StateProbe)
	pr.Next = pr.Match + 1
}

// BecomeReplicate moves the peer into the pipelined state, sending from
// Match+1.
func (pr *Progress) BecomeReplicate() {
	pr.resetState(StateReplicate)
	pr.Next = pr.Match + 1
}

// BecomeSnapshot records that a snapshot at index snapIndex is on its way.
func (pr *Progress) BecomeSnapshot(snapIndex uint64) {
	pr.resetState(StateSnapshot)
	pr.PendingSnapshot = snapIndex
}

// SentEntries updates the progress for an AppendEntries carrying entries up
// to lastIndex with the given payload bytes. In StateReplicate the window
// grows and Next moves optimistically past the sent entries; in StateProbe
// further sends pause until the peer answers.
func (pr *Progress) SentEntries(lastIndex, bytes uint64, n int) {
	switch pr.State {
	case StateReplicate:
		if n > 0 {
			pr.Next = lastIndex + 1
			pr.Inflights.Add(lastIndex, bytes)
		}
	case StateProbe:
		pr.ProbeSent = true
	default:
		panic(fmt.Sprintf("sending entries to a peer in %s", pr.State))
	}
}

// MaybeUpdate records an acknowledgement of the log up to n. It reports
// whether Match advanced. An acknowledgement also unpauses a probing peer.
func (pr *Progress) MaybeUpdate(n uint64) bool {
	updated := false
	if pr.Match < n {
		pr.Match = n
		updated = true
		pr.ProbeSent = false
	}
	pr.Next = max(pr.Next, n+1)
	return updated
}

// MaybeDecrTo handles a rejection of the AppendEntries whose previous entry
// was at index rejected. nextHint is where the leader, from the follower's
// conflict hint, believes the logs may match again (the next index to try).
// It reports whether the rejection was acted on; a stale rejection, one for a
// message sent before the peer's state last changed, is ignored. An accepted
// rejection drops any pipeline window and leaves the peer in StateProbe.
func (pr *Progress) MaybeDecrTo(rejected, nextHint uint64) bool {
	switch pr.State {
	case StateReplicate:
		// Many messages are in flight; only a rejection above Match says
		// something new, and then everything after Match is suspect.
		if rejected <= pr.Match {
			return false
		}
		pr.BecomeProbe()
	case StateProbe:
		// Only the one outstanding probe counts: its previous index was Next-1.
		if pr.Next-1 != rejected {
			return false
		}
	default:
		return false
	}
	pr.Next = max(min(rejected, nextHint), pr.Match+1)
	pr.ProbeSent = false
	return true
}

// IsPaused reports whether the leader must hold off sending entries: a probe
// is outstanding, the pipeline window is full, or a snapshot is in flight.
func (pr *Progress) IsPaused() bool {
	switch pr.State {
	case StateProbe:
		return pr.ProbeSent
	case StateReplicate:
		return pr.Inflights.Full()
	case StateSnapshot:
		return true
	}
	panic("unknown progress state")
}

func (pr *Progress) String() string {
	s := fmt.Sprintf("%s match=%d next=%d", pr.State, pr.Match, pr.Next)
	if pr.IsLearner {
		s += " learner"
	}
	if pr.State == StateSnapshot {
		s += fmt.Sprintf(" pendingSnap=%d", pr.PendingSnapshot)
	}
	if pr.State == StateReplicate {
		s += fmt.Sprintf(" inflight=%d", pr.Inflights.Count())
	}
	return s
}

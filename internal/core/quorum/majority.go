package quorum

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// Index is a Raft log index as seen by the quorum code. It is a distinct type
// so that the sentinel math.MaxUint64 (returned by empty configurations) can
// print as "∞" instead of a twenty-digit number in logs and test failures.
type Index uint64

// String renders the index in decimal, or "∞" for the math.MaxUint64
// sentinel used by empty configurations.
func (i Index) String() string {
	if i == math.MaxUint64 {
		return "∞"
	}
	return strconv.FormatUint(uint64(i), 10)
}

// AckedIndexer reports, per voter, the highest log index known to be durably
// stored on that voter (the leader's Match for followers, its own last
// persisted index for itself). Returning found=false means nothing is known
// about the voter; the quorum code then treats it as having acked index 0,
// which can only ever hold the commit index back, never push it forward.
type AckedIndexer interface {
	AckedIndex(voterID uint64) (idx Index, found bool)
}

// MapAckIndexer is the simplest AckedIndexer: a map from voter ID to its
// acknowledged index. It is mainly useful in tests and in code that already
// collects acknowledgements in a map.
type MapAckIndexer map[uint64]Index

// AckedIndex implements AckedIndexer.
func (m MapAckIndexer) AckedIndex(id uint64) (Index, bool) {
	idx, ok := m[id]
	return idx, ok
}

// VoteResult is the outcome of tallying an election (or pre-election)
// against a configuration at some point in time.
type VoteResult uint8

const (
	// VotePending means the outcome is not decided yet: enough voters have
	// not answered that either outcome is still possible.
	VotePending VoteResult = 1 + iota
	// VoteLost means enough voters rejected the candidate that it can no
	// longer win, whatever the remaining voters answer.
	VoteLost
	// VoteWon means a quorum granted the vote; later answers cannot change
	// this.
	VoteWon
)

// String returns the constant's name, e.g. "VoteWon".
func (v VoteResult) String() string {
	switch v {
	case VotePending:
		return "VotePending"
	case VoteLost:
		return "VoteLost"
	case VoteWon:
		return "VoteWon"
	default:
		return "VoteResult(" + strconv.Itoa(int(v)) + ")"
	}
}

// MajorityConfig is a set of voter IDs. A decision needs the agreement of
// strictly more than half of them (len/2+1 voters).
type MajorityConfig map[uint64]struct{}

// stackVoters is the largest configuration CommittedIndex handles without a
// heap allocation. Seven covers every sensible production cluster; larger
// groups still work, they just pay for one small slice per call.
const stackVoters = 7

// CommittedIndex returns the largest index that a majority of the voters
// have acknowledged, i.e. the highest index that is safe to consider
// committed as far as this configuration is concerned. Voters unknown to l
// count as having acknowledged index 0. An empty configuration returns
// math.MaxUint64 so that it is neutral under the minimum taken by
// JointConfig.CommittedIndex.
//
// The acknowledged indexes are gathered into a fixed-size stack array and
// sorted with an insertion sort: for at most stackVoters voters this costs no
// allocation and is faster than a general-purpose sort on such tiny inputs.
func (c MajorityConfig) CommittedIndex(l AckedIndexer) Index {
	n := len(c)
	if n == 0 {
		return math.MaxUint64
	}

	var stk [stackVoters]Index
	var acked []Index
	if n <= len(stk) {
		acked = stk[:n]
	} else {
		acked = make([]Index, n)
	}

	// Insert each acknowledgement into its sorted (ascending) place as it is
	// read. Invariant: acked[:i] is sorted after every iteration.
	i := 0
	for id := range c {
		idx, _ := l.AckedIndex(id) // not found: idx is already 0
		j := i
		for j > 0 && acked[j-1] > idx {
			acked[j] = acked[j-1]
			j--
		}
		acked[j] = idx
		i++
	}

	// A quorum is q = n/2+1 voters. Every voter at position >= n-q in the
	// ascending order has acked at least acked[n-q], and there are exactly q
	// of them; no larger value is acked by q voters.
	return acked[n-(n/2+1)]
}

// VoteResult tallies votes against the configuration. votes maps voter ID to
// true (granted) or false (rejected); voters absent from the map have not
// answered yet, and entries for IDs outside the configuration are ignored.
// An empty configuration returns VoteWon, which makes it neutral under the
// conjunction taken by JointConfig.VoteResult.
func (c MajorityConfig) VoteResult(votes map[uint64]bool) VoteResult {
	if len(c) == 0 {
		return VoteWon
	}
	var granted, missing int
	for id := range c {
		v, ok := votes[id]
		switch {
		case !ok:
			missing++
		case v:
			granted++
		}
	}
	q := len(c)/2 + 1
	if granted >= q {
		return VoteWon
	}
	if granted+missing >= q {
		// The outstanding voters could still tip it either way.
		return VotePending
	}
	return VoteLost
}

// Slice returns the voter IDs in ascending order. The result is freshly
// allocated and owned by the caller.
func (c MajorityConfig) Slice() []uint64 {
	ids := make([]uint64, 0, len(c))
	for id := range c {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// String renders the configuration with sorted IDs, e.g. "(1 2 3)"; the empty
// configuration renders as "()". Sorting makes the output deterministic,
// which matters for logs and golden test output.
func (c MajorityConfig) String() string {
	var b strings.Builder
	b.WriteByte('(')
	for i, id := range c.Slice() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(id, 10))
	}
	b.WriteByte(')')
	return b.String()
}

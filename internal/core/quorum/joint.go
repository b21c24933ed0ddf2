package quorum

// JointConfig is the configuration in effect during a joint-consensus
// membership change. Element [0] is the incoming configuration and element
// [1] the outgoing one. Outside a membership change the outgoing half is
// empty (nil or zero-length), and because an empty MajorityConfig is neutral
// for both CommittedIndex and VoteResult, the JointConfig then behaves exactly
// like its incoming half.
type JointConfig [2]MajorityConfig

// CommittedIndex returns the largest index acknowledged by a majority of
// both halves: the minimum of the two halves' committed indexes. Committing
// needs both majorities because either half alone could otherwise elect a
// leader that lacks the entry. Like MajorityConfig.CommittedIndex it does not
// allocate for halves of up to seven voters. If both halves are empty the
// result is math.MaxUint64; callers must not treat that as a real index.
func (c JointConfig) CommittedIndex(l AckedIndexer) Index {
	return min(c[0].CommittedIndex(l), c[1].CommittedIndex(l))
}

// VoteResult tallies votes against both halves. The election is won only
// when both halves have been won, lost as soon as either half is lost (it can
// then never be won), and pending otherwise.
func (c JointConfig) VoteResult(votes map[uint64]bool) VoteResult {
	in := c[0].VoteResult(votes)
	out := c[1].VoteResult(votes)
	switch {
	case in == VoteWon && out == VoteWon:
		return VoteWon
	case in == VoteLost || out == VoteLost:
		return VoteLost
	default:
		return VotePending
	}
}

// IDs returns the union of the voters of both halves as a freshly allocated
// set owned by the caller. A voter present in both halves appears once.
func (c JointConfig) IDs() map[uint64]struct{} {
	ids := make(map[uint64]struct{}, len(c[0])+len(c[1]))
	for _, half := range c {
		for id := range half {
			ids[id] = struct{}{}
		}
	}
	return ids
}

// String renders the configuration as "(1 2 3)" when not joint and as
// "(1 2 3)&&(1 2 4)" (incoming first) while a change is in flight.
func (c JointConfig) String() string {
	if len(c[1]) == 0 {
		return c[0].String()
	}
	return c[0].String() + "&&" + c[1].String()
}

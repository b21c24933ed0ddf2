package quorum

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The property tests below compare the real implementations against naive
// ones that follow the definitions literally (try every candidate index,
// enumerate every way the missing votes could go). The naive versions are
// slow but obviously correct; agreement over many random inputs gives
// confidence in the clever ones. Fixed seeds keep every run identical.

const quickIters = 5000

// randConfig returns a configuration of 0..9 voters drawn from IDs 1..12, so
// that random joint halves overlap often.
func randConfig(r *rand.Rand) MajorityConfig {
	n := r.IntN(10)
	c := MajorityConfig{}
	for len(c) < n {
		c[1+r.Uint64N(12)] = struct{}{}
	}
	return c
}

// randIndex favors small values so that ties are frequent, with occasional
// extremes to exercise the edges of the type.
func randIndex(r *rand.Rand) Index {
	switch r.IntN(20) {
	case 0:
		return 0
	case 1:
		return math.MaxUint64
	case 2:
		return Index(r.Uint64())
	default:
		return Index(r.IntN(8))
	}
}

// randAcks acknowledges some of IDs 1..14 (so voters go missing and
// non-voters appear).
func randAcks(r *rand.Rand) MapAckIndexer {
	m := MapAckIndexer{}
	for id := uint64(1); id <= 14; id++ {
		if r.IntN(3) != 0 {
			m[id] = randIndex(r)
		}
	}
	return m
}

// randVotes records an answer for some of IDs 1..14.
func randVotes(r *rand.Rand) map[uint64]bool {
	m := map[uint64]bool{}
	for id := uint64(1); id <= 14; id++ {
		switch r.IntN(3) {
		case 0:
			m[id] = true
		case 1:
			m[id] = false
		}
	}
	return m
}

// naiveCommitted returns the largest candidate index that every non-empty
// half has a strict majority of voters acknowledging at or above. The
// candidates are 0, ∞ and every acknowledged index, which includes the
// answer: the answer is always some voter's ack, or 0, or ∞ when no
// non-empty half exists.
func naiveCommitted(halves []MajorityConfig, l MapAckIndexer) Index {
	cands := []Index{0, math.MaxUint64}
	for _, idx := range l {
		cands = append(cands, idx)
	}
	best, found := Index(0), false
	for _, cand := range cands {
		ok := true
		for _, c := range halves {
			if len(c) == 0 {
				continue
			}
			count := 0
			for id := range c {
				if l[id] >= cand { // missing: zero value 0
					count++
				}
			}
			if 2*count <= len(c) {
				ok = false
			}
		}
		if ok && (!found || cand > best) {
			best, found = cand, true
		}
	}
	return best
}

// naiveVote enumerates every way the voters that have not answered could
// still answer. The vote is won if every completion wins, lost if none does,
// and pending otherwise. A completion wins if each non-empty half has a
// strict majority of grants.
func naiveVote(halves []MajorityConfig, votes map[uint64]bool) VoteResult {
	var missing []uint64
	seen := map[uint64]bool{}
	for _, c := range halves {
		for id := range c {
			if _, ok := votes[id]; !ok && !seen[id] {
				seen[id] = true
				missing = append(missing, id)
			}
		}
	}
	wins, total := 0, 0
	for mask := 0; mask < 1<<len(missing); mask++ {
		full := map[uint64]bool{}
		for id, v := range votes {
			full[id] = v
		}
		for i, id := range missing {
			full[id] = mask&(1<<i) != 0
		}
		won := true
		for _, c := range halves {
			if len(c) == 0 {
				continue
			}
			yes := 0
			for id := range c {
				if full[id] {
					yes++
				}
			}
			if 2*yes <= len(c) {
				won = false
			}
		}
		total++
		if won {
			wins++
		}
	}
	switch wins {
	case total:
		return VoteWon
	case 0:
		return VoteLost
	default:
		return VotePending
	}
}

func TestQuickMajorityCommittedIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range quickIters {
		c, acks := randConfig(r), randAcks(r)
		got := c.CommittedIndex(acks)
		want := naiveCommitted([]MajorityConfig{c}, acks)
		if got != want {
			t.Fatalf("%v.CommittedIndex(%v) = %v, naive %v", c, acks, got, want)
		}
	}
}

func TestQuickMajorityVoteResult(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range quickIters {
		c, votes := randConfig(r), randVotes(r)
		got := c.VoteResult(votes)
		want := naiveVote([]MajorityConfig{c}, votes)
		if got != want {
			t.Fatalf("%v.VoteResult(%v) = %v, naive %v", c, votes, got, want)
		}
	}
}

func TestQuickJointCommittedIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range quickIters {
		c := JointConfig{randConfig(r), randConfig(r)}
		acks := randAcks(r)
		got := c.CommittedIndex(acks)
		want := naiveCommitted(c[:], acks)
		if got != want {
			t.Fatalf("%v.CommittedIndex(%v) = %v, naive %v", c, acks, got, want)
		}
	}
}

func TestQuickJointVoteResult(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range quickIters {
		c := JointConfig{randConfig(r), randConfig(r)}
		votes := randVotes(r)
		got := c.VoteResult(votes)
		want := naiveVote(c[:], votes)
		if got != want {
			t.Fatalf("%v.VoteResult(%v) = %v, naive %v", c, votes, got, want)
		}
	}
}

// TestQuickCommittedIndexMonotone checks a property the leader relies on:
// raising any single acknowledgement never lowers the committed index.
func TestQuickCommittedIndexMonotone(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range quickIters {
		c := JointConfig{randConfig(r), randConfig(r)}
		acks := randAcks(r)
		before := c.CommittedIndex(acks)
		id := 1 + r.Uint64N(14)
		bump := Index(1 + r.IntN(5))
		if acks[id] > math.MaxUint64-bump { // would wrap around
			continue
		}
		acks[id] += bump
		if after := c.CommittedIndex(acks); after < before {
			t.Fatalf("%v: raising ack of %d lowered commit from %v to %v", c, id, before, after)
		}
	}
}

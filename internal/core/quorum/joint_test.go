package quorum

import (
	"maps"
	"math"
	"slices"
	"testing"
)

func TestJointCommittedIndex(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    JointConfig
		acks MapAckIndexer
		want Index
	}{
		{"both empty", JointConfig{}, MapAckIndexer{1: 3}, math.MaxUint64},
		{"not joint behaves like incoming", JointConfig{cfg(1, 2, 3), nil},
			MapAckIndexer{1: 10, 2: 5, 3: 1}, 5},
		{"only outgoing set", JointConfig{nil, cfg(1, 2, 3)},
			MapAckIndexer{1: 10, 2: 5, 3: 1}, 5},
		{"identical halves", JointConfig{cfg(1, 2, 3), cfg(1, 2, 3)},
			MapAckIndexer{1: 10, 2: 5, 3: 1}, 5},
		{"outgoing lags", JointConfig{cfg(1, 2, 3), cfg(1, 4, 5)},
			MapAckIndexer{1: 10, 2: 9, 3: 8, 4: 2, 5: 1}, 2},
		{"incoming lags", JointConfig{cfg(1, 4, 5), cfg(1, 2, 3)},
			MapAckIndexer{1: 10, 2: 9, 3: 8, 4: 2, 5: 1}, 2},
		{"shared voter decides", JointConfig{cfg(1, 2), cfg(2, 3)},
			MapAckIndexer{1: 10, 2: 6, 3: 10}, 6},
		{"new voter not caught up", JointConfig{cfg(1, 2, 3, 4), cfg(1, 2, 3)},
			MapAckIndexer{1: 10, 2: 10, 3: 10}, 10},
		{"missing voters hold back", JointConfig{cfg(1, 2, 3), cfg(4, 5, 6)},
			MapAckIndexer{1: 10, 2: 10, 3: 10, 4: 10}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.CommittedIndex(tt.acks); got != tt.want {
				t.Errorf("%v.CommittedIndex(%v) = %v, want %v", tt.c, tt.acks, got, tt.want)
			}
		})
	}
}

func TestJointVoteResult(t *testing.T) {
	const (
		y = true
		n = false
	)
	for _, tt := range []struct {
		name  string
		c     JointConfig
		votes map[uint64]bool
		want  VoteResult
	}{
		{"both empty wins", JointConfig{}, nil, VoteWon},
		{"not joint won", JointConfig{cfg(1, 2, 3)}, map[uint64]bool{1: y, 2: y}, VoteWon},
		{"not joint lost", JointConfig{cfg(1, 2, 3)}, map[uint64]bool{1: n, 2: n}, VoteLost},
		{"not joint pending", JointConfig{cfg(1, 2, 3)}, map[uint64]bool{1: y}, VotePending},
		{"won in both", JointConfig{cfg(1, 2, 3), cfg(1, 4, 5)},
			map[uint64]bool{1: y, 2: y, 4: y}, VoteWon},
		{"won incoming pending outgoing", JointConfig{cfg(1, 2, 3), cfg(1, 4, 5)},
			map[uint64]bool{2: y, 3: y}, VotePending},
		{"won incoming lost outgoing", JointConfig{cfg(1, 2, 3), cfg(1, 4, 5)},
			map[uint64]bool{2: y, 3: y, 4: n, 5: n}, VoteLost},
		{"lost incoming won outgoing", JointConfig{cfg(1, 2, 3), cfg(1, 4, 5)},
			map[uint64]bool{2: n, 3: n, 4: y, 5: y}, VoteLost},
		{"pending both", JointConfig{cfg(1, 2, 3), cfg(1, 4, 5)},
			map[uint64]bool{1: y}, VotePending},
		{"lost incoming pending outgoing", JointConfig{cfg(1, 2, 3), cfg(1, 4, 5)},
			map[uint64]bool{1: n, 2: n}, VoteLost},
		{"shared voter tips both", JointConfig{cfg(1, 2), cfg(1, 3)},
			map[uint64]bool{1: y, 2: y, 3: y}, VoteWon},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.VoteResult(tt.votes); got != tt.want {
				t.Errorf("%v.VoteResult(%v) = %v, want %v", tt.c, tt.votes, got, tt.want)
			}
		})
	}
}

func TestJointIDsAndString(t *testing.T) {
	for _, tt := range []struct {
		c   JointConfig
		ids []uint64
		str string
	}{
		{JointConfig{}, nil, "()"},
		{JointConfig{cfg(1, 2, 3)}, []uint64{1, 2, 3}, "(1 2 3)"},
		{JointConfig{cfg(1, 2, 3), cfg()}, []uint64{1, 2, 3}, "(1 2 3)"},
		{JointConfig{cfg(3, 2, 1), cfg(4, 2, 1)}, []uint64{1, 2, 3, 4}, "(1 2 3)&&(1 2 4)"},
		{JointConfig{cfg(), cfg(5)}, []uint64{5}, "()&&(5)"},
	} {
		got := slices.Sorted(maps.Keys(tt.c.IDs()))
		if !slices.Equal(got, tt.ids) {
			t.Errorf("%v.IDs() = %v, want %v", tt.c, got, tt.ids)
		}
		if s := tt.c.String(); s != tt.str {
			t.Errorf("String() = %q, want %q", s, tt.str)
		}
	}
}

func TestJointIDsIsACopy(t *testing.T) {
	c := JointConfig{cfg(1, 2), cfg(2, 3)}
	ids := c.IDs()
	ids[99] = struct{}{}
	delete(ids, 1)
	if _, ok := c[0][1]; !ok || len(c[0]) != 2 || len(c[1]) != 2 {
		t.Fatalf("mutating IDs() changed the config: %v", c)
	}
}

func TestJointCommittedIndexNoAlloc(t *testing.T) {
	in, acks := benchConfig(5)
	out := cfg(1, 2, 3, 6, 7)
	c := JointConfig{in, out}
	var sink Index
	if allocs := testing.AllocsPerRun(100, func() { sink = c.CommittedIndex(acks) }); allocs != 0 {
		t.Errorf("joint CommittedIndex allocated %v times per call, want 0", allocs)
	}
	_ = sink
}

func BenchmarkJointCommittedIndex(b *testing.B) {
	in, acks := benchConfig(5)
	c := JointConfig{in, cfg(1, 2, 3, 6, 7)}
	b.ReportAllocs()
	for b.Loop() {
		benchSink = c.CommittedIndex(acks)
	}
}

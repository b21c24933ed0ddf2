package quorum

import (
	"math"
	"slices"
	"testing"
)

// cfg builds a MajorityConfig from a list of IDs.
func cfg(ids ...uint64) MajorityConfig {
	c := MajorityConfig{}
	for _, id := range ids {
		c[id] = struct{}{}
	}
	return c
}

func TestIndexString(t *testing.T) {
	for _, tt := range []struct {
		in   Index
		want string
	}{
		{0, "0"},
		{42, "42"},
		{math.MaxUint64 - 1, "18446744073709551614"},
		{math.MaxUint64, "∞"},
	} {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Index(%d).String() = %q, want %q", uint64(tt.in), got, tt.want)
		}
	}
}

func TestVoteResultString(t *testing.T) {
	for _, tt := range []struct {
		in   VoteResult
		want string
	}{
		{VotePending, "VotePending"},
		{VoteLost, "VoteLost"},
		{VoteWon, "VoteWon"},
		{0, "VoteResult(0)"},
		{17, "VoteResult(17)"},
	} {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("VoteResult(%d).String() = %q, want %q", uint8(tt.in), got, tt.want)
		}
	}
}

func TestMapAckIndexer(t *testing.T) {
	m := MapAckIndexer{1: 5, 2: 0}
	if idx, ok := m.AckedIndex(1); !ok || idx != 5 {
		t.Errorf("AckedIndex(1) = %v, %v; want 5, true", idx, ok)
	}
	if idx, ok := m.AckedIndex(2); !ok || idx != 0 {
		t.Errorf("AckedIndex(2) = %v, %v; want 0, true", idx, ok)
	}
	if idx, ok := m.AckedIndex(3); ok || idx != 0 {
		t.Errorf("AckedIndex(3) = %v, %v; want 0, false", idx, ok)
	}
}

func TestMajorityCommittedIndex(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    MajorityConfig
		acks MapAckIndexer
		want Index
	}{
		{"empty config is neutral", cfg(), MapAckIndexer{1: 5}, math.MaxUint64},
		{"empty config nil map", nil, nil, math.MaxUint64},
		{"single voter acked", cfg(1), MapAckIndexer{1: 7}, 7},
		{"single voter missing", cfg(1), MapAckIndexer{}, 0},
		{"two voters need both", cfg(1, 2), MapAckIndexer{1: 9, 2: 4}, 4},
		{"two voters one missing", cfg(1, 2), MapAckIndexer{1: 9}, 0},
		{"three all equal", cfg(1, 2, 3), MapAckIndexer{1: 5, 2: 5, 3: 5}, 5},
		{"three median", cfg(1, 2, 3), MapAckIndexer{1: 10, 2: 3, 3: 7}, 7},
		{"three one missing", cfg(1, 2, 3), MapAckIndexer{1: 10, 3: 7}, 7},
		{"three two missing", cfg(1, 2, 3), MapAckIndexer{1: 10}, 0},
		{"non-voters ignored", cfg(1, 2, 3), MapAckIndexer{1: 2, 2: 2, 4: 100, 5: 100}, 2},
		{"four needs three", cfg(1, 2, 3, 4), MapAckIndexer{1: 10, 2: 9, 3: 3, 4: 1}, 3},
		{"five", cfg(1, 2, 3, 4, 5), MapAckIndexer{1: 1, 2: 2, 3: 3, 4: 4, 5: 5}, 3},
		{"five two laggards", cfg(1, 2, 3, 4, 5), MapAckIndexer{1: 8, 2: 8, 3: 8, 4: 1}, 8},
		{"seven", cfg(1, 2, 3, 4, 5, 6, 7), MapAckIndexer{1: 70, 2: 60, 3: 50, 4: 40, 5: 30, 6: 20, 7: 10}, 40},
		{"nine uses heap path", cfg(1, 2, 3, 4, 5, 6, 7, 8, 9),
			MapAckIndexer{1: 9, 2: 8, 3: 7, 4: 6, 5: 5, 6: 4, 7: 3, 8: 2, 9: 1}, 5},
		{"max index acked by majority", cfg(1, 2, 3), MapAckIndexer{1: math.MaxUint64, 2: math.MaxUint64}, math.MaxUint64},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.CommittedIndex(tt.acks); got != tt.want {
				t.Errorf("%v.CommittedIndex(%v) = %v, want %v", tt.c, tt.acks, got, tt.want)
			}
		})
	}
}

func TestMajorityVoteResult(t *testing.T) {
	const (
		y = true
		n = false
	)
	for _, tt := range []struct {
		name  string
		c     MajorityConfig
		votes map[uint64]bool
		want  VoteResult
	}{
		{"empty config wins", cfg(), nil, VoteWon},
		{"empty config ignores votes", cfg(), map[uint64]bool{1: n}, VoteWon},
		{"one pending", cfg(1), nil, VotePending},
		{"one won", cfg(1), map[uint64]bool{1: y}, VoteWon},
		{"one lost", cfg(1), map[uint64]bool{1: n}, VoteLost},
		{"two one yes", cfg(1, 2), map[uint64]bool{1: y}, VotePending},
		{"two one no", cfg(1, 2), map[uint64]bool{1: n}, VoteLost},
		{"two both yes", cfg(1, 2), map[uint64]bool{1: y, 2: y}, VoteWon},
		{"three one yes", cfg(1, 2, 3), map[uint64]bool{1: y}, VotePending},
		{"three two yes", cfg(1, 2, 3), map[uint64]bool{1: y, 3: y}, VoteWon},
		{"three split pending", cfg(1, 2, 3), map[uint64]bool{1: y, 2: n}, VotePending},
		{"three two no", cfg(1, 2, 3), map[uint64]bool{1: n, 2: n}, VoteLost},
		{"three non-voter yes ignored", cfg(1, 2, 3), map[uint64]bool{1: y, 4: y, 5: y}, VotePending},
		{"four two yes pending", cfg(1, 2, 3, 4), map[uint64]bool{1: y, 2: y}, VotePending},
		{"four tie lost", cfg(1, 2, 3, 4), map[uint64]bool{1: y, 2: y, 3: n, 4: n}, VoteLost},
		{"four two no lost", cfg(1, 2, 3, 4), map[uint64]bool{3: n, 4: n}, VoteLost},
		{"five three yes", cfg(1, 2, 3, 4, 5), map[uint64]bool{1: y, 2: y, 5: y, 3: n}, VoteWon},
		{"five two no pending", cfg(1, 2, 3, 4, 5), map[uint64]bool{1: n, 2: n, 3: y}, VotePending},
		{"five three no lost", cfg(1, 2, 3, 4, 5), map[uint64]bool{1: n, 2: n, 3: n}, VoteLost},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.VoteResult(tt.votes); got != tt.want {
				t.Errorf("%v.VoteResult(%v) = %v, want %v", tt.c, tt.votes, got, tt.want)
			}
		})
	}
}

func TestMajoritySliceAndString(t *testing.T) {
	for _, tt := range []struct {
		c     MajorityConfig
		slice []uint64
		str   string
	}{
		{nil, []uint64{}, "()"},
		{cfg(), []uint64{}, "()"},
		{cfg(7), []uint64{7}, "(7)"},
		{cfg(3, 1, 2), []uint64{1, 2, 3}, "(1 2 3)"},
		{cfg(100, 20, 3, 1<<40), []uint64{3, 20, 100, 1 << 40}, "(3 20 100 1099511627776)"},
	} {
		if got := tt.c.Slice(); !slices.Equal(got, tt.slice) {
			t.Errorf("Slice() = %v, want %v", got, tt.slice)
		}
		if got := tt.c.String(); got != tt.str {
			t.Errorf("String() = %q, want %q", got, tt.str)
		}
	}
}

// TestMajorityCommittedIndexNoAlloc pins down the hot-path guarantee: no heap
// allocation for configurations of up to stackVoters voters.
func TestMajorityCommittedIndexNoAlloc(t *testing.T) {
	for n := 0; n <= stackVoters; n++ {
		c, acks := benchConfig(n)
		var sink Index
		allocs := testing.AllocsPerRun(100, func() { sink = c.CommittedIndex(acks) })
		if allocs != 0 {
			t.Errorf("%d voters: CommittedIndex allocated %v times per call, want 0", n, allocs)
		}
		_ = sink
	}
}

// benchConfig returns an n-voter configuration and an indexer with distinct
// acknowledgements for every voter.
func benchConfig(n int) (MajorityConfig, AckedIndexer) {
	c := MajorityConfig{}
	acks := MapAckIndexer{}
	for i := 1; i <= n; i++ {
		c[uint64(i)] = struct{}{}
		acks[uint64(i)] = Index(1000 + 37*i%11)
	}
	return c, acks
}

var benchSink Index

func BenchmarkMajorityCommittedIndex(b *testing.B) {
	for _, n := range []int{1, 3, 5, 7, 9} {
		c, acks := benchConfig(n)
		b.Run(Index(n).String()+"-voters", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchSink = c.CommittedIndex(acks)
			}
		})
	}
}

package logmanager

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
	"github.com/raftkit/raftkit/storage/logengine"
	"github.com/raftkit/raftkit/storage/vfs"
)

func ents(lo, hi, term uint64, size int) []raftpb.Entry {
	var out []raftpb.Entry
	for i := lo; i < hi; i++ {
		out = append(out, raftpb.Entry{Index: i, Term: term, Data: make([]byte, size)})
	}
	return out
}

func indexes(es []raftpb.Entry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Index)
	}
	return out
}

func newLM(t *testing.T, cacheBytes uint64) *LogManager {
	t.Helper()
	eng, err := logengine.Open(vfs.NewMemFS(), "/log", logengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	lm, err := New(eng, 7, storage.NewMemoryMeta(), raftpb.ConfState{Voters: []uint64{1, 2, 3}}, cacheBytes)
	if err != nil {
		t.Fatal(err)
	}
	return lm
}

// appendSync appends and waits for durability, as the runtime does through
// its callbacks.
func appendSync(t *testing.T, lm *LogManager, es []raftpb.Entry) {
	t.Helper()
	done := make(chan error, 1)
	lm.Append(es, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lm.MarkDurable(es[len(es)-1].Index)
}

// TestEntriesMatchEngine: whatever the cache holds, Entries, Term and the
// byte limits answer exactly as the engine alone would.
func TestEntriesMatchEngine(t *testing.T) {
	for _, tc := range []struct{ cache, chunk uint64 }{{0, 0}, {1, 0}, {400, 0}, {1 << 20, 0}, {1, 3}, {400, 3}, {1 << 20, 3}, {200, 7}} {
		cache := tc.cache
		t.Run(fmt.Sprintf("%d/%d", tc.cache, tc.chunk), func(t *testing.T) {
			lm := newLM(t, cache)
			lm.cache.chunkCap = int(tc.chunk)
			appendSync(t, lm, ents(1, 31, 1, 16))
			appendSync(t, lm, ents(20, 41, 2, 16)) // a conflicting suffix
			for lo := uint64(1); lo <= 40; lo++ {
				for hi := lo + 1; hi <= 41; hi++ {
					for _, maxBytes := range []uint64{0, 40, 100, 1 << 30} {
						got, err := lm.Entries(lo, hi, maxBytes)
						want, werr := lm.log.Entries(lo, hi, maxBytes)
						if err != nil || werr != nil {
							t.Fatalf("Entries(%d,%d,%d): %v / engine %v", lo, hi, maxBytes, err, werr)
						}
						if !slices.Equal(indexes(got), indexes(want)) {
							t.Fatalf("Entries(%d,%d,%d) = %v, engine %v", lo, hi, maxBytes, indexes(got), indexes(want))
						}
						for i := range got {
							if got[i].Term != want[i].Term {
								t.Fatalf("entry %d term %d, engine %d", got[i].Index, got[i].Term, want[i].Term)
							}
						}
					}
				}
				tc, _ := lm.Term(lo)
				te, _ := lm.log.Term(lo)
				if tc != te {
					t.Fatalf("Term(%d) = %d, engine %d", lo, tc, te)
				}
			}
			// The bound may be exceeded by less than one chunk of entries
			// costing 16 bytes of data plus the per-entry overhead.
			if chunk := uint64(lm.cache.capacity()) * (16 + entryMemOverhead); cache > 0 && lm.CacheBytes() >= cache+chunk {
				t.Fatalf("cache holds %d bytes over its %d budget", lm.CacheBytes(), cache)
			}
		})
	}
}

// TestCacheSlicesStayValid: slices handed out before a conflicting append
// keep their entries (the core may still be sending them).
func TestCacheSlicesStayValid(t *testing.T) {
	lm := newLM(t, 1<<20)
	appendSync(t, lm, ents(1, 11, 1, 8))
	before, err := lm.Entries(5, 11, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	appendSync(t, lm, ents(6, 8, 2, 8))
	for _, e := range before {
		if e.Term != 1 {
			t.Fatalf("entry %d changed to term %d under a handed-out slice", e.Index, e.Term)
		}
	}
	if got, _ := lm.Term(7); got != 2 {
		t.Fatalf("Term(7) = %d after the rewrite", got)
	}
	if _, err := lm.Entries(8, 9, 1<<30); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("entries past the rewritten end: %v", err)
	}
}

// TestHardStateClampedAndSkipped: commit-only changes are not written;
// a written commit never exceeds the durable log.
func TestHardStateClampedAndSkipped(t *testing.T) {
	lm := newLM(t, 0)
	appendSync(t, lm, ents(1, 4, 1, 1))
	meta := lm.meta.(*storage.MemoryMeta)
	if err := lm.SaveHardState(raftpb.HardState{Term: 1, Vote: 2, Commit: 9}); err != nil {
		t.Fatal(err)
	}
	if hs, _ := meta.HardState(); hs != (raftpb.HardState{Term: 1, Vote: 2, Commit: 3}) {
		t.Fatalf("stored %+v, want commit clamped to 3", hs)
	}
	if err := lm.SaveHardState(raftpb.HardState{Term: 1, Vote: 2, Commit: 3}); err != nil {
		t.Fatal(err)
	}
	hs, cs, _ := lm.InitialState()
	if hs.Term != 1 || !slices.Equal(cs.Voters, []uint64{1, 2, 3}) {
		t.Fatalf("initial state %+v %+v", hs, cs)
	}
	if m, err := lm.Snapshot(); err != nil || m.Index != 0 {
		t.Fatalf("snapshot %+v %v", m, err)
	}
}

// TestCommitNotOverInflightRewrite: while an append that replaces a suffix
// is in flight, a hard state written meanwhile records no commit index
// covering the entries being replaced; once it is durable it may.
func TestCommitNotOverInflightRewrite(t *testing.T) {
	lm := newLM(t, 1<<20)
	appendSync(t, lm, ents(1, 11, 1, 4))
	meta := lm.meta.(*storage.MemoryMeta)
	release := make(chan struct{})
	// Hold the engine's writer so the rewrite stays in flight: a queued
	// append behind a callback that blocks.
	lm.engine.Submit([]logengine.Write{{Group: 99, Entries: ents(1, 2, 1, 1)}}, func(error) { <-release })
	done := make(chan error, 1)
	lm.Append(ents(6, 8, 2, 4), func(err error) { done <- err })
	if err := lm.SaveHardState(raftpb.HardState{Term: 2, Commit: 7}); err != nil {
		t.Fatal(err)
	}
	if hs, _ := meta.HardState(); hs.Commit > 5 {
		t.Fatalf("stored commit %d over entries 6..7 still being replaced", hs.Commit)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lm.MarkDurable(7)
	if err := lm.SaveHardState(raftpb.HardState{Term: 2, Vote: 3, Commit: 7}); err != nil {
		t.Fatal(err)
	}
	if hs, _ := meta.HardState(); hs.Commit != 7 {
		t.Fatalf("stored commit %d after the rewrite is durable, want 7", hs.Commit)
	}
}

// TestCacheRandomized: random appends (with conflicting suffixes) through
// caches of several chunk sizes and budgets answer Entries and Term exactly
// as the engine does, and slices handed out never change afterwards.
func TestCacheRandomized(t *testing.T) {
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 7))
		lm := newLM(t, uint64(rng.IntN(2000)))
		lm.cache.chunkCap = 1 + rng.IntN(6)
		type handed struct {
			ents  []raftpb.Entry
			terms []uint64
		}
		var kept []handed
		last, term := uint64(0), uint64(1)
		for range 60 {
			at := last + 1
			if last > 0 && rng.IntN(3) == 0 {
				at = 1 + uint64(rng.IntN(int(last)))
				term++
			}
			n := uint64(1 + rng.IntN(8))
			appendSync(t, lm, ents(at, at+n, term, rng.IntN(20)))
			last = at + n - 1
			lo := 1 + uint64(rng.IntN(int(last)))
			hi := lo + 1 + uint64(rng.IntN(int(last-lo+1)))
			maxBytes := uint64(rng.IntN(400))
			got, err := lm.Entries(lo, hi, maxBytes)
			want, werr := lm.log.Entries(lo, hi, maxBytes)
			if err != nil || werr != nil || !slices.Equal(indexes(got), indexes(want)) {
				t.Fatalf("seed %d: Entries(%d,%d,%d) = %v %v, engine %v %v", seed, lo, hi, maxBytes, indexes(got), err, indexes(want), werr)
			}
			h := handed{ents: got}
			for i := range got {
				if got[i].Term != want[i].Term {
					t.Fatalf("seed %d: entry %d term %d, engine %d", seed, got[i].Index, got[i].Term, want[i].Term)
				}
				h.terms = append(h.terms, got[i].Term)
			}
			kept = append(kept, h)
		}
		for _, h := range kept {
			for i := range h.ents {
				if h.ents[i].Term != h.terms[i] {
					t.Fatalf("seed %d: a handed-out entry %d changed term", seed, h.ents[i].Index)
				}
			}
		}
	}
}

package logmanager

import (
	"errors"
	"fmt"
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
	for _, cache := range []uint64{0, 1, 10 * 40, 1 << 20} {
		t.Run(fmt.Sprint(cache), func(t *testing.T) {
			lm := newLM(t, cache)
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
			if cache > 0 && lm.CacheBytes() > max(cache, 40) {
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

package logengine

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
	"github.com/raftkit/raftkit/storage/vfs"
)

func TestFreshGroup(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		e := open(t, fs, dir, Options{})
		defer e.Close()
		newModel().check(t, e.Group(7))
		if _, err := e.Group(7).Entries(1, 2, 0); !errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("Entries on an empty log: %v", err)
		}
		if got, err := e.Group(7).Entries(1, 1, 0); err != nil || got != nil {
			t.Fatalf("empty range: %v, %v", got, err)
		}
		if e.Group(7) != e.Group(7) {
			t.Fatal("Group returns different logs for one id")
		}
	})
}

func TestInterleavedGroups(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		e := open(t, fs, dir, Options{})
		models := map[uint64]model{1: newModel(), 2: newModel(), 3: newModel()}
		next := map[uint64]uint64{1: 1, 2: 1, 3: 1}
		for round := range 30 {
			for g := uint64(1); g <= 3; g++ {
				n := uint64(1 + (round+int(g))%5)
				es := ents(g, next[g], n, 1)
				ok(t, e.Group(g).Append(es))
				models[g].append(t, es)
				next[g] += n
			}
		}
		for g, m := range models {
			m.check(t, e.Group(g))
		}
		ok(t, e.Close())
		e = open(t, fs, dir, Options{})
		defer e.Close()
		for g, m := range models {
			m.check(t, e.Group(g))
		}
	})
}

func TestAppendValidation(t *testing.T) {
	e := open(t, vfs.NewMemFS(), "/d", Options{})
	defer e.Close()
	gl := e.Group(1)
	ok(t, gl.Append(ents(1, 1, 5, 1)))
	for name, es := range map[string][]raftpb.Entry{
		"gap":            ents(1, 7, 1, 1),
		"zero":           {{Index: 0, Term: 1}},
		"not contiguous": {{Index: 6, Term: 1}, {Index: 8, Term: 1}},
	} {
		if err := gl.Append(es); err == nil {
			t.Fatalf("%s: append accepted", name)
		}
	}
	ok(t, gl.TruncatePrefix(3))
	if err := gl.Append(ents(1, 2, 2, 2)); !errors.Is(err, storage.ErrCompacted) {
		t.Fatalf("append below first index: %v", err)
	}
	if err := gl.TruncatePrefix(10); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("truncate past the end: %v", err)
	}
	// A request with an invalid write writes nothing.
	done := make(chan error, 1)
	e.Submit([]Write{{Group: 2, Entries: ents(2, 1, 3, 1)}, {Group: 1, Entries: ents(1, 9, 1, 1)}},
		func(err error) { done <- err })
	if err := <-done; err == nil {
		t.Fatal("invalid request accepted")
	}
	if l, _ := e.Group(2).LastIndex(); l != 0 {
		t.Fatalf("invalid request wrote group 2 up to %d", l)
	}
	e.Submit([]Write{{Group: 2, Entries: ents(2, 1, 1, 1), TruncatePrefix: 1}}, func(err error) { done <- err })
	if err := <-done; err == nil {
		t.Fatal("a Write with two changes accepted")
	}
	if e.Err() != nil {
		t.Fatalf("validation errors failed the engine: %v", e.Err())
	}
}

func TestSuffixTruncation(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		e := open(t, fs, dir, Options{})
		m := newModel()
		for _, es := range [][]raftpb.Entry{ents(1, 1, 10, 1), ents(1, 5, 3, 2), ents(1, 8, 2, 3), ents(1, 3, 1, 4)} {
			ok(t, e.Group(1).Append(es))
			m.append(t, es)
		}
		m.check(t, e.Group(1))
		ok(t, e.Close())
		e = open(t, fs, dir, Options{})
		defer e.Close()
		m.check(t, e.Group(1))
	})
}

// TestMultiWriteRequest checks several writes to one group in one request
// and in one round: they apply in order.
func TestMultiWriteRequest(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		e := open(t, fs, dir, Options{})
		m := newModel()
		ws := []Write{
			{Group: 1, Entries: ents(1, 1, 6, 1)},
			{Group: 1, Entries: ents(1, 4, 4, 2)},
			{Group: 1, TruncatePrefix: 5},
			{Group: 2, Reset: &ResetTo{Index: 50, Term: 9}},
			{Group: 2, Entries: ents(2, 51, 2, 9)},
		}
		done := make(chan error, 1)
		e.Submit(ws, func(err error) { done <- err })
		ok(t, <-done)
		m.append(t, ents(1, 1, 6, 1))
		m.append(t, ents(1, 4, 4, 2))
		ok(t, m.Compact(4))
		m2 := model{storage.NewMemoryStorage()}
		ok(t, m2.ApplySnapshot(raftpb.SnapshotMeta{Index: 50, Term: 9}))
		m2.append(t, ents(2, 51, 2, 9))
		check := func(e *Engine) {
			m.check(t, e.Group(1))
			m2.check(t, e.Group(2))
		}
		check(e)
		ok(t, e.Close())
		e = open(t, fs, dir, Options{})
		defer e.Close()
		check(e)
	})
}

func TestPrefixTruncation(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		e := open(t, fs, dir, Options{})
		m := newModel()
		es := ents(1, 1, 20, 1)
		ok(t, e.Group(1).Append(es))
		m.append(t, es)
		ok(t, e.Group(1).TruncatePrefix(8))
		ok(t, m.Compact(7))
		ok(t, e.Group(1).TruncatePrefix(3)) // no-op
		m.check(t, e.Group(1))
		if _, err := e.Group(1).Entries(7, 9, 0); !errors.Is(err, storage.ErrCompacted) {
			t.Fatalf("Entries below first: %v", err)
		}
		// Truncating everything leaves an empty log that remembers the term.
		ok(t, e.Group(1).TruncatePrefix(21))
		ok(t, m.Compact(20))
		m.check(t, e.Group(1))
		ok(t, e.Close())
		e = open(t, fs, dir, Options{})
		defer e.Close()
		m.check(t, e.Group(1))
		es = ents(1, 21, 3, 2)
		ok(t, e.Group(1).Append(es))
		m.append(t, es)
		m.check(t, e.Group(1))
	})
}

func TestReset(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		e := open(t, fs, dir, Options{})
		ok(t, e.Group(1).Append(ents(1, 1, 10, 1)))
		ok(t, e.Group(1).Reset(100, 7))
		m := newModel()
		ok(t, m.ApplySnapshot(raftpb.SnapshotMeta{Index: 100, Term: 7}))
		m.check(t, e.Group(1))
		es := ents(1, 101, 4, 8)
		ok(t, e.Group(1).Append(es))
		m.append(t, es)
		ok(t, e.Close())
		e = open(t, fs, dir, Options{})
		defer e.Close()
		m.check(t, e.Group(1))
		// A reset to a lower index is allowed (the caller decides).
		ok(t, e.Group(1).Reset(5, 2))
		if f, _ := e.Group(1).FirstIndex(); f != 6 {
			t.Fatalf("first index after reset %d", f)
		}
	})
}

// TestRandomReopen drives several groups with random appends, conflicting
// suffixes, truncations and resets, reopening now and then, and compares
// with MemoryStorage.
func TestRandomReopen(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		rng := rand.New(rand.NewPCG(1, 2))
		opts := Options{SegmentSize: 8 << 10, RewriteThreshold: 1 << 10}
		e := open(t, fs, dir, opts)
		models := map[uint64]model{}
		for g := uint64(1); g <= 5; g++ {
			models[g] = newModel()
		}
		term := uint64(1)
		for step := range 600 {
			g := 1 + uint64(rng.IntN(5))
			m, gl := models[g], e.Group(g)
			first, _ := m.FirstIndex()
			last, _ := m.LastIndex()
			switch op := rng.IntN(100); {
			case op < 65:
				from := last + 1
				if last >= first && rng.IntN(4) == 0 {
					from = first + uint64(rng.IntN(int(last-first+1)))
					term++
				}
				es := ents(g, from, uint64(1+rng.IntN(8)), term)
				ok(t, gl.Append(es))
				m.append(t, es)
			case op < 80:
				if last >= first {
					idx := first + 1 + uint64(rng.IntN(int(last-first+1)))
					ok(t, gl.TruncatePrefix(idx))
					ok(t, m.Compact(idx-1))
				}
			case op < 83:
				idx := last + uint64(rng.IntN(5))
				ok(t, gl.Reset(idx, term))
				ok(t, m.ApplySnapshot(raftpb.SnapshotMeta{Index: idx, Term: term}))
			case op < 90:
				ok(t, e.GC())
			default:
				ok(t, e.Close())
				e = open(t, fs, dir, opts)
				for g, m := range models {
					m.check(t, e.Group(g))
				}
			}
			if step%50 == 0 {
				for g, m := range models {
					m.check(t, e.Group(g))
				}
			}
		}
		ok(t, e.Close())
		e = open(t, fs, dir, opts)
		defer e.Close()
		for g, m := range models {
			m.check(t, e.Group(g))
		}
		if n := len(e.Stats().Segments); n > 12 {
			t.Fatalf("%d segments after GC", n)
		}
	})
}

// TestGroupCommitSharesFsyncs submits one append from each of 16 goroutines
// at once, ten times over. The first sync of each wave waits until every
// goroutine has queued its request, so the rest of the wave must share the
// next round: at most two fsyncs per wave of 16 appends.
func TestGroupCommitSharesFsyncs(t *testing.T) {
	const goroutines, waves = 16, 10
	hfs := &hookFS{FS: vfs.NewMemFS()}
	e := open(t, hfs, "/d", Options{})
	defer e.Close()
	var submitted atomic.Int32
	var armed atomic.Bool
	hook := func(name string) {
		// Only the writer's syncs: the preparer syncs its file concurrently.
		if strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			for submitted.Load() < goroutines {
				runtime.Gosched()
			}
		}
	}
	hfs.onSync.Store(&hook)
	before := e.Stats()
	for wave := range uint64(waves) {
		submitted.Store(0)
		armed.Store(true)
		start := make(chan struct{})
		errs := make(chan error, goroutines)
		for g := range uint64(goroutines) {
			go func() {
				<-start
				e.Submit([]Write{{Group: g + 1, Entries: ents(g+1, wave+1, 1, 1)}}, func(err error) { errs <- err })
				submitted.Add(1)
			}()
		}
		close(start)
		for range goroutines {
			ok(t, <-errs)
		}
	}
	st := e.Stats()
	syncs, appends := st.Fsyncs-before.Fsyncs, int64(goroutines*waves)
	if syncs > 2*waves || syncs >= appends {
		t.Fatalf("%d fsyncs for %d appends", syncs, appends)
	}
	t.Logf("%d appends, %d fsyncs, %d rounds", appends, syncs, st.Rounds-before.Rounds)
	for g := uint64(1); g <= goroutines; g++ {
		if l, _ := e.Group(g).LastIndex(); l != waves {
			t.Fatalf("group %d last index %d", g, l)
		}
	}
}

// TestConcurrentAppendsAndReads runs 16 goroutines appending to their own
// groups through GroupLog.Append while readers read, with tiny segments so
// rolls and GC run underneath.
func TestConcurrentAppendsAndReads(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		e := open(t, fs, dir, Options{SegmentSize: 16 << 10})
		const groups, appends = 16, 40
		var wg sync.WaitGroup
		for g := uint64(1); g <= groups; g++ {
			wg.Add(2)
			go func() {
				defer wg.Done()
				for i := uint64(1); i <= appends; i++ {
					if err := e.Group(g).Append(ents(g, i, 1, 1)); err != nil {
						t.Error(err)
						return
					}
					if i%10 == 0 {
						if err := e.Group(g).TruncatePrefix(i - 5); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}()
			go func() {
				defer wg.Done()
				for range appends {
					gl := e.Group(g)
					f, _ := gl.FirstIndex()
					l, _ := gl.LastIndex()
					if l < f {
						continue
					}
					got, err := gl.Entries(f, l+1, 1<<20)
					if errors.Is(err, storage.ErrCompacted) {
						continue // truncated between the calls
					}
					if err != nil {
						t.Error(err)
						return
					}
					for _, ent := range got {
						if !sameEntry(ent, ents(g, ent.Index, 1, 1)[0]) {
							t.Errorf("group %d read %v", g, ent)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		st := e.Stats()
		if st.Fsyncs >= groups*appends*11/10 {
			t.Logf("no fsync sharing observed: %d fsyncs", st.Fsyncs)
		}
		ok(t, e.Close())
		e = open(t, fs, dir, Options{SegmentSize: 16 << 10})
		defer e.Close()
		for g := uint64(1); g <= groups; g++ {
			if l, _ := e.Group(g).LastIndex(); l != appends {
				t.Fatalf("group %d last index %d after reopen", g, l)
			}
		}
	})
}

func TestCloseFailsLaterCalls(t *testing.T) {
	e := open(t, vfs.NewMemFS(), "/d", Options{})
	gl := e.Group(1)
	ok(t, gl.Append(ents(1, 1, 1, 1)))
	ok(t, e.Close())
	if err := e.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := gl.Append(ents(1, 2, 1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := gl.Entries(1, 2, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := e.GC(); !errors.Is(err, ErrClosed) {
		t.Fatalf("GC after close: %v", err)
	}
	called := false
	e.Submit([]Write{{Group: 1, TruncatePrefix: 1}}, func(err error) { called = errors.Is(err, ErrClosed) })
	if !called {
		t.Fatal("Submit after Close did not fail at once with ErrClosed")
	}
}

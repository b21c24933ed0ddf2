package logengine_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage/logengine"
	"github.com/raftkit/raftkit/storage/vfs"
)

// modelGroup is what a group's log must hold after any crash: the state
// built from acknowledged writes only, plus the writes in flight at the
// crash, whose effect may or may not have survived.
type modelGroup struct {
	first uint64 // acknowledged first index (a lost prefix truncation may bring older entries back)
	ents  map[uint64]raftpb.Entry
	last  uint64
	// inflight are entries submitted but not acknowledged when the engine
	// crashed; any of them may be present.
	inflight []raftpb.Entry
}

func newModelGroup() *modelGroup {
	return &modelGroup{first: 1, ents: map[uint64]raftpb.Entry{}}
}

// ack applies an acknowledged append: entries at and after the first index
// are replaced, so truncated entries must never come back.
func (m *modelGroup) ack(ents []raftpb.Entry) {
	for i := ents[0].Index; i <= m.last; i++ {
		delete(m.ents, i)
	}
	for _, e := range ents {
		m.ents[e.Index] = e
	}
	m.last = ents[len(ents)-1].Index
}

// TestCrashConsistency drives the engine on the strict in-memory FS with
// random appends (including conflicting suffixes), prefix truncations,
// concurrent in-flight writes and crashes (some keeping torn, unsynced
// tails). After every recovery each acknowledged entry must be present and
// unchanged, and nothing a later acknowledged append truncated may
// reappear.
func TestCrashConsistency(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 10
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { crashScenario(t, seed) })
	}
}

func crashScenario(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	fs := vfs.NewMemFS()
	opts := logengine.Options{SegmentSize: 8 << 10, RewriteThreshold: 2 << 10}
	const dir = "/data"
	if err := fs.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	e, err := logengine.Open(fs, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	groups := map[uint64]*modelGroup{1: newModelGroup(), 2: newModelGroup(), 3: newModelGroup()}
	term := uint64(1)
	for step := range 300 {
		g := 1 + uint64(rng.IntN(len(groups)))
		m := groups[g]
		switch op := rng.IntN(100); {
		case op < 60: // append, sometimes overwriting a suffix in a new term
			from := m.last + 1
			if m.last >= m.first && rng.IntN(4) == 0 {
				from = m.first + uint64(rng.IntN(int(m.last-m.first+1)))
				term++
			}
			ents := randomEntries(rng, from, term, 1+rng.IntN(20))
			if err := e.Group(g).Append(ents); err != nil {
				t.Fatalf("seed %d step %d: append: %v", seed, step, err)
			}
			m.ack(ents)
		case op < 70: // prefix truncation
			if m.last > m.first {
				idx := m.first + uint64(rng.IntN(int(m.last-m.first)))
				if err := e.Group(g).TruncatePrefix(idx); err != nil {
					t.Fatalf("seed %d step %d: truncate prefix: %v", seed, step, err)
				}
				for i := m.first; i < idx; i++ {
					delete(m.ents, i)
				}
				m.first = idx
			}
		case op < 80: // GC
			if err := e.GC(); err != nil {
				t.Fatalf("seed %d step %d: gc: %v", seed, step, err)
			}
		default: // crash, with writes in flight
			e = crashWithInflight(t, rng, fs, e, dir, opts, groups, term)
			verifyModel(t, seed, step, e, groups)
		}
	}
	e.Close()
}

func randomEntries(rng *rand.Rand, from, term uint64, n int) []raftpb.Entry {
	ents := make([]raftpb.Entry, n)
	for i := range ents {
		data := make([]byte, rng.IntN(300))
		for k := range data {
			data[k] = byte(rng.Uint32())
		}
		ents[i] = raftpb.Entry{Term: term, Index: from + uint64(i), Type: raftpb.EntryNormal, Data: data}
	}
	return ents
}

// crashWithInflight submits appends it does not wait for, crashes the file
// system under them, reopens the engine and records which entries may or
// may not have survived.
func crashWithInflight(t *testing.T, rng *rand.Rand, fs *vfs.MemFS, e *logengine.Engine, dir string,
	opts logengine.Options, groups map[uint64]*modelGroup, term uint64) *logengine.Engine {
	t.Helper()
	type sub struct {
		g    uint64
		ents []raftpb.Entry
		done chan error
	}
	var subs []sub
	for range rng.IntN(4) {
		g := 1 + uint64(rng.IntN(len(groups)))
		m := groups[g]
		from := m.last + 1
		if k := len(m.inflight); k > 0 {
			from = m.inflight[k-1].Index + 1
		}
		ents := randomEntries(rng, from, term, 1+rng.IntN(10))
		m.inflight = append(m.inflight, ents...)
		s := sub{g, ents, make(chan error, 1)}
		subs = append(subs, s)
		e.Submit([]logengine.Write{{Group: g, Entries: ents}}, func(err error) { s.done <- err })
	}
	if rng.IntN(2) == 0 {
		fs.CrashKeepPartial(rng)
	} else {
		fs.Crash()
	}
	e.Close()
	// A write acknowledged before the crash is durable: it joins the
	// model. Unacknowledged ones only stay possible.
	for _, s := range subs {
		if err := <-s.done; err == nil {
			groups[s.g].ack(s.ents)
		}
	}
	ne, err := logengine.Open(fs, dir, opts)
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	return ne
}

// verifyModel checks the recovered engine against the model: every
// acknowledged entry is present and equal; any entry beyond the
// acknowledged tail came from an in-flight write; then the model adopts what
// the engine holds so later steps continue from it.
func verifyModel(t *testing.T, seed uint64, step int, e *logengine.Engine, groups map[uint64]*modelGroup) {
	t.Helper()
	for g, m := range groups {
		gl := e.Group(g)
		first, err1 := gl.FirstIndex()
		last, err2 := gl.LastIndex()
		if err := errors.Join(err1, err2); err != nil {
			t.Fatalf("seed %d step %d group %d: %v", seed, step, g, err)
		}
		if first > m.first {
			t.Fatalf("seed %d step %d group %d: first index %d beyond acknowledged %d", seed, step, g, first, m.first)
		}
		if last < m.last {
			t.Fatalf("seed %d step %d group %d: last index %d lost acknowledged entries up to %d", seed, step, g, last, m.last)
		}
		for i := m.first; i <= last; i++ {
			ents, err := gl.Entries(i, i+1, 1<<30)
			if err != nil {
				t.Fatalf("seed %d step %d group %d: read %d: %v", seed, step, g, i, err)
			}
			got := ents[0]
			want, acked := m.ents[i]
			if i <= m.last {
				if !acked || !sameEntry(got, want) {
					t.Fatalf("seed %d step %d group %d: entry %d is %v, acknowledged %v", seed, step, g, i, got, want)
				}
				continue
			}
			if !slices.ContainsFunc(m.inflight, func(p raftpb.Entry) bool { return sameEntry(p, got) }) {
				t.Fatalf("seed %d step %d group %d: entry %d (%v) beyond the acknowledged tail %d was never written or was truncated",
					seed, step, g, i, got, m.last)
			}
			m.ents[i] = got
		}
		m.last = last
		m.inflight = nil
	}
}

func sameEntry(a, b raftpb.Entry) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type && string(a.Data) == string(b.Data)
}

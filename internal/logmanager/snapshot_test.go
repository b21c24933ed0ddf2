package logmanager

import (
	"errors"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

func snapMeta(index, term uint64) raftpb.SnapshotMeta {
	return raftpb.SnapshotMeta{Index: index, Term: term, ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}}}
}

func TestSnapshotAndCompact(t *testing.T) {
	lm := newLM(t, 1<<20)
	appendSync(t, lm, ents(1, 101, 1, 8))
	if m, err := lm.Snapshot(); err != nil || m.Index != 0 {
		t.Fatalf("before any snapshot: %+v, %v", m, err)
	}
	lm.SetSnapshot(snapMeta(90, 1))
	lm.SetSnapshot(snapMeta(50, 1)) // older: ignored
	if m, err := lm.Snapshot(); err != nil || m.Index != 90 || m.Term != 1 || len(m.ConfState.Voters) != 3 {
		t.Fatalf("snapshot %+v, %v", m, err)
	}
	done := make(chan error, 1)
	lm.Compact(81, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f, _ := lm.FirstIndex(); f != 81 {
		t.Fatalf("first index %d after compaction, want 81", f)
	}
	if tm, err := lm.Term(80); err != nil || tm != 1 {
		t.Fatalf("Term(80) = %d, %v: the term before the first entry must stay known", tm, err)
	}
	if _, err := lm.Term(79); !errors.Is(err, storage.ErrCompacted) {
		t.Fatalf("Term(79): %v", err)
	}
}

func TestResetToSnapshot(t *testing.T) {
	lm := newLM(t, 1<<20)
	appendSync(t, lm, ents(1, 11, 1, 8))
	meta := snapMeta(500, 3)
	if err := lm.ResetToSnapshot(meta); err != nil {
		t.Fatal(err)
	}
	lm.AfterResetToSnapshot(meta)
	f, _ := lm.FirstIndex()
	l, _ := lm.LastIndex()
	if f != 501 || l != 500 || lm.CacheBytes() != 0 {
		t.Fatalf("after reset: first %d last %d cache %d", f, l, lm.CacheBytes())
	}
	if tm, err := lm.Term(500); err != nil || tm != 3 {
		t.Fatalf("Term(500) = %d, %v", tm, err)
	}
	appendSync(t, lm, ents(501, 511, 3, 8))
	if got, err := lm.Entries(501, 511, 1<<20); err != nil || len(got) != 10 {
		t.Fatalf("entries after the reset: %d, %v", len(got), err)
	}
	if hs, _, _ := lm.InitialState(); hs.Commit < 500 {
		t.Fatalf("initial commit %d below the snapshot", hs.Commit)
	}
}

func TestReconcileWithSnapshot(t *testing.T) {
	cases := []struct {
		name      string
		meta      raftpb.SnapshotMeta
		wantFirst uint64
		wantLast  uint64
	}{
		{"log holds the snapshot's entry", snapMeta(15, 1), 1, 20},
		{"log ends before the snapshot", snapMeta(40, 2), 41, 40},
		{"log disagrees at the snapshot", snapMeta(15, 2), 16, 15},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lm := newLM(t, 1<<20)
			appendSync(t, lm, ents(1, 21, 1, 8))
			if err := lm.ReconcileWithSnapshot(c.meta); err != nil {
				t.Fatal(err)
			}
			f, _ := lm.FirstIndex()
			l, _ := lm.LastIndex()
			if f != c.wantFirst || l != c.wantLast {
				t.Fatalf("bounds [%d, %d], want [%d, %d]", f, l, c.wantFirst, c.wantLast)
			}
			if m, _ := lm.Snapshot(); m.Index != c.meta.Index {
				t.Fatalf("snapshot %d, want %d", m.Index, c.meta.Index)
			}
		})
	}
}

// TestInitialConfFromSnapshot: once a snapshot exists, the configuration at
// the start of the log is the snapshot's, not the bootstrap one, which the
// members added or removed since have made stale.
func TestInitialConfFromSnapshot(t *testing.T) {
	lm := newLM(t, 1<<20)
	if _, cs, _ := lm.InitialState(); !cs.Equal(raftpb.ConfState{Voters: []uint64{1, 2, 3}}) {
		t.Fatalf("bootstrap conf %v", cs)
	}
	appendSync(t, lm, ents(1, 21, 1, 8))
	meta := snapMeta(15, 1)
	meta.ConfState = raftpb.ConfState{Voters: []uint64{1, 2, 4}, Learners: []uint64{5}}
	if err := lm.ReconcileWithSnapshot(meta); err != nil {
		t.Fatal(err)
	}
	if _, cs, _ := lm.InitialState(); !cs.Equal(meta.ConfState) {
		t.Fatalf("conf %v, want the snapshot's %v", cs, meta.ConfState)
	}
}

package storage

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/raftkit/raftkit/storage/vfs"
)

func TestMemorySnapshots(t *testing.T) {
	m := NewMemorySnapshots()
	if m.FS() != vfs.FS(m.MemFS()) {
		t.Fatal("FS and MemFS differ")
	}
	if _, err := m.Latest(); !errors.Is(err, ErrSnapshotTemporarilyUnavailable) {
		t.Fatalf("Latest on empty = %v", err)
	}
	mustCommit(t, m.FileSnapshots, 5, 1)
	mustCommit(t, m.FileSnapshots, 9, 2)
	// A snapshot being written when the power fails is gone afterwards.
	w, err := m.Create(smeta(12, 2))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFiles(m.FS(), w.Dir(), snapFiles(12)); err != nil {
		t.Fatal(err)
	}
	m.MemFS().Crash()
	m, err = m.Reopen()
	if err != nil {
		t.Fatal(err)
	}
	if got := listIndexes(t, m.FileSnapshots); !slices.Equal(got, []uint64{5, 9}) {
		t.Fatalf("List after crash = %v", got)
	}
	checkLatest(t, m.FileSnapshots, 9, 2)
	// Two stores do not share files.
	other := NewMemorySnapshots()
	if got := listIndexes(t, other.FileSnapshots); got != nil {
		t.Fatalf("fresh store lists %v", got)
	}
}

// TestMemorySnapshotsCommitThenCrash checks that committed snapshots and
// deletions survive a power failure.
func TestMemorySnapshotsCommitThenCrash(t *testing.T) {
	m := NewMemorySnapshots()
	reopen := func() {
		t.Helper()
		m.MemFS().Crash()
		var err error
		if m, err = m.Reopen(); err != nil {
			t.Fatal(err)
		}
	}
	for _, idx := range []uint64{1, 2, 3} {
		mustCommit(t, m.FileSnapshots, idx, 1)
		reopen()
		checkLatest(t, m.FileSnapshots, idx, 1)
	}
	if err := m.Delete(3); err != nil {
		t.Fatal(err)
	}
	reopen()
	if got := listIndexes(t, m.FileSnapshots); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("List = %v", got)
	}
}

func TestMemorySnapshotsConcurrent(t *testing.T) {
	s := NewMemorySnapshots().FileSnapshots
	mustCommit(t, s, 1, 1)
	var wg sync.WaitGroup
	wg.Go(func() { // writer: commits and deletes old snapshots
		for idx := uint64(2); idx <= 40; idx++ {
			if err := commitSnap(s, smeta(idx, 1)); err != nil {
				t.Error(err)
				return
			}
			if err := s.Delete(idx - 1); err != nil && !errors.Is(err, ErrSnapshotInUse) {
				t.Error(err)
			}
		}
	})
	for range 4 { // readers
		wg.Go(func() {
			for range 100 {
				r, err := s.Latest()
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.VerifyFiles(r); err != nil {
					t.Error(err)
				}
				_ = r.Close()
				_, _ = s.List()
			}
		})
	}
	wg.Wait()
	checkLatest(t, s, 40, 1)
}

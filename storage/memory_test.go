package storage

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
)

// ent builds an entry with a small payload so that every entry has Size 25.
func ent(index, term uint64) raftpb.Entry {
	return raftpb.Entry{Index: index, Term: term, Data: []byte{byte(index)}}
}

// newTestStorage returns a storage with a snapshot at 3/3 and entries 4/4, 5/5, 6/6.
func newTestStorage(t *testing.T) *MemoryStorage {
	t.Helper()
	s := NewMemoryStorage()
	if err := s.ApplySnapshot(raftpb.SnapshotMeta{Index: 3, Term: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append([]raftpb.Entry{ent(4, 4), ent(5, 5), ent(6, 6)}); err != nil {
		t.Fatal(err)
	}
	return s
}

func indexes(ents []raftpb.Entry) []uint64 {
	var out []uint64
	for _, e := range ents {
		out = append(out, e.Index)
	}
	return out
}

func TestMemoryStorageEmpty(t *testing.T) {
	s := NewMemoryStorage()
	if fi, _ := s.FirstIndex(); fi != 1 {
		t.Errorf("FirstIndex = %d, want 1", fi)
	}
	if li, _ := s.LastIndex(); li != 0 {
		t.Errorf("LastIndex = %d, want 0", li)
	}
	if term, err := s.Term(0); term != 0 || err != nil {
		t.Errorf("Term(0) = %d, %v; want 0, nil", term, err)
	}
	if _, err := s.Term(1); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Term(1) err = %v, want ErrUnavailable", err)
	}
	hs, cs, err := s.InitialState()
	if !hs.IsEmpty() || !cs.Equal(raftpb.ConfState{}) || err != nil {
		t.Errorf("InitialState = %v, %v, %v", hs, cs, err)
	}
	if ents, err := s.Entries(1, 1, 100); ents != nil || err != nil {
		t.Errorf("Entries(1,1) = %v, %v; want nil, nil", ents, err)
	}
	if _, err := s.Entries(0, 1, 100); !errors.Is(err, ErrCompacted) {
		t.Errorf("Entries(0,1) err = %v, want ErrCompacted", err)
	}
}

func TestMemoryStorageWithConf(t *testing.T) {
	cs := raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	s := NewMemoryStorageWithConf(cs)
	cs.Voters[0] = 99 // the storage must hold its own copy
	want := raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	_, got, _ := s.InitialState()
	if !got.Equal(want) {
		t.Errorf("InitialState conf = %v, want %v", got, want)
	}
	snap, _ := s.Snapshot()
	if snap.Index != 0 || snap.Term != 0 || !snap.ConfState.Equal(want) {
		t.Errorf("Snapshot = %+v", snap)
	}
	if fi, _ := s.FirstIndex(); fi != 1 {
		t.Errorf("FirstIndex = %d, want 1", fi)
	}
	if li, _ := s.LastIndex(); li != 0 {
		t.Errorf("LastIndex = %d, want 0", li)
	}
	got.Voters[0] = 42
	if _, again, _ := s.InitialState(); !again.Equal(want) {
		t.Errorf("InitialState returned shared slice: %v", again)
	}
}

func TestMemoryStorageTerm(t *testing.T) {
	tests := []struct {
		i       uint64
		want    uint64
		wantErr error
	}{
		{2, 0, ErrCompacted},
		{3, 3, nil},
		{4, 4, nil},
		{6, 6, nil},
		{7, 0, ErrUnavailable},
	}
	s := newTestStorage(t)
	for _, tt := range tests {
		got, err := s.Term(tt.i)
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("Term(%d) = %d, %v; want %d, %v", tt.i, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestMemoryStorageEntries(t *testing.T) {
	const sz = 25 // Size of every test entry
	tests := []struct {
		lo, hi, maxBytes uint64
		want             []uint64
		wantErr          error
	}{
		{2, 5, sz * 10, nil, ErrCompacted},
		{3, 5, sz * 10, nil, ErrCompacted},
		{4, 5, sz * 10, []uint64{4}, nil},
		{4, 7, sz * 10, []uint64{4, 5, 6}, nil},
		{5, 7, sz * 10, []uint64{5, 6}, nil},
		{4, 8, sz * 10, nil, ErrUnavailable},
		{7, 7, sz * 10, nil, nil},
		// maxBytes: at least one entry, then as many as fit.
		{4, 7, 0, []uint64{4}, nil},
		{4, 7, sz - 1, []uint64{4}, nil},
		{4, 7, sz, []uint64{4}, nil},
		{4, 7, 2*sz - 1, []uint64{4}, nil},
		{4, 7, 2 * sz, []uint64{4, 5}, nil},
		{4, 7, 3 * sz, []uint64{4, 5, 6}, nil},
		{4, 7, ^uint64(0), []uint64{4, 5, 6}, nil},
	}
	s := newTestStorage(t)
	for _, tt := range tests {
		got, err := s.Entries(tt.lo, tt.hi, tt.maxBytes)
		if !errors.Is(err, tt.wantErr) || !reflect.DeepEqual(indexes(got), tt.want) {
			t.Errorf("Entries(%d, %d, %d) = %v, %v; want %v, %v",
				tt.lo, tt.hi, tt.maxBytes, indexes(got), err, tt.want, tt.wantErr)
		}
	}
	if _, err := s.Entries(6, 5, 100); err == nil {
		t.Error("Entries(6, 5) succeeded, want an error for an inverted range")
	}
}

func TestMemoryStorageEntriesSafeToHold(t *testing.T) {
	s := newTestStorage(t)
	got, err := s.Entries(4, 6, ^uint64(0))
	if err != nil {
		t.Fatal(err)
	}
	if cap(got) != len(got) {
		t.Fatalf("cap %d != len %d: caller appends would clobber storage", cap(got), len(got))
	}
	_ = append(got, ent(99, 99))
	if e, _ := s.Entries(6, 7, ^uint64(0)); e[0].Index != 6 {
		t.Fatalf("storage clobbered by caller append: %v", e)
	}
	// A truncating append must not rewrite what the caller holds.
	held, _ := s.Entries(4, 7, ^uint64(0))
	if err := s.Append([]raftpb.Entry{ent(5, 9)}); err != nil {
		t.Fatal(err)
	}
	if held[1].Term != 5 || held[2].Index != 6 {
		t.Fatalf("held view changed by truncating append: %v", held)
	}
	// Nor may a compaction.
	if err := s.Compact(4); err != nil {
		t.Fatal(err)
	}
	if err := s.Append([]raftpb.Entry{ent(6, 9), ent(7, 9)}); err != nil {
		t.Fatal(err)
	}
	if held[2].Term != 6 {
		t.Fatalf("held view changed after compact and append: %v", held)
	}
}

func TestMemoryStorageAppend(t *testing.T) {
	tests := []struct {
		name    string
		ents    []raftpb.Entry
		want    []raftpb.Entry // entries after the snapshot at 3/3
		wantErr bool
	}{
		{"empty is a no-op", nil, []raftpb.Entry{ent(4, 4), ent(5, 5), ent(6, 6)}, false},
		{"same entries", []raftpb.Entry{ent(4, 4), ent(5, 5), ent(6, 6)},
			[]raftpb.Entry{ent(4, 4), ent(5, 5), ent(6, 6)}, false},
		{"extend at the end", []raftpb.Entry{ent(7, 6)},
			[]raftpb.Entry{ent(4, 4), ent(5, 5), ent(6, 6), ent(7, 6)}, false},
		{"overwrite and extend", []raftpb.Entry{ent(6, 7), ent(7, 7)},
			[]raftpb.Entry{ent(4, 4), ent(5, 5), ent(6, 7), ent(7, 7)}, false},
		{"truncate to a shorter log", []raftpb.Entry{ent(5, 8)},
			[]raftpb.Entry{ent(4, 4), ent(5, 8)}, false},
		{"replace everything", []raftpb.Entry{ent(4, 8), ent(5, 8)},
			[]raftpb.Entry{ent(4, 8), ent(5, 8)}, false},
		{"partly compacted", []raftpb.Entry{ent(2, 3), ent(3, 3), ent(4, 8)},
			[]raftpb.Entry{ent(4, 8)}, false},
		{"wholly compacted", []raftpb.Entry{ent(2, 3), ent(3, 3)},
			[]raftpb.Entry{ent(4, 4), ent(5, 5), ent(6, 6)}, false},
		{"gap after last", []raftpb.Entry{ent(8, 6)},
			[]raftpb.Entry{ent(4, 4), ent(5, 5), ent(6, 6)}, true},
		{"not consecutive", []raftpb.Entry{ent(6, 6), ent(8, 6)},
			[]raftpb.Entry{ent(4, 4), ent(5, 5), ent(6, 6)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStorage(t)
			in := append([]raftpb.Entry(nil), tt.ents...)
			err := s.Append(in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Append err = %v, wantErr %v", err, tt.wantErr)
			}
			li, _ := s.LastIndex()
			got, err := s.Entries(4, li+1, ^uint64(0))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("log = %v, want %v", got, tt.want)
			}
			// The storage owns its copy of the slice.
			for i := range in {
				in[i].Term = 1000
			}
			again, _ := s.Entries(4, li+1, ^uint64(0))
			if !reflect.DeepEqual(again, tt.want) {
				t.Errorf("log changed by caller's write to appended slice: %v", again)
			}
		})
	}
}

func TestMemoryStorageAppendToEmpty(t *testing.T) {
	s := NewMemoryStorage()
	if err := s.Append([]raftpb.Entry{ent(2, 1)}); err == nil {
		t.Fatal("append at 2 to an empty log succeeded, want a gap error")
	}
	if err := s.Append([]raftpb.Entry{ent(1, 1), ent(2, 1)}); err != nil {
		t.Fatal(err)
	}
	if li, _ := s.LastIndex(); li != 2 {
		t.Fatalf("LastIndex = %d, want 2", li)
	}
	if term, _ := s.Term(2); term != 1 {
		t.Fatalf("Term(2) = %d, want 1", term)
	}
}

func TestMemoryStorageCompact(t *testing.T) {
	tests := []struct {
		index     uint64
		wantErr   error
		wantFirst uint64
		wantTerm  uint64 // snapshot term after
		wantLen   int
	}{
		{2, ErrCompacted, 4, 3, 3},
		{3, ErrCompacted, 4, 3, 3},
		{4, nil, 5, 4, 2},
		{5, nil, 6, 5, 1},
		{6, nil, 7, 6, 0},
		{7, ErrUnavailable, 4, 3, 3},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.index), func(t *testing.T) {
			s := newTestStorage(t)
			cs := raftpb.ConfState{Voters: []uint64{1, 2}}
			s.SetConfState(cs)
			err := s.Compact(tt.index)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Compact(%d) err = %v, want %v", tt.index, err, tt.wantErr)
			}
			fi, _ := s.FirstIndex()
			li, _ := s.LastIndex()
			snap, _ := s.Snapshot()
			if fi != tt.wantFirst || snap.Term != tt.wantTerm || int(li-fi+1) != tt.wantLen || li != 6 {
				t.Errorf("after Compact(%d): first %d last %d snap %+v", tt.index, fi, li, snap)
			}
			if tt.wantErr == nil {
				if snap.Index != tt.index || !snap.ConfState.Equal(cs) {
					t.Errorf("snapshot meta = %+v, want index %d conf %v", snap, tt.index, cs)
				}
				if term, err := s.Term(tt.index); term != tt.wantTerm || err != nil {
					t.Errorf("Term(%d) = %d, %v", tt.index, term, err)
				}
				if _, err := s.Term(tt.index - 1); !errors.Is(err, ErrCompacted) {
					t.Errorf("Term(%d) err = %v, want ErrCompacted", tt.index-1, err)
				}
			}
		})
	}
}

func TestMemoryStorageApplySnapshot(t *testing.T) {
	cs := raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	tests := []struct {
		name    string
		meta    raftpb.SnapshotMeta
		wantErr error
	}{
		{"older", raftpb.SnapshotMeta{Index: 2, Term: 2}, ErrSnapshotOutOfDate},
		{"same index", raftpb.SnapshotMeta{Index: 3, Term: 3, ConfState: cs}, nil},
		{"inside the log", raftpb.SnapshotMeta{Index: 5, Term: 5, ConfState: cs}, nil},
		{"past the log", raftpb.SnapshotMeta{Index: 10, Term: 7, ConfState: cs}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStorage(t)
			s.SetHardState(raftpb.HardState{Term: 6, Vote: 1, Commit: 6})
			err := s.ApplySnapshot(tt.meta)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ApplySnapshot err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if li, _ := s.LastIndex(); li != 6 {
					t.Errorf("failed ApplySnapshot changed the log: last %d", li)
				}
				return
			}
			fi, _ := s.FirstIndex()
			li, _ := s.LastIndex()
			term, _ := s.Term(tt.meta.Index)
			snap, _ := s.Snapshot()
			hs, gotCS, _ := s.InitialState()
			if fi != tt.meta.Index+1 || li != tt.meta.Index || term != tt.meta.Term {
				t.Errorf("first %d last %d term %d after snapshot %+v", fi, li, term, tt.meta)
			}
			if snap.Index != tt.meta.Index || snap.Term != tt.meta.Term || !snap.ConfState.Equal(cs) {
				t.Errorf("Snapshot = %+v", snap)
			}
			if !gotCS.Equal(cs) {
				t.Errorf("InitialState conf = %v, want %v", gotCS, cs)
			}
			if hs != (raftpb.HardState{Term: 6, Vote: 1, Commit: 6}) {
				t.Errorf("hard state changed: %+v", hs)
			}
			// The log continues after the snapshot.
			if err := s.Append([]raftpb.Entry{ent(tt.meta.Index+1, tt.meta.Term)}); err != nil {
				t.Errorf("append after snapshot: %v", err)
			}
		})
	}
}

func TestMemoryStorageHardAndConfState(t *testing.T) {
	s := NewMemoryStorage()
	hs := raftpb.HardState{Term: 2, Vote: 3, Commit: 1}
	s.SetHardState(hs)
	cs := raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}}
	s.SetConfState(cs)
	cs.Voters[0] = 7
	gotHS, gotCS, err := s.InitialState()
	if err != nil || gotHS != hs || !gotCS.Equal(raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}}) {
		t.Errorf("InitialState = %+v, %+v, %v", gotHS, gotCS, err)
	}
}

func TestMemoryStorageClone(t *testing.T) {
	s := newTestStorage(t)
	s.SetHardState(raftpb.HardState{Term: 6, Commit: 5})
	s.SetConfState(raftpb.ConfState{Voters: []uint64{1}})
	c := s.Clone()

	// Mutate the original in every way.
	if err := s.Append([]raftpb.Entry{ent(5, 9)}); err != nil {
		t.Fatal(err)
	}
	s.SetHardState(raftpb.HardState{Term: 9})
	s.SetConfState(raftpb.ConfState{Voters: []uint64{2}})
	orig, _ := s.Entries(4, 5, ^uint64(0))
	orig[0].Data[0] = 0xff // payload is shared with the original only

	hs, cs, _ := c.InitialState()
	if hs != (raftpb.HardState{Term: 6, Commit: 5}) || !cs.Equal(raftpb.ConfState{Voters: []uint64{1}}) {
		t.Errorf("clone state = %+v %+v", hs, cs)
	}
	got, err := c.Entries(4, 7, ^uint64(0))
	if err != nil {
		t.Fatal(err)
	}
	if want := []raftpb.Entry{ent(4, 4), ent(5, 5), ent(6, 6)}; !reflect.DeepEqual(got, want) {
		t.Errorf("clone log = %v, want %v", got, want)
	}
	if snap, _ := c.Snapshot(); snap.Index != 3 || snap.Term != 3 {
		t.Errorf("clone snapshot = %+v", snap)
	}
}

func TestMemoryStorageConcurrent(t *testing.T) {
	s := NewMemoryStorage()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := uint64(1); i <= 500; i++ {
			if err := s.Append([]raftpb.Entry{ent(i, 1)}); err != nil {
				t.Error(err)
				return
			}
			if i%100 == 0 {
				if err := s.Compact(i - 50); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range 500 {
			fi, _ := s.FirstIndex()
			li, _ := s.LastIndex()
			if _, err := s.Entries(fi, li+1, ^uint64(0)); err != nil &&
				!errors.Is(err, ErrCompacted) && !errors.Is(err, ErrUnavailable) {
				t.Error(err)
				return
			}
			_, _ = s.Term(li)
		}
	}()
	wg.Wait()
}

func TestMemoryStorageAsLogStorage(t *testing.T) {
	s := NewMemoryStorage()
	var ls LogStorage = s
	ents := []raftpb.Entry{{Term: 1, Index: 1}, {Term: 1, Index: 2}, {Term: 2, Index: 3}}
	if err := ls.Append(ents); err != nil {
		t.Fatal(err)
	}
	if err := ls.TruncatePrefix(3); err != nil {
		t.Fatal(err)
	}
	if first, _ := ls.FirstIndex(); first != 3 {
		t.Fatalf("first index %d after TruncatePrefix(3), want 3", first)
	}
	if term, err := ls.Term(2); err != nil || term != 1 {
		t.Fatalf("Term(2) = %d, %v; want 1 (the entry before the first)", term, err)
	}
	if err := ls.TruncatePrefix(2); err != nil {
		t.Fatalf("repeating a lower prefix truncation: %v", err)
	}
	if err := ls.Reset(10, 4); err != nil {
		t.Fatal(err)
	}
	first, _ := ls.FirstIndex()
	last, _ := ls.LastIndex()
	term, _ := ls.Term(10)
	if first != 11 || last != 10 || term != 4 {
		t.Fatalf("after Reset(10, 4): first %d last %d term %d", first, last, term)
	}
}

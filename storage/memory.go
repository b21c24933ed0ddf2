package storage

import (
	"fmt"
	"slices"
	"sync"

	"github.com/raftkit/raftkit/raftpb"
)

// MemoryStorage is a LogReader that keeps one group's log, hard state,
// configuration and latest snapshot metadata in memory, together with the
// write methods the runtime uses to apply a Ready.
//
// It is meant for tests, examples and the simulator: "durable" here means
// "written to this value". The simulator models a crash by keeping the
// MemoryStorage (or a Clone of it) and dropping everything else.
//
// Concurrency: every method is safe for concurrent use.
//
// Ownership: slices returned by Entries are clipped to their length and the
// storage never writes into a backing array once it has handed out a view of
// it, so a caller may hold and even append to them. Entry.Data byte slices are
// shared, not copied, on Append and Entries: by convention nobody mutates an
// entry's payload once it is in a log. Clone copies them.
type MemoryStorage struct {
	mu sync.Mutex

	hs raftpb.HardState
	// cs is the configuration in force at the end of the log, returned by
	// InitialState.
	cs raftpb.ConfState
	// snap describes the compacted prefix: entries up to and including
	// snap.Index are gone.
	snap raftpb.SnapshotMeta
	// ents holds the log after the snapshot.
	// Invariant: ents[i].Index == snap.Index+1+i.
	ents []raftpb.Entry
}

var _ LogReader = (*MemoryStorage)(nil)

// NewMemoryStorage returns an empty storage: FirstIndex 1, LastIndex 0,
// Term(0) = 0, an empty HardState and an empty configuration.
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{}
}

// NewMemoryStorageWithConf returns the storage of a fresh group bootstrapped
// with configuration cs: an empty log whose snapshot metadata is
// {Index: 0, Term: 0, ConfState: cs} and whose InitialState reports cs.
func NewMemoryStorageWithConf(cs raftpb.ConfState) *MemoryStorage {
	return &MemoryStorage{
		cs:   cs.Clone(),
		snap: raftpb.SnapshotMeta{ConfState: cs.Clone()},
	}
}

// InitialState returns the stored HardState and the configuration set by
// SetConfState, ApplySnapshot or NewMemoryStorageWithConf. It never fails.
func (s *MemoryStorage) InitialState() (raftpb.HardState, raftpb.ConfState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hs, s.cs.Clone(), nil
}

// Entries returns the entries in [lo, hi), bounded by maxBytes of
// raftpb.Entry.Size but always at least one entry when lo < hi. It returns
// ErrCompacted when lo <= the snapshot index and ErrUnavailable when
// hi > LastIndex()+1; an empty range (lo == hi) inside the log returns nil.
func (s *MemoryStorage) Entries(lo, hi, maxBytes uint64) ([]raftpb.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lo <= s.snap.Index {
		return nil, ErrCompacted
	}
	if hi > s.lastIndex()+1 {
		return nil, fmt.Errorf("%w: entries [%d, %d) past last index %d", ErrUnavailable, lo, hi, s.lastIndex())
	}
	if lo > hi {
		return nil, fmt.Errorf("storage: invalid range [%d, %d)", lo, hi)
	}
	if lo == hi {
		return nil, nil
	}
	off := s.snap.Index + 1
	ents := s.ents[lo-off : hi-off]
	size := ents[0].Size()
	n := 1
	for n < len(ents) {
		size += ents[n].Size()
		if size > maxBytes {
			break
		}
		n++
	}
	return ents[:n:n], nil
}

// Term returns the term of entry i: the snapshot's term for i equal to the
// snapshot index, ErrCompacted below it and ErrUnavailable past LastIndex.
func (s *MemoryStorage) Term(i uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case i < s.snap.Index:
		return 0, ErrCompacted
	case i == s.snap.Index:
		return s.snap.Term, nil
	case i > s.lastIndex():
		return 0, ErrUnavailable
	}
	return s.ents[i-s.snap.Index-1].Term, nil
}

// FirstIndex returns the snapshot index plus one. It never fails.
func (s *MemoryStorage) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap.Index + 1, nil
}

// LastIndex returns the index of the last entry, or the snapshot index when
// the log after it is empty. It never fails.
func (s *MemoryStorage) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastIndex(), nil
}

func (s *MemoryStorage) lastIndex() uint64 { return s.snap.Index + uint64(len(s.ents)) }

// Snapshot returns the metadata of the latest snapshot (installed by
// ApplySnapshot or recorded by Compact). It never fails.
func (s *MemoryStorage) Snapshot() (raftpb.SnapshotMeta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	meta := s.snap
	meta.ConfState = s.snap.ConfState.Clone()
	return meta, nil
}

// SetHardState records hs as the durable hard state.
func (s *MemoryStorage) SetHardState(hs raftpb.HardState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hs = hs
}

// SetConfState records cs as the configuration InitialState returns.
func (s *MemoryStorage) SetConfState(cs raftpb.ConfState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cs = cs.Clone()
}

// Append writes ents, which must have consecutive indexes, replacing every
// entry at or after ents[0].Index. The part of ents at or below the snapshot
// index is ignored (it is already compacted). It is an error for ents[0] to
// leave a gap after LastIndex, or for ents not to be consecutive. An empty
// ents is a no-op. The slice is copied; the payloads are shared.
func (s *MemoryStorage) Append(ents []raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	for i := 1; i < len(ents); i++ {
		if ents[i].Index != ents[i-1].Index+1 {
			return fmt.Errorf("storage: appended entries not consecutive: index %d follows %d",
				ents[i].Index, ents[i-1].Index)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.snap.Index + 1
	if last := ents[len(ents)-1].Index; last < first {
		return nil // entirely compacted
	}
	if ents[0].Index < first {
		ents = ents[first-ents[0].Index:]
	}
	if ents[0].Index > s.lastIndex()+1 {
		return fmt.Errorf("storage: append at index %d leaves a gap after last index %d",
			ents[0].Index, s.lastIndex())
	}
	keep := ents[0].Index - first
	if keep < uint64(len(s.ents)) {
		// Truncating: views of the old array may be held by callers of
		// Entries, so never overwrite it; start a fresh array.
		fresh := make([]raftpb.Entry, keep, keep+uint64(len(ents)))
		copy(fresh, s.ents[:keep])
		s.ents = fresh
	}
	s.ents = append(s.ents, ents...)
	return nil
}

// ApplySnapshot replaces the whole log with the snapshot described by meta:
// afterwards FirstIndex is meta.Index+1, LastIndex is meta.Index, Term of
// meta.Index is meta.Term and InitialState reports meta.ConfState. The hard
// state is left alone (the runtime persists the Ready's HardState next). It
// returns ErrSnapshotOutOfDate if meta is older than the snapshot held.
func (s *MemoryStorage) ApplySnapshot(meta raftpb.SnapshotMeta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if meta.Index < s.snap.Index {
		return fmt.Errorf("%w: applying %d/%d over %d/%d", ErrSnapshotOutOfDate,
			meta.Term, meta.Index, s.snap.Term, s.snap.Index)
	}
	s.snap = meta
	s.snap.ConfState = meta.ConfState.Clone()
	s.cs = meta.ConfState.Clone()
	s.ents = nil
	return nil
}

// Compact discards the entries up to and including index and records a
// snapshot at index with that entry's term and the current configuration.
// It returns ErrCompacted if index is at or below the snapshot index already
// held and an error wrapping ErrUnavailable if index is past LastIndex.
func (s *MemoryStorage) Compact(index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index <= s.snap.Index {
		return ErrCompacted
	}
	if index > s.lastIndex() {
		return fmt.Errorf("%w: compact %d past last index %d", ErrUnavailable, index, s.lastIndex())
	}
	off := index - s.snap.Index // entries to drop
	term := s.ents[off-1].Term
	// Copy the rest so the dropped prefix can be collected; held views of
	// the old array stay intact.
	s.ents = slices.Clone(s.ents[off:])
	s.snap = raftpb.SnapshotMeta{Index: index, Term: term, ConfState: s.cs.Clone()}
	return nil
}

// Clone returns a deep copy of s: log entries and their payloads, hard state,
// configuration and snapshot metadata. Later writes to either copy do not
// affect the other.
func (s *MemoryStorage) Clone() *MemoryStorage {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &MemoryStorage{
		hs:   s.hs,
		cs:   s.cs.Clone(),
		snap: s.snap,
	}
	c.snap.ConfState = s.snap.ConfState.Clone()
	if len(s.ents) > 0 {
		c.ents = make([]raftpb.Entry, len(s.ents))
		for i, e := range s.ents {
			e.Data = slices.Clone(e.Data)
			c.ents[i] = e
		}
	}
	return c
}

var _ LogStorage = (*MemoryStorage)(nil)

// TruncatePrefix implements LogStorage: it discards the entries before
// index, as Compact(index-1) does. Truncating at or below the first index is
// a no-op, as the LogStorage contract allows repeating it.
//
// Concurrency: safe for concurrent use.
func (s *MemoryStorage) TruncatePrefix(index uint64) error {
	first, _ := s.FirstIndex()
	if index <= first {
		return nil
	}
	return s.Compact(index - 1)
}

// Reset implements LogStorage: the log restarts after (index, term) with the
// current configuration, as if a snapshot there had been installed.
//
// Concurrency: safe for concurrent use.
func (s *MemoryStorage) Reset(index, term uint64) error {
	s.mu.Lock()
	cs := s.cs.Clone()
	s.mu.Unlock()
	return s.ApplySnapshot(raftpb.SnapshotMeta{Index: index, Term: term, ConfState: cs})
}

package logengine

import (
	"fmt"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// GroupLog is one group's log inside an Engine; it implements
// storage.LogStorage. Reads see exactly the writes whose done (or whose
// Append, TruncatePrefix or Reset call) has completed successfully.
//
// Concurrency: every method is safe for concurrent use. Reads run
// concurrently with each other and with the engine's writer; writes of one
// group should be issued in order by one goroutine at a time, as
// storage.LogStorage requires. After the engine fails or is closed every
// method returns the failure or ErrClosed.
type GroupLog struct {
	e *Engine
	g *group
}

var _ storage.LogStorage = (*GroupLog)(nil)

// ID returns the group's id.
func (l *GroupLog) ID() uint64 { return l.g.id }

// FirstIndex returns the index of the first entry held (1 for a fresh
// group, the snapshot index plus one after TruncatePrefix or Reset).
func (l *GroupLog) FirstIndex() (uint64, error) {
	if err := l.e.check(); err != nil {
		return 0, err
	}
	l.e.mu.RLock()
	defer l.e.mu.RUnlock()
	return l.g.first, nil
}

// LastIndex returns the index of the last entry held, or FirstIndex()-1
// when the log is empty.
func (l *GroupLog) LastIndex() (uint64, error) {
	if err := l.e.check(); err != nil {
		return 0, err
	}
	l.e.mu.RLock()
	defer l.e.mu.RUnlock()
	return l.g.last(), nil
}

// Term returns the term of entry i; for i == FirstIndex()-1, the term of
// the snapshot the log starts after (0 for a fresh group). It returns
// storage.ErrCompacted below that and storage.ErrUnavailable past
// LastIndex. It never reads the disk.
func (l *GroupLog) Term(i uint64) (uint64, error) {
	if err := l.e.check(); err != nil {
		return 0, err
	}
	l.e.mu.RLock()
	defer l.e.mu.RUnlock()
	g := l.g
	switch {
	case i < g.first-1:
		return 0, storage.ErrCompacted
	case i > g.last():
		return 0, storage.ErrUnavailable
	}
	return g.term(i), nil
}

// Entries returns the entries in [lo, hi), stopping once their total
// raftpb.Entry.Size would exceed maxBytes but returning at least one entry
// when lo < hi. It returns storage.ErrCompacted if lo < FirstIndex() and an
// error wrapping storage.ErrUnavailable if hi > LastIndex()+1. Each call
// preads only the entries it returns, coalescing neighbours on disk into
// one read; the returned entries and their Data belong to the caller.
func (l *GroupLog) Entries(lo, hi, maxBytes uint64) ([]raftpb.Entry, error) {
	if err := l.e.check(); err != nil {
		return nil, err
	}
	e := l.e
	e.mu.RLock()
	defer e.mu.RUnlock()
	g := l.g
	if lo < g.first {
		return nil, storage.ErrCompacted
	}
	if hi > g.last()+1 {
		return nil, fmt.Errorf("%w: entries [%d, %d) past last index %d", storage.ErrUnavailable, lo, hi, g.last())
	}
	if lo > hi {
		return nil, fmt.Errorf("logengine: invalid range [%d, %d)", lo, hi)
	}
	if lo == hi {
		return nil, nil
	}
	locs := g.ents[lo-g.first : hi-g.first]
	size := uint64(locs[0].dlen) + entryOverhead
	n := 1
	for n < len(locs) {
		size += uint64(locs[n].dlen) + entryOverhead
		if size > maxBytes {
			break
		}
		n++
	}
	locs = locs[:n]
	out := make([]raftpb.Entry, n)
	for i := 0; i < n; {
		// One read per run of entries contiguous in one segment.
		first := locs[i]
		end, j := int64(first.off)+int64(first.encLen()), i+1
		for j < n && locs[j].seq == first.seq && int64(locs[j].off) == end {
			end += int64(locs[j].encLen())
			j++
		}
		s := e.segs[first.seq]
		if s == nil {
			return nil, fmt.Errorf("logengine: group %d: segment %d of entry %d is gone", g.id, first.seq, lo+uint64(i))
		}
		if s.rf == nil {
			return nil, ErrClosed
		}
		buf := make([]byte, end-int64(first.off))
		if n, err := s.rf.ReadAt(buf, int64(first.off)); n < len(buf) {
			return nil, fmt.Errorf("logengine: read %s at %d: %d of %d bytes: %w", s.name, first.off, n, len(buf), err)
		}
		at := 0
		for ; i < j; i++ {
			sz := int(locs[i].encLen())
			ent, err := decodeEntryAt(buf[at:at+sz], locs[i].term, locs[i].dlen)
			if err != nil {
				return nil, fmt.Errorf("logengine: %s at offset %d: %w", s.name, locs[i].off, err)
			}
			ent.Index = lo + uint64(i)
			out[i] = ent
			at += sz
		}
	}
	return out, nil
}

// entryOverhead mirrors raftpb.Entry.Size's fixed part, so maxBytes is
// applied without reading the disk.
var entryOverhead = func() uint64 { var e raftpb.Entry; return e.Size() }()

// Append makes ents durable after the entries before ents[0].Index,
// discarding the group's entries at or after it; it returns once they are
// durable (sharing an fsync with other groups' writes). ents[0].Index must
// be in [FirstIndex, LastIndex+1] and ents consecutive, or Append returns
// an error (wrapping storage.ErrCompacted or storage.ErrUnavailable for
// the bounds) and writes nothing. An empty ents is a no-op.
func (l *GroupLog) Append(ents []raftpb.Entry) error {
	if len(ents) == 0 {
		return l.e.check()
	}
	return l.e.do(Write{Group: l.g.id, Entries: ents})
}

// TruncatePrefix discards the entries before index and returns once that is
// durable. index at or below FirstIndex is a no-op; past LastIndex+1 it is
// an error wrapping storage.ErrUnavailable.
func (l *GroupLog) TruncatePrefix(index uint64) error {
	if index == 0 {
		return l.e.check()
	}
	return l.e.do(Write{Group: l.g.id, TruncatePrefix: index})
}

// Reset discards the whole log and restarts it after a snapshot whose last
// entry is (index, term): FirstIndex becomes index+1 and Term(index) returns
// term. Durable on return.
func (l *GroupLog) Reset(index, term uint64) error {
	return l.e.do(Write{Group: l.g.id, Reset: &ResetTo{Index: index, Term: term}})
}

package core

import "github.com/raftkit/raftkit/raftpb"

// unstable holds the log entries, and possibly a snapshot, that are not yet
// known to be durable. The runtime learns of them through Ready and reports
// them durable through Advance.
//
// Invariants:
//   - entries[i] has index offset+i.
//   - Every index below offset is durable in storage (or covered by snapshot,
//     which is then the pending snapshot at offset-1).
//   - offset <= offsetInProgress <= offset+len(entries): entries below
//     offsetInProgress have been handed to the runtime and await Advance.
type unstable struct {
	snapshot           *raftpb.SnapshotMeta
	snapshotInProgress bool

	entries          []raftpb.Entry
	offset           uint64
	offsetInProgress uint64

	// epoch counts the rewrites of the unstable tail: overwrites of entries
	// and snapshot restores. A Ready records the epoch it was taken in, and
	// Advance marks its entries durable only if no rewrite happened since.
	// Matching (index, term) alone is not enough: a tail can be overwritten
	// and then rewritten with the very same entries by a later leader while
	// that newer write is still in flight, and the older Ready's durability
	// says nothing about it. Skipping is safe: the Ready that carries the
	// rewrite is persisted after the older one and marks the tail durable.
	epoch uint64
}

// maybeFirstIndex returns the first index of the log if a pending snapshot
// determines it.
func (u *unstable) maybeFirstIndex() (uint64, bool) {
	if u.snapshot != nil {
		return u.snapshot.Index + 1, true
	}
	return 0, false
}

// maybeLastIndex returns the last index of the log if the unstable part
// determines it.
func (u *unstable) maybeLastIndex() (uint64, bool) {
	if n := len(u.entries); n != 0 {
		return u.offset + uint64(n) - 1, true
	}
	if u.snapshot != nil {
		return u.snapshot.Index, true
	}
	return 0, false
}

// maybeTerm returns the term of entry i if the unstable part holds it.
func (u *unstable) maybeTerm(i uint64) (uint64, bool) {
	if i < u.offset {
		if u.snapshot != nil && u.snapshot.Index == i {
			return u.snapshot.Term, true
		}
		return 0, false
	}
	last, ok := u.maybeLastIndex()
	if !ok || i > last {
		return 0, false
	}
	return u.entries[i-u.offset].Term, true
}

// nextEntries returns the entries not yet handed to the runtime.
func (u *unstable) nextEntries() []raftpb.Entry {
	start := int(u.offsetInProgress - u.offset)
	if start == len(u.entries) {
		return nil
	}
	return u.entries[start:len(u.entries):len(u.entries)]
}

// nextSnapshot returns the pending snapshot if not yet handed out.
func (u *unstable) nextSnapshot() *raftpb.SnapshotMeta {
	if u.snapshot == nil || u.snapshotInProgress {
		return nil
	}
	return u.snapshot
}

// acceptInProgress marks everything pending as handed to the runtime.
func (u *unstable) acceptInProgress() {
	u.offsetInProgress = u.offset + uint64(len(u.entries))
	if u.snapshot != nil {
		u.snapshotInProgress = true
	}
}

// stableTo records that the log up to (i, t) is durable. If entry i has since
// been overwritten with a different term, the durable write is of entries that
// no longer exist here and nothing changes: the newer entries await their own
// Advance.
func (u *unstable) stableTo(i, t, epoch uint64) {
	if epoch != u.epoch {
		return
	}
	gt, ok := u.maybeTerm(i)
	if !ok || gt != t || i < u.offset {
		return
	}
	n := int(i + 1 - u.offset)
	u.entries = u.entries[n:]
	u.offset = i + 1
	u.offsetInProgress = max(u.offsetInProgress, u.offset)
	u.shrink()
}

// shrink releases the backing array once most of it is dead, so that a long
// run of appends does not pin memory forever.
func (u *unstable) shrink() {
	if len(u.entries) == 0 {
		u.entries = nil
		return
	}
	if c := cap(u.entries); c > 1024 && len(u.entries) < c/4 {
		ne := make([]raftpb.Entry, len(u.entries))
		copy(ne, u.entries)
		u.entries = ne
	}
}

// stableSnapTo records that the pending snapshot at index i is durable.
func (u *unstable) stableSnapTo(i uint64) {
	if u.snapshot != nil && u.snapshot.Index == i {
		u.snapshot = nil
		u.snapshotInProgress = false
	}
}

// restore replaces the unstable part with a snapshot to be installed.
func (u *unstable) restore(s raftpb.SnapshotMeta) {
	u.offset = s.Index + 1
	u.offsetInProgress = u.offset
	u.entries = nil
	u.snapshot = &s
	u.snapshotInProgress = false
	u.epoch++
}

// truncateAndAppend appends ents, first dropping any unstable entries at or
// after ents[0].Index. Callers guarantee ents[0].Index <= lastIndex+1.
func (u *unstable) truncateAndAppend(ents []raftpb.Entry) {
	from := ents[0].Index
	switch {
	case from == u.offset+uint64(len(u.entries)):
		u.entries = append(u.entries, ents...)
	case from <= u.offset:
		// Replacing everything unstable, and possibly durable entries at or
		// after from: the runtime truncates those when it appends these.
		u.entries = append([]raftpb.Entry(nil), ents...)
		u.offset = from
		u.offsetInProgress = u.offset
		u.epoch++
	default:
		kept := u.entries[:from-u.offset]
		u.entries = append(append(make([]raftpb.Entry, 0, len(kept)+len(ents)), kept...), ents...)
		u.offsetInProgress = min(u.offsetInProgress, from)
		u.epoch++
	}
}

// slice returns entries [lo, hi) from the unstable part; the caller checked
// that offset <= lo <= hi <= offset+len(entries).
func (u *unstable) slice(lo, hi uint64) []raftpb.Entry {
	return u.entries[lo-u.offset : hi-u.offset : hi-u.offset]
}

package core

import (
	"errors"
	"fmt"
	"sort"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// raftLog is the core's view of the replicated log: durable entries read
// from storage followed by the unstable tail not yet known durable.
//
// Invariant: applied <= applying <= committed <= lastIndex().
// Invariant: committed entries are never truncated.
type raftLog struct {
	storage  storage.LogReader
	unstable unstable

	// committed is the highest index known to be durable on a quorum.
	committed uint64
	// applying is the highest index handed out for application.
	applying uint64
	// applied is the highest index the runtime reported applied.
	applied uint64

	maxApplyBytes uint64
	// maxApplyingBytes bounds the payload handed out for application and
	// not yet reported applied, so that a slow state machine cannot make the
	// runtime queue committed entries without bound; 0 is unbounded.
	// applyingBytes is that payload now; applyMarks records it per batch
	// handed out, oldest first, to release it as AppliedTo passes them.
	maxApplyingBytes uint64
	applyingBytes    uint64
	applyMarks       []applyMark

	// onAppend, when set, sees every batch of entries just appended:
	// ents[0].Index is where the log was cut if it held entries there. The
	// core follows configuration entries through it (membership.go).
	onAppend func(ents []raftpb.Entry)
}

// applyMark is one batch of committed entries handed out: its last index
// and its payload.
type applyMark struct{ last, bytes uint64 }

func newRaftLog(st storage.LogReader, maxApplyBytes uint64) (*raftLog, error) {
	first, err := st.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("core: reading first index: %w", err)
	}
	last, err := st.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("core: reading last index: %w", err)
	}
	if last+1 < first {
		return nil, fmt.Errorf("core: storage last index %d precedes first index %d", last, first)
	}
	l := &raftLog{storage: st, maxApplyBytes: maxApplyBytes}
	l.unstable.offset = last + 1
	l.unstable.offsetInProgress = last + 1
	// The snapshot is committed and applied by definition.
	l.committed = first - 1
	l.applying = first - 1
	l.applied = first - 1
	return l, nil
}

// mustStorage panics on a storage failure the core cannot act on. The
// runtime turns such a panic into a group error state; the core never carries
// on over a log it cannot read.
func mustStorage(err error) {
	if err != nil {
		panic(fmt.Errorf("core: storage failed: %w", err))
	}
}

func (l *raftLog) firstIndex() uint64 {
	if i, ok := l.unstable.maybeFirstIndex(); ok {
		return i
	}
	i, err := l.storage.FirstIndex()
	mustStorage(err)
	return i
}

func (l *raftLog) lastIndex() uint64 {
	if i, ok := l.unstable.maybeLastIndex(); ok {
		return i
	}
	i, err := l.storage.LastIndex()
	mustStorage(err)
	return i
}

// durableIndex is the last index known durable locally and matching this
// log. While a snapshot awaits persistence nothing new is durable.
func (l *raftLog) durableIndex() uint64 {
	if l.unstable.snapshot != nil {
		return 0
	}
	return l.unstable.offset - 1
}

// term returns the term of entry i; the entry just before firstIndex (the
// snapshot's) is answered too. ErrCompacted and ErrUnavailable pass through.
func (l *raftLog) term(i uint64) (uint64, error) {
	if t, ok := l.unstable.maybeTerm(i); ok {
		return t, nil
	}
	if i+1 < l.firstIndex() {
		return 0, storage.ErrCompacted
	}
	if i > l.lastIndex() {
		return 0, storage.ErrUnavailable
	}
	t, err := l.storage.Term(i)
	if err != nil && !errors.Is(err, storage.ErrCompacted) && !errors.Is(err, storage.ErrUnavailable) {
		mustStorage(err)
	}
	return t, err
}

// termOrZero is term for callers where a missing entry simply does not match.
func (l *raftLog) termOrZero(i uint64) uint64 {
	t, err := l.term(i)
	if err != nil {
		return 0
	}
	return t
}

func (l *raftLog) lastTerm() uint64 {
	t, err := l.term(l.lastIndex())
	mustStorage(err)
	return t
}

func (l *raftLog) matchTerm(i, t uint64) bool {
	gt, err := l.term(i)
	return err == nil && gt == t
}

// isUpToDate reports whether a log ending at (lasti, term) is at least as
// up to date as this one (Raft §5.4.1): later last term wins, then length.
func (l *raftLog) isUpToDate(lasti, term uint64) bool {
	lt := l.lastTerm()
	return term > lt || (term == lt && lasti >= l.lastIndex())
}

// maybeAppend appends ents, which follow (prevIndex, prevTerm), if this log
// holds that entry. It returns the index of the last entry the message vouches
// for, and whether the append was accepted.
func (l *raftLog) maybeAppend(prevIndex, prevTerm, committed uint64, ents []raftpb.Entry) (uint64, bool) {
	if !l.matchTerm(prevIndex, prevTerm) {
		return 0, false
	}
	lastNew := prevIndex + uint64(len(ents))
	if ci := l.findConflict(ents); ci != 0 {
		if ci <= l.committed {
			panic(fmt.Sprintf("core: entry %d conflicts with committed entry (committed %d)", ci, l.committed))
		}
		l.append(ents[ci-ents[0].Index:])
	}
	l.commitTo(min(committed, lastNew))
	return lastNew, true
}

// findConflict returns the index of the first entry of ents that this log
// lacks or holds with another term, or 0 if it holds all of them.
func (l *raftLog) findConflict(ents []raftpb.Entry) uint64 {
	for i := range ents {
		if !l.matchTerm(ents[i].Index, ents[i].Term) {
			return ents[i].Index
		}
	}
	return 0
}

// append adds ents to the tail, truncating conflicting uncommitted entries.
func (l *raftLog) append(ents []raftpb.Entry) uint64 {
	if len(ents) == 0 {
		return l.lastIndex()
	}
	if after := ents[0].Index - 1; after < l.committed {
		panic(fmt.Sprintf("core: append after %d is below committed %d", after, l.committed))
	}
	l.unstable.truncateAndAppend(ents)
	if l.onAppend != nil {
		l.onAppend(ents)
	}
	return l.lastIndex()
}

func (l *raftLog) commitTo(c uint64) {
	if c <= l.committed {
		return
	}
	if last := l.lastIndex(); c > last {
		panic(fmt.Sprintf("core: commit %d beyond last index %d", c, last))
	}
	l.committed = c
}

// firstIndexOfTerm returns the first index in [lo, hi] whose term is at
// least t. Terms never decrease along a log, so a binary search suffices.
func (l *raftLog) firstIndexOfTerm(lo, hi, t uint64) uint64 {
	n := sort.Search(int(hi-lo+1), func(k int) bool { return l.termOrZero(lo+uint64(k)) >= t })
	return lo + uint64(n)
}

// lastIndexAtOrBelowTerm returns the largest index in [firstIndex-1, hi]
// whose term is at most t, and that term. ok is false when none is known.
func (l *raftLog) lastIndexAtOrBelowTerm(hi, t uint64) (idx, term uint64, ok bool) {
	lo := l.firstIndex() - 1
	if hi < lo {
		return 0, 0, false
	}
	hi = min(hi, l.lastIndex())
	// Search the first index whose term exceeds t; the one before it is the
	// answer.
	n := sort.Search(int(hi-lo+1), func(k int) bool {
		gt, err := l.term(lo + uint64(k))
		return err != nil || gt > t
	})
	if n == 0 {
		return 0, 0, false
	}
	idx = lo + uint64(n) - 1
	term, err := l.term(idx)
	if err != nil {
		return 0, 0, false
	}
	return idx, term, true
}

// slice returns entries [lo, hi) bounded by maxBytes (at least one entry).
// ErrCompacted is returned when lo is no longer held.
func (l *raftLog) slice(lo, hi, maxBytes uint64) ([]raftpb.Entry, error) {
	if lo >= hi {
		return nil, nil
	}
	if lo < l.firstIndex() {
		return nil, storage.ErrCompacted
	}
	if last := l.lastIndex(); hi > last+1 {
		panic(fmt.Sprintf("core: slice [%d,%d) beyond last index %d", lo, hi, last))
	}
	var ents []raftpb.Entry
	if lo < l.unstable.offset {
		stableHi := min(hi, l.unstable.offset)
		stored, err := l.storage.Entries(lo, stableHi, maxBytes)
		if errors.Is(err, storage.ErrCompacted) {
			return nil, err
		}
		mustStorage(err)
		if uint64(len(stored)) < stableHi-lo {
			return stored, nil // the byte limit was reached within storage
		}
		ents = stored
	}
	if hi > l.unstable.offset {
		tail := l.unstable.slice(max(lo, l.unstable.offset), hi)
		if len(ents) == 0 {
			ents = tail
		} else {
			ents = append(append(make([]raftpb.Entry, 0, len(ents)+len(tail)), ents...), tail...)
		}
	}
	return limitSize(ents, maxBytes), nil
}

// limitSize trims ents to those whose cumulative size fits maxBytes, keeping
// at least one.
func limitSize(ents []raftpb.Entry, maxBytes uint64) []raftpb.Entry {
	if len(ents) == 0 {
		return ents
	}
	size := ents[0].Size()
	for i := 1; i < len(ents); i++ {
		size += ents[i].Size()
		if size > maxBytes {
			return ents[:i]
		}
	}
	return ents
}

// hasNextCommittedEnts reports whether committed entries are ready to hand
// out: committed beyond applying, and durable here.
func (l *raftLog) hasNextCommittedEnts() bool {
	return l.applying < l.maxAppliable() && l.applyRoom()
}

// applyRoom reports whether the apply budget admits another batch.
func (l *raftLog) applyRoom() bool {
	return l.maxApplyingBytes == 0 || l.applyingBytes < l.maxApplyingBytes
}

// maxAppliable is the highest index that may be handed out for application:
// committed, durable locally so that applying never runs ahead of what a
// restart would find.
func (l *raftLog) maxAppliable() uint64 {
	if l.unstable.snapshot != nil {
		return 0
	}
	return min(l.committed, l.unstable.offset-1)
}

// nextCommittedEnts returns the next batch to apply, bounded by
// maxApplyBytes and by what is left of the apply budget (at least one
// entry goes while the budget is not exhausted).
func (l *raftLog) nextCommittedEnts() []raftpb.Entry {
	hi := l.maxAppliable()
	if l.applying >= hi || !l.applyRoom() {
		return nil
	}
	maxBytes := l.maxApplyBytes
	if l.maxApplyingBytes > 0 {
		maxBytes = min(maxBytes, l.maxApplyingBytes-l.applyingBytes)
	}
	ents, err := l.slice(l.applying+1, hi+1, maxBytes)
	mustStorage(err)
	if l.maxApplyingBytes > 0 && len(ents) > 0 {
		var b uint64
		for i := range ents {
			b += ents[i].Size()
		}
		l.applyingBytes += b
		l.applyMarks = append(l.applyMarks, applyMark{last: ents[len(ents)-1].Index, bytes: b})
	}
	return ents
}

func (l *raftLog) appliedTo(i uint64) {
	if i > l.committed {
		panic(fmt.Sprintf("core: applied %d beyond committed %d", i, l.committed))
	}
	if i > l.applied {
		l.applied = i
		l.applying = max(l.applying, i)
	}
	k := 0
	for k < len(l.applyMarks) && l.applyMarks[k].last <= i {
		l.applyingBytes -= l.applyMarks[k].bytes
		k++
	}
	if k > 0 {
		l.applyMarks = append(l.applyMarks[:0], l.applyMarks[k:]...)
	}
}

// restore replaces the log with a snapshot that covers more than it holds.
func (l *raftLog) restore(s raftpb.SnapshotMeta) {
	l.committed = s.Index
	l.applying = max(l.applying, s.Index)
	l.unstable.restore(s)
}

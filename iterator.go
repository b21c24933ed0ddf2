package raftkit

import "github.com/raftkit/raftkit/raftpb"

// Iterator walks one batch of committed entries for StateMachine.Apply.
// Only entries carrying task data are shown; the no-op and configuration
// entries raft writes for itself are skipped.
//
// Concurrency: valid only inside the Apply call it was passed to.
type Iterator struct {
	ents []raftpb.Entry
	futs []*Future
	vals []any
	errs []error
	pos  int
}

func (it *Iterator) reset(ents []raftpb.Entry, futs []*Future) {
	it.ents, it.futs, it.pos = ents, futs, -1
	it.vals = append(it.vals[:0], make([]any, len(ents))...)
	it.errs = append(it.errs[:0], make([]error, len(ents))...)
}

// Next moves to the next task entry and reports whether there is one.
func (it *Iterator) Next() bool {
	for it.pos+1 < len(it.ents) {
		it.pos++
		if it.ents[it.pos].Type == raftpb.EntryNormal {
			return true
		}
	}
	it.pos = len(it.ents)
	return false
}

func (it *Iterator) cur() *raftpb.Entry {
	if it.pos < 0 || it.pos >= len(it.ents) {
		panic("raftkit: Iterator used before Next or after it returned false")
	}
	return &it.ents[it.pos]
}

// Index is the log index of the current entry.
func (it *Iterator) Index() uint64 { return it.cur().Index }

// Term is the term of the current entry.
func (it *Iterator) Term() uint64 { return it.cur().Term }

// Data is the current entry's payload, the Task's Data. The state machine
// must not modify it; it may keep it.
func (it *Iterator) Data() []byte { return it.cur().Data }

// Proposed reports whether the current entry's task was submitted through
// this node, so that its Future or Done callback will receive the result.
// This is the Go form of SOFAJRaft's Iterator.done() != null.
func (it *Iterator) Proposed() bool { it.cur(); return it.futs != nil && it.futs[it.pos] != nil }

// SetResult records the outcome of the current entry for its task: value
// becomes Result.Value and err Result.Err. A task error is the state
// machine's deterministic verdict on this command (for example, invalid
// input); the entry still counts as applied and the group stays healthy.
// On nodes that did not propose the entry it has no effect.
func (it *Iterator) SetResult(value any, err error) {
	it.cur()
	it.vals[it.pos], it.errs[it.pos] = value, err
}

// consumed reports whether Apply walked the whole batch.
func (it *Iterator) consumed() bool {
	for i := it.pos + 1; i < len(it.ents); i++ {
		if it.ents[i].Type == raftpb.EntryNormal {
			return false
		}
	}
	return true
}

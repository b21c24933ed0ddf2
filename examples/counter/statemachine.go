package counter

import (
	"sync/atomic"

	"github.com/raftkit/raftkit"
)

// StateMachine is the replicated counter.
//
// Concurrency: raftkit calls Apply and the callbacks from the group's apply
// loop; Value is safe for concurrent use.
type StateMachine struct {
	raftkit.BaseStateMachine
	value   atomic.Int64
	applied atomic.Uint64
}

// Apply runs increments and reads in log order. A malformed command gets an
// error result for its task (every replica rejects it alike); the counter
// itself never fails.
func (sm *StateMachine) Apply(it *raftkit.Iterator) error {
	for it.Next() {
		o, delta, err := decodeCommand(it.Data())
		switch {
		case err != nil:
			it.SetResult(nil, err)
		case o == opIncrement:
			it.SetResult(sm.value.Add(delta), nil)
		default:
			it.SetResult(sm.value.Load(), nil)
		}
		sm.applied.Store(it.Index())
	}
	return nil
}

// Value is the counter as this replica has applied it (not linearizable;
// use a Get through the log for that).
func (sm *StateMachine) Value() int64 { return sm.value.Load() }

// AppliedIndex is the index of the last command applied.
func (sm *StateMachine) AppliedIndex() uint64 { return sm.applied.Load() }

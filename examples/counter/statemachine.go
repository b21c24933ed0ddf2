package counter

import (
	"encoding/binary"
	"fmt"
	"io"
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

// snapshotFile holds the value as 8 bytes, big-endian.
const snapshotFile = "value"

var _ raftkit.Snapshotter = (*StateMachine)(nil)

// SaveSnapshot copies the value, which is the whole state: the copy is the
// point-in-time view, written out while later increments apply.
func (sm *StateMachine) SaveSnapshot() (raftkit.SnapshotSaveFunc, error) {
	v := sm.value.Load()
	return func(w *raftkit.SnapshotWriter) error {
		f, err := w.Create(snapshotFile)
		if err != nil {
			return err
		}
		if _, err := f.Write(binary.BigEndian.AppendUint64(nil, uint64(v))); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}, nil
}

// LoadSnapshot replaces the value with the snapshot's.
func (sm *StateMachine) LoadSnapshot(r *raftkit.SnapshotReader) error {
	f, err := r.Open(snapshotFile)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 9))
	if err != nil {
		return err
	}
	if len(b) != 8 {
		return fmt.Errorf("counter snapshot: value file of %d bytes, want 8", len(b))
	}
	sm.value.Store(int64(binary.BigEndian.Uint64(b)))
	sm.applied.Store(r.Info().Index)
	return nil
}

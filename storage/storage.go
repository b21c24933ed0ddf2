package storage

import (
	"errors"

	"github.com/raftkit/raftkit/raftpb"
)

var (
	// ErrCompacted is returned when a requested index precedes the first
	// index still held because a snapshot compacted it away.
	ErrCompacted = errors.New("storage: requested index is compacted")
	// ErrUnavailable is returned when a requested index is beyond the last
	// index held.
	ErrUnavailable = errors.New("storage: requested entry is unavailable")
	// ErrSnapshotOutOfDate is returned when applying or creating a snapshot
	// older than the one already held.
	ErrSnapshotOutOfDate = errors.New("storage: snapshot is out of date")
	// ErrSnapshotTemporarilyUnavailable is returned by Snapshot when none is
	// ready yet; the caller retries later.
	ErrSnapshotTemporarilyUnavailable = errors.New("storage: snapshot temporarily unavailable")
)

// LogReader is the read view of one group's durable log that the Raft core
// consults. It holds only what the runtime has made durable (or, for entries
// not yet acknowledged durable, the core keeps its own copy and does not ask).
//
// Concurrency: the core calls these methods from the goroutine that owns it;
// an implementation shared with a writer goroutine must synchronize itself.
type LogReader interface {
	// InitialState returns the durable HardState and the configuration at
	// the start of the log: the latest snapshot's, or the one the group was
	// bootstrapped with. The core replays the configuration entries of the
	// log after it.
	InitialState() (raftpb.HardState, raftpb.ConfState, error)
	// Entries returns the entries in [lo, hi), stopping once their total
	// Size would exceed maxBytes but always returning at least one entry when
	// the range is non-empty. The caller must not modify the returned slice.
	// Errors: ErrCompacted if lo <= the snapshot index, ErrUnavailable if
	// hi > LastIndex()+1.
	Entries(lo, hi, maxBytes uint64) ([]raftpb.Entry, error)
	// Term returns the term of entry i. For i == FirstIndex()-1 it returns
	// the term of the snapshot's last entry. Errors: ErrCompacted below that,
	// ErrUnavailable above LastIndex().
	Term(i uint64) (uint64, error)
	// FirstIndex is the index of the first entry still held (the snapshot
	// index plus one).
	FirstIndex() (uint64, error)
	// LastIndex is the index of the last entry held, or the snapshot index
	// when no entry follows it.
	LastIndex() (uint64, error)
	// Snapshot returns the metadata of the most recent snapshot, or
	// ErrSnapshotTemporarilyUnavailable when one is being produced.
	Snapshot() (raftpb.SnapshotMeta, error)
}

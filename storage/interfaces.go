package storage

import "github.com/raftkit/raftkit/raftpb"

// LogStorage is one group's durable log. The runtime writes to it what the
// core's Ready says; the core reads it through a LogReader built on it.
//
// Concurrency: safe for concurrent use; writes of one group are issued in
// order by one goroutine at a time.
type LogStorage interface {
	// FirstIndex, LastIndex, Term and Entries behave as in LogReader.
	FirstIndex() (uint64, error)
	LastIndex() (uint64, error)
	Term(i uint64) (uint64, error)
	Entries(lo, hi, maxBytes uint64) ([]raftpb.Entry, error)

	// Append makes ents durable after the entries before ents[0].Index,
	// first discarding any entries at or after ents[0].Index (a conflicting
	// suffix). It returns once the entries are durable. ents must be
	// contiguous and ents[0].Index must be in [FirstIndex, LastIndex+1].
	Append(ents []raftpb.Entry) error
	// TruncatePrefix discards the entries before index, which a snapshot
	// covers. Entries at or after index are kept. It need not be durable at
	// once: after a crash the prefix may reappear, never the reverse.
	TruncatePrefix(index uint64) error
	// Reset discards the whole log and restarts it after a snapshot whose
	// last entry is (index, term): FirstIndex becomes index+1 and Term(index)
	// returns term. Durable on return.
	Reset(index, term uint64) error
}

// MetaStorage holds one group's HardState (term, vote, commit).
//
// Concurrency: safe for concurrent use.
type MetaStorage interface {
	// HardState returns the last HardState stored, or the zero value.
	HardState() (raftpb.HardState, error)
	// SetHardState stores hs durably: after SetHardState returns, a crash
	// never brings back an older term or vote.
	SetHardState(hs raftpb.HardState) error
}

// SnapshotStorage keeps one group's snapshots: each a directory of files
// written by the state machine plus its SnapshotMeta.
//
// Concurrency: safe for concurrent use.
type SnapshotStorage interface {
	// Create starts a new snapshot described by meta. Nothing is visible to
	// Latest or List until the writer is committed.
	Create(meta raftpb.SnapshotMeta) (SnapshotWriter, error)
	// Latest opens the newest committed snapshot, or returns
	// ErrSnapshotTemporarilyUnavailable when there is none.
	Latest() (SnapshotReader, error)
	// List returns the metas of the committed snapshots, oldest first.
	List() ([]raftpb.SnapshotMeta, error)
	// Delete removes the committed snapshot at index.
	Delete(index uint64) error
}

// SnapshotWriter is a snapshot being written. The state machine writes
// files into Dir, then the runtime calls Commit or Abort.
type SnapshotWriter interface {
	// Dir is the directory to write the snapshot's files into.
	Dir() string
	// Meta is the meta the snapshot was created with.
	Meta() raftpb.SnapshotMeta
	// Commit syncs the files, records a checksum of each, and makes the
	// snapshot visible atomically: a crash leaves either no snapshot or all
	// of it.
	Commit() error
	// Abort discards the snapshot.
	Abort() error
}

// VerifiedCommitter is implemented by snapshot writers that can commit
// files whose sizes and checksums the caller verified while writing them,
// without reading them back (FileSnapshots' writers do).
type VerifiedCommitter interface {
	CommitVerified(files []SnapshotFile) error
}

// SnapshotReader is a committed snapshot.
type SnapshotReader interface {
	Meta() raftpb.SnapshotMeta
	// Dir holds the snapshot's files; the reader must not modify them.
	Dir() string
	// Files lists the snapshot's files (names relative to Dir) with their
	// sizes and CRC32C checksums, as recorded at commit.
	Files() []SnapshotFile
	// Close releases the reader; the snapshot may be deleted afterwards.
	Close() error
}

// SnapshotFile describes one file of a committed snapshot.
type SnapshotFile struct {
	Name   string
	Size   int64
	CRC32C uint32
}

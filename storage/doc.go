// Package storage defines what raftkit needs from durable storage and provides
// in-memory implementations for tests and examples.
//
// LogReader is the read view the Raft core consults: entries, terms, the
// bounds of the log, the initial hard state and configuration, and the latest
// snapshot's metadata. Writes are never issued by the core; the runtime applies
// the core's Ready output to storage and then tells the core what is durable.
//
// LogStorage, MetaStorage and SnapshotStorage are what the runtime writes:
// the log of one group (the shared implementation is storage/logengine), its
// term and vote (FileMeta: atomic replace through a temp file, fsync, rename
// and a directory fsync), and its snapshots (FileSnapshots: one directory of
// files per snapshot plus a checksummed manifest, made visible by rename).
// All file access goes through the storage/vfs seam.
//
// The package owns the interfaces, the sentinel errors, the memory
// implementations and the file-backed meta and snapshot storage. It never
// starts goroutines and holds no package-level mutable state.
package storage

// Package storage defines what raftkit needs from durable storage and provides
// in-memory implementations for tests and examples.
//
// LogReader is the read view the Raft core consults: entries, terms, the
// bounds of the log, the initial hard state and configuration, and the latest
// snapshot's metadata. Writes are never issued by the core; the runtime applies
// the core's Ready output to storage and then tells the core what is durable.
//
// The package owns the interfaces, the sentinel errors and the memory
// implementations. It never starts goroutines and holds no package-level
// mutable state.
package storage

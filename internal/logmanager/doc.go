// Package logmanager is one raft group's view of its durable log: the
// storage.LogReader the core reads, built from the host's shared log
// engine, the group's meta storage and its configuration, with an in-memory
// tail cache bounded in bytes so that replication to followers that keep up
// never touches the disk.
//
// It owns the tail cache and the order of writes to the group's log. It
// never decides what to write (the core does, through Ready) and never
// waits for a write: appends complete through callbacks from the engine's
// writer goroutine.
package logmanager

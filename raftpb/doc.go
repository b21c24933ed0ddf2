// Package raftpb holds the data types that cross the boundary of the Raft core:
// log entries, messages between peers, the durable hard state, configurations and
// snapshot metadata.
//
// The package owns only plain values and their invariants. It never performs IO,
// never allocates goroutines, and holds no mutable package-level state. A binary
// codec for these types arrives with the transport; until then they are only
// passed by value inside one process.
package raftpb

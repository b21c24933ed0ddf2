// Package raftpb holds the data types that cross the boundary of the Raft core:
// log entries, messages between peers, the durable hard state, configurations and
// snapshot metadata.
//
// The package owns only plain values and their invariants. It never performs IO,
// never allocates goroutines, and holds no mutable package-level state. Message
// (with its Entries and snapshot meta) and HardState have hand-written, versioned
// binary encodings, MarshalAppend/Size/Unmarshal, which the TCP transport uses to
// carry them between processes; Message.MarshalAppend documents the wire format.
package raftpb

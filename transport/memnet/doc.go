// Package memnet is an in-process network for tests of the raftkit runtime:
// Endpoints implement transport.Transport between hosts of one process, with
// application services, and with faults (loss, partitions, isolation) drawn
// from a seeded random source.
//
// It mirrors the TCP transport's contract: Send deep-copies the message (it
// encodes it with the raftpb codec, and the receiver decodes its own copy),
// never blocks, and delivers asynchronously, in order per sender and
// receiver, from one goroutine per such pair, so a receiver's HandleRaft runs
// concurrently for different senders as it does over TCP. A HandleRaft error
// discards what that sender had queued for that receiver, as a TCP
// disconnect would. Network.Call mirrors tcp.Client.Call, errors included.
//
// Faults: a message is lost, with Send still returning true, at the drop
// rate; Send returns false (an unreachable peer) when the receiver does not
// exist, is closed, or is cut off from the sender by Partition or Isolate.
// Cuts also apply at delivery: what was queued before a cut is lost, not
// delivered late. The random source is drawn from in Send order, so a
// single-goroutine test replays exactly from its seed.
//
// The package owns delivery goroutines, fault state and service dispatch.
// It never touches the operating system's network, never sleeps, and never
// delays messages on purpose (the rafttest simulator covers timing).
package memnet

// Package rafttest simulates whole raftkit clusters deterministically and
// checks Raft's safety properties on them.
//
// # What it owns
//
// A Cluster runs the internal/core cores of N nodes (IDs 1..N, bootstrapped
// with voters 1..N) in one goroutine against a virtual clock:
//
//   - queue.go: the agenda, a heap of events ordered by (virtual time,
//     sequence number), with the messages in flight in a slab beside it.
//   - network.go: per-message random delay (which reorders), loss,
//     duplication, partitions and one-way cuts, checked when a message is
//     sent and again when it arrives; a cut link is sometimes reported to the
//     sender's core as unreachable. Messages are copied so that no two nodes
//     share an Entries array.
//   - node.go: the runtime side of the core.Ready protocol, exactly as its
//     documentation prescribes: Messages leave at once, CommittedEntries are
//     applied at once, and the Ready's writes become durable after a random
//     per-node fsync delay, FIFO per node; only then do MessagesAfterPersist
//     leave and Advance run. Each node has one storage.MemoryStorage, written
//     only when a write completes. A crash drops the core, its writes in
//     flight and its state machine; a restart builds a new core on the same
//     storage with Applied 0, so the state machine is rebuilt from index 1.
//   - checker.go: the invariants, checked incrementally at the operation
//     that could break them (so, in effect, after every event): election
//     safety, log matching, durable term and vote, no committed entry lost or
//     changed, leader completeness, state machine safety, applied entries
//     durable locally. The comment at the top of that file states each
//     precisely.
//   - trace.go: the trace, kept as plain structs in a ring and formatted only
//     for a failure report or a replay; Violation, the error of a failed run.
//   - cluster.go, faults.go: the Cluster API for scenario tests (NewCluster,
//     RunFor, RunUntil, Propose, Partition, Isolate, Cut, Heal, Crash,
//     Restart, SetDropRate, SetDupRate, SetDelay, SetFsync,
//     TransferLeadership, Campaign, and read-only views).
//   - chaos.go: Run, the randomized driver. From the seed it draws the
//     cluster size (3, 5 or 7) and, with Options.VaryCoreConfig, the core's
//     election timeout, PreVote, CheckQuorum and flow-control limits; then for
//     Options.Duration (200 s) it injects random faults (partitions, cuts,
//     crashes and restarts, loss, duplication, network and disk latency,
//     leadership transfers, forced campaigns) and proposes unique payloads;
//     then it heals everything, restarts every node and requires a fresh
//     proposal applied on all nodes within Options.LivenessTimeout (30 s).
//
// # What it never does
//
// No real time, no sleeping, no goroutines, no global randomness: every
// random choice is drawn, in event order, from PCG generators (math/rand/v2)
// seeded by Options.Seed, so a run is a pure function of its Options, and
// tracing a run does not change it. It never compacts logs, so no snapshot is
// ever expected; a Ready carrying one is reported as a failure. It does not
// model membership changes, disk corruption or torn writes: a Ready's writes
// become durable entirely or, if the node crashes first, not at all. It never
// modifies the core; when a run fails, the report says what was observed and
// deciding whether the core or the simulator is wrong is left to a human.
//
// # Replaying a failure
//
// Every failure is a *Violation naming the seed, the virtual time, the broken
// invariant and the last trace records, and ending with the command that
// replays it with a full trace:
//
//	go test ./rafttest -run 'TestRandomizedSafety' -rafttest.seed=N -v
//
// Other flags of TestRandomizedSafety: -rafttest.seeds=K runs K seeds (also
// the RAFTTEST_SEEDS environment variable; default 2000, 200 under -race, 100
// with -short), -rafttest.first=S starts the batch at seed S, and
// -rafttest.simtime=D sets the faulty period of each run.
package rafttest

// Package core is the deterministic Raft state machine of one group member:
// every protocol decision of raftkit is made here, and nothing else is.
//
// # What it owns
//
// Roles (follower, pre-candidate, candidate, leader, learner) with a handler
// table per role (step.go); elections with pre-vote, randomized timeouts and
// a leader lease that makes nodes that heard from a live leader refuse
// pre-votes (election.go); the leader's replication — one Progress per peer in
// Probe, Replicate (a pipeline bounded by an Inflights window of messages and
// bytes) or Snapshot state, AppendEntries batches bounded by entries and bytes,
// conflict-hint log repair, check quorum, commit by (joint) quorum (leader.go,
// and the tracker and quorum packages); the follower's side of appends,
// heartbeats and snapshots (follower.go); leadership transfer (transfer.go);
// and the log view of durable plus not-yet-durable entries (log.go,
// log_unstable.go).
//
// # What it never does
//
// No IO, no goroutines, no clock, no global randomness: time arrives as Tick
// calls, randomness from Config.Rand, storage is only read through
// storage.LogReader, and all output is returned in a Ready. The same inputs
// always produce the same outputs, which is what lets rafttest simulate whole
// clusters under thousands of fault schedules per second and replay any of them.
//
// # Inputs
//
//   - Tick(): one unit of logical time.
//   - Step(msg): a message from a peer. Malformed messages return an error;
//     stale or duplicated ones are ignored.
//   - Propose(data...), Campaign(), TransferLeadership(to).
//   - ReportUnreachable(id), ReportSnapshot(id, ok): the runtime's observations.
//   - Advance(rd): rd's writes are durable. AppliedTo(i): the state machine has
//     applied up to i.
//
// # Outputs
//
// Ready carries state to persist (HardState, Snapshot, Entries), committed
// entries to apply, and two message lists: Messages may leave at once, while
// MessagesAfterPersist may leave only after the Ready's writes are durable.
// The split is decided here, not in the runtime: votes, vote requests,
// acknowledgements of appended entries and anything sent under a term or vote
// not yet durable wait; a leader's AppendEntries do not, so a leader
// replicates in parallel with its own fsync, and its own copy counts towards
// the commit quorum only when Advance reports it durable. Committed entries are
// handed out only once durable locally, so applying never runs ahead of what a
// restart would find. Several Readys may be outstanding; they are persisted
// and advanced in the order taken.
//
// # Storage failures
//
// A storage read failure other than ErrCompacted or ErrUnavailable panics with
// a wrapped error: the core never continues over a log it cannot read. The
// runtime recovers it into the group's error state.
//
// # Concurrency
//
// A Raft is owned by one goroutine at a time; none of its methods is safe for
// concurrent use.
package core

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
// linearizable reads (readindex.go); and the log view of durable plus
// not-yet-durable entries (log.go, log_unstable.go).
//
// # Linearizable reads
//
// ReadIndex(ctx, lease) yields a ReadState{Index, RequestCtx}: once the state
// machine has applied Index, it reflects every write committed before the
// request. The leader confirms its leadership with a heartbeat round whose
// sequence travels in Message.Context and is echoed back; reads arriving
// while a round is outstanding share the next one. A lease read skips the
// round while a quorum acknowledged a round sent less than LeaseTicks ago.
// The lease is sound only because every voter that acknowledged refuses
// (pre-)votes for ElectionTick ticks after hearing the leader, and keeps
// refusing when it forgets the leader early: on a forced campaign, on a
// higher term learned from a stray response, and for ElectionTick ticks
// after a restart (as SOFAJRaft does), since a crash may have erased a
// lease it promised. This needs check quorum; without it lease reads fall
// back to rounds. Lease reads further assume that clocks tick at the same
// rate to within 1-LeaseTicks/ElectionTick. A leader that steps down drops
// the reads it holds; the runtime times them out and retries.
//
// # Membership changes
//
// ProposeConfChange names a target configuration; every change of voters
// goes through a joint configuration (the arithmetic is in package
// confchange). Configuration entries take effect when appended, and a
// node's configuration is a function of its log: a truncation reverts it, a
// restart recovers it by scanning the log after the snapshot, a snapshot
// brings its own (membership.go). Every member, one added later included,
// must start from the group's initial configuration (or a snapshot's). The
// leader leaves a committed joint configuration on its own, keeps
// replicating to the peers it removed until they have heard of it, and,
// when it is no voter of its committed configuration, hands leadership to
// the most up-to-date voter. ResetConf is the unsafe, local recovery of a
// group that lost its majority for good.
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
//   - ReadIndex(ctx, lease): a linearizable read barrier (see above).
//   - ProposeConfChange(cc), ResetConf(voters, learners): membership (see
//     above).
//   - ReportUnreachable(id), ReportSnapshot(id, ok): the runtime's observations.
//   - Advance(rd): rd's writes are durable. AppliedTo(i): the state machine has
//     applied up to i.
//
// # Outputs
//
// Ready carries state to persist (HardState, Snapshot, Entries), committed
// entries to apply, reads whose index is known (ReadStates), the
// configuration when it changed (ConfState), and two message lists:
// Messages may leave at once, while
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

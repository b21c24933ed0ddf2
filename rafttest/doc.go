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
//     only when a write completes. Its state machine is the applied index
//     and a chained hash of every payload applied.
//   - snapshot.go: with Options.SnapshotEvery = K > 0, a node snapshots its
//     state machine once it has applied K entries past its last snapshot.
//     Saving takes virtual time in proportion to the payload; once it is
//     durable the log is compacted, keeping Options.CompactMargin entries
//     (compaction never runs ahead of a durable snapshot, which the
//     simulator asserts). A crash during the save loses the snapshot and
//     nothing else. A crash drops the core, its writes in flight, its state
//     machine and any save or fetch under way; a restart loads the latest
//     durable snapshot into the state machine, starts the core with Applied
//     at its index and replays the committed log after it.
//   - install.go: a leader whose follower needs compacted entries sends
//     MsgSnap; the follower's runtime fetches the leader's payload for that
//     snapshot (taking virtual time, during which it may crash, the leader
//     may go away, or a newer snapshot or term aborts the fetch), makes it
//     durable, and only then lets its core see the MsgSnap. The core's Ready
//     carrying the snapshot is persisted in two steps: the log is replaced
//     and the state machine loaded, then one fsync later the rest of the
//     Ready is durable and the core advanced. A restart between fetch and
//     install resets the log to the fetched snapshot. A leader that hears
//     nothing of a snapshot it sent for four election timeouts reports it
//     failed (core.ReportSnapshot) and offers one again.
//   - checker.go, checker_snap.go: the invariants, checked incrementally at
//     the operation that could break them (so, in effect, after every
//     event): election safety, log matching, durable term and vote, no
//     committed entry lost or changed (entries below a node's snapshot are
//     held through it), leader completeness, state machine safety (every
//     node's state at index i, applied or installed, is the same; no entry
//     at or below a snapshot is applied again; no snapshot is installed
//     below the applied index), applied entries durable locally, snapshots
//     describing the committed log. The comments at the top of those files
//     state each precisely.
//   - read.go: linearizable reads. Cluster.ReadIndex issues core.ReadIndex
//     (safe or lease) at a node; every ReadState a node's Ready releases is
//     checked: its read index must cover every index any node had reported
//     committed when the read was issued, and must itself be known
//     committed. All nodes tick at the same rate (the clock assumption of
//     lease reads holds); a test bug slows one node's clock to show that
//     the checker then catches stale lease reads.
//   - membership.go: membership changes. Options.Voters and Options.Learners
//     shape the initial configuration, with which every node, member or not,
//     is bootstrapped; Cluster.ProposeConfChange proposes a target at a node.
//     The cluster follows the configuration along the committed log, so that
//     a snapshot, and the storage's compaction point, record the
//     configuration at their index; liveness waits for the members of the
//     committed configuration only (MembersApplied). The safety checks are
//     the same with or without changes.
//   - trace.go: the trace, kept as plain structs in a ring and formatted only
//     for a failure report or a replay; Violation, the error of a failed run.
//   - cluster.go, faults.go: the Cluster API for scenario tests (NewCluster,
//     RunFor, RunUntil, Propose, Partition, Isolate, Cut, Heal, Crash,
//     Restart, SetDropRate, SetDupRate, SetDelay, SetFsync,
//     TransferLeadership, Campaign, ReadIndex, ReadResult,
//     ProposeConfChange, and read-only views).
//   - chaos.go: Run, the randomized driver. From the seed it draws the
//     cluster size (3, 5 or 7) and, with Options.VaryCoreConfig, the core's
//     election timeout, PreVote, CheckQuorum and flow-control limits; then for
//     Options.Duration (200 s) it injects random faults (partitions, cuts,
//     crashes and restarts, loss, duplication, network and disk latency,
//     leadership transfers, forced campaigns, and crashes timed to land
//     during a snapshot's save or fetch or between the steps of an install),
//     proposes unique payloads and issues reads, safe and lease, mostly at
//     a node that believes it leads; then it heals everything, restarts every
//     node and requires a fresh proposal applied on all nodes, including any
//     that must catch up by installing a snapshot, within
//     Options.LivenessTimeout (30 s). With VaryCoreConfig it also draws
//     SnapshotEvery (never, in a fifth of the seeds), CompactMargin and the
//     snapshot transfer rate, and, in a quarter of the seeds, membership
//     changes (Options.MembershipChanges): a pool of five IDs of which one to
//     five start as voters and some of the rest as learners, and, among the
//     faults, random changes at the leader (add, remove or promote a voter,
//     the leader included; add or remove a learner).
//
// # What it never does
//
// No real time, no sleeping, no goroutines, no global randomness: every
// random choice is drawn, in event order, from PCG generators (math/rand/v2)
// seeded by Options.Seed, so a run is a pure function of its Options, and
// tracing a run does not change it (a run with SnapshotEvery 0 draws no
// random number for snapshots, one without MembershipChanges none for
// membership). It does not model disk corruption or torn writes: a Ready's writes, a snapshot's save and a fetch
// complete entirely or, if the node crashes first, not at all, and a
// compaction is durable at once. A snapshot's payload is not bytes but the
// state machine's hash; its size only sets how long saving and fetching
// take. It never modifies the core; when a run fails, the report says what
// was observed and deciding whether the core or the simulator is wrong is
// left to a human.
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

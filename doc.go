// Package raftkit is a Raft consensus library: it replicates a user's
// StateMachine over a group of hosts, and runs many such groups per
// process.
//
// # Shape
//
// A process creates one NodeHost. It owns one transport listener (all
// groups share its connections), one log engine (all groups share its
// group-commit fsyncs), one ticker and two fixed pools of worker
// goroutines; it never starts a goroutine per group. Each group member is
// a Node, started with NodeHost.StartNode:
//
//	host, err := raftkit.NewNodeHost(raftkit.HostOptions{DataDir: dir, Addr: "127.0.0.1:8081"})
//	node, err := host.StartNode(raftkit.NodeOptions{
//		GroupID: raftkit.GroupIDFromName("counter"), NodeID: 1,
//		Peers:   []raftkit.Peer{{ID: 1, Addr: "127.0.0.1:8081"}, {ID: 2, Addr: ...}, {ID: 3, Addr: ...}},
//		StateMachine: sm,
//	})
//	fut, err := node.Apply(raftkit.Task{Data: cmd}) // on the leader; never blocks
//	res, err := fut.Wait(ctx)                        // res.Value is what sm set
//
// # Inside a group
//
// The protocol is decided by the deterministic core (internal/core); the
// runtime here only carries out its Readys. For each group, a raft worker
// steps the core with the messages, ticks and tasks that arrived, sends
// what may be sent at once (the leader's appends go out before its own disk
// write completes), queues log writes to the engine through the group's
// LogManager (an in-memory tail cache bounded in bytes), and sends what had
// to wait for durability (votes, acknowledgements) when the engine reports
// the write durable. Committed entries go to the group's apply loop
// (SOFAJRaft's FSMCaller), which runs StateMachine.Apply on an apply worker
// in batches and completes each task's Future with the value the state
// machine set.
//
// # Failures and back-pressure
//
// Errors are *Error values with a Code (see errors.go) that errors.Is
// matches against the sentinels: ErrNotLeader carries the leader's address;
// ErrBusy means a budget was exceeded and nothing was accepted (the
// uncommitted log, the queued tasks, or the apply queue; see NodeOptions),
// so callers back off and retry. An error or panic in the state machine, or
// a failed disk write, puts that group into the error state: it leaves the
// protocol (peers see it as down), OnError is called, Status reports
// StateError with the cause, and Apply fails with the error. It never
// retries the failing entry and never crashes the host.
//
// A task's outcome is exact when known: success once applied; ErrStaleTerm
// or ErrLeaderChanged when its entry can never apply (another leader's log
// replaced it); ErrShuttingDown or ErrTimeout when it is unknown.
//
// # Snapshots and restarts
//
// A StateMachine that also implements Snapshotter is snapshotted by the
// group's snapshot executor: on a timer (NodeOptions.SnapshotInterval),
// after a number of entries or bytes applied since the last snapshot, or on
// demand (Node.Snapshot). The apply loop pauses only while SaveSnapshot
// captures a point-in-time view; the returned function writes the files on
// a goroutine of its own while apply continues. Once the snapshot is
// committed (DataDir/groups/<id>/snapshots, one directory per snapshot with
// a manifest of sizes and CRC32C checksums, published by one rename) the
// log before it is compacted, keeping SnapshotMarginEntries entries, and
// older snapshots are deleted.
//
// A follower that needs entries its leader compacted gets a MsgSnap with
// the snapshot's meta only. Its runtime then pulls the files from the
// leader's host (internal/snapcopy) over a connection of its own, so big
// chunks never hold up the appends and heartbeats of any group: chunks of
// HostOptions.SnapshotChunkBytes, each checksummed and fetched again if it
// arrives corrupt, every file verified whole, a broken connection resumed
// where it stopped, the leader's serving throttled by
// HostOptions.SnapshotMaxBytesPerSecond. The files land in a temporary
// directory that is committed atomically; only then does the core see the
// MsgSnap, reset the log after the snapshot and have the state machine
// load it (LoadSnapshot), and replication continues with entries. A newer
// snapshot or a new term cancels a fetch in progress; a failed fetch is
// reported to the leader (MsgSnapStatus), which offers the snapshot again.
//
// A restarted node recovers its log and hard state from DataDir, loads its
// latest snapshot into the state machine (resetting the log if a crash
// came between committing an installed snapshot and resetting the log),
// and applies the committed entries after it. Without a Snapshotter the
// whole committed log is re-applied from the start, so such a state
// machine starts empty.
//
// # Membership, leadership and reads
//
// Membership changes (Node.AddPeer, RemovePeer, ChangePeers, AddLearners,
// RemoveLearners, PromoteLearner) run on the leader, one at a time: a new
// voter first joins as a learner and catches up (CatchupMarginEntries,
// CatchupTimeout), then the core passes through a joint configuration and
// leaves it by itself. Configuration entries take effect when appended and
// carry the members' addresses, which each group keeps in a durable
// address book (DataDir/groups/<id>/peers) and in every snapshot, so that
// members added later stay reachable after restarts and compaction. The
// apply loop follows the configuration entries it applies: that is the
// configuration snapshots record and OnConfigurationCommitted reports.
// TransferLeadershipTo moves leadership; ResetPeers is the unsafe recovery
// from the permanent loss of a majority. The admin service
// (internal/adminrpc) exposes all of it to raftctl and cli.Service on the
// raft port.
//
// Node.ReadIndex is the linearizable read barrier (SOFAJRaft's
// ReadOnlyService): the core confirms leadership with a heartbeat round
// shared by every read waiting (or trusts its lease, ReadLease), the
// runtime waits for the apply loop to reach the read index. Reads on
// followers and learners ask the leader for the index.
//
// # Concurrency
//
// Every exported method of NodeHost, Node and Future is safe for
// concurrent use. StateMachine methods are called from the group's apply
// loop, one at a time and in log order. NodeHost owns no package-level
// state: logger, random seed and file system come in HostOptions.
package raftkit

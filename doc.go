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
// # Restarts
//
// A restarted node recovers its log and hard state from DataDir and
// re-applies its committed log from the start (snapshots, which bound that,
// are a later addition), so a state machine starts empty.
//
// # Concurrency
//
// Every exported method of NodeHost, Node and Future is safe for
// concurrent use. StateMachine methods are called from the group's apply
// loop, one at a time and in log order. NodeHost owns no package-level
// state: logger, random seed and file system come in HostOptions.
package raftkit

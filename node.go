package raftkit

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/raftkit/raftkit/internal/core"
	"github.com/raftkit/raftkit/internal/logmanager"
	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// maxInboxMsgs bounds the raft messages queued for a group between two runs
// of its worker. Beyond it messages are dropped, which raft tolerates (the
// leader probes again), rather than letting a flood grow memory.
const maxInboxMsgs = 8192

// taskOverhead is what a queued task costs beyond its data, counted against
// MaxPendingBytes.
const taskOverhead = 64

// Node is one member of one raft group, hosted by a NodeHost.
//
// Concurrency: every exported method is safe for concurrent use. Internally
// the group runs on the host's worker pools: at most one raft worker and one
// apply worker at a time, never a goroutine of its own.
type Node struct {
	host  *NodeHost
	group uint64
	id    uint64
	opts  NodeOptions
	// addrs maps member IDs to raft addresses, copy-on-write (see
	// node_addrs.go); addrMu serialises its writers and book stores it.
	addrs  atomic.Pointer[map[uint64]string]
	addrMu sync.Mutex
	book   *storage.AddressBook
	log    *slog.Logger
	met    *groupMetrics
	state  schedState
	fsm    *fsmCaller
	// snaps holds the group's snapshots; snapper is the state machine's
	// Snapshotter, nil if it has none.
	snaps   *storage.FileSnapshots
	snapper Snapshotter

	mu        sync.Mutex // guards in, taskBytes and the done flags of jobs
	in        inbox
	spare     inbox
	taskBytes uint64 // payload of tasks accepted and not yet proposed or failed
	shut      bool   // the node is done: Apply refuses from then on

	view     atomic.Pointer[nodeView]
	failure  atomic.Pointer[Error]
	stopping atomic.Bool
	stopped  chan struct{} // closed after OnShutdown returned
	snapBusy atomic.Int64  // snapshot saves and fetches running (goSnapshot)
	final    atomic.Pointer[Status]
	appliedW appliedWaiters // wakes waitApplied as the apply loop advances
	reads    readWaiters    // ReadIndex calls waiting for the core's answer
	confW    confWatch      // the configuration the apply loop has applied
	changing atomic.Bool    // a membership change runs (one at a time)

	w runState // owned by the raft worker running the group
}

// inbox is what other goroutines hand the raft worker between runs.
type inbox struct {
	msgs    []raftpb.Message
	tasks   []taskReq
	ticks   int
	applied uint64
	status  []chan Status
	failed  bool
	stop    bool
	// Snapshots: requests of Node.Snapshot, finished saves and fetches.
	snapReqs []chan snapshotResult
	saved    []saveResult
	fetched  []fetchResult
	// calls run on the worker for the API (see onWorker).
	calls []workerCall
}

type taskReq struct {
	data  []byte
	term  uint64
	fut   *Future
	bytes uint64
}

// nodeView is what Apply and Leader read without waiting for the worker.
type nodeView struct {
	role Role
	lead uint64
	term uint64
}

// runState is the raft worker's private state of the group.
type runState struct {
	rn       *core.Raft
	lm       *logmanager.LogManager
	jobs     []*persistJob
	pending  []pendingTask // by index, ascending
	soft     core.SoftState
	led      uint64 // the term OnLeaderStart was announced for, 0 if none
	stopping bool   // Shutdown began; waiting for the log writes in flight
	follows  uint64 // the leader OnStartFollowing was announced for
	applied  uint64
	lastTerm uint64
	done     bool
	snap     snapState
}

// persistJob is a Ready whose writes are under way; done and err are set
// by the engine's callback under Node.mu.
type persistJob struct {
	rd   core.Ready
	done bool
	err  error
}

// pendingTask waits for its entry to be applied or overwritten.
type pendingTask struct {
	index, term uint64
	fut         *Future
}

// GroupID is the group this node belongs to.
func (n *Node) GroupID() uint64 { return n.group }

// ID is this node's ID in its group.
func (n *Node) ID() uint64 { return n.id }

// Leader returns the leader this node knows of, and its address; 0 and ""
// when none is known. It does not wait for the worker.
func (n *Node) Leader() (id uint64, addr string) {
	v := n.view.Load()
	return v.lead, n.addr(v.lead)
}

// IsLeader reports whether this node currently leads its group.
func (n *Node) IsLeader() bool { return n.view.Load().role == RoleLeader }

// Apply submits a task for replication and returns at once. The task is
// batched with others into log entries; its outcome arrives through the
// returned Future and, if set, Task.Done. Immediate refusals are returned
// as errors and Done is not called for them: ErrNotLeader (with the
// leader's address when known), ErrBusy when a budget is exhausted (retry
// later; nothing was queued), ErrShuttingDown, or the group's error.
func (n *Node) Apply(t Task) (*Future, error) {
	if err := n.refusal(); err != nil {
		return nil, err
	}
	if q := n.fsm.bytes.Load(); q >= n.opts.MaxApplyQueueBytes {
		n.met.busy.Add(1)
		return nil, &Error{Code: CodeBusy, Msg: "apply queue over budget"}
	}
	// The overhead keeps empty tasks from bypassing the budget.
	size := uint64(len(t.Data)) + taskOverhead
	fut := newFuture(t.Done)
	n.mu.Lock()
	if n.shut {
		n.mu.Unlock()
		return nil, n.closedErr()
	}
	if n.taskBytes > 0 && n.taskBytes+size > n.opts.MaxPendingBytes {
		n.mu.Unlock()
		n.met.busy.Add(1)
		return nil, &Error{Code: CodeBusy, Msg: "task queue over budget"}
	}
	n.in.tasks = append(n.in.tasks, taskReq{data: t.Data, term: t.ExpectedTerm, fut: fut, bytes: size})
	n.taskBytes += size
	n.mu.Unlock()
	n.host.raftPool.schedule(n)
	return fut, nil
}

// refusal is the error Apply returns without queueing, or nil.
func (n *Node) refusal() error {
	if err := n.failure.Load(); err != nil {
		return err
	}
	if n.stopping.Load() {
		return &Error{Code: CodeShuttingDown, Msg: "node is shutting down"}
	}
	if v := n.view.Load(); v.role != RoleLeader {
		return n.notLeader(v.lead)
	}
	return nil
}

func (n *Node) notLeader(lead uint64) *Error {
	if lead == 0 {
		return &Error{Code: CodeNotLeader, Msg: "no leader known"}
	}
	return &Error{Code: CodeNotLeader, Leader: n.addr(lead), Msg: "not the leader"}
}

// Status returns the node's state. It waits for the group's raft worker to
// take a consistent copy (one run, normally microseconds); after Shutdown
// it returns the last state.
func (n *Node) Status() Status {
	ch := make(chan Status, 1)
	n.mu.Lock()
	n.in.status = append(n.in.status, ch)
	n.mu.Unlock()
	n.host.raftPool.schedule(n)
	select {
	case s := <-ch:
		return s
	case <-n.stopped:
		return *n.final.Load()
	}
}

// Shutdown stops the node: queued and pending tasks fail with
// ErrShuttingDown (entries already committed are still applied), the state
// machine receives OnShutdown, and the group leaves the host. It waits for
// that or for ctx. Calling it again waits for the same shutdown.
func (n *Node) Shutdown(ctx context.Context) error {
	if n.stopping.CompareAndSwap(false, true) {
		n.mu.Lock()
		n.in.stop = true
		n.mu.Unlock()
		n.host.raftPool.schedule(n)
	}
	select {
	case <-n.stopped:
		return nil
	case <-ctx.Done():
		return &Error{Code: CodeTimeout, Msg: "waiting for shutdown", Err: ctx.Err()}
	}
}

// deliver queues a raft message from the transport.
func (n *Node) deliver(m *raftpb.Message) {
	n.mu.Lock()
	if len(n.in.msgs) >= maxInboxMsgs {
		n.mu.Unlock()
		n.log.Debug("inbox full; dropping message", "type", m.Type, "from", m.From)
		return
	}
	n.in.msgs = append(n.in.msgs, *m)
	n.mu.Unlock()
	n.host.raftPool.schedule(n)
}

// tick adds k logical clock ticks (more than one when the process was
// paused and the host clock catches up).
func (n *Node) tick(k int) {
	n.mu.Lock()
	// A stalled group catches up on at most two election timeouts' worth
	// of ticks: enough to end any lease and election timer the pause
	// outlived, without turning a long pause into a burst of elections.
	n.in.ticks = min(n.in.ticks+k, 2*n.opts.ElectionTicks)
	n.mu.Unlock()
	n.host.raftPool.schedule(n)
}

// reportApplied is called by the apply loop.
func (n *Node) reportApplied(index uint64) {
	n.mu.Lock()
	n.in.applied = max(n.in.applied, index)
	n.mu.Unlock()
	n.host.raftPool.schedule(n)
}

// enterError puts the group into the error state; the first error wins.
// The state machine hears of it through OnError, queued behind what the
// apply loop already has. Safe from any goroutine but the apply loop's,
// which uses fsmCaller.fail.
func (n *Node) enterError(err error) {
	if n.setFailure(err) {
		n.fsm.enqueue(applyItem{kind: applyError, err: n.failure.Load()})
	}
}

// setFailure records err as the group's error unless one is recorded, and
// makes the raft worker leave the protocol. It reports whether err won.
func (n *Node) setFailure(err error) bool {
	e, ok := err.(*Error)
	if !ok {
		e = &Error{Code: CodeStorage, Err: err}
	}
	if !n.failure.CompareAndSwap(nil, e) {
		return false
	}
	n.log.Error("group entered the error state", "err", err)
	n.mu.Lock()
	n.in.failed = true
	n.mu.Unlock()
	n.host.raftPool.schedule(n)
	return true
}

// errState is the group's error, or nil.
func (n *Node) errState() error {
	if e := n.failure.Load(); e != nil {
		return e
	}
	return nil
}

func (n *Node) sched() *schedState { return &n.state }

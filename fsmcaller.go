package raftkit

import (
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/raftkit/raftkit/raftpb"
)

// applyKind says what an applyItem asks of the state machine.
type applyKind uint8

const (
	applyEntries applyKind = iota
	applyLeaderStart
	applyLeaderStop
	applyStartFollowing
	applyStopFollowing
	applyConfiguration
	applyError
	applyShutdown
	applySnapshotSave // capture a snapshot at the last applied entry
	applySnapshotLoad // load the committed snapshot snap
)

// applyItem is one unit of work for the apply loop, in the order the raft
// worker produced it, so callbacks interleave with entries exactly as the
// log and role changes did.
type applyItem struct {
	kind applyKind
	ents []raftpb.Entry
	futs []*Future // parallel to ents; nil, or nil where not proposed here
	term uint64
	lctx LeaderChangeContext
	conf Configuration
	err  error
	snap raftpb.SnapshotMeta
	done chan struct{} // closed after applyShutdown
}

// fsmCaller is a group's apply loop (SOFAJRaft's FSMCaller): it runs the
// state machine on the host's apply pool, one item after another, never two
// at once, and tells each task's Future its result.
type fsmCaller struct {
	n     *Node
	sm    StateMachine
	state schedState

	mu     sync.Mutex
	queue  []applyItem
	bytes  atomic.Uint64 // payload of queued entries, for back-pressure
	spare  []applyItem
	failed atomic.Bool

	applied atomic.Uint64
	it      Iterator // owned by the running apply worker
	shut    bool     // OnShutdown was called; owned by the running apply worker
	// lastIndex and lastTerm are the last entry applied (or loaded from a
	// snapshot), and conf the configuration as of it (what snapshots
	// record); owned by the running apply worker.
	lastIndex, lastTerm uint64
	conf                raftpb.ConfState
}

func (f *fsmCaller) sched() *schedState { return &f.state }

func entriesBytes(ents []raftpb.Entry) uint64 {
	var b uint64
	for i := range ents {
		b += ents[i].Size()
	}
	return b
}

// enqueue hands an item to the apply loop. Safe for concurrent use.
func (f *fsmCaller) enqueue(item applyItem) {
	f.bytes.Add(entriesBytes(item.ents))
	f.mu.Lock()
	f.queue = append(f.queue, item)
	f.mu.Unlock()
	f.n.host.applyPool.schedule(f)
}

// run drains the queue; called by an apply worker.
func (f *fsmCaller) run() {
	f.mu.Lock()
	items := f.queue
	f.queue, f.spare = f.spare[:0], nil
	f.mu.Unlock()
	var applied uint64
	for i := range items {
		if idx := f.process(&items[i]); idx > applied {
			applied = idx
		}
		items[i] = applyItem{}
	}
	f.mu.Lock()
	f.spare = items[:0]
	f.mu.Unlock()
	if applied > 0 {
		f.applied.Store(applied)
		f.n.appliedW.advance(applied)
		f.n.reportApplied(applied)
	}
}

// process runs one item and returns the last index it applied, or 0.
func (f *fsmCaller) process(item *applyItem) uint64 {
	if f.shut {
		// Nothing reaches the state machine after OnShutdown.
		failFutures(item.futs, &Error{Code: CodeShuttingDown, Msg: "node shut down"})
		return 0
	}
	switch item.kind {
	case applyEntries:
		defer f.bytes.Add(-entriesBytes(item.ents))
		return f.applyEntries(item)
	case applyShutdown:
		f.call("OnShutdown", func() { f.sm.OnShutdown() })
		f.shut = true
		close(item.done)
		return 0
	}
	if item.kind == applySnapshotSave {
		f.captureSnapshot() // reports failure itself, so that waiters hear
		return 0
	}
	if f.failed.Load() && item.kind != applyError {
		return 0
	}
	switch item.kind {
	case applyLeaderStart:
		f.call("OnLeaderStart", func() { f.sm.OnLeaderStart(item.term) })
	case applyLeaderStop:
		f.call("OnLeaderStop", func() { f.sm.OnLeaderStop(item.lctx) })
	case applyStartFollowing:
		f.call("OnStartFollowing", func() { f.sm.OnStartFollowing(item.lctx) })
	case applyStopFollowing:
		f.call("OnStopFollowing", func() { f.sm.OnStopFollowing(item.lctx) })
	case applyConfiguration:
		f.call("OnConfigurationCommitted", func() { f.sm.OnConfigurationCommitted(item.conf) })
	case applyError:
		f.call("OnError", func() { f.sm.OnError(item.err) })
	case applySnapshotLoad:
		return f.loadSnapshot(item.snap)
	}
	return 0
}

// applyEntries runs StateMachine.Apply over one batch. Once the state
// machine has failed, later batches are not applied: their tasks fail and
// the applied index stops where the state machine stopped.
func (f *fsmCaller) applyEntries(item *applyItem) uint64 {
	if f.failed.Load() {
		failFutures(item.futs, f.n.errState())
		return 0
	}
	f.n.met.applyBatch.Observe(float64(len(item.ents)))
	f.it.reset(item.ents, item.futs)
	err := f.call("Apply", func() {
		if err := f.sm.Apply(&f.it); err != nil {
			panic(applyFailure{err})
		}
	})
	// done is how many entries of the batch the state machine got through:
	// all of them, or those before the entry it failed on.
	done := len(item.ents)
	if err != nil {
		done = max(f.it.pos, 0)
	} else if !f.it.consumed() {
		done = f.it.pos + 1
		err = newError(CodeStateMachine, nil, "Apply returned before consuming entry %d of its batch",
			item.ents[done].Index)
		f.fail(err)
	}
	for i, fut := range item.futs {
		switch {
		case fut == nil:
		case i < done:
			e := &item.ents[i]
			fut.complete(Result{Index: e.Index, Term: e.Term, Value: f.it.vals[i], Err: f.it.errs[i]})
		default:
			fut.complete(Result{Err: err})
		}
	}
	clear(f.it.vals)
	if done == 0 {
		return 0
	}
	last := &item.ents[done-1]
	f.lastIndex, f.lastTerm = last.Index, last.Term
	f.n.met.applied.Set(float64(last.Index))
	f.applyConfEntries(item.ents[:done])
	return last.Index
}

// applyFailure carries an error returned by Apply through call's recover.
type applyFailure struct{ err error }

// call runs a state machine callback, turning a panic (or an Apply error)
// into the group's error state so that a faulty state machine can never
// loop on the same entry or continue from a state it did not reach.
func (f *fsmCaller) call(what string, fn func()) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if ae, ok := r.(applyFailure); ok {
			err = newError(CodeStateMachine, ae.err, "%s", what)
		} else {
			err = newError(CodeStateMachine, nil, "%s panicked: %v\n%s", what, r, debug.Stack())
		}
		f.fail(err)
	}()
	fn()
	return nil
}

// fail puts the group into the error state from the apply loop, telling
// the state machine at once: a queued OnError could come after OnShutdown.
func (f *fsmCaller) fail(err error) {
	if !f.failed.CompareAndSwap(false, true) {
		return
	}
	if f.n.setFailure(err) {
		f.call("OnError", func() { f.sm.OnError(err) })
	}
}

func failFutures(futs []*Future, err error) {
	for _, fut := range futs {
		if fut != nil {
			fut.complete(Result{Err: err})
		}
	}
}

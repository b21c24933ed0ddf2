package raftkit

import (
	"context"
	"sync"
)

// StateMachine is the user's replicated state. Every method is called from
// the group's apply loop, one call at a time and in log order, never
// concurrently with another method of the same StateMachine; callbacks for
// different groups may run in parallel on different apply workers.
//
// Embed BaseStateMachine to get no-op implementations of the optional
// callbacks and implement only Apply.
type StateMachine interface {
	// Apply applies a batch of committed entries, in index order. It must
	// consume every entry (it.Next until false). A returned error, an
	// unconsumed entry or a panic puts the group into the error state
	// (OnError is called, Status reports it, Apply fails with
	// ErrStateMachine): a state machine that cannot apply an entry must not
	// skip it silently.
	Apply(it *Iterator) error
	// OnLeaderStart is called when this node leads term and the state
	// machine has applied every entry committed before the term began, so
	// it may serve reads from its state.
	OnLeaderStart(term uint64)
	// OnLeaderStop is called when this node stops leading.
	OnLeaderStop(ctx LeaderChangeContext)
	// OnStartFollowing and OnStopFollowing are called when this node
	// starts or stops following a leader.
	OnStartFollowing(ctx LeaderChangeContext)
	OnStopFollowing(ctx LeaderChangeContext)
	// OnConfigurationCommitted reports the group's configuration in force.
	OnConfigurationCommitted(conf Configuration)
	// OnError reports that the group entered the error state; it stays
	// there until the node is restarted.
	OnError(err error)
	// OnShutdown is the last call the state machine receives.
	OnShutdown()
}

// BaseStateMachine implements StateMachine's callbacks as no-ops; embed it.
type BaseStateMachine struct{}

func (BaseStateMachine) OnLeaderStart(uint64)                   {}
func (BaseStateMachine) OnLeaderStop(LeaderChangeContext)       {}
func (BaseStateMachine) OnStartFollowing(LeaderChangeContext)   {}
func (BaseStateMachine) OnStopFollowing(LeaderChangeContext)    {}
func (BaseStateMachine) OnConfigurationCommitted(Configuration) {}
func (BaseStateMachine) OnError(error)                          {}
func (BaseStateMachine) OnShutdown()                            {}

// LeaderChangeContext describes a change of leader seen by one node; a
// plain value.
type LeaderChangeContext struct {
	LeaderID   uint64
	LeaderAddr string
	Term       uint64
}

// Configuration is a group's membership; a plain value.
type Configuration struct {
	Voters   []Peer
	Learners []Peer
}

// Task is one command to replicate. Data becomes a log entry's payload and
// must not be modified after Apply accepts it.
type Task struct {
	Data []byte
	// ExpectedTerm, when non-zero, makes the task fail with ErrStaleTerm
	// unless the leader is still in that term when it logs the task.
	ExpectedTerm uint64
	// Done, when set, is called exactly once with the outcome, from the
	// apply loop (success) or the raft worker (failure). It must not block.
	Done func(Result)
}

// Result is the outcome of a task; a plain value.
type Result struct {
	// Index and Term locate the task's entry once it was logged.
	Index, Term uint64
	// Value is what the state machine set with Iterator.SetResult.
	Value any
	// Err is nil when the entry was applied.
	Err error
}

// Future is the pending outcome of an accepted task.
//
// Concurrency: safe for concurrent use; Wait may be called many times.
type Future struct {
	once sync.Once
	done chan struct{}
	res  Result
	cb   func(Result)
}

func newFuture(cb func(Result)) *Future { return &Future{done: make(chan struct{}), cb: cb} }

// complete records res; only the first call has an effect.
func (f *Future) complete(res Result) {
	f.once.Do(func() {
		f.res = res
		close(f.done)
		if f.cb != nil {
			f.cb(res)
		}
	})
}

// Wait blocks until the task's outcome is known or ctx is done. A ctx
// error is returned as ErrTimeout wrapping it; the task may still apply.
func (f *Future) Wait(ctx context.Context) (Result, error) {
	select {
	case <-f.done:
		return f.res, f.res.Err
	case <-ctx.Done():
		return Result{}, &Error{Code: CodeTimeout, Msg: "waiting for the task's outcome", Err: ctx.Err()}
	}
}

// Done is closed once the outcome is known.
func (f *Future) Done() <-chan struct{} { return f.done }

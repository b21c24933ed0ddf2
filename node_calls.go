package raftkit

import (
	"context"
)

// workerCall is a closure an API method runs on the group's raft worker,
// where the core may be used. Exactly one of run and fail is called.
type workerCall struct {
	run  func()
	fail func(err error) // the group stopped or failed before run could
}

// onWorker runs fn on the raft worker and returns its error, or fails when
// the node stops or fails first or ctx ends. fn must not block.
//
// Concurrency: safe for concurrent use; fn runs on the worker, never
// concurrently with the core's other users.
func (n *Node) onWorker(ctx context.Context, fn func() error) error {
	done := make(chan error, 1)
	c := workerCall{run: func() { done <- fn() }, fail: func(err error) { done <- err }}
	n.mu.Lock()
	if n.shut {
		n.mu.Unlock()
		return n.closedErr()
	}
	n.in.calls = append(n.in.calls, c)
	n.mu.Unlock()
	n.host.raftPool.schedule(n)
	select {
	case err := <-done:
		return err
	case <-n.stopped:
		return n.closedErr()
	case <-ctx.Done():
		return &Error{Code: CodeTimeout, Msg: "waiting for the raft worker", Err: ctx.Err()}
	}
}

// runCalls runs the calls queued by onWorker; raft worker only, with the
// core live. A call that panics (the core panics on storage it cannot
// read) fails before the panic goes on to runCore's recovery; the calls
// after it are failed by failCalls.
func (n *Node) runCalls(calls []workerCall) {
	for i := range calls {
		c := calls[i]
		calls[i] = workerCall{}
		func() {
			ok := false
			defer func() {
				if !ok {
					c.fail(&Error{Code: CodeStorage, Msg: "the raft core failed"})
				}
			}()
			c.run()
			ok = true
		}()
	}
}

// failCalls fails the calls runCalls did not reach.
func failCalls(calls []workerCall, err error) {
	for i := range calls {
		if calls[i].fail != nil {
			calls[i].fail(err)
			calls[i] = workerCall{}
		}
	}
}

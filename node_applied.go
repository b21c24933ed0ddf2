package raftkit

import (
	"context"
	"sync"
)

// appliedWaiters wake callers waiting for the apply loop to reach an
// index: linearizable reads wait for the read index, membership changes
// for their configuration entries.
//
// Concurrency: safe for concurrent use.
type appliedWaiters struct {
	mu      sync.Mutex
	applied uint64
	waiting []appliedWaiter
}

type appliedWaiter struct {
	index uint64
	ch    chan struct{}
}

// wait returns a channel closed once index is applied.
func (a *appliedWaiters) wait(index uint64) <-chan struct{} {
	ch := make(chan struct{})
	a.mu.Lock()
	defer a.mu.Unlock()
	if index <= a.applied {
		close(ch)
		return ch
	}
	a.waiting = append(a.waiting, appliedWaiter{index: index, ch: ch})
	return ch
}

// advance records that index is applied and wakes who waited for it.
func (a *appliedWaiters) advance(index uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if index <= a.applied {
		return
	}
	a.applied = index
	keep := a.waiting[:0]
	for _, w := range a.waiting {
		if w.index <= index {
			close(w.ch)
		} else {
			keep = append(keep, w)
		}
	}
	clear(a.waiting[len(keep):])
	a.waiting = keep
}

// waitApplied blocks until the state machine has applied index, the node
// stops or ctx ends.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	select {
	case <-n.appliedW.wait(index):
		return nil
	case <-n.stopped:
		return n.closedErr()
	case <-ctx.Done():
		return &Error{Code: CodeTimeout, Msg: "waiting for the state machine to apply the read index", Err: ctx.Err()}
	}
}

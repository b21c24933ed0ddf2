package raftkit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/raftkit/raftkit/internal/core"
)

// ReadMode says how ReadIndex establishes that this node's state machine
// is up to date.
type ReadMode uint8

const (
	// ReadSafe (the default) confirms leadership with a heartbeat round to
	// a quorum (shared by every read waiting at the time): linearizable
	// whatever the clocks do.
	ReadSafe ReadMode = iota
	// ReadLease skips the round while the leader's lease holds: a quorum
	// acknowledged it less than NodeOptions.LeaseRatio of an election
	// timeout ago, so no other leader can have been elected since. This
	// assumes the members' clocks advance at the same rate to within that
	// margin (drift, not offset, matters). A paused process does not
	// stretch the lease: the host delivers the ticks a pause missed, and
	// until it has, lease reads fall back to ReadSafe. Without check
	// quorum it falls back to ReadSafe too.
	ReadLease
	// ReadStale answers at once with what this node has applied: fast, not
	// linearizable (it may miss writes acknowledged elsewhere).
	ReadStale
)

// ReadIndex is a linearizable read barrier: when it returns nil, this
// node's state machine has applied every entry committed before the call
// began, so a read of the state machine from then on observes every write
// acknowledged before it. It returns the read index. On a follower or
// learner the leader is asked for the index (again every election timeout
// until it answers: a forward may be lost) and the node waits for its own
// apply loop to reach it; the leader serves reads only once it has
// committed an entry of its own term.
//
// Errors: ErrNotLeader when no leader is known (retry, after a backoff, or
// at the leader the error names), ErrLeaderChanged when leadership moved
// before the read was confirmed (retry), ErrTimeout when ctx ends.
//
// Concurrency: safe for concurrent use; concurrent reads share heartbeat
// rounds.
func (n *Node) ReadIndex(ctx context.Context, mode ReadMode) (uint64, error) {
	if err := n.failure.Load(); err != nil {
		return 0, err
	}
	if mode == ReadStale {
		return n.fsm.applied.Load(), nil
	}
	start := time.Now()
	// A lease is counted in ticks; if the host's ticker is behind (the
	// process was paused and has not caught up yet), the count may lag
	// real time and the lease look longer than it is: confirm with a
	// heartbeat round instead.
	lease := mode == ReadLease && n.host.clock.fresh(n.host.clock.now())
	r := n.reads.add()
	defer n.reads.remove(r.id)
	err := n.onWorker(ctx, func() error {
		if err := n.w.rn.ReadIndex(r.id, lease); err != nil {
			return n.readRefusal(err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	index, err := n.awaitReadIndex(ctx, r)
	if err != nil {
		return 0, err
	}
	if err := n.waitApplied(ctx, index); err != nil {
		return 0, err
	}
	n.met.readLatency.Observe(time.Since(start).Seconds())
	return index, nil
}

// awaitReadIndex waits for the core's answer to read r. A follower's read
// travels to the leader as one message, which a lossy link or a leader not
// yet able to serve reads may drop without a word: every election timeout
// without an answer, a follower forwards the read again (to the leader it
// knows then). Any answer is good: each confirms leadership after the read
// began. A leader's own reads are never lost (a leader change fails every
// pending read), so they wait without a timer.
func (n *Node) awaitReadIndex(ctx context.Context, r *pendingRead) (uint64, error) {
	var again <-chan time.Time // nil: never fires
	if !n.IsLeader() {
		t := time.NewTicker(time.Duration(n.opts.ElectionTicks) * n.host.opts.TickInterval)
		defer t.Stop()
		again = t.C
	}
	for {
		select {
		case res := <-r.indexed:
			return res.index, res.err
		case <-again:
			err := n.onWorker(ctx, func() error {
				if n.w.rn.Role() == core.RoleLeader {
					return nil // the leader's own reads are never lost
				}
				n.met.readForwardRetries.Add(1)
				if err := n.w.rn.ReadIndex(r.id, false); err != nil {
					return n.readRefusal(err)
				}
				return nil
			})
			if err != nil {
				return 0, err
			}
		case <-n.stopped:
			return 0, n.closedErr()
		case <-ctx.Done():
			return 0, &Error{Code: CodeTimeout, Msg: "waiting for the read index", Err: ctx.Err()}
		}
	}
}

// readRefusal turns the core's refusal of a read into a raftkit error.
func (n *Node) readRefusal(err error) error {
	if errors.Is(err, core.ErrNotLeader) {
		return n.notLeader(n.w.rn.Lead())
	}
	return &Error{Code: CodeTryAgain, Msg: "read refused", Err: err}
}

// readResult is the core's answer to one read.
type readResult struct {
	index uint64
	err   error
}

type pendingRead struct {
	id      uint64
	indexed chan readResult // buffered: the worker never blocks on it
}

// readWaiters are the reads between ReadIndex and the core's answer,
// keyed by the context the core echoes (SOFAJRaft's ReadOnlyService).
//
// Concurrency: safe for concurrent use.
type readWaiters struct {
	mu      sync.Mutex
	next    uint64
	pending map[uint64]*pendingRead
}

func (rw *readWaiters) add() *pendingRead {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.next++
	r := &pendingRead{id: rw.next, indexed: make(chan readResult, 1)}
	if rw.pending == nil {
		rw.pending = map[uint64]*pendingRead{}
	}
	rw.pending[r.id] = r
	return r
}

func (rw *readWaiters) remove(id uint64) {
	rw.mu.Lock()
	delete(rw.pending, id)
	rw.mu.Unlock()
}

// resolve answers the read with context id, if it still waits.
func (rw *readWaiters) resolve(id uint64, res readResult) {
	rw.mu.Lock()
	r := rw.pending[id]
	delete(rw.pending, id)
	rw.mu.Unlock()
	if r != nil {
		r.indexed <- res
	}
}

// failAll answers every waiting read with err: the core drops the reads
// it holds when leadership moves, and a forwarded read may be lost.
func (rw *readWaiters) failAll(err error) {
	rw.mu.Lock()
	pending := rw.pending
	rw.pending = nil
	rw.mu.Unlock()
	for _, r := range pending {
		r.indexed <- readResult{err: err}
	}
}

// onReadStates hands the core's answers to their readers; raft worker.
func (n *Node) onReadStates(rss []core.ReadState) {
	for _, rs := range rss {
		n.reads.resolve(rs.RequestCtx, readResult{index: rs.Index})
	}
}

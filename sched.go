package raftkit

import (
	"sync"
	"sync/atomic"
)

// A runnable is a unit of work a pool runs: a group's raft step or its apply
// loop. run is never called concurrently for one runnable.
type runnable interface {
	run()
	sched() *schedState
}

// schedState makes sure a runnable is queued at most once and runs on at
// most one worker at a time, while a schedule that arrives during a run is
// never lost (the run is repeated).
type schedState struct{ v atomic.Int32 }

const (
	stIdle int32 = iota
	stQueued
	stRunning
	stRerun // running, and scheduled again meanwhile
)

// pool is a fixed set of worker goroutines draining one FIFO of runnables:
// groups share workers instead of owning goroutines, so a host with many
// groups runs a bounded number of goroutines.
type pool struct {
	mu     sync.Mutex
	cond   sync.Cond
	q      []runnable
	head   int
	closed bool
	wg     sync.WaitGroup
}

func newPool(workers int) *pool {
	p := &pool{}
	p.cond.L = &p.mu
	for range workers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

// schedule asks for r to run soon. Safe for concurrent use.
func (p *pool) schedule(r runnable) {
	s := r.sched()
	for {
		switch v := s.v.Load(); v {
		case stIdle:
			if s.v.CompareAndSwap(stIdle, stQueued) {
				p.push(r)
				return
			}
		case stRunning:
			if s.v.CompareAndSwap(stRunning, stRerun) {
				return
			}
		default:
			return
		}
	}
}

// push queues r. It queues even after close: workers drain the queue before
// they exit, so a runnable scheduled again during its last run still runs
// (a group's final apply items must not be stranded by a closing host).
func (p *pool) push(r runnable) {
	p.mu.Lock()
	p.q = append(p.q, r)
	p.cond.Signal()
	p.mu.Unlock()
}

func (p *pool) pop() (runnable, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.head == len(p.q) && !p.closed {
		p.cond.Wait()
	}
	if p.head == len(p.q) {
		return nil, false
	}
	r := p.q[p.head]
	p.q[p.head] = nil
	p.head++
	if p.head == len(p.q) {
		p.q, p.head = p.q[:0], 0
	}
	return r, true
}

func (p *pool) work() {
	defer p.wg.Done()
	for {
		r, ok := p.pop()
		if !ok {
			return
		}
		s := r.sched()
		s.v.Store(stRunning)
		r.run()
		if !s.v.CompareAndSwap(stRunning, stIdle) {
			// Scheduled during the run: queue again behind the others
			// rather than looping here, so one busy group cannot starve
			// the rest.
			s.v.Store(stQueued)
			p.push(r)
		}
	}
}

// close stops the workers once the queue is drained and waits for them.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}

package rafttest

import (
	"time"

	"github.com/raftkit/raftkit/raftpb"
)

// eventKind says what an event does when its time comes.
type eventKind uint8

const (
	// evTick ticks one node's core and schedules its next tick.
	evTick eventKind = iota
	// evDeliver hands msg to its destination.
	evDeliver
	// evPersist completes the oldest in-flight Ready of a node incarnation.
	evPersist
	// evRestart restarts a crashed node (scheduled by the chaos driver).
	evRestart
	// evFault draws and performs the next random fault.
	evFault
	// evPropose draws and performs the next random proposal.
	evPropose
	// evEndFaults ends the faulty period: heal, restart, start liveness.
	evEndFaults
	// evLiveness drives the final proposal of the liveness check.
	evLiveness
	// evUnreachable tells node that peer could not be reached, as a
	// transport does when a connection breaks.
	evUnreachable
	// evCrash crashes incarnation gen of node, if still running (chaos).
	evCrash
	// evSnapSaved makes save id of incarnation gen of node durable.
	evSnapSaved
	// evSnapFetched completes fetch id of incarnation gen of node.
	evSnapFetched
	// evRead issues the next random read (chaos).
	evRead
)

var eventKindNames = [...]string{
	evTick:      "tick",
	evDeliver:   "deliver",
	evPersist:   "persist",
	evRestart:   "restart",
	evFault:     "fault",
	evPropose:   "propose",
	evEndFaults: "end-faults",
	evLiveness:  "liveness",

	evUnreachable: "unreachable",
	evCrash:       "crash",
	evSnapSaved:   "snapshot-saved",
	evSnapFetched: "snapshot-fetched",
	evRead:        "read",
}

func (k eventKind) String() string { return eventKindNames[k] }

// event is one entry of the simulator's agenda. Events are ordered by (at,
// seq): seq is a global counter assigned at scheduling, so two events due at
// the same virtual instant run in the order they were scheduled, which makes
// every run a pure function of the seed.
type event struct {
	at   time.Duration
	seq  uint64
	kind eventKind
	node uint64 // target node ID, when the kind has one
	gen  uint64 // node incarnation for evPersist, evCrash and evSnap*
	id   uint64 // evSnap*: which save or fetch of the node
	peer uint64 // evUnreachable: the peer that could not be reached
	msg  int32  // evDeliver: the message's slot in the queue's message slab
}

func (e *event) before(o *event) bool {
	if e.at != o.at {
		return e.at < o.at
	}
	return e.seq < o.seq
}

// eventQueue is a binary min-heap of events. It is hand-rolled rather than
// built on container/heap to avoid boxing every event in an interface, and
// messages in flight live in a slab beside it so that the heap moves small,
// pointer-free events.
type eventQueue struct {
	h    []event
	seq  uint64
	msgs []raftpb.Message // slab of messages in flight
	free []int32          // free slots of msgs
}

// putMsg stores m in the slab and returns its slot.
func (q *eventQueue) putMsg(m raftpb.Message) int32 {
	if n := len(q.free); n > 0 {
		i := q.free[n-1]
		q.free = q.free[:n-1]
		q.msgs[i] = m
		return i
	}
	q.msgs = append(q.msgs, m)
	return int32(len(q.msgs) - 1)
}

// takeMsg removes and returns the message in slot i.
func (q *eventQueue) takeMsg(i int32) raftpb.Message {
	m := q.msgs[i]
	q.msgs[i] = raftpb.Message{}
	q.free = append(q.free, i)
	return m
}

func (q *eventQueue) len() int { return len(q.h) }

// push schedules e, stamping its sequence number.
func (q *eventQueue) push(e event) {
	q.seq++
	e.seq = q.seq
	q.h = append(q.h, e)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.h[i].before(&q.h[p]) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

// peek returns the earliest event; the queue must not be empty.
func (q *eventQueue) peek() *event { return &q.h[0] }

// pop removes and returns the earliest event; the queue must not be empty.
func (q *eventQueue) pop() event {
	top := q.h[0]
	last := len(q.h) - 1
	q.h[0] = q.h[last]
	q.h = q.h[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= last {
			break
		}
		m := l
		if r := l + 1; r < last && q.h[r].before(&q.h[l]) {
			m = r
		}
		if !q.h[m].before(&q.h[i]) {
			break
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
	return top
}

package baseline

import (
	"errors"
	"fmt"
	"sync"

	"github.com/raftkit/raftkit/bench/systems"
)

// ErrClosed is returned by Propose once the node is closing or closed.
var ErrClosed = errors.New("baseline: node closed")

// Sizes. Variables, not constants, so that tests can make the log wrap
// quickly; nothing else writes them.
var (
	// logFileSize is each replica's log capacity before it wraps: large
	// enough that a 3 s benchmark cell rarely wraps, small enough to
	// preallocate in a moment.
	logFileSize int64 = 256 << 20
	// batchLimit caps a batch's bytes so that one batch never holds the
	// pipeline's only slot for long and always fits the log file. A single
	// record larger than this gets a batch of its own (see limits).
	batchLimit = 1 << 20
)

const (
	recHeader   = 4  // record: [len u32][payload]
	frameHeader = 12 // frame: [batch seq u64][len u32][batch bytes]
	ackSize     = 8  // ack: [highest durable batch seq u64]
)

// limits derives the batch limit and the log capacity from cfg. Every
// replica of a cluster gets the same cfg, hence the same numbers, which the
// identical-offsets rule of logFile.appendRound relies on.
func limits(cfg systems.Config) (maxBatch int, fileSize int64) {
	maxBatch = max(batchLimit, recHeader+cfg.MaxPayload)
	fileSize = max(logFileSize, 2*int64(maxBatch))
	return maxBatch, fileSize
}

// System is the bare limit: three replicas doing replicated durable writes
// with no Raft logic at all (see the package documentation).
type System struct{}

// Name implements systems.System.
func (System) Name() string { return "baseline" }

// StartNode implements systems.System. Replica 0 is the leader, for good;
// 1 and 2 are followers listening on their addresses.
func (System) StartNode(cfg systems.Config, id int) (systems.Node, error) {
	if cfg.Groups > 1 {
		return nil, systems.ErrUnsupported
	}
	if len(cfg.Dirs) != 3 || len(cfg.Addrs) != 3 {
		return nil, fmt.Errorf("baseline: need 3 dirs and 3 addrs, got %d and %d", len(cfg.Dirs), len(cfg.Addrs))
	}
	switch id {
	case 0:
		return startLeader(cfg)
	case 1, 2:
		return startFollower(cfg, id)
	}
	return nil, fmt.Errorf("baseline: replica id %d out of range [0, 2]", id)
}

// buffer is a pooled byte slice. Batches and frames are pooled so that the
// steady state allocates one small struct per batch, not its bytes: on a
// two-core machine the garbage collector competes with the replicas.
type buffer struct{ b []byte }

var bufPool = sync.Pool{New: func() any { return &buffer{b: make([]byte, 0, 16<<10)} }}

func getBuffer() *buffer { return bufPool.Get().(*buffer) }

func putBuffer(b *buffer) {
	if cap(b.b) > 4*batchLimit {
		return // an outsized one-off; let it go rather than pin it
	}
	b.b = b.b[:0]
	bufPool.Put(b)
}

// queue hands items from producers to one consumer goroutine, which takes
// everything queued at once (that is what turns a backlog into one round).
// The wake channel holds at most one token, so a push costs no allocation
// and never blocks, and a consumer that was busy finds the token waiting.
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	closed bool
	wake   chan struct{}
}

func newQueue[T any]() *queue[T] { return &queue[T]{wake: make(chan struct{}, 1)} }

// push queues v and reports whether the queue still accepts items.
func (q *queue[T]) push(v T) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take returns everything queued and leaves spare (emptied) in its place,
// so that two slices alternate and neither side allocates.
func (q *queue[T]) take(spare []T) []T {
	clear(spare)
	q.mu.Lock()
	items := q.items
	q.items = spare[:0]
	q.mu.Unlock()
	return items
}

// close refuses further pushes and returns what was still queued.
func (q *queue[T]) close() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	items := q.items
	q.items = nil
	return items
}

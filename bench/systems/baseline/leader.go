package baseline

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkit/raftkit/bench/systems"
)

// dialRetry is the pause between attempts to reach a follower that is not
// listening yet (replicas start in any order).
const dialRetry = 10 * time.Millisecond

// batch is a group of proposals replicated and synced as one unit.
type batch struct {
	buf  *buffer // records [len u32][payload]; pooled, freed by release
	refs atomic.Int32

	// Set by the batcher when it seals the batch.
	seq uint64
	end int64 // logical byte offset of the batch's end in the log

	done chan struct{} // closed when the batch completes or fails
	err  error         // written before done is closed
}

// leader is replica 0: it owns the proposal path, the batcher, its own log
// and the connections to both followers.
type leader struct {
	maxBatch int
	log      *logFile
	disk     *queue[*batch]
	peers    [2]*peer

	ctx    context.Context // canceled by Close: every goroutine's stop signal
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	cerr   error

	// The open side: proposers append records to the last pending batch.
	pmu      sync.Mutex
	pending  []*batch
	notified bool // a wake token was sent since the batcher last took
	closed   bool
	wake     chan struct{}

	// The completion side: batches dispatched and not yet complete, in seq
	// order, and how far each replica has made the log durable.
	tmu       sync.Mutex
	inflight  []*batch
	lastSeq   uint64    // highest seq dispatched
	diskSeq   uint64    // highest seq durable on the leader
	acks      [2]uint64 // highest seq each follower acknowledged
	committed int64     // logical end of the last completed batch
	failed    error     // sticky: every later batch fails with it

	rounds  atomic.Int64 // leader disk rounds (one write + one fdatasync)
	batches atomic.Int64 // batches dispatched
}

func startLeader(cfg systems.Config) (*leader, error) {
	maxBatch, size := limits(cfg)
	log, err := openLog(cfg.Dirs[0], size)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &leader{
		maxBatch: maxBatch, log: log, disk: newQueue[*batch](),
		ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1),
	}
	for i := range l.peers {
		l.peers[i] = &peer{l: l, idx: i, addr: cfg.Addrs[i+1], q: newQueue[*batch]()}
	}
	l.wg.Add(2 + len(l.peers))
	go l.batcher()
	go l.diskLoop()
	for _, p := range l.peers {
		go p.run()
	}
	return l, nil
}

// Propose implements systems.Node: it copies payload into the open batch
// and waits for that batch to complete.
func (l *leader) Propose(ctx context.Context, g int, payload []byte) error {
	if g != 0 {
		return fmt.Errorf("baseline: group %d out of range (one group)", g)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rec := recHeader + len(payload)
	if rec > l.maxBatch {
		return fmt.Errorf("baseline: payload of %d bytes exceeds the batch limit %d", len(payload), l.maxBatch-recHeader)
	}
	l.pmu.Lock()
	if l.closed {
		l.pmu.Unlock()
		return ErrClosed
	}
	var b *batch
	if n := len(l.pending); n > 0 && len(l.pending[n-1].buf.b)+rec <= l.maxBatch {
		b = l.pending[n-1]
	} else {
		b = &batch{buf: getBuffer(), done: make(chan struct{})}
		l.pending = append(l.pending, b)
	}
	b.buf.b = binary.LittleEndian.AppendUint32(b.buf.b, uint32(len(payload)))
	b.buf.b = append(b.buf.b, payload...)
	// One token per batcher pass is enough; skipping the channel operation
	// for the other proposers of the pass keeps the lock hold short.
	signal := !l.notified
	l.notified = true
	l.pmu.Unlock()
	if signal {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		// The record stays in its batch (it may still commit); the caller
		// just stops waiting, as with any replicated log.
		return ctx.Err()
	}
}

// IsLeader implements systems.Node: replica 0 always leads.
func (l *leader) IsLeader(int) bool { return true }

// batcher seals whatever proposers have queued and dispatches it at once to
// the disk goroutine and both follower writers, without waiting for earlier
// batches: that is the pipelining. Its batches are as small as the backlog
// it finds; rounds downstream (one disk write, one socket flush) coalesce
// consecutive batches, so eagerness here costs no extra fsyncs.
func (l *leader) batcher() {
	defer l.wg.Done()
	var spare []*batch
	var seq uint64
	var end int64
	for {
		select {
		case <-l.wake:
		case <-l.ctx.Done():
			return
		}
		// Let the proposers already runnable append first. A completion
		// wakes a whole batch's proposers at once, and the first one's wake
		// would otherwise run the batcher next (the runtime favours the
		// goroutine just woken), sealing one record per batch and paying
		// a frame, a flush and a wake-up per record. Yielding adds no
		// timer: the batcher runs again once those proposers have had
		// their turn, which is also all it would have waited for.
		runtime.Gosched()
		l.pmu.Lock()
		bs := l.pending
		l.pending = spare[:0]
		l.notified = false
		l.pmu.Unlock()
		for _, b := range bs {
			seq++
			end += int64(len(b.buf.b))
			b.seq, b.end = seq, end
			b.refs.Store(int32(1 + len(l.peers)))
			if !l.track(b) {
				continue // failed already; its buffer goes to the collector
			}
			l.disk.push(b)
			for _, p := range l.peers {
				if !p.q.push(b) {
					l.release(b) // that follower is gone
				}
			}
		}
		l.batches.Add(int64(len(bs)))
		clear(bs)
		spare = bs
	}
}

// release drops one of the batch's references (disk, follower writers);
// the last returns its buffer to the pool. Completion does not need the
// bytes, so a batch can complete before or after its buffer is freed.
func (l *leader) release(b *batch) {
	if b.refs.Add(-1) == 0 {
		putBuffer(b.buf)
	}
}

// track registers a sealed batch for completion, or fails it at once if the
// node has failed. Registration precedes dispatch so that no ack or fsync
// can concern a batch the tracker does not know.
func (l *leader) track(b *batch) bool {
	l.tmu.Lock()
	defer l.tmu.Unlock()
	if l.failed != nil {
		b.err = l.failed
		close(b.done)
		return false
	}
	l.inflight = append(l.inflight, b)
	l.lastSeq = b.seq
	return true
}

// advance completes every batch durable on the leader and on at least one
// follower: a majority of three. Called with tmu held.
func (l *leader) advance() {
	commit := min(l.diskSeq, max(l.acks[0], l.acks[1]))
	i := 0
	for ; i < len(l.inflight) && l.inflight[i].seq <= commit; i++ {
		b := l.inflight[i]
		l.committed = b.end
		close(b.done)
		l.inflight[i] = nil
	}
	l.inflight = l.inflight[i:]
}

// fail completes every tracked batch, and every later one, with err.
// The baseline never retries: a failed write or fsync ends the node.
func (l *leader) fail(err error) {
	l.tmu.Lock()
	defer l.tmu.Unlock()
	if l.failed == nil {
		l.failed = err
	}
	for i, b := range l.inflight {
		b.err = l.failed
		close(b.done)
		l.inflight[i] = nil
	}
	l.inflight = nil
}

// diskLoop makes batches durable on the leader, in order: each round takes
// every batch queued since the last round and costs one write and one
// fdatasync, running concurrently with replication.
func (l *leader) diskLoop() {
	defer l.wg.Done()
	var spare []*batch
	var bufs [][]byte
	for {
		if l.ctx.Err() != nil {
			return
		}
		bs := l.disk.take(spare)
		if len(bs) == 0 {
			spare = bs
			select {
			case <-l.disk.wake:
			case <-l.ctx.Done():
				return
			}
			continue
		}
		bufs = bufs[:0]
		for _, b := range bs {
			bufs = append(bufs, b.buf.b)
		}
		err := l.log.appendRound(bufs)
		clear(bufs)
		last := bs[len(bs)-1].seq
		for _, b := range bs {
			l.release(b)
		}
		spare = bs
		if err != nil {
			l.fail(fmt.Errorf("baseline: leader log: %w", err))
			return
		}
		l.rounds.Add(1)
		l.tmu.Lock()
		l.diskSeq = last
		l.advance()
		l.tmu.Unlock()
	}
}

// Close implements systems.Node: it stops every goroutine, fails the
// proposals still waiting with ErrClosed and closes the log file.
func (l *leader) Close() error {
	l.once.Do(func() {
		l.pmu.Lock()
		l.closed = true
		unsealed := l.pending
		l.pending = nil
		l.pmu.Unlock()
		l.cancel()
		for _, p := range l.peers {
			p.shut()
		}
		l.wg.Wait()
		l.fail(ErrClosed)
		for _, b := range unsealed {
			b.err = ErrClosed
			close(b.done)
		}
		l.cerr = l.log.close()
	})
	return l.cerr
}

// peer is the leader's connection to one follower: a writer goroutine that
// dials, then streams frames, and an ack reader on the same connection.
type peer struct {
	l    *leader
	idx  int
	addr string
	q    *queue[*batch]

	mu      sync.Mutex
	conn    net.Conn
	closing bool
}

// shut closes the connection (or prevents one) so that blocked reads and
// writes return.
func (p *peer) shut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closing = true
	if p.conn != nil {
		p.conn.Close()
	}
}

// run dials until connected or closed, then writes frames until the
// connection fails. Batches queue while it dials, so a follower that starts
// late still receives the log from seq 1. A broken connection is not
// re-established: the follower is out for the node's lifetime and the other
// one carries the majority (the baseline has no catch-up to offer).
func (p *peer) run() {
	defer p.l.wg.Done()
	defer func() {
		for _, b := range p.q.close() {
			p.l.release(b)
		}
	}()
	conn := p.dial()
	if conn == nil {
		return
	}
	defer conn.Close()
	p.l.wg.Add(1)
	go p.readAcks(conn)
	w := bufio.NewWriterSize(conn, 256<<10)
	var spare []*batch
	var hdr [frameHeader]byte
	for {
		bs := p.q.take(spare)
		if len(bs) == 0 {
			spare = bs
			select {
			case <-p.q.wake:
			case <-p.l.ctx.Done():
				return
			}
			continue
		}
		var err error
		for i, b := range bs {
			if err == nil {
				binary.LittleEndian.PutUint64(hdr[0:8], b.seq)
				binary.LittleEndian.PutUint32(hdr[8:12], uint32(len(b.buf.b)))
				if _, err = w.Write(hdr[:]); err == nil {
					_, err = w.Write(b.buf.b)
				}
			}
			// Written into the bufio buffer or the socket: the bytes are
			// no longer needed.
			p.l.release(b)
			bs[i] = nil
		}
		spare = bs
		if err == nil {
			err = w.Flush() // one flush per take: the network round
		}
		if err != nil {
			return
		}
	}
}

func (p *peer) dial() net.Conn {
	var d net.Dialer
	for {
		conn, err := d.DialContext(p.l.ctx, "tcp", p.addr)
		if err == nil {
			p.mu.Lock()
			if p.closing {
				p.mu.Unlock()
				conn.Close()
				return nil
			}
			p.conn = conn
			p.mu.Unlock()
			return conn
		}
		select {
		case <-time.After(dialRetry):
		case <-p.l.ctx.Done():
			return nil
		}
	}
}

// readAcks records the follower's highest durable seq. Acks that arrived
// together are read at once and only the last (highest) is applied.
func (p *peer) readAcks(conn net.Conn) {
	defer p.l.wg.Done()
	r := bufio.NewReaderSize(conn, 4096)
	var ack [ackSize]byte
	for {
		if _, err := io.ReadFull(r, ack[:]); err != nil {
			conn.Close() // the follower is gone: make the writer notice too
			return
		}
		for r.Buffered() >= ackSize {
			io.ReadFull(r, ack[:]) // cannot fail: the bytes are buffered
		}
		seq := binary.LittleEndian.Uint64(ack[:])
		p.l.tmu.Lock()
		if seq > p.l.acks[p.idx] && seq <= p.l.lastSeq {
			p.l.acks[p.idx] = seq
			p.l.advance()
		}
		p.l.tmu.Unlock()
	}
}

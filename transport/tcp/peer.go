package tcp

import (
	"net"
	"sync"
	"time"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/transport/frame"
)

// peer is the outbound side of one remote host: a queue that Send fills and
// a writer goroutine (run) that owns the connection.
type peer struct {
	t    *Transport
	addr string
	wake chan struct{}

	mu sync.Mutex
	q  batch
	// backoffUntil is when Sends are accepted again; zero when not in
	// backoff. failures counts consecutive failed dials and writes.
	backoffUntil time.Time
	failures     int
}

func newPeer(t *Transport, addr string) *peer {
	return &peer{t: t, addr: addr, wake: make(chan struct{}, 1)}
}

// enqueue encodes m into the queue unless the peer is in backoff or the
// queue is over budget.
func (p *peer) enqueue(group uint64, m *raftpb.Message, size int) bool {
	p.mu.Lock()
	if !p.backoffUntil.IsZero() {
		if time.Now().Before(p.backoffUntil) {
			p.mu.Unlock()
			return false
		}
		p.backoffUntil = time.Time{}
	}
	if len(p.q.buf)+size > p.t.opts.MaxQueueBytes {
		p.mu.Unlock()
		return false
	}
	p.q.add(func(b []byte) []byte { return frame.AppendRaft(b, group, m) })
	p.mu.Unlock()
	signal(p.wake)
	return true
}

// peerConn is the writer's connection and the stop of its close-on-shutdown.
type peerConn struct {
	net.Conn
	stop func()
	// fresh: the Hello is queued but not yet written, so the next batch
	// holds one frame that is not a message.
	fresh bool
}

func (c *peerConn) close() {
	c.stop()
	c.Close()
}

// run is the peer's writer: woken by Send, it dials when it has no
// connection and writes whatever is queued, one Write per batch, until the
// transport closes.
func (p *peer) run() {
	defer p.t.wg.Done()
	var c *peerConn
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	for {
		select {
		case <-p.t.ctx.Done():
			return
		case <-p.wake:
		}
		c = p.flush(c)
	}
}

// flush writes batches until the queue is empty and returns the connection
// to use next time: nil after a failure.
func (p *peer) flush(c *peerConn) *peerConn {
	for p.t.ctx.Err() == nil {
		if c == nil {
			if c = p.connect(); c == nil {
				return nil
			}
		}
		p.mu.Lock()
		buf, n := p.q.take()
		p.mu.Unlock()
		if n == 0 {
			return c
		}
		if err := writeBatch(c, p.t.opts.WriteTimeout, buf, n, &p.t.stats); err != nil {
			c.close()
			p.t.stats.writeFailures.Add(1)
			if c.fresh {
				n--
			}
			p.fail("write", err, n)
			return nil
		}
		c.fresh = false
		p.mu.Lock()
		p.q.recycle(buf)
		p.failures = 0
		p.mu.Unlock()
	}
	return c
}

// connect dials the peer and queues the Hello in front of what waits, so
// the first batch carries both. It returns nil after a failure or when
// there is nothing to send (the queue was dropped meanwhile).
func (p *peer) connect() *peerConn {
	p.mu.Lock()
	empty := p.q.frames == 0
	p.mu.Unlock()
	if empty {
		return nil
	}
	p.t.stats.dials.Add(1)
	conn, err := dial(p.t.ctx, p.t.opts.DialContext, p.t.opts.TLS, p.t.opts.DialTimeout, p.addr)
	if err != nil {
		if p.t.ctx.Err() == nil {
			p.t.stats.dialFailures.Add(1)
			p.fail("dial", err, 0)
		}
		return nil
	}
	c := &peerConn{Conn: conn, stop: closeOnDone(p.t.ctx, &p.t.wg, conn), fresh: true}
	hello := frame.AppendHello(nil, frame.Hello{Addr: p.t.addr, Version: frame.Version})
	p.mu.Lock()
	p.q.prepend(hello)
	p.mu.Unlock()
	return c
}

// fail drops the queue (and the n frames of a batch that failed to go out)
// and starts a backoff, during which Send refuses messages: raft will
// retransmit, and queueing for a dead peer would only waste memory.
func (p *peer) fail(op string, err error, n int) {
	if p.t.ctx.Err() != nil {
		return // shutting down: not the peer's fault
	}
	p.mu.Lock()
	n += p.q.drop()
	p.failures++
	k := p.failures
	wait := p.t.backoff(k)
	p.backoffUntil = time.Now().Add(wait)
	p.mu.Unlock()
	p.t.stats.droppedQueued.Add(uint64(n))
	// A peer that stays down fails every backoff period; warn once per
	// outage and keep the rest at debug level.
	log := p.t.log.Debug
	if k == 1 {
		log = p.t.log.Warn
	}
	log("transport: peer unreachable", "peer", p.addr, "op", op, "err", err,
		"dropped", n, "failures", k, "backoff", wait)
}

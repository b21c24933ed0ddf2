package tcp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/frame"
)

// Transport is the TCP implementation of transport.Transport, with
// application services on the same port.
type Transport struct {
	opts  Options
	h     transport.Handler
	ln    net.Listener
	addr  string
	log   *slog.Logger
	stats counters

	// ctx is cancelled by Close; every connection closes when it is done.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.RWMutex
	closed bool
	peers  map[string]*peer

	svcMu    sync.RWMutex
	services map[string]transport.ServiceHandler

	randMu sync.Mutex
	rand   *mrand.Rand
}

var _ transport.Transport = (*Transport)(nil)

// New listens on opts.Addr and starts accepting connections, whose raft
// messages go to h. It returns an error if the options are invalid or the
// address cannot be listened on.
func New(opts Options, h transport.Handler) (*Transport, error) {
	if h == nil {
		return nil, errors.New("tcp: nil handler")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("tcp: listen: %w", err)
	}
	addr := ln.Addr().String()
	if opts.AdvertiseAddr != "" {
		addr = opts.AdvertiseAddr
	}
	if opts.TLS != nil {
		ln = tls.NewListener(ln, opts.TLS)
	}
	t := &Transport{
		opts: opts, h: h, ln: ln, addr: addr, log: opts.Logger.With("transport", addr),
		peers: make(map[string]*peer), services: make(map[string]transport.ServiceHandler),
		rand: opts.Rand,
	}
	if t.rand == nil {
		var seed [32]byte
		rand.Read(seed[:])
		t.rand = mrand.New(mrand.NewChaCha8(seed))
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// Addr is the address the transport listens on, as the listener reports it,
// or Options.AdvertiseAddr when that is set.
//
// Safe for concurrent use.
func (t *Transport) Addr() string { return t.addr }

// Stats returns the transport's counters. Each counter is read atomically;
// the set is not one consistent snapshot.
//
// Safe for concurrent use.
func (t *Transport) Stats() Stats { return t.stats.snapshot() }

// Send encodes m into the queue of the peer at addr and returns at once;
// the peer's writer dials if needed and writes the queue in one batch. It
// returns false, dropping m, when the transport is closed, the peer is in
// backoff after a failed dial or write, the peer's queue would exceed
// MaxQueueBytes, or m's encoding exceeds MaxFrameSize. True means queued,
// not delivered.
//
// Safe for concurrent use; messages to one addr are written in the order of
// the Send calls that queued them. m is not retained.
func (t *Transport) Send(addr string, group uint64, m *raftpb.Message) bool {
	size := frame.RaftFrameSize(m)
	if size-frame.HeaderSize > t.opts.MaxFrameSize {
		t.stats.droppedSends.Add(1)
		t.log.Warn("transport: dropping message over the frame size limit",
			"peer", addr, "group", group, "type", m.Type, "bytes", size-frame.HeaderSize, "limit", t.opts.MaxFrameSize)
		return false
	}
	p := t.peer(addr)
	if p == nil || !p.enqueue(group, m, size) {
		t.stats.droppedSends.Add(1)
		return false
	}
	return true
}

// peer returns the peer for addr, creating it and its writer on first use;
// nil once the transport is closed.
func (t *Transport) peer(addr string) *peer {
	t.mu.RLock()
	p, closed := t.peers[addr], t.closed
	t.mu.RUnlock()
	if closed {
		return nil
	}
	if p != nil {
		return p
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	if p = t.peers[addr]; p == nil {
		p = newPeer(t, addr)
		t.peers[addr] = p
		// Under t.mu with closed false, so this Add happens before Close's
		// Wait.
		t.wg.Add(1)
		go p.run()
	}
	return p
}

// RegisterService makes h serve requests for service name on this
// transport's port, replacing any earlier handler of that name; a nil h
// removes the service. Requests already running keep their handler. It
// panics if name is empty, since no request can name the empty service.
//
// Safe for concurrent use, before or while the transport serves.
func (t *Transport) RegisterService(name string, h transport.ServiceHandler) {
	if name == "" {
		panic("tcp: RegisterService with an empty name")
	}
	t.svcMu.Lock()
	defer t.svcMu.Unlock()
	if h == nil {
		delete(t.services, name)
		return
	}
	t.services[name] = h
}

func (t *Transport) service(name string) transport.ServiceHandler {
	t.svcMu.RLock()
	defer t.svcMu.RUnlock()
	return t.services[name]
}

// Close stops the listener, closes every connection, cancels the contexts
// of running service handlers and waits for every goroutine of the
// transport, handlers included. Later Sends return false.
//
// Safe for concurrent use and to call more than once; every call waits.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.cancel()
	err := t.ln.Close()
	t.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// acceptLoop accepts connections until the listener closes. Errors other
// than closing (running out of file descriptors) are retried with a growing
// pause rather than ending the loop, which would make the host deaf.
func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	var pause time.Duration
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			t.log.Warn("transport: accept failed", "err", err, "retry_in", pause)
			select {
			case <-t.ctx.Done():
				return
			case <-time.After(pause):
			}
			continue
		}
		pause = 0
		t.stats.accepted.Add(1)
		t.wg.Add(1)
		go t.serve(c)
	}
}

// backoff returns the wait after the k-th consecutive failure.
func (t *Transport) backoff(k int) time.Duration {
	b := t.opts.BackoffMax
	if shift := k - 1; shift < 32 && t.opts.BackoffMin<<shift < b && t.opts.BackoffMin<<shift > 0 {
		b = t.opts.BackoffMin << shift
	}
	t.randMu.Lock()
	jitter := time.Duration(t.rand.Int64N(int64(b/2) + 1))
	t.randMu.Unlock()
	return max(b-jitter, t.opts.BackoffMin)
}

package memnet

import (
	"context"
	"fmt"
	"sync"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/transport"
)

// Endpoint is one host's attachment to a Network: a transport.Transport
// whose address is the one it listens on.
type Endpoint struct {
	net  *Network
	addr string
	h    transport.Handler
	// ctx is cancelled by Close; service handlers receive it.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts the links from and to this endpoint and its running
	// service handlers.
	wg sync.WaitGroup

	// Guarded by net.mu.
	closed bool
	links  map[string]*link // outbound, by receiver address

	svcMu    sync.RWMutex
	services map[string]transport.ServiceHandler
}

var _ transport.Transport = (*Endpoint)(nil)

func newEndpoint(n *Network, addr string, h transport.Handler) *Endpoint {
	e := &Endpoint{net: n, addr: addr, h: h, links: make(map[string]*link),
		services: make(map[string]transport.ServiceHandler)}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e
}

// Addr is the address the endpoint listens on.
//
// Safe for concurrent use.
func (e *Endpoint) Addr() string { return e.addr }

// Send copies m, by encoding it, into the queue from this endpoint to addr
// and returns without waiting for delivery. It returns false when this
// endpoint is closed or addr is not listening, closed or cut off from it;
// it returns true for a message the drop rate loses.
//
// Safe for concurrent use; messages to one addr are delivered in the order
// of the Send calls that queued them. m is not retained.
func (e *Endpoint) Send(addr string, group uint64, m *raftpb.Message) bool {
	data := m.MarshalAppend(make([]byte, 0, m.Size()))
	n := e.net
	n.mu.Lock()
	defer n.mu.Unlock()
	to := n.endpoints[addr]
	if e.closed || to == nil || n.cutLocked(e.addr, addr) {
		return false
	}
	if n.dropRate > 0 && n.rng.Float64() < n.dropRate {
		return true
	}
	l := e.links[addr]
	if l == nil {
		l = newLink(e, to)
		e.links[addr] = l
		// Both endpoints are open and n.mu is held, so these Adds come
		// before either endpoint's Close waits.
		e.wg.Add(1)
		to.wg.Add(1)
		go l.run()
	}
	l.push(envelope{group: group, data: data})
	return true
}

// RegisterService makes h serve Network.Call requests for service name at
// this endpoint, replacing any earlier handler of that name; a nil h
// removes the service. It panics if name is empty.
//
// Safe for concurrent use.
func (e *Endpoint) RegisterService(name string, h transport.ServiceHandler) {
	if name == "" {
		panic("memnet: RegisterService with an empty name")
	}
	e.svcMu.Lock()
	defer e.svcMu.Unlock()
	if h == nil {
		delete(e.services, name)
		return
	}
	e.services[name] = h
}

func (e *Endpoint) service(name string) transport.ServiceHandler {
	e.svcMu.RLock()
	defer e.svcMu.RUnlock()
	return e.services[name]
}

// Close detaches the endpoint: Sends to and from it return false, queued
// messages from and to it are discarded, its service handlers' context is
// cancelled and in-flight Calls to it fail. It waits for the delivery
// goroutines of its links and for its service handlers. The address can
// then be listened on again.
//
// Safe for concurrent use and to call more than once; every call waits.
func (e *Endpoint) Close() error {
	n := e.net
	n.mu.Lock()
	if !e.closed {
		e.closed = true
		if n.endpoints[e.addr] == e {
			delete(n.endpoints, e.addr)
		}
		for _, l := range e.links {
			l.stop()
		}
		clear(e.links)
		for _, other := range n.endpoints {
			if l := other.links[e.addr]; l != nil {
				l.stop()
				delete(other.links, e.addr)
			}
		}
	}
	n.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	return nil
}

// envelope is one encoded message in flight.
type envelope struct {
	group uint64
	data  []byte
}

// link carries messages from one endpoint to another, in order, on its own
// delivery goroutine.
type link struct {
	from, to *Endpoint
	wake     chan struct{}
	done     chan struct{} // closed by stop, under net.mu, exactly once

	mu    sync.Mutex
	queue []envelope
}

func newLink(from, to *Endpoint) *link {
	return &link{from: from, to: to, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (l *link) push(env envelope) {
	l.mu.Lock()
	l.queue = append(l.queue, env)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *link) take() []envelope {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.queue
	l.queue = nil
	return q
}

func (l *link) stop() { close(l.done) }

func (l *link) stopped() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// run delivers until the link stops.
func (l *link) run() {
	defer l.from.wg.Done()
	defer l.to.wg.Done()
	for {
		select {
		case <-l.done:
			return
		case <-l.wake:
		}
		for q := l.take(); len(q) > 0; q = l.take() {
			l.deliver(q)
		}
	}
}

// deliver hands q to the receiver in order. A cut made since Send loses the
// message; a handler error loses the rest of what is queued, as the TCP
// transport's disconnect would.
func (l *link) deliver(q []envelope) {
	for _, env := range q {
		if l.stopped() {
			return
		}
		if !l.from.net.connected(l.from.addr, l.to.addr) {
			continue
		}
		var m raftpb.Message
		if err := m.Unmarshal(env.data); err != nil {
			panic(fmt.Sprintf("memnet: decoding a message this process encoded: %v", err))
		}
		if err := l.to.h.HandleRaft(env.group, &m); err != nil {
			l.take()
			return
		}
	}
}

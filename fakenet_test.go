package raftkit

import (
	"sync"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/transport"
)

// fakeNet is a stand-in for memnet while it is written: synchronous
// delivery through the codec, with isolation.
type fakeNet struct {
	mu       sync.Mutex
	handlers map[string]transport.Handler
	isolated map[string]bool
}

func newFakeNet() *fakeNet {
	return &fakeNet{handlers: map[string]transport.Handler{}, isolated: map[string]bool{}}
}

type fakeEndpoint struct {
	net  *fakeNet
	addr string
	q    chan func()
	done chan struct{}
}

func (f *fakeNet) Listen(addr string, h transport.Handler) (*fakeEndpoint, error) {
	f.mu.Lock()
	f.handlers[addr] = h
	f.mu.Unlock()
	e := &fakeEndpoint{net: f, addr: addr, q: make(chan func(), 1<<16), done: make(chan struct{})}
	go func() {
		defer close(e.done)
		for fn := range e.q {
			fn()
		}
	}()
	return e, nil
}

func (f *fakeNet) Isolate(addr string) { f.mu.Lock(); f.isolated[addr] = true; f.mu.Unlock() }
func (f *fakeNet) Heal()               { f.mu.Lock(); clear(f.isolated); f.mu.Unlock() }
func (f *fakeNet) Close()              {}

func (e *fakeEndpoint) Send(addr string, group uint64, m *raftpb.Message) bool {
	e.net.mu.Lock()
	h := e.net.handlers[addr]
	cut := e.net.isolated[addr] || e.net.isolated[e.addr]
	e.net.mu.Unlock()
	if h == nil || cut {
		return false
	}
	buf := m.MarshalAppend(nil)
	var c raftpb.Message
	if err := c.Unmarshal(buf); err != nil {
		panic(err)
	}
	select {
	case e.q <- func() { _ = h.HandleRaft(group, &c) }:
		return true
	default:
		return false
	}
}

func (e *fakeEndpoint) Addr() string { return e.addr }

func (e *fakeEndpoint) Close() error {
	e.net.mu.Lock()
	if e.net.handlers[e.addr] != nil {
		delete(e.net.handlers, e.addr)
		close(e.q)
	}
	e.net.mu.Unlock()
	<-e.done
	return nil
}

package memnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/frame"
)

// ErrConnectionLost is transport.ErrConnectionLost, so that callers test one
// sentinel whichever transport they run on: a Call whose endpoint closed
// while the call was in flight fails with it.
var ErrConnectionLost = transport.ErrConnectionLost

// Network is a set of Endpoints that can reach each other, and the faults
// between them.
type Network struct {
	mu        sync.Mutex
	rng       *rand.Rand
	closed    bool
	endpoints map[string]*Endpoint
	dropRate  float64
	cuts      map[pair]bool // unordered pairs cut by Partition
	isolated  map[string]bool
}

// pair is an unordered pair of addresses.
type pair struct{ a, b string }

func pairOf(a, b string) pair {
	if a > b {
		a, b = b, a
	}
	return pair{a, b}
}

// New returns an empty network whose faults draw from a source seeded with
// seed.
func New(seed int64) *Network {
	return &Network{
		rng:       rand.New(rand.NewPCG(uint64(seed), 0x6d656d6e6574)),
		endpoints: make(map[string]*Endpoint),
		cuts:      make(map[pair]bool),
		isolated:  make(map[string]bool),
	}
}

// Listen creates the endpoint at addr, delivering raft messages to h. It
// fails if addr is empty or taken by an open endpoint, or the network is
// closed. A closed endpoint's address may be listened on again.
//
// Safe for concurrent use.
func (n *Network) Listen(addr string, h transport.Handler) (*Endpoint, error) {
	if addr == "" || h == nil {
		return nil, errors.New("memnet: Listen needs an address and a handler")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, transport.ErrClosed
	}
	if n.endpoints[addr] != nil {
		return nil, fmt.Errorf("memnet: address %s in use", addr)
	}
	e := newEndpoint(n, addr, h)
	n.endpoints[addr] = e
	return e, nil
}

// SetDropRate makes Send lose each message with probability p (clamped to
// [0, 1]) while still returning true, as a lossy link would.
//
// Safe for concurrent use.
func (n *Network) SetDropRate(p float64) {
	n.mu.Lock()
	n.dropRate = min(max(p, 0), 1)
	n.mu.Unlock()
}

// Partition cuts a and b off from each other in both directions until
// Heal. The addresses need not be listening yet.
//
// Safe for concurrent use.
func (n *Network) Partition(a, b string) {
	n.mu.Lock()
	n.cuts[pairOf(a, b)] = true
	n.mu.Unlock()
}

// Isolate cuts addr off from every endpoint, itself excepted, and from
// Calls, until Heal.
//
// Safe for concurrent use.
func (n *Network) Isolate(addr string) {
	n.mu.Lock()
	n.isolated[addr] = true
	n.mu.Unlock()
}

// Heal removes every partition and isolation. The drop rate stays.
//
// Safe for concurrent use.
func (n *Network) Heal() {
	n.mu.Lock()
	clear(n.cuts)
	clear(n.isolated)
	n.mu.Unlock()
}

// cutLocked reports whether messages from a to b are cut. n.mu is held.
func (n *Network) cutLocked(a, b string) bool {
	if a == b {
		return false
	}
	return n.isolated[a] || n.isolated[b] || n.cuts[pairOf(a, b)]
}

func (n *Network) connected(a, b string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.cutLocked(a, b)
}

// Close closes every endpoint and refuses new ones. It waits for all
// delivery and service goroutines.
//
// Safe for concurrent use and to call more than once.
func (n *Network) Close() error {
	n.mu.Lock()
	n.closed = true
	eps := make([]*Endpoint, 0, len(n.endpoints))
	for _, e := range n.endpoints {
		eps = append(eps, e)
	}
	n.mu.Unlock()
	for _, e := range eps {
		e.Close()
	}
	return nil
}

// Call runs the handler of service at the endpoint addr for group with a
// copy of req and returns a copy of its response, with the errors of
// tcp.Client.Call: a *transport.RemoteError for a handler's error (keeping a
// transport.WireError's code and leader), transport.ErrUnknownService,
// transport.ErrUnreachable when addr is not listening or is isolated,
// ErrConnectionLost when the endpoint closes during the call, and ctx.Err()
// when ctx ends first. As over TCP, an abandoned call's handler runs on
// until it returns or its endpoint closes.
//
// Safe for concurrent use.
func (n *Network) Call(ctx context.Context, addr, service string, group uint64, req []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		body []byte
		err  error
	}
	done := make(chan result, 1)
	n.mu.Lock()
	e := n.endpoints[addr]
	if e == nil || n.isolated[addr] {
		n.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", transport.ErrUnreachable, addr)
	}
	h := e.service(service)
	if h == nil {
		n.mu.Unlock()
		r := frame.Response{Status: frame.StatusUnknownService, Msg: service}
		return nil, r.Err()
	}
	e.wg.Add(1) // under n.mu with e open: before any Close's Wait
	n.mu.Unlock()
	go func() {
		defer e.wg.Done()
		body, err := transport.CallService(e.ctx, h, group, clone(req))
		if e.ctx.Err() != nil {
			return // as over TCP, an answer after the close is lost
		}
		done <- result{clone(body), err}
	}()
	outcome := func(r result) ([]byte, error) {
		if r.err != nil {
			resp := frame.ErrorResponse(0, r.err)
			return nil, resp.Err()
		}
		return r.body, nil
	}
	select {
	case r := <-done:
		return outcome(r)
	case <-e.ctx.Done():
		select {
		case r := <-done: // answered just before the close
			return outcome(r)
		default:
			return nil, fmt.Errorf("%w: %s", ErrConnectionLost, addr)
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// clone copies b as the wire would: empty becomes nil.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

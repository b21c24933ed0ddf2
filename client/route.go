package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/transport"
)

// Caller sends one request to one host; tcp.Client and memnet.Network
// implement it.
type Caller interface {
	Call(ctx context.Context, addr, service string, group uint64, req []byte) ([]byte, error)
}

// Options tunes a RouteTable. Zero values select the defaults.
type Options struct {
	// BackoffMin and BackoffMax bound the pause between rounds of retries;
	// defaults 20ms and 1s.
	BackoffMin, BackoffMax time.Duration
	// AttemptTimeout bounds one call to one host; default 3s.
	AttemptTimeout time.Duration
	// Seed seeds the backoff jitter; zero picks one at random.
	Seed uint64
}

// RouteTable routes requests to the leaders of groups.
//
// Concurrency: safe for concurrent use.
type RouteTable struct {
	caller Caller
	opts   Options

	mu      sync.Mutex
	peers   map[uint64][]string
	leaders map[uint64]string
	rng     *rand.Rand
}

// New returns a RouteTable that sends through caller.
func New(caller Caller, opts Options) *RouteTable {
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 20 * time.Millisecond
	}
	if opts.BackoffMax < opts.BackoffMin {
		opts.BackoffMax = max(time.Second, opts.BackoffMin)
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 3 * time.Second
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &RouteTable{
		caller: caller, opts: opts, peers: map[uint64][]string{}, leaders: map[uint64]string{},
		rng: rand.New(rand.NewPCG(seed, seed>>1)),
	}
}

// SetPeers records the hosts that serve group.
func (rt *RouteTable) SetPeers(group uint64, addrs []string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.peers[group] = slices.Clone(addrs)
	if l, ok := rt.leaders[group]; ok && !slices.Contains(addrs, l) {
		delete(rt.leaders, group)
	}
}

// Leader returns the cached leader of group, or "".
func (rt *RouteTable) Leader(group uint64) string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.leaders[group]
}

// Idempotent marks a request safe to send again after an error that leaves
// its outcome unknown (a timeout or a broken connection after sending).
type Idempotent bool

// Invoke sends req to the leader of group and returns its response. It
// tries the cached leader first, then every peer; a not-leader answer with
// a hint moves to the hinted host at once; busy, try-again and unreachable
// answers are retried after a jittered backoff until ctx ends. Errors that
// may mean the request took effect are returned as they are unless
// idempotent is true.
func (rt *RouteTable) Invoke(ctx context.Context, group uint64, service string, req []byte, idempotent Idempotent) ([]byte, error) {
	backoff := rt.opts.BackoffMin
	var last error
	for round := 0; ; round++ {
		for _, addr := range rt.candidates(group) {
			resp, err := rt.attempt(ctx, addr, group, service, req)
			if err == nil {
				rt.setLeader(group, addr)
				return resp, nil
			}
			last = err
			if hint, ok := notLeaderHint(err); ok {
				rt.forget(group, addr)
				if hint != "" && hint != addr {
					rt.setLeader(group, hint)
					break // start the next round at the hint, without backoff
				}
				continue
			}
			if !retriable(err, bool(idempotent)) {
				return nil, err
			}
			rt.forget(group, addr)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("client: group %d: %w (last error: %v)", group, ctx.Err(), last)
		}
		if rt.Leader(group) != "" && round%2 == 0 {
			continue // a fresh hint: try it before pausing
		}
		if err := sleep(ctx, rt.jitter(backoff)); err != nil {
			return nil, fmt.Errorf("client: group %d: %w (last error: %v)", group, err, last)
		}
		backoff = min(2*backoff, rt.opts.BackoffMax)
	}
}

func (rt *RouteTable) attempt(ctx context.Context, addr string, group uint64, service string, req []byte) ([]byte, error) {
	actx, cancel := context.WithTimeout(ctx, rt.opts.AttemptTimeout)
	defer cancel()
	return rt.caller.Call(actx, addr, service, group, req)
}

// candidates is the order to try hosts in: the cached leader, then the
// other peers.
func (rt *RouteTable) candidates(group uint64) []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out := make([]string, 0, len(rt.peers[group])+1)
	if l := rt.leaders[group]; l != "" {
		out = append(out, l)
	}
	for _, p := range rt.peers[group] {
		if p != rt.leaders[group] {
			out = append(out, p)
		}
	}
	return out
}

func (rt *RouteTable) setLeader(group uint64, addr string) {
	rt.mu.Lock()
	rt.leaders[group] = addr
	rt.mu.Unlock()
}

func (rt *RouteTable) forget(group uint64, addr string) {
	rt.mu.Lock()
	if rt.leaders[group] == addr {
		delete(rt.leaders, group)
	}
	rt.mu.Unlock()
}

func (rt *RouteTable) jitter(d time.Duration) time.Duration {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return d/2 + time.Duration(rt.rng.Int64N(int64(d/2)+1))
}

// notLeaderHint reports whether err says "not leader", and the hint.
func notLeaderHint(err error) (string, bool) {
	var re *transport.RemoteError
	if errors.As(err, &re) && raftkit.Code(re.Code) == raftkit.CodeNotLeader {
		return re.Leader, true
	}
	var e *raftkit.Error
	if errors.As(err, &e) && e.Code == raftkit.CodeNotLeader {
		return e.Leader, true
	}
	return "", false
}

// retriable reports whether another host (or a later attempt) may succeed
// without the risk of applying the request twice.
func retriable(err error, idempotent bool) bool {
	var re *transport.RemoteError
	if errors.As(err, &re) {
		switch raftkit.Code(re.Code) {
		case raftkit.CodeBusy, raftkit.CodeTryAgain, raftkit.CodeUnknownGroup, raftkit.CodeLeaderChanged:
			// Refused before logging, or logged and then overwritten: the
			// request never took effect.
			return true
		case raftkit.CodeTimeout, raftkit.CodeShuttingDown:
			// A task pending at shutdown may still commit elsewhere.
			return idempotent
		}
		return false
	}
	if errors.Is(err, transport.ErrUnreachable) {
		return true // never sent
	}
	// A broken connection or a deadline: the request may have been applied.
	return idempotent
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

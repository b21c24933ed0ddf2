package harness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkit/raftkit/bench/systems"
)

// LoadOptions describes one closed-loop workload.
type LoadOptions struct {
	Groups  int // client k proposes to group k % Groups
	Clients int
	Payload int // bytes per proposal
	// Warmup runs before the measured window, so caches, connections,
	// batching and the Go heap reach their steady state first.
	Warmup   time.Duration
	Duration time.Duration
	// OpTimeout bounds one Propose, so a proposal a system loses (for
	// example across a leader change) costs one timeout, not the run.
	// Default 5s.
	OpTimeout time.Duration
	// OnWindowStart and OnWindowEnd run right before the window opens and
	// right after it closes (CPU time snapshots); optional.
	OnWindowStart, OnWindowEnd func()
}

// LoadResult is what the clients saw inside the measured window: only
// operations that completed inside it count, whenever they started, so the
// window holds a steady state at both ends.
type LoadResult struct {
	Ops       int64           // successful operations
	Window    time.Duration   // actual length of the window
	Latencies []time.Duration // of the successful operations, sorted
	Errors    map[string]int64
}

// OpsPerSec is the throughput over the window.
func (r LoadResult) OpsPerSec() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Window.Seconds()
}

// window is the measured interval as offsets from the load's start on the
// monotonic clock; clients read it after every operation.
type window struct {
	base       time.Time
	start, end atomic.Int64
}

func (w *window) now() int64 { return int64(time.Since(w.base)) }

func (w *window) contains(t int64) bool { return t >= w.start.Load() && t < w.end.Load() }

// RunLoad drives nodes (the three replicas of one cluster) with
// o.Clients closed-loop clients: warm-up, then the measured window, then it
// stops the clients and waits for them. It returns ctx's error if ctx ends
// first, and an error if clients do not stop within OpTimeout after the
// window (a system whose Propose ignores its context).
func RunLoad(ctx context.Context, nodes []systems.Node, o LoadOptions) (LoadResult, error) {
	if o.Groups < 1 || o.Clients < 1 || len(nodes) == 0 {
		return LoadResult{}, fmt.Errorf("load: need groups, clients and nodes (got %d, %d, %d)", o.Groups, o.Clients, len(nodes))
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 5 * time.Second
	}
	w := &window{base: time.Now()}
	w.start.Store(math.MaxInt64)
	w.end.Store(math.MaxInt64)
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	clients := make([]*client, o.Clients)
	var wg sync.WaitGroup
	for k := range clients {
		c := newClient(k, nodes, o, w)
		clients[k] = c
		wg.Go(func() { c.loop(cctx) })
	}
	err := measure(ctx, w, o)
	stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(o.OpTimeout + 5*time.Second):
		return LoadResult{}, errors.New("load: clients did not stop: a Propose ignored its context")
	}
	if err != nil {
		return LoadResult{}, err
	}
	return merge(clients, time.Duration(w.end.Load()-w.start.Load())), nil
}

// measure sleeps through the warm-up and the window, marking the window's
// bounds and calling the hooks next to them.
func measure(ctx context.Context, w *window, o LoadOptions) error {
	if err := sleep(ctx, o.Warmup); err != nil {
		return err
	}
	if o.OnWindowStart != nil {
		o.OnWindowStart()
	}
	w.start.Store(w.now())
	err := sleep(ctx, o.Duration)
	w.end.Store(w.now())
	if o.OnWindowEnd != nil {
		o.OnWindowEnd()
	}
	return err
}

func merge(clients []*client, win time.Duration) LoadResult {
	r := LoadResult{Window: win, Errors: map[string]int64{}}
	n := 0
	for _, c := range clients {
		n += len(c.lat)
	}
	r.Latencies = make([]time.Duration, 0, n)
	for _, c := range clients {
		r.Latencies = append(r.Latencies, c.lat...)
		for k, v := range c.errs {
			r.Errors[k] += v
		}
	}
	slices.Sort(r.Latencies)
	r.Ops = int64(len(r.Latencies))
	return r
}

// client is one closed-loop client; only its own goroutine touches it
// until the load stops.
type client struct {
	nodes   []systems.Node
	group   int
	leader  int // index into nodes of the cached leader, -1 if unknown
	next    int // where the next leader search starts
	buf     []byte
	timeout time.Duration
	w       *window
	lat     []time.Duration
	errs    map[string]int64
}

func newClient(k int, nodes []systems.Node, o LoadOptions, w *window) *client {
	buf := make([]byte, o.Payload)
	// Bytes that differ per client and do not compress, so no system gains
	// from compressing or deduplicating payloads.
	x := uint32(k)*2654435761 + 1
	for i := range buf {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		buf[i] = byte(x)
	}
	return &client{
		nodes: nodes, group: k % o.Groups, leader: -1, next: k % len(nodes),
		buf: buf, timeout: o.OpTimeout, w: w, errs: map[string]int64{},
	}
}

func (c *client) loop(ctx context.Context) {
	for ctx.Err() == nil {
		if c.leader < 0 && !c.findLeader(ctx) {
			return
		}
		t0 := c.w.now()
		opCtx, cancel := context.WithTimeout(ctx, c.timeout)
		err := c.nodes[c.leader].Propose(opCtx, c.group, c.buf)
		cancel()
		t1 := c.w.now()
		if ctx.Err() != nil {
			return // stopped: the outcome says nothing about the system
		}
		if c.w.contains(t1) {
			if err == nil {
				c.lat = append(c.lat, time.Duration(t1-t0))
			} else {
				c.errs[errorKind(err)]++
			}
		}
		if err != nil {
			// Any failure may mean leadership moved; look again. Other
			// errors than ErrNotLeader also back off briefly so a failing
			// system is not spun on.
			c.leader = -1
			if !errors.Is(err, systems.ErrNotLeader) {
				_ = sleep(ctx, time.Millisecond)
			}
		}
	}
}

// findLeader polls IsLeader on the replicas until one leads the client's
// group; false if ctx ended first.
func (c *client) findLeader(ctx context.Context) bool {
	for {
		for i := range c.nodes {
			j := (c.next + i) % len(c.nodes)
			if c.nodes[j].IsLeader(c.group) {
				c.leader, c.next = j, j
				return true
			}
		}
		if sleep(ctx, time.Millisecond) != nil {
			return false
		}
	}
}

// errorKind names an error for the error counts: the harness's own
// categories where it can tell, else the message (capped, as messages may
// carry indices that would make every error its own kind).
func errorKind(err error) string {
	switch {
	case errors.Is(err, systems.ErrNotLeader):
		return "not_leader"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// sleep waits d or until ctx ends, returning ctx's error then.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

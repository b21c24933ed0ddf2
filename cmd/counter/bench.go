package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/examples/counter"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/tcp"
)

// benchConfig is what bench runs: n increments of delta (or n gets, with
// reads), c at a time.
type benchConfig struct {
	n, c  int
	delta int64
	reads bool
}

// benchResult is a finished (or interrupted) run.
type benchResult struct {
	attempted int
	latencies []time.Duration // of the successful increments, sorted
	elapsed   time.Duration
	errs      map[string]int    // failures by kind
	example   map[string]string // one message per kind
}

// runBench runs the increments, each one request with its own deadline,
// from c goroutines, and prints throughput and latency. SIGINT stops it
// early and prints what was done.
func runBench(cl *counter.Client, cfg clientConfig, out io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := cfg.bench
	c := min(b.c, b.n)
	if b.reads {
		fmt.Fprintf(out, "bench: %d gets (%s reads, no log entry), %d at a time, group %q on %s\n",
			b.n, readModeName(cfg.mode), c, cfg.group, strings.Join(cfg.peers, ","))
	} else {
		fmt.Fprintf(out, "bench: %d increments of %+d (one request and one 16-byte log entry each), %d at a time, group %q on %s\n",
			b.n, b.delta, c, cfg.group, strings.Join(cfg.peers, ","))
	}
	// A first read finds the leader, so that the route table's search is
	// not counted in the latency of the first increments, and gives the
	// value to compare the end result with.
	before, errBefore := readValue(ctx, cl, cfg.timeout)
	if errBefore != nil {
		return fmt.Errorf("bench: reading the counter before the run: %w", errBefore)
	}
	res := benchRun(ctx, c, b.n, cfg.timeout, func(ctx context.Context) error {
		if b.reads {
			_, err := cl.GetWith(ctx, cfg.mode)
			return err
		}
		_, err := cl.IncrementAndGet(ctx, b.delta)
		return err
	})
	after, errAfter := readValue(context.Background(), cl, cfg.timeout)
	delta := b.delta
	if b.reads {
		delta = 0 // gets change nothing: the value must not move
	}
	res.print(out, delta, before, after, errAfter)
	switch failed := res.attempted - len(res.latencies); {
	case ctx.Err() != nil:
		return fmt.Errorf("bench: %w after %d of %d increments", errInterrupted, res.attempted, b.n)
	case failed > 0:
		return fmt.Errorf("bench: %d of %d increments failed", failed, res.attempted)
	}
	return nil
}

func readModeName(m raftkit.ReadMode) string {
	switch m {
	case raftkit.ReadLease:
		return "lease"
	case raftkit.ReadStale:
		return "stale"
	}
	return "safe (ReadIndex)"
}

func readValue(ctx context.Context, cl *counter.Client, timeout time.Duration) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return cl.Get(ctx)
}

// benchRun calls op n times from c goroutines, each call with its own
// timeout, until done or ctx ends, and measures every call.
func benchRun(ctx context.Context, c, n int, timeout time.Duration, op func(context.Context) error) benchResult {
	lat := make([]time.Duration, n) // -1 marks a failure
	var next atomic.Int64
	var mu sync.Mutex
	res := benchResult{errs: map[string]int{}, example: map[string]string{}}
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				octx, cancel := context.WithTimeout(ctx, timeout)
				t0 := time.Now()
				err := op(octx)
				lat[i] = time.Since(t0)
				cancel()
				if err != nil {
					lat[i] = -1
					kind := errorKind(err)
					mu.Lock()
					res.errs[kind]++
					if _, ok := res.example[kind]; !ok {
						res.example[kind] = err.Error()
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.attempted = min(int(next.Load()), n)
	for _, d := range lat[:res.attempted] {
		if d >= 0 {
			res.latencies = append(res.latencies, d)
		}
	}
	slices.Sort(res.latencies)
	return res
}

// percentile is the nearest-rank percentile of sorted, given in parts per
// thousand (999 is p99.9); integer arithmetic keeps the rank exact.
func percentile(sorted []time.Duration, perMille int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (len(sorted)*perMille + 999) / 1000 // ceil(n·q), from 1
	return sorted[max(0, min(rank, len(sorted))-1)]
}

func (r benchResult) print(out io.Writer, delta, before, after int64, errAfter error) {
	ok := len(r.latencies)
	fmt.Fprintf(out, "  done:        %d ok, %d failed in %s\n", ok, r.attempted-ok, r.elapsed.Round(time.Millisecond))
	if s := r.elapsed.Seconds(); s > 0 {
		fmt.Fprintf(out, "  throughput:  %.0f ops/s\n", float64(ok)/s)
	}
	if ok > 0 {
		l := r.latencies
		fmt.Fprintf(out, "  latency:     p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
			fmtDur(percentile(l, 500)), fmtDur(percentile(l, 900)), fmtDur(percentile(l, 990)),
			fmtDur(percentile(l, 999)), fmtDur(l[len(l)-1]))
	}
	if len(r.errs) == 0 {
		fmt.Fprintln(out, "  errors:      none")
	} else {
		kinds := make([]string, 0, len(r.errs))
		for k := range r.errs {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool { return r.errs[kinds[i]] > r.errs[kinds[j]] })
		for i, k := range kinds {
			label := "  errors:"
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(out, "%-14s %d %s (e.g. %s)\n", label, r.errs[k], k, r.example[k])
		}
	}
	if errAfter != nil {
		fmt.Fprintf(out, "  counter:     %d before; reading it after failed: %v\n", before, errAfter)
		return
	}
	// Failed increments may or may not have been applied, and other
	// clients may write too, so a difference is reported, not judged.
	fmt.Fprintf(out, "  counter:     %d -> %d (%+d; the acknowledged increments add %+d)\n",
		before, after, after-before, int64(ok)*delta)
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}

// errorKind classifies a failed request for the bench's error counts by
// what the caller can conclude from it.
func errorKind(err error) string {
	var re *transport.RemoteError
	var e *raftkit.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.As(err, &re):
		return "server: " + raftkit.Code(re.Code).String()
	case errors.As(err, &e):
		return "raftkit: " + e.Code.String()
	case errors.Is(err, transport.ErrUnreachable):
		return "unreachable"
	case errors.Is(err, tcp.ErrConnectionLost):
		return "connection lost"
	case errors.Is(err, transport.ErrClosed):
		return "client closed"
	}
	return "other"
}

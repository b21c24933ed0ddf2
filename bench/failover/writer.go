package failover

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// waitLeader polls GET /leader on the live replicas until one answers 200
// and returns its index. Replicas still starting refuse connections; that
// is not an error, but a replica that exited is.
func (c *cluster) waitLeader(ctx context.Context, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		for _, i := range c.live() {
			if c.call(ctx, http.MethodGet, i, "/leader") == nil {
				return i, nil
			}
		}
		if err := c.crashed(); err != nil {
			return -1, err
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("no leader within %v", timeout)
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// writeUntil POSTs /write round-robin to targets, starting one attempt
// every writeEvery without waiting for the previous ones (each has its own
// writeTimeout), until an attempt succeeds. It returns which replica took
// the write and when its answer arrived. Overlapping attempts keep the
// measurement's resolution at writeEvery even while a survivor holds a
// request until its election settles.
func (c *cluster) writeUntil(ctx context.Context, targets []int, limit time.Duration) (int, time.Time, error) {
	type win struct {
		i  int
		at time.Time
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	var wg sync.WaitGroup
	defer wg.Wait() // runs after cancel: in-flight attempts end promptly
	defer cancel()
	wins := make(chan win, 1)
	var last atomic.Pointer[error]
	tick := time.NewTicker(writeEvery)
	defer tick.Stop()
	for k := 0; ; k++ {
		i := targets[k%len(targets)]
		wg.Go(func() {
			err := c.call(ctx, http.MethodPost, i, "/write")
			if err != nil {
				last.Store(&err)
				return
			}
			select {
			case wins <- win{i, time.Now()}:
			default: // another attempt won first
			}
		})
		select {
		case w := <-wins:
			return w.i, w.at, nil
		case <-ctx.Done():
			return -1, time.Time{}, fmt.Errorf("no successful write within %v (last error: %v)", limit, lastErr(&last))
		case <-tick.C:
			if err := c.crashed(); err != nil {
				return -1, time.Time{}, err
			}
		}
	}
}

func lastErr(p *atomic.Pointer[error]) error {
	if e := p.Load(); e != nil {
		return *e
	}
	return nil
}

// call makes one control request to replica i with writeTimeout and
// returns nil on 200, else an error with the status and body.
func (c *cluster) call(ctx context.Context, method string, i int, path string) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.ctl[i]+path, nil)
	if err != nil {
		return fmt.Errorf("replica %d: %w", i, err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("replica %d: %w", i, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("replica %d: %s: %s", i, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

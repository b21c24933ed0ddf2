package dragonboat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/bench/systems/systemstest"

	"github.com/raftkit/raftkit/bench/systems"
)

var _ systems.System = System{}

// startCluster starts three replicas in this process and closes them at
// the end of the test.
func startCluster(t *testing.T, groups int) []systems.Node {
	t.Helper()
	cfg := systems.Config{
		Dirs:              []string{t.TempDir(), t.TempDir(), t.TempDir()},
		Addrs:             systemstest.FreeAddrs(t, 3),
		Groups:            groups,
		ElectionTimeout:   500 * time.Millisecond,
		HeartbeatInterval: 50 * time.Millisecond,
		MaxPayload:        16,
	}
	var nodes []systems.Node
	for id := range 3 {
		n, err := System{}.StartNode(cfg, id)
		if err != nil {
			for _, n := range nodes {
				n.Close()
			}
			t.Fatalf("StartNode %d: %v", id, err)
		}
		nodes = append(nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			if err := n.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	})
	return nodes
}

// waitLeaders waits for every group to have exactly one replica that
// believes it leads.
func waitLeaders(t *testing.T, nodes []systems.Node, groups int) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for g := range groups {
		for {
			leaders := 0
			for _, n := range nodes {
				if n.IsLeader(g) {
					leaders++
				}
			}
			if leaders == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("group %d: %d leaders after %v", g, leaders, time.Since(start))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("%d group(s) have leaders after %v", groups, time.Since(start))
}

// propose proposes payload to group g through whichever replica leads it,
// retrying on ErrNotLeader.
func propose(ctx context.Context, nodes []systems.Node, g int, payload []byte) error {
	for i := 0; ; i++ {
		err := nodes[i%len(nodes)].Propose(ctx, g, payload)
		if !errors.Is(err, systems.ErrNotLeader) {
			return err
		}
		if i%len(nodes) == len(nodes)-1 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three NodeHosts")
	}
	for _, groups := range []int{1, 16} {
		t.Run(fmt.Sprintf("groups=%d", groups), func(t *testing.T) {
			nodes := startCluster(t, groups)
			waitLeaders(t, nodes, groups)
			for g := range groups {
				for i, n := range nodes {
					if !n.IsLeader(g) {
						if err := n.Propose(context.Background(), g, []byte("x")); !errors.Is(err, systems.ErrNotLeader) {
							t.Errorf("group %d: Propose on follower %d: %v, want ErrNotLeader", g, i, err)
						}
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			buf := make([]byte, 16)
			for i := range 100 {
				copy(buf, fmt.Sprintf("payload-%04d", i))
				if err := propose(ctx, nodes, i%groups, buf); err != nil {
					t.Fatalf("proposal %d: %v", i, err)
				}
			}
			t.Logf("100 sequential proposals in %v", time.Since(start))
		})
	}
}

// TestRestart stops a whole cluster and starts it again on the same
// directories and addresses.
func TestRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three NodeHosts twice")
	}
	cfg := systems.Config{
		Dirs:              []string{t.TempDir(), t.TempDir(), t.TempDir()},
		Addrs:             systemstest.FreeAddrs(t, 3),
		Groups:            2,
		ElectionTimeout:   500 * time.Millisecond,
		HeartbeatInterval: 50 * time.Millisecond,
		MaxPayload:        16,
	}
	for round := range 2 {
		var nodes []systems.Node
		for id := range 3 {
			n, err := System{}.StartNode(cfg, id)
			if err != nil {
				t.Fatalf("round %d: StartNode %d: %v", round, id, err)
			}
			nodes = append(nodes, n)
		}
		waitLeaders(t, nodes, cfg.Groups)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for g := range cfg.Groups {
			for i := range 10 {
				if err := propose(ctx, nodes, g, []byte("after restart")); err != nil {
					t.Fatalf("round %d: group %d proposal %d: %v", round, g, i, err)
				}
			}
		}
		cancel()
		for _, n := range nodes {
			if err := n.Close(); err != nil {
				t.Fatalf("round %d: Close: %v", round, err)
			}
			// A second Close must be harmless.
			if err := n.Close(); err != nil {
				t.Fatalf("round %d: second Close: %v", round, err)
			}
		}
	}
}

// TestThroughput measures 64 goroutines proposing 16-byte payloads for 3s,
// spread over the groups. Run with DRAGONBOAT_BENCH=1.
func TestThroughput(t *testing.T) {
	if os.Getenv("DRAGONBOAT_BENCH") == "" {
		t.Skip("set DRAGONBOAT_BENCH=1 to measure")
	}
	for _, groups := range []int{1, 16} {
		t.Run(fmt.Sprintf("groups=%d", groups), func(t *testing.T) {
			nodes := startCluster(t, groups)
			waitLeaders(t, nodes, groups)
			const workers = 64
			const dur = 3 * time.Second
			var ops, fails atomic.Int64
			var mu sync.Mutex
			var firstErr error
			stop := time.Now().Add(dur)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					g := w % groups
					payload := make([]byte, 16)
					for time.Now().Before(stop) {
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						err := propose(ctx, nodes, g, payload)
						cancel()
						if err != nil {
							fails.Add(1)
							mu.Lock()
							if firstErr == nil {
								firstErr = err
							}
							mu.Unlock()
							continue
						}
						ops.Add(1)
					}
				})
			}
			start := time.Now()
			wg.Wait()
			elapsed := time.Since(start)
			if firstErr != nil {
				t.Errorf("%d failed proposals, first: %v", fails.Load(), firstErr)
			}
			msg := fmt.Sprintf("dragonboat groups=%d workers=%d payload=16B: %d ops in %v = %.0f ops/s",
				groups, workers, ops.Load(), elapsed.Round(time.Millisecond), float64(ops.Load())/elapsed.Seconds())
			t.Log(msg)
			fmt.Println(msg)
		})
	}
}

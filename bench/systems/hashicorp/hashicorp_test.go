package hashicorp

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/bench/systems/systemstest"

	"github.com/raftkit/raftkit/bench/systems"
)

// startCluster starts three replicas in this process and waits for a leader.
func startCluster(t *testing.T) ([]systems.Node, systems.Node) {
	t.Helper()
	cfg := systems.Config{
		Dirs:              []string{t.TempDir(), t.TempDir(), t.TempDir()},
		Addrs:             systemstest.FreeAddrs(t, 3),
		Groups:            1,
		ElectionTimeout:   500 * time.Millisecond,
		HeartbeatInterval: 50 * time.Millisecond,
		MaxPayload:        16,
	}
	var nodes []systems.Node
	for id := range 3 {
		n, err := System{}.StartNode(cfg, id)
		if err != nil {
			t.Fatalf("StartNode(%d): %v", id, err)
		}
		nodes = append(nodes, n)
	}
	t.Cleanup(func() {
		for i, n := range nodes {
			if err := n.Close(); err != nil {
				t.Errorf("Close(%d): %v", i, err)
			}
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if n.IsLeader(0) {
				return nodes, n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader within 10s")
	return nil, nil
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-replica cluster")
	}
	if _, err := (System{}).StartNode(systems.Config{Groups: 16}, 0); !errors.Is(err, systems.ErrUnsupported) {
		t.Fatalf("Groups=16: got %v, want ErrUnsupported", err)
	}
	nodes, leader := startCluster(t)
	for _, n := range nodes {
		if n != leader {
			if err := n.Propose(context.Background(), 0, []byte("x")); !errors.Is(err, systems.ErrNotLeader) {
				t.Fatalf("Propose on follower: got %v, want ErrNotLeader", err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	buf := make([]byte, 16)
	for i := range 100 {
		buf[0] = byte(i)
		if err := leader.Propose(ctx, 0, buf); err != nil {
			t.Fatalf("Propose %d: %v", i, err)
		}
	}
}

// TestThroughput is a manual measurement: 64 goroutines proposing 16-byte
// payloads for 3s. Run with
//
//	HASHICORP_BENCH=1 go test -run TestThroughput -v ./systems/hashicorp
func TestThroughput(t *testing.T) {
	if testing.Short() || os.Getenv("HASHICORP_BENCH") == "" {
		t.Skip("set HASHICORP_BENCH=1 to measure")
	}
	_, leader := startCluster(t)
	const workers = 64
	const dur = 3 * time.Second
	var ops, notLeader, failed atomic.Int64
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			buf := make([]byte, 16)
			buf[0] = byte(w)
			for time.Now().Before(stop) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := leader.Propose(ctx, 0, buf)
				cancel()
				switch {
				case err == nil:
					ops.Add(1)
				case errors.Is(err, systems.ErrNotLeader):
					notLeader.Add(1)
					time.Sleep(time.Millisecond)
				default:
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	t.Logf("%d workers, 16-byte payloads, %v: %d ops, %.0f ops/s (not-leader %d, failed %d)",
		workers, el.Round(time.Millisecond), ops.Load(), float64(ops.Load())/el.Seconds(),
		notLeader.Load(), failed.Load())
	if failed.Load() > 0 || notLeader.Load() > 0 {
		t.Errorf("unexpected errors: not-leader %d, failed %d", notLeader.Load(), failed.Load())
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/client"
	"github.com/raftkit/raftkit/examples/counter"
	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/transport/tcp"
)

// counterCluster is real Counter servers on loopback TCP: the first three
// are the group's initial peers, the others start with --join.
type counterCluster struct {
	t       *testing.T
	addrs   []string
	root    string
	servers []*counter.Server
}

func newCounterCluster(t *testing.T, n int) *counterCluster {
	c := &counterCluster{t: t, root: t.TempDir(), servers: make([]*counter.Server, n)}
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.addrs = append(c.addrs, l.Addr().String())
		l.Close()
	}
	t.Cleanup(func() {
		for _, s := range c.servers {
			if s != nil {
				_ = s.Close()
			}
		}
	})
	for i := range n {
		cfg := counter.ServerConfig{
			DataDir: filepath.Join(c.root, fmt.Sprint(i)), Addr: c.addrs[i], Peers: c.addrs[:3],
			TickInterval: 10 * time.Millisecond, SnapshotEntries: 2_000,
		}
		if i >= 3 {
			cfg.NodeID, cfg.Join = uint64(i+1), true
		}
		s, err := counter.StartServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.servers[i] = s
	}
	return c
}

// ctl runs raftctl in-process over real TCP against the servers.
func (c *counterCluster) ctl(args ...string) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	dial := func(cfg *tls.Config, d time.Duration) (client.Caller, func(), error) { return dialTCP(cfg, d) }
	args = append([]string{"--peers", strings.Join(c.addrs, ","), "--timeout", "60s"}, args...)
	if code := run(context.Background(), args, &out, &errOut, dial, client.Options{}); code != 0 {
		c.t.Fatalf("raftctl %v: exit %d\n%s%s", args, code, out.String(), errOut.String())
	}
	c.t.Logf("raftctl %s: %s", strings.Join(args[4:], " "), strings.TrimSpace(out.String()))
}

func (c *counterCluster) peer(i int) string { return fmt.Sprintf("%d@%s", i+1, c.addrs[i]) }

// TestGrowShrinkTransferSnapshotUnderLoad: while clients keep incrementing,
// raftctl grows the Counter group from three servers to five and back,
// moves leadership and triggers a snapshot; no acknowledged increment is
// lost and every member ends with the same value.
func TestGrowShrinkTransferSnapshotUnderLoad(t *testing.T) {
	c := newCounterCluster(t, 5)
	caller := tcp.NewClient(tcp.ClientOptions{})
	defer caller.Close()
	cl := counter.NewClient(caller, c.addrs, "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var mu sync.Mutex
	var acked, unknown int64 // sums of the deltas acknowledged, and of those whose outcome is unknown
	var count int
	load, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for k := int64(1); load.Err() == nil; k++ {
				delta := int64(w+1)*1_000_000 + k // unique per increment
				octx, ocancel := context.WithTimeout(load, 5*time.Second)
				_, err := cl.IncrementAndGet(octx, delta)
				ocancel()
				mu.Lock()
				if err == nil {
					acked += delta
					count++
				} else {
					unknown += delta
				}
				mu.Unlock()
			}
		})
	}
	testutil.WaitFor(t, time.Minute, "the load to start", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return count >= 200
	})
	c.ctl("add-peer", c.peer(3))
	c.ctl("add-peer", c.peer(4))
	c.ctl("list-peers")
	c.ctl("transfer-leader")
	c.ctl("snapshot")
	c.ctl("remove-peer", "5")
	c.ctl("change-peers", strings.Join([]string{c.peer(0), c.peer(1), c.peer(2)}, ","))
	c.ctl("transfer-leader", "2")
	c.ctl("transfer-leader", "1")
	stopLoad()
	wg.Wait()

	// Increments cut off by the end of the load may still commit after it,
	// so wait for a linearizable read that every remaining member's replica
	// agrees with.
	var final int64
	testutil.WaitFor(t, 30*time.Second, "the members to agree with a linearizable read", func() bool {
		v, err := cl.Get(ctx)
		if err != nil {
			return false
		}
		final = v
		for i := range 3 {
			if c.servers[i].StateMachine().Value() != v {
				return false
			}
		}
		return true
	})
	if final < acked || final > acked+unknown {
		t.Fatalf("value %d outside [acked %d, acked+unknown %d]", final, acked, acked+unknown)
	}
	t.Logf("%d increments acknowledged, value %d", count, final)
	for i := 3; i < 5; i++ {
		if st := c.servers[i].Node().Status(); len(st.Voters) == 5 {
			t.Errorf("removed server %d still sees five voters", i+1)
		}
	}
}

package raftkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/bench/systems/systemstest"

	"github.com/raftkit/raftkit/bench/systems"
)

// BenchmarkPropose drives a three-replica raftkit cluster in this process
// through the harness interface with 256 concurrent proposers of 16-byte
// payloads, for profiling the library under the harness's load:
//
//	go test -run XXX -bench Propose -benchtime 200000x -cpuprofile cpu.out ./systems/raftkit
func BenchmarkPropose(b *testing.B) {
	b.Run("groups=1", func(b *testing.B) { benchPropose(b, 1) })
	b.Run("groups=16", func(b *testing.B) { benchPropose(b, 16) })
}

func benchPropose(b *testing.B, groups int) {
	cfg := systems.Config{Groups: groups, ElectionTimeout: time.Second, HeartbeatInterval: 100 * time.Millisecond, MaxPayload: 16}
	cfg.Addrs = systemstest.FreeAddrs(b, 3)
	cfg.Dirs = []string{b.TempDir(), b.TempDir(), b.TempDir()}
	var nodes []systems.Node
	for id := range 3 {
		n, err := System{}.StartNode(cfg, id)
		if err != nil {
			b.Fatal(err)
		}
		defer n.Close()
		nodes = append(nodes, n)
	}
	leaders := make([]systems.Node, groups)
	for g := range groups {
		for deadline := time.Now().Add(10 * time.Second); leaders[g] == nil; {
			for _, n := range nodes {
				if n.IsLeader(g) {
					leaders[g] = n
				}
			}
			if time.Now().After(deadline) {
				b.Fatal("no leader")
			}
			time.Sleep(time.Millisecond)
		}
	}
	dist := map[systems.Node]int{}
	for _, l := range leaders {
		dist[l]++
	}
	var counts []int
	for _, n := range nodes {
		counts = append(counts, dist[n])
	}
	b.Logf("leaders per replica: %v", counts)
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.ResetTimer()
	clients := 256
	if c, err := strconv.Atoi(os.Getenv("RAFTKIT_BENCH_CLIENTS")); err == nil {
		clients = c
	}
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := make([]byte, payloadSize())
			g := k % groups
			for left.Add(-1) >= 0 {
				if err := leaders[g].Propose(context.Background(), g, payload); err != nil && !errors.Is(err, systems.ErrNotLeader) {
					b.Error(err)
					return
				}
			}
		}()
	}
	if os.Getenv("RAFTKIT_BENCH_STATUS") != "" {
		time.Sleep(time.Second)
		for g := range groups {
			st := leaders[g].(*node).nodes[g].Status()
			var fs []string
			for _, f := range st.Followers {
				fs = append(fs, fmt.Sprintf("%d:%s/m%d/n%d/i%d", f.ID, f.State, f.Match, f.Next, f.Inflight))
			}
			b.Logf("group %d: term %d commit %d %v", g, st.Term, st.CommitIndex, fs)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	logStats(b, nodes)
}

// logStats reports, per replica, the entries each fsync made durable.
func logStats(b *testing.B, nodes []systems.Node) {
	for i, n := range nodes {
		st := n.(*node).host.LogStats()
		b.Logf("replica %d: %d entries, %d fsyncs, %.1f entries/fsync, mean fsync %v", i, st.EntriesWritten, st.Fsyncs,
			float64(st.EntriesWritten)/float64(max(st.Fsyncs, 1)), st.SyncTime/time.Duration(max(st.Fsyncs, 1)))
	}
}

// payloadSize is RAFTKIT_BENCH_PAYLOAD, default 16 bytes.
func payloadSize() int {
	if n, err := strconv.Atoi(os.Getenv("RAFTKIT_BENCH_PAYLOAD")); err == nil {
		return n
	}
	return 16
}

package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestProcesses runs the command as real processes over loopback TCP: the
// binary is built once, then the demo and the failover test run side by
// side, each on free ports of its own.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes; skipped under -short")
	}
	exe := buildCounter(t)
	t.Run("demo", func(t *testing.T) {
		t.Parallel()
		testDemo(t, exe)
	})
	t.Run("failover", func(t *testing.T) {
		t.Parallel()
		testFailover(t, exe)
	})
	t.Run("http", func(t *testing.T) {
		t.Parallel()
		testHTTP(t, exe)
	})
}

// buildCounter builds this command (without the race detector: it applies
// to the test binary, and the servers are only driven from here).
func buildCounter(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	exe := filepath.Join(t.TempDir(), "counter")
	out, err := exec.Command(goBin, "build", "-o", exe, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return exe
}

func portsOf(t *testing.T, addrs []string) string {
	var ports []string
	for _, a := range addrs {
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, p)
	}
	return strings.Join(ports, ",")
}

// testDemo runs "counter demo" to the end and checks its exit code, the key
// lines of its narration, and that it left no file or listening port.
func testDemo(t *testing.T, exe string) {
	addrs, err := freeLoopbackAddrs(3)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A demo killed by the timeout takes its servers with it (Pdeathsig).
	cmd := exec.CommandContext(ctx, exe, "demo", "--ports", portsOf(t, addrs), "--pace", "0s")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp) // where os.MkdirTemp puts its directory
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	last := -1
	for _, want := range []string{
		"1. Start node1 alone",
		"its status page: http://127.0.0.1:",
		"node1: starts as a follower in term 0 with an empty log",
		"node1: election timer fired without word from a leader: starts a PRE-VOTE",
		"Its own term stays 0",
		"node1: cannot reach node2",
		"pre-candidate     0",
		"2. Start node2",
		"pre-vote for term 1",
		"starts a real ELECTION: its term becomes 1",
		"becomes LEADER of term", // 1, unless the first election split the vote
		"follows node",
		"3. Start node3",
		"node3: follows node",
		"4. Write through the leader",
		"client: incr +0 -> the leader answers 0",
		"client: incr +1 -> the leader answers 1",
		"client: incr +2 -> the leader answers 3",
		"5. Kill the leader with SIGKILL",
		"the leader, with SIGKILL",
		"starts a PRE-VOTE",
		"becomes LEADER of term",
		"s after the kill",
		"6. Read the counter",
		"client: get -> 3",
		"7. Restart the killed node",
		"restarts from its data directory",
		"caught up: applied index",
		"its own copy of the counter holds 3",
		"8. Clean up",
		"stopped cleanly",
		"done in",
	} {
		i := strings.Index(out[last+1:], want)
		if i < 0 {
			t.Fatalf("the demo's output lacks %q after offset %d:\n%s", want, last+1, out)
		}
		last += 1 + i
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr is not empty:\n%s", stderr.String())
	}
	if ents, err := os.ReadDir(tmp); err != nil || len(ents) != 0 {
		t.Errorf("the demo left %v in its temporary directory (%v)", ents, err)
	}
	if a := busyAddr(addrs); a != "" {
		t.Errorf("%s is still in use after the demo", a)
	}
}

// tally counts the increments of the failover test by outcome.
type tally struct {
	mu             sync.Mutex
	acked, unknown int64 // sums of deltas
	ackedOps       int
	unknownOps     int
	ackedAfterKill int // acknowledged increments sent after the leader died
	errs           map[string]int
}

func (t *tally) add(delta int64, err error, afterKill bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		// Any failure may have been applied (a connection lost after the
		// request left, a timeout), so it counts as unknown; the check
		// below allows any subset of the unknown ones.
		t.unknown += delta
		t.unknownOps++
		t.errs[errorKind(err)]++
		return
	}
	t.acked += delta
	t.ackedOps++
	if afterKill {
		t.ackedAfterKill++
	}
}

func (t *tally) counts() (ackedOps, ackedAfterKill int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ackedOps, t.ackedAfterKill
}

// testFailover is the end-to-end test over real TCP: three server
// processes; increments from concurrent clients; the leader SIGKILLed while
// they run; increments continuing through the new leader; the killed server
// restarted. No acknowledged increment may be lost: the value must lie
// between the sum of the acknowledged deltas and that plus the sum of the
// deltas whose outcome is unknown. The restarted server must catch up with
// the leader's commit index.
func testFailover(t *testing.T, exe string) {
	addrs, err := freeLoopbackAddrs(3)
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(exe, t.TempDir(), "counter", addrs, "--tick", "50ms")
	t.Cleanup(func() {
		if err := c.stopAll(0); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			for _, n := range c.nodes {
				b, _ := os.ReadFile(n.logPath)
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("last lines of %s's log:\n%s", n.name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		}
	})
	for i := range addrs {
		if _, err := c.start(i); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rows, err := c.waitFor(ctx, 20*time.Second, "leader", func(r []peerStatus) bool { return leaderOf(r) >= 0 })
	if err != nil {
		t.Fatal(err)
	}
	old := leaderOf(rows)

	// Writers run until stopped; the cleanup stops them too should the
	// test end early, before the cluster is torn down.
	tl := &tally{errs: map[string]int{}}
	var killed atomic.Bool
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop := sync.OnceFunc(func() { stopWriters(); wg.Wait() })
	t.Cleanup(stop)
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for wctx.Err() == nil {
				delta := 1 + rng.Int64N(100)
				afterKill := killed.Load()
				octx, cancel := context.WithTimeout(wctx, 5*time.Second)
				_, err := c.client.IncrementAndGet(octx, delta)
				cancel()
				tl.add(delta, err, afterKill) // one cut short by stop() is unknown too

			}
		})
	}
	waitUntil(t, 30*time.Second, "200 acknowledged increments before the kill", func() bool {
		n, _ := tl.counts()
		return n >= 200
	})
	if err := c.kill(old); err != nil {
		t.Fatal(err)
	}
	killed.Store(true)
	killedAt := time.Now()
	waitUntil(t, 30*time.Second, "200 acknowledged increments through the new leader", func() bool {
		_, n := tl.counts()
		return n >= 200
	})
	failover := time.Since(killedAt)
	stop()

	if _, err := c.start(old); err != nil {
		t.Fatal(err)
	}
	gctx, gcancel := context.WithTimeout(ctx, 20*time.Second)
	value, err := c.client.Get(gctx)
	gcancel()
	if err != nil {
		t.Fatalf("get after the failover: %v", err)
	}
	tl.mu.Lock()
	acked, unknown := tl.acked, tl.unknown
	t.Logf("%d increments acknowledged (sum %d), %d unknown (sum %d; %v); value %d; 200 acks through the new leader %v after the kill",
		tl.ackedOps, acked, tl.unknownOps, unknown, tl.errs, value, failover.Round(time.Millisecond))
	tl.mu.Unlock()
	if value < acked || value > acked+unknown {
		t.Fatalf("value %d outside [%d, %d]: acknowledged increments lost or unsent ones applied", value, acked, acked+unknown)
	}

	rows, err = c.waitFor(ctx, 30*time.Second, "catch-up of the restarted server", func(r []peerStatus) bool {
		return r[old].err == nil && allApplied(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	lead := leaderOf(rows)
	if lead == old {
		t.Fatalf("the restarted server leads: %s", summarize(rows))
	}
	if got, want := rows[old].st.AppliedIndex, rows[lead].st.CommitIndex; got != want {
		t.Fatalf("restarted server applied %d, leader committed %d", got, want)
	}
	// An increment whose client gave up (interrupted when the writers
	// stopped) may still commit after the read above; read again now that
	// every replica applied the same log, and hold that value to the same
	// bounds.
	gctx, gcancel = context.WithTimeout(ctx, 20*time.Second)
	final, err := c.client.Get(gctx)
	gcancel()
	if err != nil {
		t.Fatalf("final get: %v", err)
	}
	if final < value || final > acked+unknown {
		t.Fatalf("final value %d outside [%d, %d]", final, value, acked+unknown)
	}
	for i, r := range rows {
		if r.value != final {
			t.Errorf("node%d's replica holds %d, the group's value is %d", i+1, r.value, final)
		}
	}
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/client"
	"github.com/raftkit/raftkit/internal/adminrpc"
	"github.com/raftkit/raftkit/internal/adminrpc/admintest"
	"github.com/raftkit/raftkit/internal/testutil"
)

// cluster is a fake counter group at the default addresses.
func cluster(t *testing.T) *admintest.Cluster {
	return admintest.New(t, raftkit.GroupIDFromName(defaultGroup), 3, false)
}

type result struct {
	code           int
	stdout, stderr string
}

// ctl runs raftctl in-process against c.
func ctl(ctx context.Context, c *admintest.Cluster, args ...string) result {
	var out, errOut bytes.Buffer
	dial := func(*tls.Config, time.Duration) (client.Caller, func(), error) { return c.Net, func() {}, nil }
	route := client.Options{BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond, Seed: 1}
	code := run(ctx, args, &out, &errOut, dial, route)
	return result{code, out.String(), errOut.String()}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%sstderr:\n%s", r.code, r.stdout, r.stderr)
}

// TestCommands: each command changes the fake group as asked and prints
// its result.
func TestCommands(t *testing.T) {
	c := cluster(t)
	c.SetLeader(2)
	for _, tc := range []struct {
		args             []string
		out              string
		voters, learners []uint64
	}{
		{[]string{"add-peer", "4@127.0.0.1:8084"}, "added voter 4@127.0.0.1:8084\n", []uint64{1, 2, 3, 4}, nil},
		{[]string{"remove-peer", "3"}, "removed member 3\n", []uint64{1, 2, 4}, nil},
		{[]string{"add-learners", "5@127.0.0.1:8085,6@127.0.0.1:8086"}, "added learners 5@127.0.0.1:8085,6@127.0.0.1:8086\n", []uint64{1, 2, 4}, []uint64{5, 6}},
		{[]string{"promote-learner", "5"}, "promoted learner 5 to voter\n", []uint64{1, 2, 4, 5}, []uint64{6}},
		{[]string{"remove-learners", "6"}, "removed learners 6\n", []uint64{1, 2, 4, 5}, nil},
		{[]string{"change-peers", "1@127.0.0.1:8081", "2@127.0.0.1:8082,3@127.0.0.1:8083"}, "voters are now 1@127.0.0.1:8081,2@127.0.0.1:8082,3@127.0.0.1:8083\n", []uint64{1, 2, 3}, nil},
		{[]string{"transfer-leader", "3"}, "leader is now 3@127.0.0.1:8083\n", []uint64{1, 2, 3}, nil},
		{[]string{"transfer-leader"}, "leader is now 1@127.0.0.1:8081\n", []uint64{1, 2, 3}, nil},
		{[]string{"get-leader"}, "1@127.0.0.1:8081\n", []uint64{1, 2, 3}, nil},
		{[]string{"snapshot"}, "snapshot of the leader at index 99, term", []uint64{1, 2, 3}, nil},
		{[]string{"snapshot", "--addr", "127.0.0.1:8083"}, "snapshot of 127.0.0.1:8083 at index 97", []uint64{1, 2, 3}, nil},
	} {
		r := ctl(context.Background(), c, tc.args...)
		if r.code != exitOK || !strings.HasPrefix(r.stdout, tc.out) || r.stderr != "" {
			t.Fatalf("%q:\n%v", tc.args, r)
		}
		v, l := c.Members()
		if !reflect.DeepEqual(v, tc.voters) || !reflect.DeepEqual(l, tc.learners) {
			t.Fatalf("after %q: voters %v learners %v, want %v %v", tc.args, v, l, tc.voters, tc.learners)
		}
	}
}

// TestListPeers prints the leader's table.
func TestListPeers(t *testing.T) {
	c := cluster(t)
	c.SetLeader(2)
	c.SetDead(3)
	r := ctl(context.Background(), c, "--peers", "127.0.0.1:8081", "list-peers")
	want := "" +
		"ID  ADDR            ROLE    ALIVE  MATCH\n" +
		"1   127.0.0.1:8081  voter   yes    99\n" +
		"2   127.0.0.1:8082  leader  yes    98\n" +
		"3   127.0.0.1:8083  voter   no     97\n"
	if r.code != exitOK || r.stdout != want {
		t.Fatalf("%v\nwant:\n%s", r, want)
	}
}

// TestStatus: one row per server; a server that does not answer is
// listed, and only no answer at all fails.
func TestStatus(t *testing.T) {
	c := cluster(t)
	c.Net.Isolate(admintest.Addr(3))
	r := ctl(context.Background(), c, "status")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != exitOK || len(lines) != 9 {
		t.Fatalf("%v", r)
	}
	if f := strings.Fields(lines[1]); !reflect.DeepEqual(f[:8], []string{"127.0.0.1:8081", "1", "leader", "1", "100", "99", "100", "1@127.0.0.1:8081"}) {
		t.Fatalf("row %q", lines[1])
	}
	if !strings.Contains(lines[3], "127.0.0.1:8083") || !strings.Contains(lines[3], "no answer") {
		t.Fatalf("row %q", lines[3])
	}
	// The leader's view of its followers: match, next, inflight, lag.
	if !strings.Contains(lines[5], "replication from the leader, node 1") || !strings.HasPrefix(lines[6], "FOLLOWER") {
		t.Fatalf("followers' heading: %q, %q", lines[5], lines[6])
	}
	if f := strings.Fields(lines[7]); !reflect.DeepEqual(f, []string{"2", "127.0.0.1:8082", "replicate", "98", "101", "1", "2", "yes"}) {
		t.Fatalf("follower row %q", lines[7])
	}
	r = ctl(context.Background(), c, "status", "--addr", "127.0.0.1:8083", "--timeout", "200ms")
	if r.code != exitFailure || !strings.Contains(r.stderr, "no server answered") {
		t.Fatalf("%v", r)
	}
}

// TestStatusWatch: --watch redraws until interrupted, then exits 130.
func TestStatusWatch(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testutil.Buffer{}
	done := make(chan int, 1)
	go func() {
		dial := func(*tls.Config, time.Duration) (client.Caller, func(), error) { return c.Net, func() {}, nil }
		done <- run(ctx, []string{"status", "--watch=10ms"}, out, io.Discard, dial, client.Options{})
	}()
	testutil.WaitFor(t, 10*time.Second, "three tables", func() bool { return strings.Count(out.String(), "ADDR ") >= 3 })
	cancel()
	if code := <-done; code != exitInterrupted {
		t.Fatalf("exit %d after interrupt", code)
	}
	if !strings.Contains(out.String(), "Ctrl-C to stop") || strings.Contains(out.String(), "\x1b[") {
		t.Fatalf("output (not a terminal):\n%s", out.String())
	}
	if r := ctl(context.Background(), c, "status", "--watch=1ms"); r.code != exitUsage || !strings.Contains(r.stderr, "at least 10ms") {
		t.Fatalf("%v", r)
	}
}

// TestResetPeers: refused without --yes, always warning; with it, every
// named server is reset.
func TestResetPeers(t *testing.T) {
	c := cluster(t)
	r := ctl(context.Background(), c, "reset-peers", "--addr", "127.0.0.1:8081", "1@127.0.0.1:8081")
	if r.code != exitUsage || !strings.Contains(r.stderr, "UNSAFE") || !strings.Contains(r.stderr, "without --yes") {
		t.Fatalf("%v", r)
	}
	if len(c.Calls()) != 0 {
		t.Fatalf("reset sent without --yes: %q", c.Calls())
	}
	r = ctl(context.Background(), c, "reset-peers", "--addr", "127.0.0.1:8081,127.0.0.1:8082", "--yes", "1@127.0.0.1:8081,2@127.0.0.1:8082")
	if r.code != exitOK || !strings.Contains(r.stderr, "UNSAFE") {
		t.Fatalf("%v", r)
	}
	want := []string{"1 reset-peers [1@127.0.0.1:8081 2@127.0.0.1:8082]", "2 reset-peers [1@127.0.0.1:8081 2@127.0.0.1:8082]"}
	if !reflect.DeepEqual(c.Calls(), want) {
		t.Fatalf("calls %q", c.Calls())
	}
	r = ctl(context.Background(), c, "reset-peers", "--addr", "127.0.0.1:8081,127.0.0.1:8089", "--yes", "1@127.0.0.1:8081")
	if r.code != exitFailure || !strings.Contains(r.stdout, "127.0.0.1:8089: FAILED") || !strings.Contains(r.stderr, "reset failed on 127.0.0.1:8089") {
		t.Fatalf("%v", r)
	}
}

// TestUsageErrors: bad command lines exit 2 with one line on stderr naming
// the problem, and send nothing.
func TestUsageErrors(t *testing.T) {
	c := cluster(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"list-peers", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"add-peer"}, "add-peer takes one argument, ID@ADDR"},
		{[]string{"add-peer", "4@a:1", "5@b:1"}, "got 2 arguments"},
		{[]string{"add-peer", "127.0.0.1:8084"}, "want ID@HOST:PORT"},
		{[]string{"add-peer", "0@127.0.0.1:8084"}, "node ID 0 is reserved"},
		{[]string{"add-peer", "4@127.0.0.1"}, "want HOST:PORT"},
		{[]string{"remove-peer", "x"}, `node ID "x" is not a positive decimal`},
		{[]string{"change-peers"}, "change-peers needs the new voters"},
		{[]string{"change-peers", "1@a:1,1@b:1"}, "node ID 1 listed twice"},
		{[]string{"remove-learners", "4,,5"}, "empty entry"},
		{[]string{"transfer-leader", "1", "2"}, "at most one optional argument"},
		{[]string{"get-leader", "now"}, "get-leader takes no arguments"},
		{[]string{"snapshot", "--addr", "nowhere"}, "--addr: address \"nowhere\": want HOST:PORT"},
		{[]string{"reset-peers", "--yes", "1@a:1"}, "--addr is required"},
		{[]string{"--peers", "", "get-leader"}, "--peers: empty address"},
		{[]string{"--peers", "a:1,a:1", "get-leader"}, "listed twice"},
		{[]string{"--group", "", "get-leader"}, "--group must not be empty"},
		{[]string{"--timeout", "0s", "get-leader"}, "--timeout 0s"},
		{[]string{"--timeout", "soon", "get-leader"}, "invalid argument \"soon\""},
		{[]string{"--tls-cert", "c.pem", "get-leader"}, "go together"},
		{[]string{"status", "--addr", "a:1,,b:1"}, "empty address"},
	} {
		r := ctl(context.Background(), c, tc.args...)
		if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, tc.want) ||
			strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "--help") {
			t.Errorf("%q: want exit 2 and one line mentioning %q\n%v", tc.args, tc.want, r)
		}
	}
	if len(c.Calls()) != 0 {
		t.Fatalf("bad command lines sent requests: %q", c.Calls())
	}
}

// TestFailures: refused or failed operations exit 1 with the server's
// reason in one line.
func TestFailures(t *testing.T) {
	c := cluster(t)
	for _, tc := range []struct {
		setup func()
		args  []string
		want  []string
	}{
		{nil, []string{"add-peer", "2@127.0.0.1:8082"}, []string{"raftctl add-peer: raftkit: invalid argument", "2 is already a voter"}},
		{nil, []string{"promote-learner", "9"}, []string{"9 is not a learner"}},
		{func() { c.Fail(adminrpc.OpSnapshot, &raftkit.Error{Code: raftkit.CodeStorage, Msg: "disk full"}) },
			[]string{"snapshot", "--addr", "127.0.0.1:8081"}, []string{"storage error: disk full"}},
		{func() {
			c.Fail(adminrpc.OpAddPeer, &raftkit.Error{Code: raftkit.CodeTimeout, Msg: "catch-up took too long"})
		}, []string{"add-peer", "7@127.0.0.1:8087"}, []string{"catch-up took too long", "may still complete", "list-peers"}},
		{func() { c.SetLeader(0) }, []string{"--timeout", "100ms", "get-leader"}, []string{"deadline exceeded"}},
		{nil, []string{"--group", "other", "--timeout", "100ms", "list-peers"}, []string{"deadline exceeded"}},
	} {
		if tc.setup != nil {
			tc.setup()
		}
		r := ctl(context.Background(), c, tc.args...)
		if r.code != exitFailure || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q: want exit 1 and one line\n%v", tc.args, r)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%q: stderr %q does not mention %q", tc.args, r.stderr, w)
			}
		}
	}
}

// TestInterrupted: a cancelled run exits 130.
func TestInterrupted(t *testing.T) {
	c := cluster(t)
	c.SetLeader(0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := ctl(ctx, c, "get-leader"); r.code != exitInterrupted || !strings.Contains(r.stderr, "interrupted") {
		t.Fatalf("%v", r)
	}
}

// TestHelp: every command has --help with a usage line and an example,
// printed on stdout with exit 0.
func TestHelp(t *testing.T) {
	c := cluster(t)
	a := &app{}
	root := a.rootCommand()
	for _, cmd := range append(root.Commands(), root) {
		args := []string{cmd.Name(), "--help"}
		if cmd == root {
			args = []string{"--help"}
		}
		r := ctl(context.Background(), c, args...)
		if r.code != exitOK || r.stderr != "" || !strings.Contains(r.stdout, "Usage:") ||
			!strings.Contains(r.stdout, "Examples:") || !strings.Contains(r.stdout, "--peers") {
			t.Errorf("%q:\n%v", args, r)
		}
		if cmd != root && !strings.Contains(r.stdout, "raftctl "+cmd.Name()) {
			t.Errorf("%q: no example of %s", args, cmd.Name())
		}
	}
	if r := ctl(context.Background(), c); r.code != exitOK || !strings.Contains(r.stdout, "Available Commands:") {
		t.Fatalf("no command:\n%v", r)
	}
}

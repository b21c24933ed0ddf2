package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/tcp"
)

const peers3 = "127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083"

// TestBadCommandLines runs the whole command on bad command lines: each
// must exit 2 with a one-line error naming the problem, then the usage, on
// stderr, and nothing on stdout. None gets far enough to start anything.
func TestBadCommandLines(t *testing.T) {
	srv := []string{"server", "--data", "d", "--addr", "127.0.0.1:8081", "--peers", peers3}
	cli := []string{"client", "--peers", peers3}
	with := func(base []string, more ...string) []string { return append(slices.Clone(base), more...) }
	for _, tc := range []struct {
		args []string
		want string // in the first line
	}{
		{nil, "missing command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"server", "--addr", "127.0.0.1:8081", "--peers", peers3}, "--data is required"},
		{[]string{"server", "--data", "d", "--peers", peers3}, "--addr is required"},
		{[]string{"server", "--data", "d", "--addr", "127.0.0.1:8081"}, "--peers is required"},
		{with(srv[:5], "--peers", "127.0.0.1:8082,127.0.0.1:8083"), "is not in --peers"},
		{with(srv[:5], "--peers", "127.0.0.1:8081,,127.0.0.1:8083"), "empty address"},
		{with(srv[:5], "--peers", "127.0.0.1:8081,localhost"), `peer "localhost"`},
		{with(srv[:5], "--peers", "127.0.0.1:8081,127.0.0.1:8081"), "listed twice"},
		{[]string{"server", "--data", "d", "--addr", "nohost", "--peers", "nohost"}, "--peers"},
		{with(srv, "--bogus"), "flag provided but not defined: -bogus"},
		{with(srv, "extra"), `unexpected argument "extra"`},
		{with(srv, "--tick", "0s"), "--tick 0s"},
		{with(srv, "--tick", "soon"), `invalid value "soon"`},
		{with(srv, "--election-ticks", "1"), "--election-ticks 1"},
		{with(srv, "--snapshot-entries", "0"), "--snapshot-entries 0"},
		{with(srv, "--snapshot-entries", "-5"), "--snapshot-entries -5"},
		{with(srv, "--log-level", "loud"), `--log-level "loud"`},
		{with(srv, "--log-format", "xml"), `--log-format "xml"`},
		{with(srv, "--tls-cert", "c.pem"), "give all three or none"},
		{with(srv, "--tls-cert", "c", "--tls-key", "k"), "give all three or none"},
		{with(srv, "--group", ""), "--group must not be empty"},
		{with(srv, "--join", "--id", "4"), "must not be in --peers"},
		{with(srv[:4], "127.0.0.1:8084", "--peers", peers3, "--join"), "--join needs --id above 3"},
		{with(srv[:4], "127.0.0.1:8084", "--peers", peers3, "--join", "--id", "2"), "--join needs --id above 3"},
		{with(srv, "--id", "2"), "--id 2 differs"},
		{with(srv, "--listen", "8081"), `--listen "8081"`},
		{with(srv, "--http", "localhost"), `--http "localhost"`},
		{with(srv, "--source-ip", "127.0.0"), `--source-ip "127.0.0": not an IP address`},
		{[]string{"client", "get"}, "--peers is required"},
		{cli, "missing operation"},
		{with(cli, "frob"), `unknown operation "frob"`},
		{with(cli, "incr"), "incr takes one argument"},
		{with(cli, "incr", "1", "2"), "incr takes one argument"},
		{with(cli, "incr", "five"), `incr "five"`},
		{with(cli, "get", "--lease", "--stale"), "exclude each other"},
		{with(cli, "incr", "1", "--lease"), "apply to get and bench --reads only"},
		{with(cli, "bench", "--stale"), "apply to get and bench --reads only"},
		{with(cli, "get", "--reads"), "flag --reads applies to bench only"},
		{with(cli, "incr", "99999999999999999999"), "the delta must be an integer"},
		{with(cli, "get", "now"), `get takes no arguments`},
		{with(cli, "status", "-n", "3"), "flag -n applies to bench only"},
		{with(cli, "incr", "3", "--delta", "3"), "flag --delta applies to bench only"},
		{with(cli, "bench", "-n", "0"), "-n 0"},
		{with(cli, "bench", "-c", "0"), "-c 0"},
		{with(cli, "--timeout", "0s", "get"), "--timeout 0s"},
		{[]string{"client", "--peers", "127.0.0.1:8081,", "get"}, "empty address"},
		{[]string{"demo", "now"}, `unexpected argument "now"`},
		{[]string{"demo", "--base-port", "-1"}, "--base-port -1"},
		{[]string{"demo", "--base-port", "65534"}, "--base-port 65534"},
		{[]string{"demo", "--ports", "1,2"}, "want three distinct ports"},
		{[]string{"demo", "--ports", "1,1,2"}, "want three distinct ports"},
		{[]string{"demo", "--ports", "1,2,x"}, "want three distinct ports"},
		{[]string{"demo", "--ports", "1,2,3", "--base-port", "0"}, "exclude each other"},
		{[]string{"demo", "--pace", "-1s"}, "--pace -1s"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != exitUsage {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr.String())
			}
			first, rest, _ := strings.Cut(stderr.String(), "\n")
			if !strings.Contains(first, tc.want) {
				t.Errorf("first line of stderr %q lacks %q", first, tc.want)
			}
			if !strings.HasPrefix(first, "counter") {
				t.Errorf("first line %q does not name the command", first)
			}
			if !strings.HasPrefix(rest, "usage: counter") {
				t.Errorf("the usage does not follow the error:\n%s", stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout is not empty:\n%s", stdout.String())
			}
		})
	}
}

func TestHelpGoesToStdoutWithExitZero(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"server", "-h"}, {"client", "--help"}, {"demo", "-h"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitOK {
			t.Errorf("%v: exit code %d, want 0", args, code)
		}
		if !strings.HasPrefix(stdout.String(), "usage: counter") || stderr.Len() != 0 {
			t.Errorf("%v: stdout %q, stderr %q", args, stdout.String(), stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	run([]string{"demo", "-h"}, &stdout, &stderr)
	if strings.Contains(stdout.String(), "--ports") || strings.Contains(stdout.String(), "--pace") {
		t.Errorf("demo usage shows a hidden flag:\n%s", stdout.String())
	}
}

func TestServerArgs(t *testing.T) {
	cfg, _, err := parseServerArgs([]string{"--data", "/d", "--addr", "127.0.0.1:8082", "--peers", peers3,
		"--tick", "50ms", "--election-ticks", "20", "--log-level", "debug", "--log-format", "text", "--group", "g",
		"--snapshot-entries", "500", "--snapshot-margin", "50", "--listen", "127.0.0.1:9082", "--source-ip", "127.0.0.12"})
	if err != nil {
		t.Fatal(err)
	}
	want := serverConfig{data: "/d", group: "g", addr: "127.0.0.1:8082", peers: strings.Split(peers3, ","),
		listen: "127.0.0.1:9082", sourceIP: net.ParseIP("127.0.0.12"),
		tick: 50 * time.Millisecond, electionTicks: 20, snapshotEntries: 500, snapshotMargin: 50, logLevel: slog.LevelDebug, logFormat: "text"}
	if fmt.Sprint(cfg) != fmt.Sprint(want) {
		t.Fatalf("got %+v\nwant %+v", cfg, want)
	}
	cfg, _, err = parseServerArgs([]string{"--data=/d", "--addr=127.0.0.1:8081", "--peers=" + peers3})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.group != "counter" || cfg.tick != 100*time.Millisecond || cfg.electionTicks != 10 ||
		cfg.logLevel != slog.LevelInfo || cfg.logFormat != "json" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

// TestClientArgs checks that flags may come before or after the operation
// and that negative deltas are values, not flags.
func TestClientArgs(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		op    string
		delta int64
		bench benchConfig
	}{
		{[]string{"--peers", peers3, "incr", "5"}, "incr", 5, benchConfig{10000, 16, 1, false}},
		{[]string{"incr", "5", "--peers", peers3}, "incr", 5, benchConfig{10000, 16, 1, false}},
		{[]string{"--peers", peers3, "incr", "-5"}, "incr", -5, benchConfig{10000, 16, 1, false}},
		{[]string{"--peers", peers3, "incr", "--", "-7"}, "incr", -7, benchConfig{10000, 16, 1, false}},
		{[]string{"--peers", peers3, "--timeout", "1s", "get"}, "get", 0, benchConfig{10000, 16, 1, false}},
		{[]string{"--peers", peers3, "bench", "-n", "100000", "-c", "64"}, "bench", 0, benchConfig{100000, 64, 1, false}},
		{[]string{"bench", "-n=20", "--delta", "-3", "--peers", peers3}, "bench", 0, benchConfig{20, 16, -3, false}},
		{[]string{"--peers", peers3, "get", "--lease"}, "get", 0, benchConfig{10000, 16, 1, false}},
		{[]string{"--peers", peers3, "bench", "--reads", "--stale", "-c", "64"}, "bench", 0, benchConfig{10000, 64, 1, true}},
	} {
		cfg, _, err := parseClientArgs(tc.args)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if cfg.op != tc.op || cfg.delta != tc.delta || cfg.bench != tc.bench || len(cfg.peers) != 3 {
			t.Errorf("%v: got op %s delta %d bench %+v peers %v", tc.args, cfg.op, cfg.delta, cfg.bench, cfg.peers)
		}
	}
}

func TestDemoArgs(t *testing.T) {
	cfg, _, err := parseDemoArgs(nil)
	if err != nil || cfg.basePort != 8081 || cfg.keep || cfg.ports != nil || cfg.pace != time.Second {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	cfg, _, err = parseDemoArgs([]string{"--keep", "--ports", "9001, 9002,9003", "--pace", "0s"})
	if err != nil || !cfg.keep || !slices.Equal(cfg.ports, []int{9001, 9002, 9003}) || cfg.pace != 0 {
		t.Fatalf("got %+v, %v", cfg, err)
	}
}

func TestPercentile(t *testing.T) {
	var l []time.Duration
	for i := 1; i <= 1000; i++ {
		l = append(l, time.Duration(i))
	}
	for _, tc := range []struct {
		perMille int
		want     time.Duration
	}{{500, 500}, {900, 900}, {990, 990}, {999, 999}, {1000, 1000}, {1, 1}} {
		if got := percentile(l, tc.perMille); got != tc.want {
			t.Errorf("p%d of 1..1000 = %d, want %d", tc.perMille, got, tc.want)
		}
	}
	if got := percentile(l[:1], 999); got != 1 {
		t.Errorf("p99.9 of one sample = %d", got)
	}
	if got := percentile(nil, 500); got != 0 {
		t.Errorf("p50 of nothing = %d", got)
	}
}

func TestErrorKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("client: group 1: %w (last error: x)", context.DeadlineExceeded), "timeout"},
		{&transport.RemoteError{Code: uint16(raftkit.CodeBusy), Msg: "busy"}, "server: busy"},
		{fmt.Errorf("%w: 127.0.0.1:1: refused", transport.ErrUnreachable), "unreachable"},
		{fmt.Errorf("%w: 127.0.0.1:1: reset", tcp.ErrConnectionLost), "connection lost"},
		{&raftkit.Error{Code: raftkit.CodeShuttingDown}, "raftkit: shutting down"},
		{errors.New("odd"), "other"},
	} {
		if got := errorKind(tc.err); got != tc.want {
			t.Errorf("errorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestBenchRunCountsEveryOutcome runs the bench loop on a fake operation:
// every call is made once, failures are counted by kind, and only
// successes have latencies.
func TestBenchRunCountsEveryOutcome(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	res := benchRun(context.Background(), 8, 1000, time.Second, func(context.Context) error {
		mu.Lock()
		calls++
		fail := calls%10 == 0
		mu.Unlock()
		if fail {
			return &transport.RemoteError{Code: uint16(raftkit.CodeBusy)}
		}
		return nil
	})
	if calls != 1000 || res.attempted != 1000 || len(res.latencies) != 900 || res.errs["server: busy"] != 100 {
		t.Fatalf("calls %d, attempted %d, ok %d, errors %v", calls, res.attempted, len(res.latencies), res.errs)
	}
	if !slices.IsSorted(res.latencies) {
		t.Fatal("latencies are not sorted")
	}
}

// TestNarration feeds the narrator log records in the shape the raft core
// and the runtime write them, and checks what it tells.
func TestNarration(t *testing.T) {
	c := newCluster("counter", t.TempDir(), "counter", strings.Split(peers3, ","))
	t.Cleanup(func() { c.caller.Close() })
	n := newNarrator(&printer{w: &bytes.Buffer{}, start: time.Now()}, c)
	rec := func(msg string, attrs string) string {
		return fmt.Sprintf(`{"time":"2026-01-02T03:04:05.123456789Z","level":"INFO","msg":%q,"group":8617475657843178595,"node":1%s}`, msg, attrs)
	}
	for _, tc := range []struct {
		node int
		line string
		want string // "" means not told
	}{
		{0, rec("raft core started", `,"term":0,"commit":0,"last":0`), "starts as a follower in term 0 with an empty log"},
		{0, rec("raft core started", `,"term":3,"commit":0,"last":9`), "term 3 and log entries 1..9 survived"},
		{0, rec("starting pre-vote", `,"term":1`), "starts a PRE-VOTE, asking the others whether they would elect it in term 2. Its own term stays 1"},
		{1, rec("answering MsgPreVote", `,"candidate":1,"candidate_term":2,"granted":true,"term":1,"voted_for":0`), "grants node1's pre-vote for term 2"},
		{2, rec("answering MsgPreVote", `,"candidate":1,"candidate_term":2,"granted":false,"term":1,"voted_for":0`), "refuses node1's pre-vote for term 2"},
		{0, rec("starting election", `,"term":2`), "won its pre-vote"},
		{1, rec("starting election", `,"term":2`), "starts an ELECTION: its term becomes 2"},
		{1, rec("answering MsgVote", `,"candidate":1,"candidate_term":2,"granted":true,"term":2,"voted_for":1`), "votes for node1 in term 2"},
		{2, rec("answering MsgVote", `,"candidate":1,"candidate_term":2,"granted":false,"term":2,"voted_for":2`), "already voted for node2 in term 2"},
		{0, rec("became leader", `,"term":2,"last":4`), "becomes LEADER of term 2, elected by a majority. It appends an empty entry of its own term at index 5"},
		{0, rec("became leader", `,"term":2`), ""}, // the runtime's echo of the core's
		{1, rec("following leader", `,"leader":1,"addr":"127.0.0.1:8081","term":2`), "follows node1, the leader of term 2"},
		{0, rec("transport: peer unreachable", `,"peer":"127.0.0.1:8083"`), "cannot reach node3 (127.0.0.1:8083)"},
		{0, rec("node started", `,"last_index":0`), ""},
		{0, `{"time":"2026-01-02T03:04:05Z","level":"ERROR","msg":"group entered the error state","err":"disk full"}`, "[ERROR] group entered the error state: disk full"},
		{1, "counter server: starting: listen: address already in use", "says: counter server: starting: listen: address already in use"},
	} {
		ev, ok := n.describe(tc.node, tc.line)
		switch {
		case tc.want == "" && ok:
			t.Errorf("%s: told %q, want nothing", tc.line, ev.text)
		case tc.want != "" && (!ok || !strings.Contains(ev.text, tc.want)):
			t.Errorf("%s: told %q (%v), want %q", tc.line, ev.text, ok, tc.want)
		}
	}
}

// TestLeaderOf checks the agreement the demo and tests wait for.
func TestLeaderOf(t *testing.T) {
	st := func(id, lead, term, commit, applied uint64, role string) peerStatus {
		return peerStatus{st: raftkit.StatusJSON{NodeID: id, Leader: lead, Term: term, Role: role,
			CommitIndex: commit, AppliedIndex: applied}}
	}
	down := peerStatus{err: errNotRunning}
	for _, tc := range []struct {
		rows    []peerStatus
		lead    int
		applied bool
	}{
		{[]peerStatus{st(1, 2, 1, 5, 5, "Follower"), st(2, 2, 1, 5, 5, "Leader"), st(3, 2, 1, 5, 5, "Follower")}, 1, true},
		{[]peerStatus{st(1, 2, 1, 5, 4, "Follower"), st(2, 2, 1, 5, 5, "Leader"), st(3, 2, 1, 5, 5, "Follower")}, 1, false},
		{[]peerStatus{down, st(2, 2, 1, 5, 5, "Leader"), st(3, 2, 1, 5, 5, "Follower")}, 1, true},
		{[]peerStatus{st(1, 0, 2, 5, 5, "Candidate"), st(2, 2, 1, 5, 5, "Leader"), st(3, 2, 1, 5, 5, "Follower")}, -1, false},
		{[]peerStatus{{err: errors.New("refused")}, st(2, 2, 1, 5, 5, "Leader"), st(3, 2, 1, 5, 5, "Follower")}, -1, false},
		{[]peerStatus{st(1, 1, 1, 5, 5, "Leader"), st(2, 2, 2, 5, 5, "Leader"), down}, -1, false},
		{[]peerStatus{down, down, down}, -1, false},
	} {
		if got := leaderOf(tc.rows); got != tc.lead {
			t.Errorf("leaderOf(%s) = %d, want %d", summarize(tc.rows), got, tc.lead)
		}
		if got := allApplied(tc.rows); got != tc.applied {
			t.Errorf("allApplied(%s) = %v, want %v", summarize(tc.rows), got, tc.applied)
		}
	}
}

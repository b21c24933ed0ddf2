package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/client"
	"github.com/raftkit/raftkit/examples/counter"
	"github.com/raftkit/raftkit/transport/tcp"
)

// clientFlags are the client's flags as typed, the bench's included: one
// flag set parses the whole command line so that flags may come before or
// after the operation.
type clientFlags struct {
	peers, group string
	timeout      time.Duration
	tls          tlsFiles
	bench        benchConfig
	lease, stale bool
}

// clientConfig is a validated client command line.
type clientConfig struct {
	peers   []string
	group   string
	timeout time.Duration
	tls     tlsFiles
	op      string // incr, get, status or bench
	delta   int64  // incr's
	bench   benchConfig
	mode    raftkit.ReadMode // get's, and bench --reads'
}

// benchFlagNames are the flags only bench takes.
var benchFlagNames = []string{"n", "c", "delta", "reads"}

func clientCommand(raw *clientFlags) *command {
	fs := newFlagSet("client")
	fs.StringVar(&raw.peers, "peers", "", "the servers' addresses, comma-separated (required)")
	fs.StringVar(&raw.group, "group", counter.DefaultGroup, "name of the raft group")
	fs.DurationVar(&raw.timeout, "timeout", 5*time.Second, "deadline of each operation, retries and leader changes included")
	raw.tls.register(fs)
	fs.IntVar(&raw.bench.n, "n", 10000, "bench: number of increments")
	fs.IntVar(&raw.bench.c, "c", 16, "bench: number of concurrent goroutines, one request in flight each")
	fs.Int64Var(&raw.bench.delta, "delta", 1, "bench: the delta of every increment")
	fs.BoolVar(&raw.bench.reads, "reads", false, "bench: run N gets instead of increments")
	fs.BoolVar(&raw.lease, "lease", false, "get, bench --reads: read under the leader's lease (no heartbeat round; assumes bounded clock drift)")
	fs.BoolVar(&raw.stale, "stale", false, "get, bench --reads: read what the leader has applied, without a barrier (not linearizable)")
	return &command{
		name: "client",
		synopsis: "counter client --peers A,B,C [flags] incr DELTA\n" +
			"       counter client --peers A,B,C [flags] get [--lease | --stale]\n" +
			"       counter client --peers A,B,C [flags] status\n" +
			"       counter client --peers A,B,C [flags] bench [-n N] [-c C] [--delta D | --reads [--lease | --stale]]",
		about: "incr adds DELTA (may be negative) and prints the new value; get prints the value\n" +
			"(a linearizable read: ReadIndex, confirmed by a heartbeat round; --lease skips the\n" +
			"round while the leader's lease holds; --stale skips any barrier); status prints\n" +
			"every server's view of the group (VALUE is that server's own replica, which may\n" +
			"lag); bench runs N increments (or, with --reads, gets) from C goroutines and\n" +
			"prints throughput and latency. Requests go to the leader, found and cached by\n" +
			"raftkit's route table.",
		fs: fs,
	}
}

// parseClientArgs validates a client command line without side effects.
func parseClientArgs(args []string) (clientConfig, *command, error) {
	var raw clientFlags
	cmd := clientCommand(&raw)
	pos, err := parseArgs(cmd.fs, args)
	if err != nil {
		return clientConfig{}, cmd, err
	}
	cfg, err := raw.validate(pos, flagsSet(cmd.fs))
	return cfg, cmd, err
}

func (raw *clientFlags) validate(pos []string, set map[string]bool) (clientConfig, error) {
	cfg := clientConfig{group: raw.group, timeout: raw.timeout, tls: raw.tls, bench: raw.bench}
	if len(pos) == 0 {
		return cfg, usagef("missing operation: incr, get, status or bench")
	}
	cfg.op, pos = pos[0], pos[1:]
	switch cfg.op {
	case "incr":
		if len(pos) != 1 {
			return cfg, usagef("incr takes one argument, the delta (e.g. incr 5)")
		}
		d, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil {
			return cfg, usagef("incr %q: the delta must be an integer", pos[0])
		}
		cfg.delta = d
	case "get", "status", "bench":
		if len(pos) != 0 {
			return cfg, usagef("%s takes no arguments, got %q", cfg.op, pos[0])
		}
	default:
		return cfg, usagef("unknown operation %q: want incr, get, status or bench", cfg.op)
	}
	switch {
	case raw.lease && raw.stale:
		return cfg, usagef("--lease and --stale exclude each other")
	case (raw.lease || raw.stale) && cfg.op != "get" && !(cfg.op == "bench" && raw.bench.reads):
		return cfg, usagef("--lease and --stale apply to get and bench --reads only")
	case raw.lease:
		cfg.mode = raftkit.ReadLease
	case raw.stale:
		cfg.mode = raftkit.ReadStale
	}
	if cfg.op != "bench" {
		for _, name := range benchFlagNames {
			if set[name] {
				return cfg, usagef("flag %s applies to bench only", dashed(name))
			}
		}
	}
	switch {
	case raw.peers == "":
		return cfg, usagef("--peers is required")
	case raw.group == "":
		return cfg, usagef("--group must not be empty")
	case raw.timeout <= 0:
		return cfg, usagef("--timeout %v: want a positive duration", raw.timeout)
	case cfg.op == "bench" && raw.bench.n < 1:
		return cfg, usagef("-n %d: want at least 1", raw.bench.n)
	case cfg.op == "bench" && (raw.bench.c < 1 || raw.bench.c > 100000):
		return cfg, usagef("-c %d: want 1..100000", raw.bench.c)
	}
	peers, err := counter.ParsePeers(raw.peers)
	if err != nil {
		return cfg, usagef("--peers: %v", strings.TrimPrefix(err.Error(), "counter: "))
	}
	cfg.peers = peers
	return cfg, raw.tls.validate()
}

func runClient(args []string, stdout, stderr io.Writer) int {
	cfg, cmd, err := parseClientArgs(args)
	if err == nil {
		err = cfg.run(stdout)
	}
	return cmd.fail(stdout, stderr, err)
}

func (cfg clientConfig) run(out io.Writer) error {
	tlsCfg, err := cfg.tls.load()
	if err != nil {
		return err
	}
	caller := tcp.NewClient(tcp.ClientOptions{TLS: tlsCfg, DialTimeout: min(cfg.timeout, 2*time.Second)})
	defer caller.Close()
	cl := counter.NewClient(caller, cfg.peers, cfg.group)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	switch cfg.op {
	case "incr":
		v, err := cl.IncrementAndGet(ctx, cfg.delta)
		if err != nil {
			return fmt.Errorf("incr %d: %w", cfg.delta, err)
		}
		fmt.Fprintln(out, v)
	case "get":
		v, err := cl.GetWith(ctx, cfg.mode)
		if err != nil {
			return fmt.Errorf("get: %w", err)
		}
		fmt.Fprintln(out, v)
	case "status":
		rows := queryStatus(ctx, caller, cl, cfg.peers, cfg.group)
		writeStatusTable(out, rows)
		for _, r := range rows {
			if r.err == nil {
				return nil
			}
		}
		return fmt.Errorf("status: no server answered (first error: %w)", rows[0].err)
	case "bench":
		return runBench(cl, cfg, out)
	}
	return nil
}

// peerStatus is one server's answer to the status and local-value
// services.
type peerStatus struct {
	addr     string
	st       raftkit.StatusJSON
	err      error // the status call's
	value    int64
	valueErr error
}

// queryStatus asks every addr for its status and its replica's value, in
// parallel, each within ctx.
func queryStatus(ctx context.Context, caller client.Caller, cl *counter.Client, addrs []string, group string) []peerStatus {
	rows := make([]peerStatus, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			r := &rows[i]
			r.addr = a
			r.st, r.err = cl.Status(ctx, a)
			if r.err == nil {
				r.value, r.valueErr = localValue(ctx, caller, a, group)
			}
		})
	}
	wg.Wait()
	return rows
}

// roleWord turns a raftkit role name ("PreCandidate") into the word the
// tables print ("pre-candidate").
func roleWord(role string) string {
	if role == "PreCandidate" {
		return "pre-candidate"
	}
	return strings.ToLower(role)
}

func writeStatusTable(w io.Writer, rows []peerStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tNODE\tROLE\tTERM\tLEADER\tCOMMIT\tAPPLIED\tLAST\tVALUE\tNOTE")
	for _, r := range rows {
		if r.err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\tno answer: %v\n", r.addr, r.err)
			continue
		}
		st := r.st
		leader := st.LeaderAddr
		if leader == "" {
			leader = "-"
		}
		value := strconv.FormatInt(r.value, 10)
		if r.valueErr != nil {
			value = "-"
		}
		note := ""
		if st.State != "running" {
			note = st.State
			if st.Err != "" {
				note += ": " + st.Err
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%d\t%d\t%d\t%s\t%s\n", r.addr, st.NodeID, roleWord(st.Role),
			st.Term, leader, st.CommitIndex, st.AppliedIndex, st.LastIndex, value, note)
	}
	tw.Flush()
}

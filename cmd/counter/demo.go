package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raftkit/raftkit/examples/counter"
)

// demoConfig is a validated demo command line.
type demoConfig struct {
	keep     bool
	basePort int   // 0: free ports
	ports    []int // explicit ports (tests), overriding basePort
	pace     time.Duration
}

type demoFlags struct {
	keep     bool
	basePort int
	ports    string
	pace     time.Duration
}

func demoCommand(raw *demoFlags) *command {
	fs := newFlagSet("demo")
	fs.BoolVar(&raw.keep, "keep", false, "keep the temporary directory (data directories and server logs) afterwards")
	fs.IntVar(&raw.basePort, "base-port", 8081, "first of three consecutive loopback ports; 0 picks free ports")
	fs.StringVar(&raw.ports, "ports", "", "three loopback ports, comma-separated")
	fs.DurationVar(&raw.pace, "pace", time.Second, "pause between steps, for the reader")
	return &command{
		name:     "demo",
		synopsis: "counter demo [--keep] [--base-port 8081]",
		about: "Starts three counter servers on this machine (127.0.0.1:8081-8083, or free ports if\n" +
			"one is taken) and narrates, from their logs and status, a leader election with\n" +
			"pre-vote, three increments replicated to every node, the leader killed with SIGKILL,\n" +
			"the election of a new leader, and the killed node restarted and catching up. It\n" +
			"removes every process and file it made, and exits non-zero if any step fails.",
		fs:     fs,
		hidden: map[string]bool{"ports": true, "pace": true},
	}
}

func parseDemoArgs(args []string) (demoConfig, *command, error) {
	var raw demoFlags
	cmd := demoCommand(&raw)
	pos, err := parseArgs(cmd.fs, args)
	if err != nil {
		return demoConfig{}, cmd, err
	}
	cfg := demoConfig{keep: raw.keep, basePort: raw.basePort, pace: raw.pace}
	switch {
	case len(pos) > 0:
		return cfg, cmd, usagef("unexpected argument %q", pos[0])
	case raw.basePort < 0 || raw.basePort > 65533:
		return cfg, cmd, usagef("--base-port %d: want 0 (free ports) or 1..65533", raw.basePort)
	case raw.pace < 0:
		return cfg, cmd, usagef("--pace %v: want a duration of 0 or more", raw.pace)
	case raw.ports != "" && flagsSet(cmd.fs)["base-port"]:
		return cfg, cmd, usagef("--ports and --base-port exclude each other")
	}
	if raw.ports != "" {
		seen := map[int]bool{}
		for _, s := range strings.Split(raw.ports, ",") {
			p, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || p < 1 || p > 65535 || seen[p] {
				return cfg, cmd, usagef("--ports %q: want three distinct ports 1..65535", raw.ports)
			}
			seen[p] = true
			cfg.ports = append(cfg.ports, p)
		}
		if len(cfg.ports) != 3 {
			return cfg, cmd, usagef("--ports %q: want three distinct ports 1..65535", raw.ports)
		}
	}
	return cfg, cmd, nil
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	cfg, cmd, err := parseDemoArgs(args)
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err = (&demo{cfg: cfg, stderr: stderr, p: &printer{w: stdout, start: time.Now()}}).run(ctx)
	}
	return cmd.fail(stdout, stderr, err)
}

// demo is one run of the walkthrough.
type demo struct {
	cfg    demoConfig
	p      *printer
	stderr io.Writer
	dir    string
	c      *cluster
	n      *narrator
	step   int

	leader, killed int // node indexes
}

// timeouts of the waits; generous, since a loaded machine slows
// everything, while a healthy run takes a fraction of them.
const (
	electionWait = 20 * time.Second
	applyWait    = 10 * time.Second
	opTimeout    = 10 * time.Second
)

// run tells the story; whatever happens (a failed step, SIGINT, a panic)
// it stops every server it started and removes its directory.
func (d *demo) run(ctx context.Context) (err error) {
	addrs, note, err := d.chooseAddrs()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program to start the servers: %w", err)
	}
	d.dir, err = os.MkdirTemp("", "counter-demo-")
	if err != nil {
		return fmt.Errorf("creating the demo's directory: %w", err)
	}
	d.c = newCluster(exe, d.dir, counter.DefaultGroup, addrs)
	// Each server also serves its status page, on a free loopback port.
	webs, err := freeLoopbackAddrs(len(addrs))
	if err != nil {
		return err
	}
	for i, n := range d.c.nodes {
		n.http = webs[i]
	}
	d.n = newNarrator(d.p, d.c)
	d.p.block("raftkit's Counter example: three servers on this machine, an election, replication,\n" +
		"the leader killed, a new leader, and the old one back. Times are seconds since the start.\n")
	defer func() {
		r := recover()
		if r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w at step %d", errInterrupted, d.step)
		}
		if cerr := d.cleanup(err); cerr != nil && err == nil {
			err = cerr
		}
		if r != nil {
			panic(r) // after the cleanup, with the original stack
		}
	}()
	steps := []struct {
		title string
		fn    func(context.Context) error
	}{
		{"Start node1 alone", func(ctx context.Context) error { return d.startAlone(ctx, note) }},
		{"Start node2: two of three are a majority", d.elect},
		{"Start node3: it joins the leader", d.join},
		{"Write through the leader: +0, +1, +2", d.write},
		{"Kill the leader with SIGKILL", d.killLeader},
		{"Read the counter from the new leader", d.read},
		{"Restart the killed node", d.restart},
	}
	for i, s := range steps {
		if i > 0 {
			if err := d.pause(ctx, d.cfg.pace); err != nil {
				return err
			}
		}
		d.step++
		d.n.flush()
		d.p.heading(d.step, s.title)
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("step %d (%s): %w", d.step, s.title, err)
		}
	}
	return nil
}

// pause gives the reader a moment between steps; it changes nothing in
// the cluster, whose events keep being told meanwhile.
func (d *demo) pause(ctx context.Context, p time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(p):
		return nil
	}
}

// chooseAddrs picks the three loopback addresses: the ones asked for, or
// free ones when the base port is 0 or one of its ports is taken.
func (d *demo) chooseAddrs() (addrs []string, note string, err error) {
	if d.cfg.ports != nil {
		return loopbackAddrs(d.cfg.ports), "", nil
	}
	if d.cfg.basePort != 0 {
		b := d.cfg.basePort
		addrs = loopbackAddrs([]int{b, b + 1, b + 2})
		busy := busyAddr(addrs)
		if busy == "" {
			return addrs, "", nil
		}
		note = fmt.Sprintf("%s is taken, so the servers use three free loopback ports instead", busy)
	}
	addrs, err = freeLoopbackAddrs(3)
	return addrs, note, err
}

func (d *demo) startNode(i int) error {
	n := d.c.nodes[i]
	pid, err := d.c.start(i)
	if err != nil {
		return err
	}
	d.p.say("started %s: pid %d, address %s, JSON log %s", n.name, pid, n.addr, filepath.Base(n.logPath))
	return nil
}

func (d *demo) startAlone(ctx context.Context, note string) error {
	d.p.explain(`A counter is one int64 that clients add to. To survive the loss of a machine it is
		replicated on three servers, which agree with Raft on one log of commands and apply it in
		the same order. Each server here is this very program run as "counter server", a process
		of its own, as a separate machine would be. Together they form the raft group "counter";
		a node's ID is its place in the --peers list.`)
	if note != "" {
		d.p.say("%s", note)
	}
	d.p.say("data directories and logs go under %s", d.dir)
	for _, n := range d.c.nodes {
		d.p.say("%s will listen on %s; its status page: http://%s/", n.name, n.addr, n.http)
	}
	d.p.explain(`Open a status page in a browser to watch along: it shows every member's role,
		term, commit and apply index, and each member's log as a bar, refreshed twice a second.`)
	d.p.say("command line of node1: counter %s", strings.Join(d.c.serverArgs(0), " "))
	d.p.explain(`Every node starts as a follower with an election timer of 1 to 2 s (10 ticks of
		100 ms, randomized so that nodes rarely fire together). A follower whose timer fires
		without word from a leader first runs a PRE-VOTE: it asks the others whether they would
		vote for it, without raising its term. node1 starts first, alone. What the servers log
		is told as it happens:`)
	d.n.start()
	if err := d.startNode(0); err != nil {
		return err
	}
	if err := d.waitLog(ctx, 10*time.Second, "pre-vote from node1", func() bool { return d.n.preVotesOf(0) > 0 }); err != nil {
		return err
	}
	rows, err := d.c.waitFor(ctx, applyWait, "answer from node1", func(r []peerStatus) bool { return r[0].err == nil })
	if err != nil {
		return err
	}
	d.n.flush()
	d.p.explain(fmt.Sprintf(`Nobody answered. One node of three is no majority, so node1 cannot even
		start an election: it stays a pre-candidate in term %d and tries again whenever its timer
		fires. Its term does not grow, so when it meets the others it will not force them into a
		needless election, which is what the pre-vote is for.`, rows[0].st.Term))
	d.table(rows)
	return nil
}

func (d *demo) elect(ctx context.Context) error {
	d.p.explain(`With node2 up, a pre-vote can win: two of three is a majority. The winner starts a real
		ELECTION: term + 1, a vote for itself, and a request for votes. A node gives one vote per
		term, and only to a candidate whose log is at least as up to date as its own.`)
	if err := d.startNode(1); err != nil {
		return err
	}
	rows, err := d.c.waitFor(ctx, electionWait, "leader followed by node1 and node2", func(r []peerStatus) bool { return leaderOf(r) >= 0 })
	if err != nil {
		return err
	}
	d.leader = leaderOf(rows)
	d.n.flush()
	d.p.say("%s leads term %d; node3 is not even running, yet the group works: a majority is enough",
		d.c.nodes[d.leader].name, rows[d.leader].st.Term)
	d.table(rows)
	return nil
}

func (d *demo) join(ctx context.Context) error {
	d.p.explain(`The leader sends a heartbeat every tick (100 ms) to every node; each one restarts
		the receiver's election timer, so nobody campaigns while the leader lives. node3 starts,
		hears the leader, and receives the log entries it lacks.`)
	if err := d.startNode(2); err != nil {
		return err
	}
	rows, err := d.c.waitFor(ctx, electionWait, "state where node3 follows the leader and has its log", func(r []peerStatus) bool {
		return r[2].err == nil && allApplied(r)
	})
	if err != nil {
		return err
	}
	d.leader = leaderOf(rows)
	d.n.flush()
	d.p.say("node3 follows %s; every node's view, from its raftkit.status service:", d.c.nodes[d.leader].name)
	d.table(rows)
	return nil
}

func (d *demo) write(ctx context.Context) error {
	d.p.explain(`The client sends each increment to the leader, which appends it to its log and
		replicates it. The COMMIT index is the last entry stored on a majority (here 2 of 3 nodes):
		it can no longer be lost. The APPLIED index is the last entry a node's state machine has
		executed; VALUE is that node's own copy of the counter. The leader answers once the entry
		is committed and applied; the followers learn the new commit index from its next message
		and apply it too. Entry 1 is the leader's empty entry from the election.`)
	var v int64
	for i, delta := range []int64{0, 1, 2} {
		if i > 0 {
			if err := d.pause(ctx, d.cfg.pace/2); err != nil {
				return err
			}
		}
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		var err error
		v, err = d.c.client.IncrementAndGet(octx, delta)
		cancel()
		if err != nil {
			return fmt.Errorf("incr %+d: %w", delta, err)
		}
		d.n.flush()
		d.p.say("client: incr %+d -> the leader answers %d", delta, v)
		rows, err := d.c.waitFor(ctx, applyWait, "state where every node applied the leader's commit index", allApplied)
		if err != nil {
			return err
		}
		d.table(rows)
	}
	if v != 3 {
		return fmt.Errorf("after +0, +1, +2 the counter is %d, want 3", v)
	}
	return nil
}

func (d *demo) killLeader(ctx context.Context) error {
	d.killed = d.leader
	name := d.c.nodes[d.killed].name
	d.p.explain(`SIGKILL ends a process at once, like a power cut: no goodbye to the others. The
		followers stop hearing heartbeats; when one's election timer fires it runs a pre-vote and
		an election, and the two survivors, still a majority of three, elect a new leader.`)
	pid := d.c.pid(d.killed)
	if err := d.c.kill(d.killed); err != nil {
		return err
	}
	killedAt := time.Now()
	d.p.say("killed %s (pid %d), the leader, with SIGKILL", name, pid)
	rows, err := d.c.waitFor(ctx, electionWait, "new leader followed by both survivors", func(r []peerStatus) bool { return leaderOf(r) >= 0 })
	if err != nil {
		return err
	}
	d.leader = leaderOf(rows)
	d.n.flush()
	d.p.say("%s leads term %d, %.1f s after the kill", d.c.nodes[d.leader].name, rows[d.leader].st.Term,
		time.Since(killedAt).Seconds())
	d.table(rows)
	return nil
}

func (d *demo) read(ctx context.Context) error {
	d.p.explain(`A Get goes through the raft log as well (a read entry), so it sees every increment
		acknowledged before it. The new leader has them all: an entry is committed only once a
		majority stores it, and a candidate wins only with the votes of a majority whose logs
		are no more up to date than its own. Two majorities of three always share a node.`)
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	v, err := d.c.client.Get(octx)
	cancel()
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	d.n.flush()
	d.p.say("client: get -> %d", v)
	if v != 3 {
		return fmt.Errorf("get returned %d after +0, +1, +2, want 3: an acknowledged increment was lost", v)
	}
	d.p.say("3 = 0 + 1 + 2: no acknowledged increment was lost with the leader")
	rows, err := d.c.waitFor(ctx, applyWait, "state where both survivors applied the leader's commit index", allApplied)
	if err != nil {
		return err
	}
	d.table(rows)
	return nil
}

func (d *demo) restart(ctx context.Context) error {
	n := d.c.nodes[d.killed]
	d.p.explain(`The killed node starts again on its old data directory, where its log and its term
		survived the kill. It rejoins as a follower; the leader finds where their logs part, sends
		it the entries it missed (the new leader's empty entry and the read) and the commit index,
		and the node applies its whole log in order, which rebuilds its counter.`)
	if err := d.startNode(d.killed); err != nil {
		return err
	}
	rows, err := d.c.waitFor(ctx, electionWait, "catch-up of "+n.name, func(r []peerStatus) bool {
		return r[d.killed].err == nil && allApplied(r) && leaderOf(r) != d.killed
	})
	if err != nil {
		return err
	}
	d.n.flush()
	st := rows[d.killed]
	d.p.say("%s caught up: applied index %d, the leader's commit index; its own copy of the counter holds %d",
		n.name, st.st.AppliedIndex, st.value)
	d.table(rows)
	if st.value != 3 {
		return fmt.Errorf("%s's replica holds %d, want 3", n.name, st.value)
	}
	return nil
}

// waitLog waits until cond holds of what the narrator has read from the
// logs, a server crashes, ctx ends or timeout passes.
func (d *demo) waitLog(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		d.n.flush()
		if cond() {
			return nil
		}
		if err := d.c.checkExits(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s in the logs within %v", what, timeout)
		}
		if err := d.pause(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// table prints every node's view: role, term, commit and applied indexes,
// and its replica of the counter.
func (d *demo) table(rows []peerStatus) {
	var b strings.Builder
	const row = "   %-6s %-16s %-13s %5s %7s %8s %6s\n"
	fmt.Fprintf(&b, row, "node", "address", "role", "term", "commit", "applied", "value")
	for i, r := range rows {
		n := d.c.nodes[i]
		switch {
		case errors.Is(r.err, errNotRunning):
			fmt.Fprintf(&b, row, n.name, n.addr, "(down)", "", "", "", "")
		case r.err != nil:
			fmt.Fprintf(&b, row, n.name, n.addr, "(no answer)", "", "", "", "")
		default:
			u := func(v uint64) string { return strconv.FormatUint(v, 10) }
			fmt.Fprintf(&b, row, n.name, n.addr, roleWord(r.st.Role), u(r.st.Term), u(r.st.CommitIndex),
				u(r.st.AppliedIndex), strconv.FormatInt(r.value, 10))
		}
	}
	d.p.block(b.String() + "\n")
}

// cleanup stops the servers and removes the directory unless --keep. After
// a failure it first shows the end of each server's log, for the cause.
func (d *demo) cleanup(failure error) error {
	d.step++
	d.p.heading(d.step, "Clean up")
	grace := 3 * time.Second
	if failure != nil {
		grace = 0 // after a failure, speed over a graceful close
	}
	d.p.say("stopping every server")
	err := d.c.stopAll(grace)
	d.n.close()
	if failure != nil && !errors.Is(failure, errInterrupted) {
		d.showLogTails()
	}
	if d.cfg.keep {
		d.p.say("kept %s (data directories and server logs)", d.dir)
	} else if rerr := os.RemoveAll(d.dir); rerr != nil {
		err = errors.Join(err, fmt.Errorf("removing %s: %w", d.dir, rerr))
	} else {
		d.p.say("removed %s", d.dir)
	}
	if err == nil && failure == nil {
		d.p.say("done in %.1f s: every step passed; no server process is left", time.Since(d.p.start).Seconds())
	}
	return err
}

// showLogTails prints the last lines of each server's log to stderr.
func (d *demo) showLogTails() {
	for _, n := range d.c.nodes {
		b, err := os.ReadFile(n.logPath)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		lines = lines[max(0, len(lines)-12):]
		fmt.Fprintf(d.stderr, "--- last lines of %s's log (%s) ---\n%s\n", n.name, n.logPath, strings.Join(lines, "\n"))
	}
}

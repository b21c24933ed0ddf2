package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/raftkit/raftkit/rafttest"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "raftsim:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("raftsim", flag.ContinueOnError)
	nodes := fs.Int("nodes", 3, "cluster size (1..7)")
	seed := fs.Uint64("seed", 1, "seed of the simulation; the same seed replays the same run")
	writes := fs.Int("writes", 5, "proposals per phase")
	trace := fs.Bool("trace", false, "also print every simulator event (messages, fsyncs, ticks)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *nodes < 1 || *nodes > 7 {
		return fmt.Errorf("-nodes %d: want 1..7", *nodes)
	}
	if *writes < 1 || *writes > 10000 {
		return fmt.Errorf("-writes %d: want 1..10000", *writes)
	}
	opts := rafttest.Options{Seed: *seed, Nodes: *nodes}
	if *trace {
		opts.Trace = func(s string) { fmt.Fprintln(out, "    ", s) }
	}
	c, err := rafttest.NewCluster(opts)
	if err != nil {
		return err
	}
	d := &demo{c: c, out: out}
	return d.story(*writes)
}

type demo struct {
	c   *rafttest.Cluster
	out io.Writer
	seq int
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "[%8.3fs] %s\n", d.c.Now().Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) story(writes int) error {
	d.say("%d nodes start as followers; election timeout 1s (randomized in [1s, 2s)), heartbeat 100ms", d.c.Size())
	lead, err := d.awaitLeader(0)
	if err != nil {
		return err
	}
	d.table()

	d.say("client writes %d entries to leader %d", writes, lead)
	if err := d.writeAndWait(lead, writes); err != nil {
		return err
	}
	d.table()

	if d.c.Size() < 3 {
		d.say("a cluster of %d cannot survive a crash; done", d.c.Size())
		return nil
	}
	d.say("leader %d crashes (kill -9: what it had not fsynced is gone)", lead)
	d.c.Crash(lead)
	crashedAt := d.c.Now()
	newLead, err := d.awaitLeader(lead)
	if err != nil {
		return err
	}
	d.say("failover took %v of simulated time", (d.c.Now() - crashedAt).Round(time.Millisecond))
	if err := d.writeAndWait(newLead, writes); err != nil {
		return err
	}
	d.table()

	d.say("node %d restarts from its durable log and catches up", lead)
	d.c.Restart(lead)
	target := d.c.Committed()
	if err := d.c.RunUntil(func() bool { return d.c.AllApplied(target) }, 30*time.Second); err != nil {
		return err
	}
	// Let the acknowledgements reach the leader before showing its view.
	if err := d.c.RunFor(200 * time.Millisecond); err != nil {
		return err
	}
	d.table()
	st := d.c.Stats()
	d.say("done: %d events, every invariant checked after each (one leader per term, log matching, no committed entry lost, same entry applied everywhere)", st.Events)
	return nil
}

// awaitLeader runs until a leader other than not is elected and reports it.
func (d *demo) awaitLeader(not uint64) (uint64, error) {
	err := d.c.RunUntil(func() bool { l := d.c.Leader(); return l != 0 && l != not }, 60*time.Second)
	if err != nil {
		return 0, err
	}
	lead := d.c.Leader()
	d.say("node %d is leader in term %d (won pre-vote, then vote)", lead, d.c.Term(lead))
	return lead, nil
}

// writeAndWait proposes n entries at the leader and runs until every running
// node has applied them, narrating commit and apply progress.
func (d *demo) writeAndWait(lead uint64, n int) error {
	var last uint64
	for range n {
		d.seq++
		first, _, err := d.c.Propose(lead, []byte(fmt.Sprintf("write-%d", d.seq)))
		if err != nil {
			return fmt.Errorf("propose at %d: %w", lead, err)
		}
		last = first
	}
	d.say("leader %d appended up to index %d and sent AppendEntries before its own fsync finished", lead, last)
	committed := false
	err := d.c.RunUntil(func() bool {
		if !committed && d.c.Committed() >= last {
			committed = true
			d.say("index %d committed: durable on a quorum", last)
		}
		return d.allUpApplied(last)
	}, 30*time.Second)
	if err != nil {
		return err
	}
	d.say("index %d applied on every running node", last)
	return nil
}

func (d *demo) allUpApplied(index uint64) bool {
	for id := uint64(1); id <= uint64(d.c.Size()); id++ {
		if d.c.Up(id) && d.c.Applied(id) < index {
			return false
		}
	}
	return true
}

// table prints each node's role, term, commit and apply index, and on the
// leader each follower's match and next index.
func (d *demo) table() {
	var b strings.Builder
	fmt.Fprintf(&b, "    %-4s %-12s %-5s %-7s %-7s %-7s %s\n", "node", "role", "term", "last", "commit", "applied", "replication (leader's view)")
	for id := uint64(1); id <= uint64(d.c.Size()); id++ {
		st, ok := d.c.Status(id)
		if !ok {
			fmt.Fprintf(&b, "    %-4d %-12s\n", id, "down")
			continue
		}
		var repl []string
		for _, p := range st.Progress {
			if p.ID != id {
				repl = append(repl, fmt.Sprintf("%d:%s match=%d next=%d inflight=%d", p.ID, p.State, p.Match, p.Next, p.Inflight))
			}
		}
		fmt.Fprintf(&b, "    %-4d %-12s %-5d %-7d %-7d %-7d %s\n", id, st.Role, st.HardState.Term,
			st.LastIndex, st.HardState.Commit, d.c.Applied(id), strings.Join(repl, "  "))
	}
	fmt.Fprint(d.out, b.String())
}

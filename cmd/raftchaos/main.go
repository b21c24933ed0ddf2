// Command raftchaos runs the fault-injection suite: real counter server
// processes behind a fault proxy, a client workload, nemeses, and a
// linearizability check of every run's history. It prints a Markdown
// table per scenario and cluster size, and keeps every failed run's
// history, logs and data directories with the command that reruns it.
//
//	go run ./cmd/raftchaos                          # the full matrix, 5 seeds each
//	go run ./cmd/raftchaos -scenarios kill -nodes 3 -seeds 1 -seed 42 -keep
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raftkit/raftkit/chaos"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type options struct {
	scenarios []string
	nodes     []int
	seeds     int
	seed      uint64
	duration  time.Duration
	dir       string
	keep      bool
	quiet     bool
	recheck   string
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	var scen, nodes string
	fs := flag.NewFlagSet("raftchaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&scen, "scenarios", "all", "comma-separated scenarios, or all: "+strings.Join(chaos.ScenarioNames(), ", "))
	fs.StringVar(&nodes, "nodes", "3,5", "comma-separated cluster sizes")
	fs.IntVar(&o.seeds, "seeds", 5, "runs per scenario and cluster size")
	fs.Uint64Var(&o.seed, "seed", 1, "the first run's seed; run k uses seed+k")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long each run injects faults")
	fs.StringVar(&o.dir, "dir", "", "where runs keep their files (default a new temporary directory)")
	fs.BoolVar(&o.keep, "keep", false, "keep every run's files, not only the failed ones'")
	fs.BoolVar(&o.quiet, "q", false, "print only the table, not each fault as it happens")
	fs.StringVar(&o.recheck, "recheck", "", "check the history a kept run saved in this directory again, and exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.scenarios = strings.Split(scen, ",")
	if scen == "all" {
		o.scenarios = chaos.ScenarioNames()
	}
	for _, s := range o.scenarios {
		if _, ok := chaos.Scenarios[s]; !ok {
			return o, fmt.Errorf("-scenarios: unknown scenario %q (have %s)", s, strings.Join(chaos.ScenarioNames(), ", "))
		}
	}
	for _, f := range strings.Split(nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 3 || n > 9 {
			return o, fmt.Errorf("-nodes: %q is not a cluster size from 3 to 9", f)
		}
		o.nodes = append(o.nodes, n)
	}
	switch {
	case o.seeds < 1:
		return o, fmt.Errorf("-seeds %d: want at least 1", o.seeds)
	case o.duration < time.Second:
		return o, fmt.Errorf("-duration %v: want at least 1s", o.duration)
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "raftchaos:", err)
		return 2
	}
	if o.recheck != "" {
		res, err := chaos.Recheck(o.recheck, 2*time.Minute)
		if err == nil {
			err = res.Err()
		}
		fmt.Fprintf(stdout, "%s: %v; %d ok, %d failed, %d unknown operations; checked in %v\n", o.recheck,
			res.Linearizable, res.OK, res.Failed, res.Unknown, res.CheckTime.Round(time.Millisecond))
		if err != nil {
			fmt.Fprintln(stderr, "raftchaos:", err)
			return 1
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := matrix(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "raftchaos:", err)
		return 1
	}
	return 0
}

func matrix(ctx context.Context, o options, stdout, stderr io.Writer) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	base := o.dir
	if base == "" {
		if base, err = os.MkdirTemp("", "raftchaos-"); err != nil {
			return err
		}
	}
	exe, err := chaos.BuildCounter(root, base)
	if err != nil {
		return err
	}
	log := stderr
	if o.quiet {
		log = io.Discard
	}
	var results []chaos.Result
	failed := 0
matrix:
	for _, sc := range o.scenarios {
		for _, n := range o.nodes {
			for k := range o.seeds {
				cfg := chaos.Config{Scenario: sc, Nodes: n, Seed: o.seed + uint64(k), Duration: o.duration, Exe: exe,
					Dir: filepath.Join(base, fmt.Sprintf("%s-%d-%d", sc, n, o.seed+uint64(k))), Keep: o.keep, Log: log}
				fmt.Fprintf(log, "== %s, %d nodes, seed %d\n", sc, n, cfg.Seed)
				res := chaos.Run(ctx, cfg)
				if res.Err != nil {
					failed++
					fmt.Fprintf(log, "FAILED: %v\n", res.Err)
				}
				results = append(results, res)
				if ctx.Err() != nil {
					break matrix
				}
			}
		}
	}
	chaos.WriteTable(stdout, results)
	if failed == 0 && !o.keep {
		_ = os.Remove(filepath.Join(base, "counter"))
		_ = os.Remove(base)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d runs failed; their files are under %s", failed, len(results), base)
	}
	return nil
}

// moduleRoot is the directory of the raftkit module the command runs in.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/raftkit/raftkit").Output()
	if err != nil {
		return "", fmt.Errorf("finding the raftkit module (run from its checkout): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

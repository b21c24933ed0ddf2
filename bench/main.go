// Command bench compares raftkit with its peers and a bare-limit baseline
// on one machine: three durable replicas per system, the same workload,
// one Markdown table. See package harness for what is measured and how.
//
//	bench [run] [flags]   the full matrix and failover; prints Markdown
//	bench failover        failover only
//	bench cell ...        internal: one cell in this process, one JSON line
//	bench replica ...     internal: one replica process for failover
//
// It owns flag parsing, the choice of which systems run which parts
// (systems_list.go lists the systems), the run's temporary directory and
// signal handling; it never measures anything itself.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raftkit/raftkit/bench/failover"
	"github.com/raftkit/raftkit/bench/harness"
	"github.com/raftkit/raftkit/bench/systems"
)

// Which systems run the parts of the run that not all of them take, as the
// issue asks: the multi-group cell needs several groups per process, and
// failover compares the systems that elect a leader on their own.
var (
	groupSystems    = []string{"raftkit", "dragonboat"}
	failoverSystems = []string{"raftkit", "hashicorp", "dragonboat"}
)

// The multi-group cell's workload (the issue's: 16 groups, 16 B, 256
// clients spread over the groups).
const (
	groupCellGroups  = 16
	groupCellPayload = 16
	groupCellClients = 256
)

func main() { os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr)) }

// Main runs the command line args and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Once interrupted, restore the default so a second Ctrl-C ends the
	// process at once (children still die with it through Pdeathsig).
	go func() { <-ctx.Done(); stop() }()
	var err error
	switch cmd {
	case "run":
		err = runCmd(ctx, args, stdout, stderr)
	case "failover":
		err = failoverCmd(ctx, args, stdout, stderr)
	case "cell":
		err = cellCmd(ctx, args, stdout, stderr)
	case "replica":
		err = replicaCmd(ctx, args, stderr)
	default:
		err = fmt.Errorf("unknown command %q (want run, failover, cell or replica)", cmd)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 2
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "bench: interrupted:", err)
		return 130
	}
	fmt.Fprintln(stderr, "bench:", err)
	return 1
}

// runFlags are the flags of run (and, in part, failover).
type runFlags struct {
	systems         string
	payloads        string
	clients         string
	reps            int
	warmup          time.Duration
	duration        time.Duration
	groupsCell      onOff
	failover        onOff
	failoverReps    int
	snapshotEntries int
	out             string
	quick           bool
	verbose         bool
}

func (f *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.systems, "systems", strings.Join(names(), ","), "comma-separated systems to run, in column order")
	fs.StringVar(&f.payloads, "payloads", "16,1024", "comma-separated payload sizes in bytes")
	fs.StringVar(&f.clients, "clients", "1,64,256", "comma-separated client counts")
	fs.IntVar(&f.reps, "reps", 3, "repetitions per cell (the issue asks for at least 3)")
	fs.DurationVar(&f.warmup, "warmup", time.Second, "load before each measured window")
	fs.DurationVar(&f.duration, "duration", 3*time.Second, "measured window per cell")
	f.groupsCell, f.failover = true, true
	fs.Var(&f.groupsCell, "groups-cell", "on/off: the 16-group cell ("+strings.Join(groupSystems, ", ")+")")
	fs.Var(&f.failover, "failover", "on/off: failover measurement ("+strings.Join(failoverSystems, ", ")+")")
	fs.IntVar(&f.failoverReps, "failover-reps", 10, "failover repetitions per system")
	fs.IntVar(&f.snapshotEntries, "snapshot-entries", harness.DefaultSnapshotEntries, "every system snapshots and compacts its log every this many entries (0: never)")
	fs.StringVar(&f.out, "out", "", "also write the Markdown report to this file")
	fs.BoolVar(&f.quick, "quick", false, "smoke run: one short repetition of a few cells (explicit flags still win)")
	fs.BoolVar(&f.verbose, "v", false, "copy the children's stderr to stderr")
}

// applyQuick shrinks every flag the user did not set to a smoke run.
func (f *runFlags) applyQuick(fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	quick := map[string]string{
		"payloads": "16", "clients": "64", "reps": "1", "warmup": "200ms",
		"duration": "500ms", "failover-reps": "1",
	}
	for name, v := range quick {
		if !set[name] {
			fs.Set(name, v)
		}
	}
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.quick {
		f.applyQuick(fs)
	}
	sysNames, err := parseSystems(f.systems)
	if err != nil {
		return err
	}
	payloads, err := parseInts(f.payloads)
	if err != nil {
		return fmt.Errorf("-payloads: %w", err)
	}
	clients, err := parseInts(f.clients)
	if err != nil {
		return fmt.Errorf("-clients: %w", err)
	}
	if f.reps < 1 || f.failoverReps < 1 {
		return errors.New("-reps and -failover-reps must be at least 1")
	}
	if f.reps < 3 && !f.quick {
		fmt.Fprintf(stderr, "bench: warning: -reps %d: ratios are meant as medians of at least 3\n", f.reps)
	}
	env, err := newRunEnv(stderr)
	if err != nil {
		return err
	}
	defer env.close()
	rep := env.report("run", args, sysNames)
	rep.Reps, rep.Warmup, rep.Duration = f.reps, f.warmup, f.duration
	rep.SnapshotEntries = f.snapshotEntries
	opts := harness.MatrixOptions{
		Exe: env.exe, Systems: sysNames, Payloads: payloads, Clients: clients, Reps: f.reps,
		GroupSystems: groupSystems, Warmup: f.warmup, Duration: f.duration,
		SnapshotEntries: f.snapshotEntries,
		ElectionTimeout: harness.DefaultElectionTimeout, Heartbeat: harness.DefaultHeartbeat,
		Dir: env.root, Log: stderr, Verbose: f.verbose,
	}
	if f.groupsCell {
		opts.GroupCell = &harness.CellKey{Payload: groupCellPayload, Clients: min(groupCellClients, slices.Max(clients)), Groups: groupCellGroups}
	}
	rep.Cells, err = harness.RunMatrix(ctx, opts)
	if err == nil && f.failover {
		rep.Failover, err = env.failover(ctx, sysNames, f.failoverReps, f.verbose)
		rep.FailoverReps = f.failoverReps
	}
	// Print what was measured even when interrupted.
	if werr := emit(rep, f.out, stdout); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}

func failoverCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	sysNames, err := parseSystems(f.systems)
	if err != nil {
		return err
	}
	env, err := newRunEnv(stderr)
	if err != nil {
		return err
	}
	defer env.close()
	rep := env.report("failover", args, sysNames)
	rep.Failover, err = env.failover(ctx, sysNames, f.failoverReps, f.verbose)
	rep.FailoverReps = f.failoverReps
	if werr := emit(rep, f.out, stdout); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}

// runEnv is what a parent run holds: its binary, its temporary directory
// (every replica's data lives under it, and it goes at the end whatever
// happens) and the machine's description.
type runEnv struct {
	exe     string
	root    string
	machine harness.Machine
	log     io.Writer
}

func newRunEnv(log io.Writer) (*runEnv, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("own executable: %w", err)
	}
	root, err := os.MkdirTemp("", "raftbench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	env := &runEnv{exe: exe, root: root, log: log}
	// Time fsync first, while the disk is quiet.
	if env.machine, err = harness.ReadMachine(root); err != nil {
		env.close()
		return nil, err
	}
	fmt.Fprintf(log, "bench: data in %s; fsync (4 KiB append + fdatasync) median %v\n", root, env.machine.Fsync)
	return env, nil
}

func (e *runEnv) close() { os.RemoveAll(e.root) }

func (e *runEnv) report(cmd string, args, sysNames []string) harness.Report {
	return harness.Report{
		Date: time.Now(), Machine: e.machine, Systems: sysNames,
		Command:         strings.Join(append([]string{"bench", cmd}, args...), " "),
		ElectionTimeout: harness.DefaultElectionTimeout, Heartbeat: harness.DefaultHeartbeat,
	}
}

// failover measures the selected systems that take part in failover.
func (e *runEnv) failover(ctx context.Context, sysNames []string, reps int, verbose bool) ([]harness.FailoverResult, error) {
	var out []harness.FailoverResult
	for _, s := range sysNames {
		if !slices.Contains(failoverSystems, s) {
			continue
		}
		out = append(out, failover.Measure(ctx, s, failover.Options{
			Exe: e.exe, Dir: e.root, Reps: reps, Log: e.log, Verbose: verbose,
			ElectionTimeout: harness.DefaultElectionTimeout, Heartbeat: harness.DefaultHeartbeat,
		}))
		if err := ctx.Err(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// emit prints the report and writes it to path if one is given.
func emit(rep harness.Report, path string, stdout io.Writer) error {
	md := rep.Markdown()
	if _, err := io.WriteString(stdout, md); err != nil {
		return fmt.Errorf("print report: %w", err)
	}
	if path == "" {
		return nil
	}
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func cellCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cell", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var spec harness.CellSpec
	spec.Flags(fs)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole cell (replicas and clients) to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the whole cell to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	sys, err := lookup(spec.System)
	if err != nil {
		return err
	}
	if spec.Dir == "" {
		spec.Dir = os.TempDir()
	}
	res := harness.RunCell(ctx, sys, spec)
	if *memProfile != "" {
		if err := writeAllocProfile(*memProfile); err != nil {
			return err
		}
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		return fmt.Errorf("print result: %w", err)
	}
	if res.Err != "" && !res.Unsupported {
		return fmt.Errorf("cell failed: %s", res.Err)
	}
	return nil
}

func replicaCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("replica", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var spec failover.ReplicaSpec
	spec.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	sys, err := lookup(spec.System)
	if err != nil {
		return err
	}
	return failover.Serve(ctx, sys, spec)
}

// names lists the registered systems in column order.
func names() []string {
	var ns []string
	for _, s := range registered {
		ns = append(ns, s.Name())
	}
	return ns
}

func lookup(name string) (systems.System, error) {
	for _, s := range registered {
		if s.Name() == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("unknown system %q (registered: %s)", name, strings.Join(names(), ", "))
}

// parseSystems splits and checks a -systems list.
func parseSystems(list string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if _, err := lookup(n); err != nil {
			return nil, fmt.Errorf("-systems: %w", err)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-systems: empty")
	}
	return out, nil
}

// parseInts parses a comma-separated list of positive integers.
func parseInts(list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// onOff is a flag taking on/off (or true/false), as the issue spells
// its switches; it needs a value ("-failover off" or "-failover=off").
type onOff bool

func (v *onOff) String() string {
	if v != nil && *v {
		return "on"
	}
	return "off"
}

func (v *onOff) Set(s string) error {
	switch strings.ToLower(s) {
	case "on", "true", "yes", "1":
		*v = true
	case "off", "false", "no", "0":
		*v = false
	default:
		return fmt.Errorf("want on or off, got %q", s)
	}
	return nil
}

// startCPUProfile profiles the process into name until the returned
// function is called.
func startCPUProfile(name string) (func(), error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// writeAllocProfile writes the allocations made so far to name.
func writeAllocProfile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("-memprofile: %w", err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		return fmt.Errorf("-memprofile: %w", err)
	}
	return nil
}

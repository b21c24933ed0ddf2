package harness

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/raftkit/raftkit/bench/systems"
)

// Defaults shared by every system in a run: the issue fixes the election
// timeout and heartbeat so that no system is tuned differently.
const (
	DefaultElectionTimeout = time.Second
	DefaultHeartbeat       = 100 * time.Millisecond
	// DefaultSnapshotEntries is the snapshot cadence of every system
	// (systems.Config.SnapshotEntries): raftkit's own default.
	DefaultSnapshotEntries = 100_000
	// LeaderTimeout bounds the wait for every group to elect a leader
	// after the replicas start.
	LeaderTimeout = 30 * time.Second
	replicas      = 3
)

// CellSpec is one benchmark cell: one system under one workload. It
// travels to the child process as command-line flags (Flags and Args
// are each other's inverse).
type CellSpec struct {
	System          string
	Payload         int
	Clients         int
	Groups          int
	Warmup          time.Duration
	Duration        time.Duration
	ElectionTimeout time.Duration
	Heartbeat       time.Duration
	SnapshotEntries int // see systems.Config
	// Dir is where the replicas' fresh data directories are made (and
	// removed); the system temp dir if empty.
	Dir string
}

// Key is the cell's workload, without the system.
func (s CellSpec) Key() CellKey { return CellKey{s.Payload, s.Clients, s.Groups} }

// Flags registers the spec's fields on fs, with the run's defaults.
func (s *CellSpec) Flags(fs *flag.FlagSet) {
	fs.StringVar(&s.System, "system", "raftkit", "system to run")
	fs.IntVar(&s.Payload, "payload", 16, "payload bytes per proposal")
	fs.IntVar(&s.Clients, "clients", 64, "concurrent clients")
	fs.IntVar(&s.Groups, "groups", 1, "raft groups; client k uses group k % groups")
	fs.DurationVar(&s.Warmup, "warmup", time.Second, "load before the measured window")
	fs.DurationVar(&s.Duration, "duration", 3*time.Second, "measured window")
	fs.DurationVar(&s.ElectionTimeout, "election-timeout", DefaultElectionTimeout, "base election timeout")
	fs.DurationVar(&s.Heartbeat, "heartbeat", DefaultHeartbeat, "leader heartbeat interval")
	fs.IntVar(&s.SnapshotEntries, "snapshot-entries", DefaultSnapshotEntries, "snapshot and compact every this many entries (0: never)")
	fs.StringVar(&s.Dir, "dir", "", "parent of the replicas' data directories (default the system temp dir)")
}

// Args renders the spec as the flags Flags parses.
func (s CellSpec) Args() []string {
	return []string{
		"-system", s.System,
		"-payload", strconv.Itoa(s.Payload),
		"-clients", strconv.Itoa(s.Clients),
		"-groups", strconv.Itoa(s.Groups),
		"-warmup", s.Warmup.String(),
		"-duration", s.Duration.String(),
		"-election-timeout", s.ElectionTimeout.String(),
		"-heartbeat", s.Heartbeat.String(),
		"-snapshot-entries", strconv.Itoa(s.SnapshotEntries),
		"-dir", s.Dir,
	}
}

// CellKey identifies a workload; the report has one row per key.
type CellKey struct {
	Payload int `json:"payload"`
	Clients int `json:"clients"`
	Groups  int `json:"groups"`
}

// CellResult is one cell's measurement, the JSON line a cell child prints.
// Latencies are in microseconds so the JSON reads without conversion.
type CellResult struct {
	System string `json:"system"`
	CellKey
	Rep         int              `json:"rep"` // set by the parent
	Ops         int64            `json:"ops"`
	WindowSec   float64          `json:"window_s"`
	OpsPerSec   float64          `json:"ops_per_s"`
	P50us       float64          `json:"p50_us"`
	P99us       float64          `json:"p99_us"`
	P999us      float64          `json:"p999_us"`
	CPUSec      float64          `json:"cpu_s"`
	CPUPer1k    float64          `json:"cpu_s_per_1k_ops"`
	MaxRSSBytes int64            `json:"max_rss_bytes"`
	LeaderSec   float64          `json:"leader_wait_s"` // start to every group led
	Errors      map[string]int64 `json:"errors,omitempty"`
	Unsupported bool             `json:"unsupported,omitempty"`
	Err         string           `json:"error,omitempty"`
	// CloseErr is a failure to shut the replicas down after the
	// measurement; reported, but it does not void the numbers.
	CloseErr string `json:"close_error,omitempty"`
}

// OK reports whether the cell produced a measurement.
func (r CellResult) OK() bool { return r.Err == "" && !r.Unsupported && r.Ops > 0 }

// RunCell runs spec in this process: three fresh replicas of sys, a wait
// for every group's leader, then RunLoad. CPU time is this process's
// user+system time over the measured window only; peak RSS is the
// process's high-water mark at the end of the window (replicas, clients
// and harness together, the same harness for every system). Data
// directories are removed before it returns. Failures are reported in
// the result's Err (or Unsupported), so the caller always has a result.
func RunCell(ctx context.Context, sys systems.System, spec CellSpec) CellResult {
	res := CellResult{System: spec.System, CellKey: spec.Key()}
	if err := runCell(ctx, sys, spec, &res); err != nil {
		if errors.Is(err, systems.ErrUnsupported) {
			res.Unsupported = true
		}
		res.Err = err.Error()
	}
	return res
}

func runCell(ctx context.Context, sys systems.System, spec CellSpec, res *CellResult) error {
	dirs, cleanup, err := replicaDirs(spec.Dir, spec.System, replicas)
	if err != nil {
		return err
	}
	defer cleanup()
	addrs, err := FreePorts(replicas)
	if err != nil {
		return err
	}
	cfg := systems.Config{
		Dirs: dirs, Addrs: addrs, Groups: spec.Groups,
		ElectionTimeout: spec.ElectionTimeout, HeartbeatInterval: spec.Heartbeat,
		MaxPayload: spec.Payload, SnapshotEntries: spec.SnapshotEntries,
	}
	t0 := time.Now()
	nodes, err := startNodes(sys, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := closeNodes(nodes); err != nil {
			res.CloseErr = err.Error()
		}
	}()
	if err := WaitLeaders(ctx, nodes, spec.Groups, LeaderTimeout); err != nil {
		return err
	}
	res.LeaderSec = time.Since(t0).Seconds()
	var u0, u1 Usage
	lr, err := RunLoad(ctx, nodes, LoadOptions{
		Groups: spec.Groups, Clients: spec.Clients, Payload: spec.Payload,
		Warmup: spec.Warmup, Duration: spec.Duration,
		OnWindowStart: func() { u0 = ReadUsage() },
		OnWindowEnd:   func() { u1 = ReadUsage() },
	})
	if err != nil {
		return err
	}
	fill(res, lr, u1.CPU-u0.CPU, u1.MaxRSS)
	return nil
}

func fill(res *CellResult, lr LoadResult, cpu time.Duration, rss int64) {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	res.Ops = lr.Ops
	res.WindowSec = lr.Window.Seconds()
	res.OpsPerSec = lr.OpsPerSec()
	res.P50us = us(Percentile(lr.Latencies, 0.50))
	res.P99us = us(Percentile(lr.Latencies, 0.99))
	res.P999us = us(Percentile(lr.Latencies, 0.999))
	res.CPUSec = cpu.Seconds()
	if lr.Ops > 0 {
		res.CPUPer1k = res.CPUSec / float64(lr.Ops) * 1000
	}
	res.MaxRSSBytes = rss
	if len(lr.Errors) > 0 {
		res.Errors = lr.Errors
	}
}

// replicaDirs makes n fresh directories under parent and returns a
// function that removes them.
func replicaDirs(parent, system string, n int) ([]string, func(), error) {
	var dirs []string
	cleanup := func() {
		for _, d := range dirs {
			os.RemoveAll(d)
		}
	}
	for i := range n {
		d, err := os.MkdirTemp(parent, fmt.Sprintf("%s-r%d-", filepath.Base(system), i))
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("data dir: %w", err)
		}
		dirs = append(dirs, d)
	}
	return dirs, cleanup, nil
}

// startNodes starts every replica, closing those started if one fails.
func startNodes(sys systems.System, cfg systems.Config) ([]systems.Node, error) {
	var nodes []systems.Node
	for i := range cfg.Addrs {
		n, err := sys.StartNode(cfg, i)
		if err != nil {
			closeNodes(nodes)
			return nil, fmt.Errorf("%s: start replica %d: %w", sys.Name(), i, err)
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// closeNodes closes the replicas concurrently (a system may wait for its
// peers while closing) and gives up after a deadline: the cell runs in its
// own process, which ends soon after, so a hung Close leaks nothing.
func closeNodes(nodes []systems.Node) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			if err := n.Close(); err != nil {
				errs[i] = fmt.Errorf("close replica %d: %w", i, err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return errors.Join(errs...)
	case <-time.After(30 * time.Second):
		return errors.New("close: replicas did not close within 30s")
	}
}

// WaitLeaders polls until every group has a replica that believes it
// leads, or timeout passes.
func WaitLeaders(ctx context.Context, nodes []systems.Node, groups int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for g := 0; g < groups; {
		led := false
		for _, n := range nodes {
			led = led || n.IsLeader(g)
		}
		if led {
			g++
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no leader for group %d within %v", g, timeout)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raftkit/raftkit/chaos/checker"
	"github.com/raftkit/raftkit/examples/counter"
)

// Scenarios name the fault mixes a run can use, each a list of faults
// drawn at random (seeded).
var Scenarios = map[string][]string{
	"partitions":     {"partition-halves", "isolate-leader", "majority-ring", "bridge", "one-way"},
	"kill":           {"kill-minority", "kill-minority", "kill-all"},
	"pause":          {"pause-leader"},
	"membership":     {"membership", "membership", "isolate-leader"},
	"transfer":       {"transfer"},
	"snapshot":       {"snapshot-install"},
	"snapshot-crash": {"crash-in-install"},
	"mixed": {"partition-halves", "isolate-leader", "majority-ring", "bridge", "one-way", "kill-minority",
		"kill-all", "pause-leader", "membership", "transfer", "snapshot-install", "crash-in-install", "partition-and-kill"},
}

// ScenarioNames returns the scenario names, sorted.
func ScenarioNames() []string {
	var names []string
	for n := range Scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Config is one run: a scenario on a cluster size with a seed.
type Config struct {
	Scenario string
	Nodes    int
	Seed     uint64
	// Duration is how long faults are injected; the run takes longer
	// (start-up, recovery, convergence, checking).
	Duration time.Duration
	// Exe is the counter binary (see BuildCounter).
	Exe string
	// Dir is where the run keeps data directories, logs and the history;
	// it is removed after a passing run unless Keep.
	Dir  string
	Keep bool
	// ClientsPerNode is how many sequential clients start at each node;
	// default 2.
	ClientsPerNode int
	// Log receives a line per fault and phase; nil discards.
	Log io.Writer
}

// Result is what one run found.
type Result struct {
	Config
	Ops            []checker.Op
	Check          checker.Result
	Faults         map[string]int
	FaultErrors    []string // faults that could not start, and why
	Recovery       time.Duration
	Elections      uint64
	MaxRSSKiB      int64
	Installs       int // snapshot fetches completed, from the servers' logs
	InstallsCaught int // servers killed in the middle of a snapshot fetch
	// GoroutinesStart and GoroutinesEnd are the most goroutines any server
	// ran before the faults and after healing and converging.
	GoroutinesStart, GoroutinesEnd int
	Err                            error // nil when every check passed
}

// Limits the checks hold a run to.
const (
	recoveryLimit = 5 * time.Second // heal to a successful write, 3 nodes
	rssLimitKiB   = 1 << 20         // 1 GiB per server process
	convergeLimit = 30 * time.Second
	// goroutineSlack allows for connections that exist after the faults
	// and not before them (a follower's own to other followers, snapshot
	// clients): a few goroutines each. A leak per fault or per operation
	// outgrows it.
	goroutineSlack = 64
	checkTimeout   = 2 * time.Minute
)

// runner carries one run's state through its phases.
type runner struct {
	cfg            Config
	c              *cluster
	rng            *rand.Rand
	log            io.Writer
	rss            rssTracker
	maxID          uint64
	installsCaught int
	start          time.Time
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "%7.2fs  %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// Run executes one run and checks it. The returned Result's Err says why a
// run failed; the data directory is kept for a failed run.
func Run(ctx context.Context, cfg Config) Result {
	if cfg.ClientsPerNode == 0 {
		cfg.ClientsPerNode = 2
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	res := Result{Config: cfg, Faults: map[string]int{}}
	kinds, ok := Scenarios[cfg.Scenario]
	if !ok {
		res.Err = fmt.Errorf("unknown scenario %q (have %s)", cfg.Scenario, strings.Join(ScenarioNames(), ", "))
		return res
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		res.Err = err
		return res
	}
	r := &runner{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x6e656d65)), log: cfg.Log, start: time.Now()}
	res.Err = r.run(ctx, kinds, &res)
	if res.Err != nil || cfg.Keep {
		r.keep(&res)
	} else {
		_ = os.RemoveAll(cfg.Dir)
	}
	return res
}

func (r *runner) run(ctx context.Context, kinds []string, res *Result) error {
	snap, margin := int64(2000), uint64(500)
	if slices.ContainsFunc(kinds, func(k string) bool { return strings.Contains(k, "install") }) {
		snap, margin = 300, 50
	}
	c, err := newCluster(r.cfg.Exe, r.cfg.Dir, r.cfg.Nodes, snap, margin)
	if err != nil {
		return err
	}
	r.c = c
	r.maxID = uint64(r.cfg.Nodes)
	defer c.close()
	for _, id := range c.ids() {
		if err := c.start(c.servers[id]); err != nil {
			return err
		}
	}
	if _, err := r.firstWrite(ctx, 20*time.Second); err != nil {
		return fmt.Errorf("the cluster never accepted a write: %w", err)
	}
	startTerm := r.maxTerm(ctx)
	baseline, err := r.maxGoroutines(ctx)
	if err != nil {
		return err
	}
	r.logf("cluster of %d up; workload starts", r.cfg.Nodes)
	w := startWorkload(c, c.proxies(), r.cfg.ClientsPerNode, r.cfg.Seed)

	r.inject(ctx, kinds, res)
	r.healAll()
	rec, err := r.firstWrite(ctx, 30*time.Second)
	res.Recovery = rec
	r.logf("healed; first write after %v", rec.Round(time.Millisecond))
	// Let the workload run on a healthy cluster for a moment, so that
	// operations left unknown by the faults meet reads that settle them.
	sleepCtx(ctx, time.Second)
	res.Ops = w.stop()
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("no successful write within 30s of healing: %w", err))
	} else if r.cfg.Nodes == 3 && rec > recoveryLimit {
		errs = append(errs, fmt.Errorf("first write %v after healing, over %v", rec.Round(time.Millisecond), recoveryLimit))
	}
	final, err := r.converge(ctx)
	converged := err == nil
	if err != nil {
		errs = append(errs, err)
	}
	if t := r.maxTerm(ctx); t > startTerm {
		res.Elections = t - startTerm
	}
	res.GoroutinesStart = baseline
	if res.GoroutinesEnd, err = r.maxGoroutines(ctx); err != nil {
		errs = append(errs, err)
	} else if res.GoroutinesEnd > baseline+goroutineSlack {
		errs = append(errs, fmt.Errorf("goroutines: a server runs %d after healing, %d at the start: a leak", res.GoroutinesEnd, baseline))
	}
	for _, s := range c.servers {
		r.rss.note(s)
	}
	res.MaxRSSKiB = r.rss.max
	if res.MaxRSSKiB > rssLimitKiB {
		errs = append(errs, fmt.Errorf("a server's peak RSS reached %d MiB", res.MaxRSSKiB>>10))
	}
	for _, crash := range c.crashed() {
		errs = append(errs, errors.New(crash))
	}
	res.InstallsCaught = r.installsCaught
	for _, id := range c.ids() {
		res.Installs += strings.Count(readFile(c.servers[id].logPath), fetchDone)
	}
	if converged {
		res.Check = checker.Check(res.Ops, final, checkTimeout)
	} else {
		// Without an agreed final value only the history itself can be
		// checked; the bounds on the final value are not.
		res.Check = checker.CheckHistory(res.Ops, checkTimeout)
	}
	if err := res.Check.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// inject applies faults drawn from kinds for the configured duration: a
// calm spell, a fault held for a while, its heal, and again.
func (r *runner) inject(ctx context.Context, kinds []string, res *Result) {
	end := time.Now().Add(r.cfg.Duration)
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		sleepCtx(ctx, between(500*time.Millisecond, 2*time.Second)(r.rng))
		if ctx.Err() != nil {
			return
		}
		// The scenario's first fault comes first, so that every run has it.
		f := faults[kinds[0]]
		if i > 0 {
			f = faults[kinds[r.rng.IntN(len(kinds))]]
		}
		heal, err := f.apply(ctx, r)
		if err != nil && heal != nil {
			heal() // what it did start ends now
			heal = nil
		}
		if err != nil {
			r.logf("%s: could not start: %v", f.name, err)
			res.FaultErrors = append(res.FaultErrors, f.name+": "+err.Error())
		} else {
			res.Faults[f.name]++
		}
		hold := between(time.Second, 4*time.Second)
		if f.hold != nil {
			hold = f.hold
		}
		sleepCtx(ctx, hold(r.rng))
		if heal != nil {
			heal()
		}
	}
}

// healAll ends every fault: links open, paused servers continued, stopped
// ones restarted.
func (r *runner) healAll() {
	r.c.net.Heal()
	for _, id := range r.c.ids() {
		if s := r.c.servers[id]; s.paused {
			r.c.signal(s, syscall.SIGCONT)
		}
	}
	r.restartAll()
}

// maxGoroutines is the most goroutines any running server reports.
func (r *runner) maxGoroutines(ctx context.Context) (int, error) {
	most := 0
	for _, id := range r.c.ids() {
		st, err := r.c.runtime(ctx, r.c.servers[id])
		if err != nil {
			return 0, fmt.Errorf("runtime stats of node %d: %w", id, err)
		}
		most = max(most, st.Goroutines)
	}
	return most, nil
}

// firstWrite retries a write until one succeeds and returns how long it
// took.
func (r *runner) firstWrite(ctx context.Context, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	cl := counter.NewClient(r.c.caller, r.c.proxies(), counter.DefaultGroup)
	var last error
	for time.Since(start) < limit {
		octx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := cl.IncrementAndGet(octx, 0)
		cancel()
		if err == nil {
			return time.Since(start), nil
		}
		if last = err; ctx.Err() != nil {
			return time.Since(start), ctx.Err()
		}
	}
	return time.Since(start), last
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// keep saves what a failed (or kept) run needs for a post-mortem next to
// its data directories and logs, and says how to rerun it.
func (r *runner) keep(res *Result) {
	dir := r.cfg.Dir
	if err := checker.Save(res.Ops, filepath.Join(dir, "history.jsonl")); err != nil {
		r.logf("saving the history: %v", err)
	}
	if res.Check.HasFinal() {
		if err := saveFinal(filepath.Join(dir, "final"), res.Check.FinalValue); err != nil {
			r.logf("saving the final value: %v", err)
		}
	}
	if res.Check.Linearizable != checker.Linearizable {
		if err := res.Check.WriteVisualization(filepath.Join(dir, "history.html")); err != nil {
			r.logf("writing the visualization: %v", err)
		}
	}
	r.logf("kept %s; rerun: %s", dir, RerunCommand(r.cfg))
}

func saveFinal(path string, v int64) error {
	return os.WriteFile(path, []byte(strconv.FormatInt(v, 10)+"\n"), 0o644)
}

// Recheck checks the history a kept run saved in dir again (with the
// final value it saved), for instance after the checker improved.
func Recheck(dir string, timeout time.Duration) (checker.Result, error) {
	ops, err := checker.Load(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		return checker.Result{}, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "final"))
	if err != nil {
		return checker.Result{}, err
	}
	final, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return checker.Result{}, fmt.Errorf("%s/final: %w", dir, err)
	}
	return checker.Check(ops, final, timeout), nil
}

// RerunCommand is the command line that repeats cfg's run.
func RerunCommand(cfg Config) string {
	return fmt.Sprintf("go run ./cmd/raftchaos -scenarios %s -nodes %d -seed %d -seeds 1 -duration %v -keep",
		cfg.Scenario, cfg.Nodes, cfg.Seed, cfg.Duration)
}

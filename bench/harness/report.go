package harness

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Reference is the system every ratio compares against the others.
const Reference = "raftkit"

// FailoverResult is one system's failover measurements: the time from
// SIGKILL of the leader to the first successful write, per repetition
// that succeeded, and the errors of those that did not.
type FailoverResult struct {
	System string
	Times  []time.Duration
	Errors []string
}

// Report is everything one run measured, ready to render.
type Report struct {
	Date    time.Time
	Machine Machine
	Command string
	// Systems in column order.
	Systems                    []string
	Reps                       int
	Warmup, Duration           time.Duration
	ElectionTimeout, Heartbeat time.Duration
	SnapshotEntries            int
	Cells                      []CellResult // every repetition of every cell
	Failover                   []FailoverResult
	FailoverReps               int
}

// snapshotWords describes the snapshot setting of a run.
func snapshotWords(every int) string {
	if every <= 0 {
		return "no snapshots (etcd's loop still compacts its in-memory log every 10,000 entries)"
	}
	return fmt.Sprintf("a snapshot and log compaction every %d applied entries per group, "+
		"keeping 1,000 entries (etcd's loop: 5,000 in memory; its log file is never compacted; hashicorp checks every 100ms)", every)
}

// Markdown renders the report: a header, throughput with ratios, latency
// ratios, per-system detail, failover, and any failures.
func (r Report) Markdown() string {
	var b strings.Builder
	r.header(&b)
	if len(r.Cells) > 0 {
		r.throughputTable(&b)
		r.latencyRatioTable(&b)
		r.detailTable(&b)
	}
	if len(r.Failover) > 0 {
		r.failoverTable(&b)
	}
	r.failures(&b)
	return b.String()
}

func (r Report) header(b *strings.Builder) {
	m := r.Machine
	fmt.Fprintf(b, "# raftkit benchmark\n\n")
	fmt.Fprintf(b, "- Date: %s\n", r.Date.UTC().Format("2006-01-02 15:04 MST"))
	cpu := ""
	if m.CPUModel != "" {
		cpu = " (" + m.CPUModel + ")"
	}
	fmt.Fprintf(b, "- Machine: %d cores%s, %.1f GiB memory, %s/%s, %s\n",
		m.Cores, cpu, float64(m.MemBytes)/(1<<30), m.OS, m.Arch, m.GoVersion)
	fmt.Fprintf(b, "- fsync: %s ms per 4 KiB append + fdatasync (median of %d, measured by the harness in the data directory %s)\n",
		sig3(ms(m.Fsync)), m.FsyncSamples, m.FsyncDir)
	if len(r.Cells) > 0 {
		fmt.Fprintf(b, "- Workload: per cell, 3 durable replicas (fsync on) in one fresh process with a no-op state machine; "+
			"election timeout %v, heartbeat %v; %s; closed-loop clients (client k on group k mod groups), warm-up %v, measured %v; "+
			"median of %d repetition(s), the system order alternating between repetitions\n",
			r.ElectionTimeout, r.Heartbeat, snapshotWords(r.SnapshotEntries), r.Warmup, r.Duration, r.Reps)
		fmt.Fprintf(b, "- CPU is user+system seconds of the cell's process over the measured window per 1,000 operations; "+
			"RSS is that process's peak (three replicas and the clients together)\n")
	}
	if r.Command != "" {
		fmt.Fprintf(b, "- Command: `%s`\n", r.Command)
	}
	b.WriteString("\n")
}

// keys lists the workloads present, single-group cells first.
func (r Report) keys() []CellKey {
	var ks []CellKey
	for _, c := range r.Cells {
		if !slices.Contains(ks, c.CellKey) {
			ks = append(ks, c.CellKey)
		}
	}
	sort.SliceStable(ks, func(i, j int) bool {
		a, b := ks[i], ks[j]
		if a.Groups != b.Groups {
			return a.Groups < b.Groups
		}
		if a.Payload != b.Payload {
			return a.Payload < b.Payload
		}
		return a.Clients < b.Clients
	})
	return ks
}

// runs returns sys's results for key indexed by repetition (zero values
// for repetitions it did not run), and whether it ran key at all.
func (r Report) runs(key CellKey, sys string) ([]CellResult, bool) {
	out := make([]CellResult, r.Reps)
	found := false
	for _, c := range r.Cells {
		if c.CellKey == key && c.System == sys && c.Rep >= 0 && c.Rep < r.Reps {
			out[c.Rep] = c
			found = true
		}
	}
	return out, found
}

// series extracts one metric per repetition, NaN where the repetition
// failed, so medians and ratios skip it.
func series(rs []CellResult, f func(CellResult) float64) []float64 {
	v := make([]float64, len(rs))
	for i, c := range rs {
		v[i] = math.NaN()
		if c.OK() {
			v[i] = f(c)
		}
	}
	return v
}

func opsPerSec(c CellResult) float64 { return c.OpsPerSec }
func p50(c CellResult) float64       { return c.P50us }
func p99(c CellResult) float64       { return c.P99us }
func p999(c CellResult) float64      { return c.P999us }

// peers are the systems compared with the reference, in column order.
func (r Report) peers() []string {
	if !slices.Contains(r.Systems, Reference) {
		return nil
	}
	var ps []string
	for _, s := range r.Systems {
		if s != Reference {
			ps = append(ps, s)
		}
	}
	return ps
}

// status is what a table shows instead of a number: "—" for a system
// that did not run the cell, "n/a" for an unsupported one, "fail" when no
// repetition succeeded; "" when there are numbers.
func status(rs []CellResult, ran bool) string {
	if !ran {
		return "—"
	}
	for _, c := range rs {
		if c.OK() {
			return ""
		}
	}
	for _, c := range rs {
		if c.Unsupported {
			return "n/a"
		}
	}
	return "fail"
}

func (r Report) throughputTable(b *strings.Builder) {
	title := fmt.Sprintf("## Throughput (ops/s, median of %d)", r.Reps)
	if len(r.peers()) > 0 {
		title += " and " + Reference + " ÷ peer"
	}
	b.WriteString(title + "\n\n")
	head := []string{"payload", "clients", "groups"}
	head = append(head, r.Systems...)
	for _, p := range r.peers() {
		head = append(head, Reference+" ÷ "+p)
	}
	rows := [][]string{}
	for _, k := range r.keys() {
		row := keyCells(k)
		for _, s := range r.Systems {
			rs, ran := r.runs(k, s)
			row = append(row, orStatus(rs, ran, func() string { return fmt.Sprintf("%.0f", Median(series(rs, opsPerSec))) }))
		}
		ref, _ := r.runs(k, Reference)
		for _, p := range r.peers() {
			rs, _ := r.runs(k, p)
			row = append(row, ratio(series(ref, opsPerSec), series(rs, opsPerSec)))
		}
		rows = append(rows, row)
	}
	table(b, head, rows)
	if len(r.peers()) > 0 {
		b.WriteString("Ratios are medians of per-repetition ratios (raftkit and the peer from the same repetition); above 1 means raftkit is faster.\n\n")
	}
}

func (r Report) latencyRatioTable(b *strings.Builder) {
	peers := r.peers()
	if len(peers) == 0 {
		return
	}
	fmt.Fprintf(b, "## Latency, raftkit ÷ peer (p50 / p99 / p99.9)\n\n")
	head := append([]string{"payload", "clients", "groups"}, peers...)
	var rows [][]string
	for _, k := range r.keys() {
		row := keyCells(k)
		ref, _ := r.runs(k, Reference)
		for _, p := range peers {
			rs, _ := r.runs(k, p)
			var parts []string
			for _, f := range []func(CellResult) float64{p50, p99, p999} {
				parts = append(parts, ratio(series(ref, f), series(rs, f)))
			}
			cell := strings.Join(parts, " / ")
			if cell == "— / — / —" {
				cell = "—"
			}
			row = append(row, cell)
		}
		rows = append(rows, row)
	}
	table(b, head, rows)
	b.WriteString("Below 1 means raftkit's latency is lower.\n\n")
}

func (r Report) detailTable(b *strings.Builder) {
	fmt.Fprintf(b, "## Detail per system (medians of %d)\n\n", r.Reps)
	head := []string{"payload", "clients", "groups", "system", "ops/s", "p50 ms", "p99 ms", "p99.9 ms",
		"CPU s/1k ops", "peak RSS MiB", "errors", "ok reps"}
	var rows [][]string
	for _, k := range r.keys() {
		for _, s := range r.Systems {
			rs, ran := r.runs(k, s)
			if !ran {
				continue
			}
			row := append(keyCells(k), s)
			row = append(row, detailCells(rs)...)
			if st := status(rs, ran); st != "" {
				row[4] = st // "n/a" or "fail" says more than dashes
			}
			rows = append(rows, row)
		}
	}
	table(b, head, rows)
	b.WriteString("Errors are failed proposals inside the measured windows, summed over repetitions.\n\n")
}

func detailCells(rs []CellResult) []string {
	med := func(f func(CellResult) float64) float64 { return Median(series(rs, f)) }
	ok, errs := 0, map[string]int64{}
	for _, c := range rs {
		if c.OK() {
			ok++
		}
		for k, v := range c.Errors {
			errs[k] += v
		}
	}
	return []string{
		num(med(opsPerSec), "%.0f"),
		sig3(med(p50) / 1000), sig3(med(p99) / 1000), sig3(med(p999) / 1000),
		sig3(med(func(c CellResult) float64 { return c.CPUPer1k })),
		num(med(func(c CellResult) float64 { return float64(c.MaxRSSBytes) / (1 << 20) }), "%.0f"),
		errorSummary(errs),
		fmt.Sprintf("%d/%d", ok, len(rs)),
	}
}

func (r Report) failoverTable(b *strings.Builder) {
	fmt.Fprintf(b, "## Failover: SIGKILL of the leader → first successful write\n\n")
	head := []string{"system", "median ms", "min ms", "max ms", "ok reps"}
	var rows [][]string
	for _, f := range r.Failover {
		row := []string{f.System, "fail", "—", "—"}
		if len(f.Times) > 0 {
			row = []string{f.System, sig3(ms(MedianDuration(f.Times))),
				sig3(ms(slices.Min(f.Times))), sig3(ms(slices.Max(f.Times)))}
		}
		row = append(row, fmt.Sprintf("%d/%d", len(f.Times), len(f.Times)+len(f.Errors)))
		rows = append(rows, row)
	}
	table(b, head, rows)
	fmt.Fprintf(b, "Each repetition starts three fresh replica processes (election timeout %v, heartbeat %v), "+
		"writes until one write succeeds, SIGKILLs the leader, then writes to the survivors every 5 ms (500 ms timeout each) "+
		"until one succeeds.\n\n", r.ElectionTimeout, r.Heartbeat)
}

func (r Report) failures(b *strings.Builder) {
	var lines []string
	for _, c := range r.Cells {
		if c.Err != "" && !c.Unsupported {
			lines = append(lines, fmt.Sprintf("- %s, %s, rep %d: %s", c.System, c.CellKey, c.Rep+1, oneLine(c.Err)))
		}
		if c.CloseErr != "" {
			lines = append(lines, fmt.Sprintf("- %s, %s, rep %d (close): %s", c.System, c.CellKey, c.Rep+1, oneLine(c.CloseErr)))
		}
	}
	for _, f := range r.Failover {
		for _, e := range f.Errors {
			lines = append(lines, fmt.Sprintf("- failover %s: %s", f.System, oneLine(e)))
		}
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("## Failures\n\n")
	b.WriteString(strings.Join(lines, "\n"))
	b.WriteString("\n\n")
}

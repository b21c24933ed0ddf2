package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
)

// MatrixOptions is a full run of cells.
type MatrixOptions struct {
	// Exe is the binary re-executed as "Exe cell <flags>" for every cell,
	// normally os.Executable().
	Exe string
	// Systems in column order; repetition 0 runs them in this order.
	Systems  []string
	Payloads []int
	Clients  []int
	Reps     int
	// GroupCell, when not nil, adds the multi-group cell, run only by
	// GroupSystems (those of them in Systems).
	GroupCell    *CellKey
	GroupSystems []string

	Warmup, Duration           time.Duration
	ElectionTimeout, Heartbeat time.Duration
	SnapshotEntries            int // see systems.Config
	// Dir is the parent of every replica's data directory.
	Dir string
	// Log receives a progress line per cell; Verbose also copies the
	// children's stderr there.
	Log     io.Writer
	Verbose bool
}

// Cells lists the workloads in run order: every payload × clients with
// one group, then the multi-group cell.
func (o MatrixOptions) Cells() []CellKey {
	var ks []CellKey
	for _, p := range o.Payloads {
		for _, c := range o.Clients {
			ks = append(ks, CellKey{Payload: p, Clients: c, Groups: 1})
		}
	}
	if o.GroupCell != nil {
		ks = append(ks, *o.GroupCell)
	}
	return ks
}

// Order is the system order of repetition rep: as given on even
// repetitions, reversed on odd ones, so no system always runs first (cold
// page cache, fresh thermal budget) or right after the same neighbour.
func Order(systems []string, rep int) []string {
	s := slices.Clone(systems)
	if rep%2 == 1 {
		slices.Reverse(s)
	}
	return s
}

// RunMatrix runs every cell Reps times, each in a fresh child process.
// Repetitions are the outer loop, so the repetitions of one cell are
// spread over the run rather than back to back. A failing cell is recorded
// and the run goes on; only ctx's end stops it, returning the results so
// far with ctx's error.
func RunMatrix(ctx context.Context, o MatrixOptions) ([]CellResult, error) {
	var out []CellResult
	cells := o.Cells()
	for rep := range o.Reps {
		for _, key := range cells {
			for _, sys := range Order(o.Systems, rep) {
				if key.Groups > 1 && !slices.Contains(o.GroupSystems, sys) {
					continue
				}
				if err := ctx.Err(); err != nil {
					return out, err
				}
				r := o.runOne(ctx, sys, key, rep)
				if ctx.Err() != nil {
					// Interrupted, not a failure of the system: keep it out.
					return out, ctx.Err()
				}
				out = append(out, r)
			}
		}
	}
	return out, ctx.Err()
}

func (o MatrixOptions) runOne(ctx context.Context, sys string, key CellKey, rep int) CellResult {
	spec := CellSpec{
		System: sys, Payload: key.Payload, Clients: key.Clients, Groups: key.Groups,
		Warmup: o.Warmup, Duration: o.Duration,
		ElectionTimeout: o.ElectionTimeout, Heartbeat: o.Heartbeat, Dir: o.Dir,
		SnapshotEntries: o.SnapshotEntries,
	}
	t0 := time.Now()
	r := RunCellChild(ctx, o.Exe, spec, o.childLog())
	r.Rep = rep
	if o.Log != nil {
		fmt.Fprintf(o.Log, "rep %d/%d %-10s %s: %s (%.1fs)\n",
			rep+1, o.Reps, sys, key, summary(r), time.Since(t0).Seconds())
	}
	return r
}

func (o MatrixOptions) childLog() io.Writer {
	if o.Verbose {
		return o.Log
	}
	return nil
}

// RunCellChild runs spec as "exe cell <flags>" with a deadline well past
// its expected length, and returns the result line it printed, or a
// result carrying the failure.
func RunCellChild(ctx context.Context, exe string, spec CellSpec, log io.Writer) CellResult {
	limit := spec.Warmup + spec.Duration + LeaderTimeout + 90*time.Second
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	out, err := RunChild(ctx, log, exe, append([]string{"cell"}, spec.Args()...)...)
	r, ok := ParseCellResult(out)
	switch {
	case !ok && err == nil:
		err = fmt.Errorf("cell printed no result line")
		fallthrough
	case !ok:
		return CellResult{System: spec.System, CellKey: spec.Key(), Err: err.Error()}
	case err != nil && r.Err == "" && !r.Unsupported:
		r.Err = err.Error()
	}
	return r
}

// ParseCellResult finds the result line in a cell's stdout: the last line
// that decodes as a CellResult with a system. Looking for it, rather than
// taking all of stdout, tolerates a system library that prints there.
func ParseCellResult(out []byte) (CellResult, bool) {
	lines := bytes.Split(out, []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		l := bytes.TrimSpace(lines[i])
		if len(l) == 0 || l[0] != '{' {
			continue
		}
		var r CellResult
		if json.Unmarshal(l, &r) == nil && r.System != "" {
			return r, true
		}
	}
	return CellResult{}, false
}

func (k CellKey) String() string {
	return fmt.Sprintf("%s × %d clients × %d group(s)", fmtBytes(k.Payload), k.Clients, k.Groups)
}

func summary(r CellResult) string {
	switch {
	case r.Unsupported:
		return "unsupported"
	case r.Err != "":
		return "FAILED: " + r.Err
	}
	return fmt.Sprintf("%.0f ops/s, p50 %s ms, p99 %s ms, %s CPU s/1k ops, %.0f MiB",
		r.OpsPerSec, sig3(r.P50us/1000), sig3(r.P99us/1000), sig3(r.CPUPer1k), float64(r.MaxRSSBytes)/(1<<20))
}

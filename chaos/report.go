package chaos

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/raftkit/raftkit/chaos/checker"
)

// row aggregates the runs of one scenario on one cluster size.
type row struct {
	scenario         string
	nodes            int
	runs, passed     int
	ok, failed, unkn int
	verdicts         map[string]int
	lost             int64
	recoveries       []time.Duration
	elections        uint64
	faults           int
	faultErrors      int
	installs, caught int
	gStart, gEnd     int
	rssKiB           int64
}

// WriteTable writes a Markdown table of results, a row per scenario and
// cluster size, then the failed runs with their rerun commands.
func WriteTable(w io.Writer, results []Result) {
	rows := map[string]*row{}
	var keys []string
	for _, res := range results {
		k := fmt.Sprintf("%s/%d", res.Scenario, res.Nodes)
		rw := rows[k]
		if rw == nil {
			rw = &row{scenario: res.Scenario, nodes: res.Nodes, verdicts: map[string]int{}}
			rows[k] = rw
			keys = append(keys, k)
		}
		rw.add(res)
	}
	sort.Strings(keys)
	fmt.Fprintln(w, "| scenario | nodes | runs | passed | ops ok | failed | unknown | linearizability | acked writes lost | recovery p50 | recovery max | elections | installs (killed mid-fetch) | faults (not started) | goroutines start → end | peak RSS MiB |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, k := range keys {
		rw := rows[k]
		slices.Sort(rw.recoveries)
		var p50, mx time.Duration
		if n := len(rw.recoveries); n > 0 {
			p50, mx = rw.recoveries[(n-1)/2], rw.recoveries[n-1]
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d | %s | %d | %v | %v | %d | %d (%d) | %d (%d) | %d → %d | %d |\n",
			rw.scenario, rw.nodes, rw.runs, rw.passed, rw.ok, rw.failed, rw.unkn, verdicts(rw.verdicts),
			rw.lost, p50.Round(time.Millisecond), mx.Round(time.Millisecond), rw.elections, rw.installs, rw.caught, rw.faults, rw.faultErrors, rw.gStart, rw.gEnd, rw.rssKiB>>10)
	}
	for _, res := range results {
		if res.Err != nil {
			fmt.Fprintf(w, "\nFAILED %s, %d nodes, seed %d (kept in %s): %v\n  rerun: %s\n",
				res.Scenario, res.Nodes, res.Seed, res.Dir, res.Err, RerunCommand(res.Config))
		}
	}
}

func (rw *row) add(res Result) {
	rw.runs++
	if res.Err == nil {
		rw.passed++
	}
	for _, op := range res.Ops {
		switch op.Outcome {
		case checker.OK:
			rw.ok++
		case checker.Failed:
			rw.failed++
		default:
			rw.unkn++
		}
	}
	rw.verdicts[res.Check.Linearizable.String()]++
	if lost := res.Check.AckedSum - res.Check.FinalValue; res.Check.HasFinal() && lost > 0 {
		rw.lost += lost
	}
	rw.recoveries = append(rw.recoveries, res.Recovery)
	rw.elections += res.Elections
	rw.installs += res.Installs
	rw.gStart, rw.gEnd = max(rw.gStart, res.GoroutinesStart), max(rw.gEnd, res.GoroutinesEnd)
	rw.rssKiB = max(rw.rssKiB, res.MaxRSSKiB)
	rw.caught += res.InstallsCaught
	for _, n := range res.Faults {
		rw.faults += n
	}
	rw.faultErrors += len(res.FaultErrors)
}

func verdicts(m map[string]int) string {
	var parts []string
	for v, n := range m {
		parts = append(parts, fmt.Sprintf("%s ×%d", v, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

package harness

import (
	"flag"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fixed builds a report from hand-made results: raftkit and two peers on
// one cell over three repetitions, a group cell only raftkit ran, an
// unsupported cell, and failover numbers.
func fixed() Report {
	k := CellKey{Payload: 16, Clients: 64, Groups: 1}
	g := CellKey{Payload: 16, Clients: 256, Groups: 16}
	res := func(sys string, key CellKey, rep int, ops, p99 float64) CellResult {
		return CellResult{System: sys, CellKey: key, Rep: rep, Ops: int64(ops), OpsPerSec: ops,
			P50us: p99 / 4, P99us: p99, P999us: p99 * 2, CPUPer1k: 0.05, MaxRSSBytes: 64 << 20}
	}
	cells := []CellResult{
		res("raftkit", k, 0, 100, 1000), res("raftkit", k, 1, 300, 1000), res("raftkit", k, 2, 200, 1000),
		res("hashicorp", k, 0, 100, 2000), res("hashicorp", k, 1, 100, 2000), res("hashicorp", k, 2, 400, 2000),
		res("baseline", k, 0, 400, 500), res("baseline", k, 1, 600, 500),
		{System: "baseline", CellKey: k, Rep: 2, Err: "replica 1 exited\nwith | pipe"},
		res("raftkit", g, 0, 50, 4000), res("raftkit", g, 1, 70, 4000), res("raftkit", g, 2, 60, 4000),
		{System: "hashicorp", CellKey: g, Rep: 0, Unsupported: true, Err: "unsupported configuration"},
	}
	cells[0].Errors = map[string]int64{"not_leader": 3, "timeout": 1}
	return Report{
		Date: time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC),
		Machine: Machine{Cores: 8, CPUModel: "Test CPU", MemBytes: 16 << 30, OS: "linux", Arch: "amd64",
			GoVersion: "go1.26", Fsync: 1500 * time.Microsecond, FsyncSamples: 100, FsyncDir: "/tmp/x"},
		Command: "bench run", Systems: []string{"raftkit", "baseline", "hashicorp"}, Reps: 3,
		Warmup: time.Second, Duration: 3 * time.Second, ElectionTimeout: time.Second, Heartbeat: 100 * time.Millisecond,
		Cells: cells,
		Failover: []FailoverResult{
			{System: "raftkit", Times: []time.Duration{1200 * time.Millisecond, 900 * time.Millisecond, 1000 * time.Millisecond}},
			{System: "hashicorp", Errors: []string{"rep 1: no leader within 30s"}},
		},
	}
}

// rows returns the table rows of md with cells trimmed, so tests do not
// depend on column padding.
func rows(md string) [][]string {
	var out [][]string
	space := regexp.MustCompile(`\s*\|\s*`)
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "| ") {
			out = append(out, strings.Split(strings.Trim(space.ReplaceAllString(l, "|"), "|"), "|"))
		}
	}
	return out
}

func hasRow(t *testing.T, md string, want ...string) {
	t.Helper()
	for _, r := range rows(md) {
		if reflect.DeepEqual(r, want) {
			return
		}
	}
	t.Errorf("no row %q in:\n%s", want, md)
}

func TestMarkdownTables(t *testing.T) {
	md := fixed().Markdown()
	// Throughput: medians per system (baseline's failed rep left out), and
	// ratios as medians of per-repetition ratios: raftkit/hashicorp reps
	// are 1, 3, 0.5 → 1.00; raftkit/baseline 0.25, 0.5 → 0.375.
	hasRow(t, md, "payload", "clients", "groups", "raftkit", "baseline", "hashicorp", "raftkit ÷ baseline", "raftkit ÷ hashicorp")
	hasRow(t, md, "16 B", "64", "1", "200", "500", "100", "0.38", "1.00")
	hasRow(t, md, "16 B", "256", "16", "60", "—", "n/a", "—", "—")
	// Latency ratios p50 / p99 / p99.9.
	hasRow(t, md, "16 B", "64", "1", "2.00 / 2.00 / 2.00", "0.50 / 0.50 / 0.50")
	// Detail: latencies in ms, errors summed, ok repetitions counted.
	hasRow(t, md, "16 B", "64", "1", "raftkit", "200", "0.250", "1.00", "2.00", "0.0500", "64", "4 (not_leader 3, timeout 1)", "3/3")
	hasRow(t, md, "16 B", "64", "1", "baseline", "500", "0.125", "0.500", "1.00", "0.0500", "64", "0", "2/3")
	hasRow(t, md, "16 B", "256", "16", "hashicorp", "n/a", "—", "—", "—", "—", "—", "0", "0/3")
	// Failover: median and spread, and a system with only failures.
	hasRow(t, md, "raftkit", "1000", "900", "1200", "3/3")
	hasRow(t, md, "hashicorp", "fail", "—", "—", "0/1")
	for _, want := range []string{
		"- Machine: 8 cores (Test CPU), 16.0 GiB memory, linux/amd64, go1.26",
		"- fsync: 1.50 ms per 4 KiB append + fdatasync (median of 100",
		"- Date: 2025-01-02 03:04 UTC",
		`- baseline, 16 B × 64 clients × 1 group(s), rep 3: replica 1 exited with \| pipe`,
		"- failover hashicorp: rep 1: no leader within 30s",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in:\n%s", want, md)
		}
	}
	if strings.Contains(md, "unsupported configuration") {
		t.Error("an unsupported cell is listed as a failure")
	}
}

func TestMarkdownWithoutReference(t *testing.T) {
	r := fixed()
	r.Systems = []string{"baseline", "hashicorp"}
	md := r.Markdown()
	if strings.Contains(md, "÷") {
		t.Errorf("ratio columns without raftkit:\n%s", md)
	}
}

func TestParseCellResult(t *testing.T) {
	out := []byte("INFO something on stdout\n{\"not\":\"a result\"}\n" +
		`{"system":"raftkit","payload":16,"clients":64,"groups":1,"ops":42,"p99_us":12.5}` + "\n")
	r, ok := ParseCellResult(out)
	if !ok || r.System != "raftkit" || r.Ops != 42 || r.P99us != 12.5 || r.Clients != 64 {
		t.Fatalf("ParseCellResult = %+v, %v", r, ok)
	}
	if _, ok := ParseCellResult([]byte("panic: boom\n")); ok {
		t.Error("found a result in a panic")
	}
}

func TestCellSpecArgsRoundTrip(t *testing.T) {
	want := CellSpec{System: "etcd", Payload: 1024, Clients: 256, Groups: 16, Warmup: 250 * time.Millisecond,
		Duration: 2 * time.Second, ElectionTimeout: time.Second, Heartbeat: 100 * time.Millisecond, Dir: "/tmp/a b"}
	var got CellSpec
	fs := flag.NewFlagSet("cell", flag.ContinueOnError)
	got.Flags(fs)
	if err := fs.Parse(want.Args()); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("round trip: got %+v, want %+v", got, want)
	}
}

func TestTailKeepsEnd(t *testing.T) {
	tl := NewTail(10)
	tl.Write([]byte("0123456789"))
	tl.Write([]byte("abc"))
	if got := tl.String(); got != "3456789abc" {
		t.Errorf("tail = %q", got)
	}
}

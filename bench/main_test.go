package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/raftkit/raftkit/bench/harness"
)

// execEnv marks a re-executed test binary: it then behaves as the bench
// command, so the parent's re-execution of os.Executable() (cells,
// replicas) works under go test too.
const execEnv = "BENCH_TEST_EXEC_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(execEnv) == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// bench runs this test binary as the bench command with args, with its
// temporary directory in tmp, and returns stdout.
func bench(t *testing.T, tmp string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), execEnv+"=1", "TMPDIR="+tmp)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func TestCellSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three raftkit replicas")
	}
	tmp := t.TempDir()
	out := bench(t, tmp, "cell", "-system", "raftkit", "-payload", "16", "-clients", "8",
		"-warmup", "100ms", "-duration", "300ms", "-dir", tmp)
	var r harness.CellResult
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		t.Fatalf("stdout is not one JSON line: %v\n%s", err, out)
	}
	if r.System != "raftkit" || r.Ops <= 0 || r.P99us <= 0 || r.CPUSec <= 0 || r.MaxRSSBytes <= 0 || r.Err != "" {
		t.Fatalf("result %+v", r)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("cell left %v in its data dir", left)
	}
}

// TestRunQuickSmoke runs the whole pipeline for raftkit: matrix in child
// processes, the group cell, failover with replica processes, the report
// on stdout and in -out, and nothing left in the temporary directory.
func TestRunQuickSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs cells and a failover")
	}
	tmp := t.TempDir()
	res := filepath.Join(t.TempDir(), "RESULTS.md")
	out := bench(t, tmp, "run", "-quick", "-systems", "raftkit", "-duration", "300ms", "-out", res)
	file, err := os.ReadFile(res)
	if err != nil || !bytes.Equal(file, out) {
		t.Fatalf("-out file differs from stdout (%v)", err)
	}
	md := string(out)
	for _, want := range []string{
		`(?m)^\| 16 B +\| 64 +\| 1 +\| \d+ +\|$`,                     // throughput, one group
		`(?m)^\| 16 B +\| 64 +\| 16 +\| raftkit +\| \d+ +\| [\d.]+ `, // detail, group cell
		`(?m)^\| raftkit +\| \d+ +\| \d+ +\| \d+ +\| 1/1 +\|$`,       // failover
		`fsync: [\d.]+ ms`,
	} {
		if !regexp.MustCompile(want).MatchString(md) {
			t.Errorf("report does not match %s:\n%s", want, md)
		}
	}
	if strings.Contains(md, "## Failures") {
		t.Errorf("failures in a smoke run:\n%s", md)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("run left %v in the temp dir", left)
	}
}

func TestParseFlags(t *testing.T) {
	if got, err := parseInts("16, 1024"); err != nil || !slices.Equal(got, []int{16, 1024}) {
		t.Errorf("parseInts = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "x", "16,,64"} {
		if _, err := parseInts(bad); err == nil {
			t.Errorf("parseInts(%q) accepted", bad)
		}
	}
	if got, err := parseSystems("raftkit,raftkit"); err != nil || !slices.Equal(got, []string{"raftkit"}) {
		t.Errorf("parseSystems = %v, %v", got, err)
	}
	if _, err := parseSystems("raftkit,nosuch"); err == nil {
		t.Error("parseSystems accepted an unknown system")
	}
	var v onOff
	for in, want := range map[string]bool{"on": true, "off": false, "true": true, "0": false} {
		if err := v.Set(in); err != nil || bool(v) != want {
			t.Errorf("onOff.Set(%q) = %v, %v", in, v, err)
		}
	}
	if err := v.Set("maybe"); err == nil {
		t.Error("onOff accepted maybe")
	}
}

func TestRegistryNames(t *testing.T) {
	ns := names()
	if len(ns) == 0 || ns[0] != harness.Reference {
		t.Fatalf("registered %v: raftkit must come first", ns)
	}
	seen := map[string]bool{}
	for _, n := range ns {
		if seen[n] {
			t.Errorf("%s registered twice", n)
		}
		seen[n] = true
	}
}

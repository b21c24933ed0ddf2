package harness

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where a run happened, for the results' header.
type Machine struct {
	Cores     int
	CPUModel  string
	MemBytes  int64
	OS, Arch  string
	GoVersion string
	// Fsync is the median time of a 4 KiB append plus fdatasync in
	// FsyncDir, the directory holding the replicas' data: the floor under
	// every durable commit in the run.
	Fsync        time.Duration
	FsyncSamples int
	FsyncDir     string
}

// FsyncSamples is how many appends FsyncLatency times.
const FsyncSamples = 100

// ReadMachine describes this machine, timing fsync in dir.
func ReadMachine(dir string) (Machine, error) {
	m := Machine{
		Cores: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		GoVersion: runtime.Version(), FsyncDir: dir, FsyncSamples: FsyncSamples,
		CPUModel: procField("/proc/cpuinfo", "model name"),
	}
	if kb, err := strconv.ParseInt(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 10, 64); err == nil {
		m.MemBytes = kb * 1024
	}
	d, err := FsyncLatency(dir, FsyncSamples)
	if err != nil {
		return m, err
	}
	m.Fsync = d
	return m, nil
}

// procField returns the value of the first "key: value" line of a /proc
// file, or "" (not Linux, or no such line).
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// FsyncLatency appends n blocks of 4 KiB to a fresh file in dir, each
// followed by fdatasync, and returns the median time of one append+sync.
// Appending (not rewriting one block) makes each sync also persist the
// file's new size, as a raft log append does.
func FsyncLatency(dir string, n int) (time.Duration, error) {
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		return 0, fmt.Errorf("fsync probe: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 4096)
	for i := range block {
		block[i] = byte(i * 7)
	}
	ds := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := f.Write(block); err != nil {
			return 0, fmt.Errorf("fsync probe: %w", err)
		}
		if err := datasync(f); err != nil {
			return 0, fmt.Errorf("fsync probe: %w", err)
		}
		ds = append(ds, time.Since(t0))
	}
	return MedianDuration(ds), nil
}

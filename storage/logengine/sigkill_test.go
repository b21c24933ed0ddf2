package logengine_test

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage/logengine"
	"github.com/raftkit/raftkit/storage/vfs"
)

// The writer process of TestSIGKILLKeepsAcknowledgedEntries: it runs only
// when the parent test re-executes the test binary with this variable set.
const writerDirEnv = "RAFTKIT_LOGENGINE_WRITER_DIR"

const killGroups = 4

// killEntryData is the payload of entry index of group g: a pure function so
// the parent can verify content without being told it.
func killEntryData(g, index uint64) []byte {
	return []byte(fmt.Sprintf("g%d-i%d-%s", g, index, strings.Repeat("x", int(index%97))))
}

// TestSIGKILLWriterProcess is the child: it appends batches to several
// groups forever and prints "ack <group> <last index>" after each append
// returns, i.e. once the engine reports the entries durable.
func TestSIGKILLWriterProcess(t *testing.T) {
	dir := os.Getenv(writerDirEnv)
	if dir == "" {
		t.Skip("helper process for TestSIGKILLKeepsAcknowledgedEntries")
	}
	e, err := logengine.Open(vfs.OS{}, dir, logengine.Options{SegmentSize: 256 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 1))
	for {
		g := 1 + uint64(rng.IntN(killGroups))
		gl := e.Group(g)
		last, err := gl.LastIndex()
		if err != nil {
			fmt.Fprintln(os.Stderr, "last:", err)
			os.Exit(2)
		}
		n := 1 + rng.IntN(64)
		ents := make([]raftpb.Entry, n)
		for i := range ents {
			idx := last + 1 + uint64(i)
			ents[i] = raftpb.Entry{Term: 1, Index: idx, Data: killEntryData(g, idx)}
		}
		if err := gl.Append(ents); err != nil {
			fmt.Fprintln(os.Stderr, "append:", err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stdout, "ack %d %d\n", g, last+uint64(n))
	}
}

// TestSIGKILLKeepsAcknowledgedEntries kills a writer process with SIGKILL
// at random points, again and again, and checks after each kill that every
// entry the writer had reported durable is present with its content.
func TestSIGKILLKeepsAcknowledgedEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	acked := map[uint64]uint64{} // group -> highest acknowledged index
	rounds := 8
	if os.Getenv("CI") == "" {
		rounds = 12
	}
	for round := range rounds {
		killAfter := 1 + rng.IntN(400)
		got := runAndKill(t, dir, killAfter)
		for g, idx := range got {
			acked[g] = max(acked[g], idx)
		}
		verifyAcked(t, dir, acked, round)
	}
}

// runAndKill starts the writer, lets it acknowledge killAfter appends, kills
// it with SIGKILL and returns every acknowledgement it printed.
func runAndKill(t *testing.T, dir string, killAfter int) map[uint64]uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILLWriterProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), writerDirEnv+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acks := map[uint64]uint64{}
	sc := bufio.NewScanner(out)
	lines := 0
	killed := false
	for sc.Scan() {
		line := sc.Text()
		if g, idx, ok := parseAck(line); ok {
			acks[g] = max(acks[g], idx)
			lines++
		}
		if lines == killAfter && !killed {
			// Mid-write: the writer is appending its next batch right now.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	// Everything printed before the kill is still read from the pipe.
	io.Copy(io.Discard, out)
	err = cmd.Wait()
	if !killed {
		t.Fatalf("writer exited before being killed: %v\n%s", err, stderr.String())
	}
	return acks
}

func parseAck(line string) (g, idx uint64, ok bool) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ack" {
		return 0, 0, false
	}
	g, err1 := strconv.ParseUint(f[1], 10, 64)
	idx, err2 := strconv.ParseUint(f[2], 10, 64)
	return g, idx, err1 == nil && err2 == nil
}

func verifyAcked(t *testing.T, dir string, acked map[uint64]uint64, round int) {
	t.Helper()
	e, err := logengine.Open(vfs.OS{}, dir, logengine.Options{SegmentSize: 256 << 10})
	if err != nil {
		t.Fatalf("round %d: reopening after SIGKILL: %v", round, err)
	}
	defer e.Close()
	for g, want := range acked {
		gl := e.Group(g)
		last, err := gl.LastIndex()
		if err != nil || last < want {
			t.Fatalf("round %d: group %d last index %d (%v), acknowledged %d", round, g, last, err, want)
		}
		ents, err := gl.Entries(1, want+1, 1<<40)
		if err != nil || uint64(len(ents)) != want {
			t.Fatalf("round %d: group %d read %d entries (%v), want %d", round, g, len(ents), err, want)
		}
		for _, ent := range ents {
			if string(ent.Data) != string(killEntryData(g, ent.Index)) {
				t.Fatalf("round %d: group %d entry %d holds %q", round, g, ent.Index, ent.Data)
			}
		}
	}
}

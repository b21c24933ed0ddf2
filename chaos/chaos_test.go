package chaos

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
)

// TestScenariosCI runs the three scenarios CI runs (partitions, SIGKILL,
// pause), 3 nodes, about 30 s of faults each. It runs only when
// RAFTKIT_CHAOS is set (scripts/test.sh sets it in a step of its own, so
// that the servers are not starved by the race-detector run of every
// other package, which would make the recovery-time check meaningless).
// RAFTKIT_CHAOS_DURATION overrides the 30 s.
func TestScenariosCI(t *testing.T) {
	if os.Getenv("RAFTKIT_CHAOS") == "" {
		t.Skip("set RAFTKIT_CHAOS=1 to run real processes under faults (scripts/test.sh does)")
	}
	d := 30 * time.Second
	if v := os.Getenv("RAFTKIT_CHAOS_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("RAFTKIT_CHAOS_DURATION: %v", err)
		}
	}
	testutil.CheckLeaks(t)
	_, file, _, _ := runtime.Caller(0)
	exe, err := BuildCounter(filepath.Join(filepath.Dir(file), ".."), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i, sc := range []string{"partitions", "kill", "pause"} {
		t.Run(sc, func(t *testing.T) {
			var log strings.Builder
			dir := filepath.Join(os.TempDir(), "raftkit-chaos-"+sc+"-"+time.Now().Format("150405"))
			res := Run(context.Background(), Config{Scenario: sc, Nodes: 3, Seed: uint64(time.Now().UnixNano()) + uint64(i),
				Duration: d, Exe: exe, Dir: dir, Log: &log})
			var tbl strings.Builder
			WriteTable(&tbl, []Result{res})
			t.Logf("faults:\n%s\n%s", log.String(), tbl.String())
			if res.Err != nil {
				t.Fatalf("%v\nrerun: %s", res.Err, RerunCommand(res.Config))
			}
			if len(res.Faults) == 0 {
				t.Fatalf("no fault was injected: %v", res.FaultErrors)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("a passing run left %s behind", dir)
			}
		})
	}
}

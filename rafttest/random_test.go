package rafttest

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"
)

var (
	flagSeeds   = flag.Int("rafttest.seeds", 0, "number of seeds TestRandomizedSafety runs (default 2000, 200 under -race, 100 with -short; env RAFTTEST_SEEDS)")
	flagSeed    = flag.Int64("rafttest.seed", -1, "replay this one seed with a full trace")
	flagFirst   = flag.Uint64("rafttest.first", 1, "first seed of the batch")
	flagSimTime = flag.Duration("rafttest.simtime", 0, "faulty period of each run in virtual time (default 200s)")
)

// seedCount decides how many seeds to run.
func seedCount(t *testing.T) int {
	if *flagSeeds > 0 {
		return *flagSeeds
	}
	if s := os.Getenv("RAFTTEST_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("RAFTTEST_SEEDS=%q: want a positive integer", s)
		}
		return n
	}
	switch {
	case testing.Short():
		return 100
	case raceEnabled:
		return 200
	}
	return 2000
}

func randomOptions(seed uint64) Options {
	return Options{Seed: seed, Duration: *flagSimTime, VaryCoreConfig: true}
}

// TestRandomizedSafety runs the randomized simulation for many seeds, split
// into parallel chunks. Any violation names the seed and the replay command.
func TestRandomizedSafety(t *testing.T) {
	if *flagSeed >= 0 {
		replay(t, uint64(*flagSeed))
		return
	}
	n := seedCount(t)
	first := *flagFirst
	if os.Getenv("GOGC") == "" {
		// Each run keeps a few MB live and allocates steadily; collecting
		// less often cuts the run time by a quarter.
		old := debug.SetGCPercent(400)
		t.Cleanup(func() { debug.SetGCPercent(old) })
	}
	chunks := min(n, 4*runtime.GOMAXPROCS(0))
	start := time.Now()
	t.Cleanup(func() {
		if !t.Failed() {
			t.Logf("%d seeds from %d in %v", n, first, time.Since(start).Round(time.Millisecond))
		}
	})
	for k := range chunks {
		t.Run(fmt.Sprintf("chunk%d", k), func(t *testing.T) {
			t.Parallel()
			var failures int
			deadline, hasDeadline := t.Deadline()
			for i := k; i < n; i += chunks {
				if hasDeadline && time.Until(deadline) < 20*time.Second {
					// Fail with a clear message rather than let the test
					// binary's timeout panic and lose every report.
					t.Errorf("stopped at seed %d of [%d, %d) before the test deadline; pass a longer -timeout (e.g. -timeout 0) for this many seeds",
						first+uint64(i), first, first+uint64(n))
					return
				}
				seed := first + uint64(i)
				res, err := Run(randomOptions(seed))
				if err != nil {
					failures++
					if v := (*Violation)(nil); errors.As(err, &v) {
						t.Errorf("%d nodes: %v", res.Options.Nodes, err) // names seed and replay
					} else {
						t.Errorf("seed %d: %v\nreplay: %s", seed, err, ReplayCommand(seed))
					}
					if failures == 3 {
						t.Errorf("stopping this chunk after %d failures", failures)
						return
					}
				}
			}
		})
	}
}

// replay runs one seed, streaming its full trace to the test log.
func replay(t *testing.T, seed uint64) {
	opts := randomOptions(seed)
	opts.Trace = func(s string) { t.Log(s) }
	res, err := Run(opts)
	o := res.Options
	t.Logf("seed %d: %d nodes, electiontick=%d prevote=%v checkquorum=%v inflight=%d/%dB batch=%d/%dB applybytes=%d uncommitted=%dB faults every %v snapshot every %d (0: never) margin %d at %v/B",
		seed, o.Nodes, o.ElectionTick, !o.DisablePreVote, !o.DisableCheckQuorum, o.MaxInflightMsgs, o.MaxInflightBytes,
		o.MaxBatchEntries, o.MaxBatchBytes, o.MaxApplyBytes, o.MaxUncommittedBytes, o.FaultInterval,
		o.SnapshotEvery, o.CompactMargin, o.SnapshotByteTime)
	if o.MembershipChanges {
		t.Logf("membership changes among %d nodes, starting with %d voters and %d learners", o.Nodes, o.Voters, o.Learners)
	}
	t.Logf("stats: %+v", res.Stats)
	if err != nil {
		var v *Violation
		if errors.As(err, &v) {
			t.Fatalf("%v", v)
		}
		t.Fatal(err)
	}
	t.Logf("liveness reached %.3fs after healing; %.1fs simulated", res.LivenessAt.Seconds(), res.Duration.Seconds())
}

// TestRunDeterministic checks that a run is a pure function of its seed,
// and that tracing it (as a replay does) does not change it.
func TestRunDeterministic(t *testing.T) {
	opts := Options{Seed: 42, Duration: 30 * time.Second, VaryCoreConfig: true}
	a, errA := Run(opts)
	b, errB := Run(opts)
	if (errA == nil) != (errB == nil) || a.Stats != b.Stats || a.LivenessAt != b.LivenessAt {
		t.Fatalf("two runs of seed 42 differ:\n%+v %v\n%+v %v", a.Stats, errA, b.Stats, errB)
	}
	lines := 0
	opts.Trace = func(string) { lines++ }
	traced, errT := Run(opts)
	if (errT == nil) != (errA == nil) || traced.Stats != a.Stats {
		t.Fatalf("tracing changed the run:\n%+v %v\n%+v %v", a.Stats, errA, traced.Stats, errT)
	}
	if uint64(lines) < a.Stats.Events {
		t.Fatalf("trace has %d lines for %d events", lines, a.Stats.Events)
	}
	if a.Stats.Events == 0 || a.Stats.Committed == 0 {
		t.Fatalf("run did nothing: %+v", a.Stats)
	}
}

// TestRandomizedSnapshotCoverage checks that the randomized runs exercise
// what snapshots add: installs, fetches superseded by a newer snapshot or
// term, and crashes at each point of a snapshot's save and install. A chaos
// driver that stopped reaching them would make TestRandomizedSafety prove
// less without failing.
func TestRandomizedSnapshotCoverage(t *testing.T) {
	var sum Stats
	covered := func() bool {
		return sum.Installs > 0 && sum.FetchesAborted > 0 && sum.SnapshotLoads > 0 && sum.CrashesSaving > 0 &&
			sum.CrashesFetching > 0 && sum.CrashesFetched > 0 && sum.CrashesInstalled > 0
	}
	seed := uint64(1)
	for ; seed <= 200 && !covered(); seed++ {
		res, err := Run(randomOptions(seed))
		if err != nil {
			t.Fatal(err)
		}
		s := &res.Stats
		sum.Installs += s.Installs
		sum.FetchesAborted += s.FetchesAborted
		sum.SnapshotLoads += s.SnapshotLoads
		sum.CrashesSaving += s.CrashesSaving
		sum.CrashesFetching += s.CrashesFetching
		sum.CrashesFetched += s.CrashesFetched
		sum.CrashesInstalled += s.CrashesInstalled
	}
	if !covered() {
		t.Fatalf("seeds 1..200 left some snapshot path unexercised: %+v", sum)
	}
	t.Logf("covered by seeds 1..%d: %d installs, %d fetches aborted, %d snapshot loads at restart, crashes while saving %d, fetching %d, fetched %d, installed %d",
		seed-1, sum.Installs, sum.FetchesAborted, sum.SnapshotLoads, sum.CrashesSaving, sum.CrashesFetching, sum.CrashesFetched, sum.CrashesInstalled)
}

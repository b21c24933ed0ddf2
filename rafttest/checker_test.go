package rafttest

import (
	"errors"
	"testing"
	"time"
)

// TestCheckerCatchesRuntimeBugs makes the simulated runtime misbehave on
// purpose and expects the checker to report a safety violation for some seed:
// a checker that never fires proves nothing. (Sending acknowledgements before
// persisting needs a precise schedule to matter; TestScenarioEarlyAckIsCaught
// builds it.)
func TestCheckerCatchesRuntimeBugs(t *testing.T) {
	bugs := []struct {
		name string
		bug  runtimeBug
		snap bool // with snapshots every few entries
	}{
		{"forget hard state on crash", bugForgetHardState, false},
		{"lose tail on crash", bugLoseTailOnCrash, false},
		{"lose tail on crash, with snapshots", bugLoseTailOnCrash, true},
		{"compact before the snapshot is durable", bugCompactBeforeDurable, true},
		{"install a stale snapshot", bugInstallStale, true},
		{"restart with Applied 0", bugRestartAppliedZero, true},
		{"install the wrong payload", bugWrongSnapshotPayload, true},
		{"lease reads on a slow clock", bugSlowClock, false},
	}
	for _, b := range bugs {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for seed := uint64(1); seed <= 100; seed++ {
				opts := Options{Seed: seed, Duration: 60 * time.Second, bug: b.bug}
				if b.snap {
					opts.SnapshotEvery, opts.CompactMargin = 3, 2
					opts.DupRate = 0.05
				}
				_, err := Run(opts)
				var v *Violation
				if errors.As(err, &v) && v.Invariant != "liveness" && v.Invariant != "message storm" {
					t.Logf("seed %d: %s: %s", seed, v.Invariant, v.Detail)
					return
				}
			}
			t.Fatalf("no safety violation found in 100 seeds")
		})
	}
}

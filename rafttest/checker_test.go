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
	}{
		{"forget hard state on crash", bugForgetHardState},
		{"lose tail on crash", bugLoseTailOnCrash},
	}
	for _, b := range bugs {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for seed := uint64(1); seed <= 100; seed++ {
				opts := Options{Seed: seed, Duration: 60 * time.Second, bug: b.bug}
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

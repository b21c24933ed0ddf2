package testutil

import (
	"testing"
	"time"
)

// pollInterval is how long WaitFor and CheckLeaks sleep between looks.
const pollInterval = 2 * time.Millisecond

// WaitFor polls cond until it holds, failing t if timeout passes first.
//
// It polls rather than waiting on a signal because the conditions tests wait
// for are driven by real timers and goroutines (tick loops, reconnect
// backoff, connection readers) that offer nothing to block on; waiting on the
// condition itself also beats a fixed sleep, which is either too short under
// load or needlessly long otherwise.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(pollInterval)
	}
}

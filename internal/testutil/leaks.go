package testutil

import (
	"runtime"
	"testing"
	"time"
)

// leakTimeout bounds how long CheckLeaks waits for goroutines to exit.
const leakTimeout = 5 * time.Second

// CheckLeaks fails t if, once every cleanup registered after it has run,
// more goroutines live than when it was called. Call it first in a test so
// that its cleanup runs last. Goroutines take a moment to exit after the
// code that stopped them returns, hence the polling. It counts every
// goroutine in the process, so it is unreliable in tests that run in
// parallel with others.
func CheckLeaks(t testing.TB) {
	t.Helper()
	checkLeaks(t, leakTimeout)
}

func checkLeaks(t testing.TB, timeout time.Duration) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(timeout)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), allStacks())
				return
			}
			time.Sleep(pollInterval)
		}
	})
}

// allStacks returns the stacks of every goroutine, growing the buffer until
// the dump fits.
func allStacks() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

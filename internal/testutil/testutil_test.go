package testutil

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raftpb"
)

// fakeTB records what a helper reports instead of failing the real test.
// Fatalf ends the calling goroutine, as testing.T's does.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	errs     []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

// runCleanups runs the registered cleanups last first, as testing does.
func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func (f *fakeTB) errors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errs...)
}

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	start := time.Now()
	WaitFor(t, 5*time.Second, "a timer", func() bool { return time.Since(start) > 10*time.Millisecond })
}

func TestWaitForFailsAfterTheTimeout(t *testing.T) {
	f := &fakeTB{}
	done := make(chan struct{})
	returned := false
	go func() {
		defer close(done)
		WaitFor(f, 20*time.Millisecond, "nothing", func() bool { return false })
		returned = true
	}()
	<-done
	if returned {
		t.Fatal("WaitFor returned after the timeout")
	}
	if errs := f.errors(); len(errs) != 1 || errs[0] != "timed out waiting for nothing" {
		t.Fatalf("errors: %q", errs)
	}
}

func TestCheckLeaksPassesWhenGoroutinesExit(t *testing.T) {
	f := &fakeTB{}
	checkLeaks(f, 5*time.Second)
	stop := make(chan struct{})
	go func() { <-stop }()
	f.Cleanup(func() { close(stop) })
	f.runCleanups()
	if errs := f.errors(); len(errs) != 0 {
		t.Fatalf("errors: %q", errs)
	}
}

func TestCheckLeaksReportsALeak(t *testing.T) {
	f := &fakeTB{}
	checkLeaks(f, 20*time.Millisecond)
	stop := make(chan struct{})
	defer close(stop)
	// Several, so that goroutines of earlier tests still on their way out
	// cannot hide the leak.
	for range 10 {
		go leakyGoroutine(stop)
	}
	f.runCleanups()
	errs := f.errors()
	if len(errs) != 1 || !strings.Contains(errs[0], "goroutines before") || !strings.Contains(errs[0], "leakyGoroutine") {
		t.Fatalf("errors: %q", errs)
	}
}

func leakyGoroutine(stop <-chan struct{}) { <-stop }

func TestRecorder(t *testing.T) {
	errUnknown := errors.New("unknown group")
	r := &Recorder{Reject: func(g uint64) error {
		if g == 99 {
			return errUnknown
		}
		return nil
	}}
	m := &raftpb.Message{Type: raftpb.MsgApp, From: 1, Index: 1}
	if err := r.HandleRaft(1, m); err != nil {
		t.Fatal(err)
	}
	m.Index = 2 // the recorder keeps its own copy of the message
	if err := r.HandleRaft(2, m); err != nil {
		t.Fatal(err)
	}
	if err := r.HandleRaft(99, m); !errors.Is(err, errUnknown) {
		t.Fatalf("HandleRaft on a rejected group: %v", err)
	}
	if n := r.Count(); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}
	if !r.Has(1, 1) || !r.Has(2, 2) || r.Has(1, 2) || r.Has(99, 2) {
		t.Fatal("Has reports the wrong messages")
	}
	all := r.All()
	if len(all) != 2 || all[0].Group != 1 || all[0].Msg.Index != 1 || all[1].Group != 2 || all[1].Msg.Index != 2 {
		t.Fatalf("All = %+v", all)
	}
	all[0].Group = 7
	if r.All()[0].Group != 1 {
		t.Fatal("All shares memory with the recorder")
	}
}

func TestRecorderConcurrentUse(t *testing.T) {
	var r Recorder
	var wg sync.WaitGroup
	for g := range uint64(4) {
		wg.Go(func() {
			for i := range uint64(100) {
				r.HandleRaft(g, &raftpb.Message{Index: i})
				r.Has(g, i)
				r.Count()
			}
		})
	}
	wg.Wait()
	if n := r.Count(); n != 400 {
		t.Fatalf("Count = %d, want 400", n)
	}
}

package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/transport"
)

// fakeCaller answers per address with a scripted function and records the
// order of calls.
type fakeCaller struct {
	mu    sync.Mutex
	calls []string
	reply map[string]func(n int) ([]byte, error) // n: calls to that address so far
	count map[string]int
}

func newFake() *fakeCaller {
	return &fakeCaller{reply: map[string]func(int) ([]byte, error){}, count: map[string]int{}}
}

func (f *fakeCaller) Call(ctx context.Context, addr, service string, group uint64, req []byte) ([]byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, addr)
	n := f.count[addr]
	f.count[addr]++
	fn := f.reply[addr]
	f.mu.Unlock()
	if fn == nil {
		return nil, fmt.Errorf("dial %s: %w", addr, transport.ErrUnreachable)
	}
	return fn(n)
}

func (f *fakeCaller) order() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func notLeader(hint string) error {
	return &transport.RemoteError{Code: uint16(raftkit.CodeNotLeader), Leader: hint, Msg: "not leader"}
}

func ok(string) func(int) ([]byte, error) {
	return func(int) ([]byte, error) { return []byte("ok"), nil }
}

func fastOpts() Options {
	return Options{BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond, Seed: 1}
}

// TestFollowsHintAndCaches: a not-leader hint sends the next try straight
// to the hinted host, which is then cached and tried first.
func TestFollowsHintAndCaches(t *testing.T) {
	f := newFake()
	f.reply["a"] = func(int) ([]byte, error) { return nil, notLeader("c") }
	f.reply["c"] = ok("c")
	rt := New(f, fastOpts())
	rt.SetPeers(1, []string{"a", "b", "c"})
	if _, err := rt.Invoke(context.Background(), 1, "s", nil, false); err != nil {
		t.Fatal(err)
	}
	if got := f.order(); fmt.Sprint(got) != "[a c]" {
		t.Fatalf("calls %v, want [a c]", got)
	}
	if rt.Leader(1) != "c" {
		t.Fatalf("cached leader %q", rt.Leader(1))
	}
	if _, err := rt.Invoke(context.Background(), 1, "s", nil, false); err != nil {
		t.Fatal(err)
	}
	if got := f.order(); fmt.Sprint(got) != "[a c c]" {
		t.Fatalf("calls %v: the cached leader was not tried first", got)
	}
}

// TestRetriesUnreachableAndBusy: unreachable hosts and busy answers are
// retried (another host, then after backoff) until one succeeds.
func TestRetriesUnreachableAndBusy(t *testing.T) {
	f := newFake()
	f.reply["b"] = func(n int) ([]byte, error) {
		if n < 3 {
			return nil, &transport.RemoteError{Code: uint16(raftkit.CodeBusy), Msg: "busy"}
		}
		return []byte("ok"), nil
	}
	rt := New(f, fastOpts())
	rt.SetPeers(1, []string{"a", "b"})
	resp, err := rt.Invoke(context.Background(), 1, "s", nil, false)
	if err != nil || string(resp) != "ok" {
		t.Fatalf("%q %v", resp, err)
	}
	if f.count["b"] != 4 {
		t.Fatalf("b called %d times, want 4", f.count["b"])
	}
}

// TestUnknownOutcomeNotRetried: an error that may mean the request took
// effect ends a non-idempotent call, but an idempotent one goes on.
func TestUnknownOutcomeNotRetried(t *testing.T) {
	broken := errors.New("connection reset after send")
	for _, idem := range []bool{false, true} {
		f := newFake()
		f.reply["a"] = func(n int) ([]byte, error) {
			if n == 0 {
				return nil, broken
			}
			return []byte("ok"), nil
		}
		rt := New(f, fastOpts())
		rt.SetPeers(1, []string{"a"})
		_, err := rt.Invoke(context.Background(), 1, "s", nil, Idempotent(idem))
		if idem && err != nil {
			t.Fatalf("idempotent call: %v", err)
		}
		if !idem && !errors.Is(err, broken) {
			t.Fatalf("non-idempotent call: %v, want the unknown-outcome error", err)
		}
	}
}

// TestGivesUpAtDeadline: with no host answering, Invoke returns when the
// context ends, naming the last error.
func TestGivesUpAtDeadline(t *testing.T) {
	f := newFake()
	rt := New(f, fastOpts())
	rt.SetPeers(1, []string{"a", "b"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := rt.Invoke(ctx, 1, "s", nil, true)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v, want deadline exceeded", err)
	}
	if len(f.order()) < 4 {
		t.Fatalf("only %d attempts before the deadline", len(f.order()))
	}
}

// TestDefinitiveErrorsReturned: an error from the application (invalid
// argument) is not retried.
func TestDefinitiveErrorsReturned(t *testing.T) {
	f := newFake()
	f.reply["a"] = func(int) ([]byte, error) {
		return nil, &transport.RemoteError{Code: uint16(raftkit.CodeInvalidArgument), Msg: "bad"}
	}
	rt := New(f, fastOpts())
	rt.SetPeers(1, []string{"a", "b"})
	_, err := rt.Invoke(context.Background(), 1, "s", nil, true)
	var re *transport.RemoteError
	if !errors.As(err, &re) || len(f.order()) != 1 {
		t.Fatalf("%v after %d calls", err, len(f.order()))
	}
}

package tcp_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/transport/tcp"
)

// checkLeaks fails t if, once every cleanup registered after it has run,
// more goroutines live than when it was called. Call it first in a test so
// that its cleanup runs last. Goroutines take a moment to exit after the
// code that stopped them returns, hence the polling.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// waitFor polls cond until it holds, failing t after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// delivered is one message a recorder received.
type delivered struct {
	group uint64
	m     raftpb.Message
}

// recorder is a transport.Handler that keeps what it receives; reject, when
// set, decides which messages to refuse.
type recorder struct {
	mu     sync.Mutex
	got    []delivered
	reject func(group uint64) error
}

func (r *recorder) HandleRaft(group uint64, m *raftpb.Message) error {
	if r.reject != nil {
		if err := r.reject(group); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.got = append(r.got, delivered{group, *m})
	r.mu.Unlock()
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *recorder) all() []delivered {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// has reports whether a message of group with index was received.
func (r *recorder) has(group, index uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.got, func(d delivered) bool { return d.group == group && d.m.Index == index })
}

// logSink is a slog.Handler that keeps records, so tests can check what was
// logged; it prints them when the test fails.
type logSink struct {
	mu      sync.Mutex
	records []string
}

func newLogSink(t *testing.T) *logSink {
	s := &logSink{}
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range s.all() {
				t.Log(r)
			}
		}
	})
	return s
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *logSink) WithGroup(string) slog.Handler            { return s }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	s.mu.Lock()
	s.records = append(s.records, b.String())
	s.mu.Unlock()
	return nil
}

func (s *logSink) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.records)
}

// find returns the first record containing every part.
func (s *logSink) find(parts ...string) (string, bool) {
	for _, r := range s.all() {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(r, p) }) {
			return r, true
		}
	}
	return "", false
}

// newTransport starts a transport on a free loopback port (unless opts says
// otherwise) and closes it when the test ends.
func newTransport(t *testing.T, opts tcp.Options, h *recorder) *tcp.Transport {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	tr, err := tcp.New(opts, h)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tr
}

// freeAddr returns a loopback address nothing listens on (at the moment).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func msg(from, index uint64, data string) *raftpb.Message {
	m := &raftpb.Message{Type: raftpb.MsgApp, From: from, To: 9, Term: 1, Index: index}
	if data != "" {
		m.Entries = []raftpb.Entry{{Term: 1, Index: index + 1, Data: []byte(data)}}
	}
	return m
}

// sendUntil sends m to addr repeatedly until delivered reports true; it is
// for moments when the link is expected to come back but backoff may still
// drop a few sends.
func sendUntil(t *testing.T, tr *tcp.Transport, addr string, group uint64, m *raftpb.Message, delivered func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !delivered() {
		if time.Now().After(deadline) {
			t.Fatalf("message to %s never delivered", addr)
		}
		tr.Send(addr, group, m)
		time.Sleep(5 * time.Millisecond)
	}
}

func sloggerFor(h slog.Handler) *slog.Logger { return slog.New(h) }

package tcp_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/transport/tcp"
)

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
func newTransport(t *testing.T, opts tcp.Options, h *testutil.Recorder) *tcp.Transport {
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

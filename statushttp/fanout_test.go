package statushttp

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/examples/counter"
	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/transport/tcp"
)

// stallCaller answers no call: each blocks until its context ends. It
// records every call's deadline and the most calls it held at once.
type stallCaller struct {
	mu        sync.Mutex
	deadlines []time.Time
	now, most int
}

func (c *stallCaller) Call(ctx context.Context, _, _ string, _ uint64, _ []byte) ([]byte, error) {
	d, _ := ctx.Deadline()
	c.mu.Lock()
	c.deadlines = append(c.deadlines, d)
	c.now++
	c.most = max(c.most, c.now)
	c.mu.Unlock()
	<-ctx.Done()
	c.mu.Lock()
	c.now--
	c.mu.Unlock()
	return nil, ctx.Err()
}

// loopbackAddr is a loopback address nothing listens on.
func loopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// manyGroups starts one host running groups 1..n, each with two more
// voters at peers, who never run.
func manyGroups(t *testing.T, n int, peers ...string) *raftkit.NodeHost {
	t.Helper()
	self := loopbackAddr(t)
	host, err := raftkit.NewNodeHost(raftkit.HostOptions{DataDir: t.TempDir(), Addr: self, TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	voters := []raftkit.Peer{{ID: 1, Addr: self}}
	for i, a := range peers {
		voters = append(voters, raftkit.Peer{ID: uint64(i + 2), Addr: a})
	}
	for g := range uint64(n) {
		if _, err := host.StartNode(raftkit.NodeOptions{GroupID: g + 1, NodeID: 1, Peers: voters,
			StateMachine: &counter.StateMachine{}}); err != nil {
			t.Fatal(err)
		}
	}
	return host
}

// Peers that never answer cost one PeerTimeout for the whole report, not
// one a group: every call of a report shares a single deadline, at most
// MaxPeerCalls are in flight, and the members not asked in time say so.
func TestStalledPeersShareOneDeadline(t *testing.T) {
	testutil.CheckLeaks(t)
	const groups, slots = 12, 4
	host := manyGroups(t, groups, loopbackAddr(t), loopbackAddr(t))
	caller := &stallCaller{}
	h := New(host, Options{Caller: caller, PeerTimeout: 100 * time.Millisecond, MaxPeerCalls: slots})
	rep := getReportFrom(t, h)

	if len(rep.Groups) != groups {
		t.Fatalf("%d groups in the report, want %d", len(rep.Groups), groups)
	}
	notAsked := 0
	for _, g := range rep.Groups {
		for _, m := range g.Members {
			switch {
			case m.ID == 1:
				if m.Status == nil || m.Status.NodeID != 1 {
					t.Fatalf("group %d: this host's member %+v", g.GroupID, m)
				}
			case m.Status != nil || !strings.Contains(m.Error, "deadline exceeded"):
				t.Fatalf("group %d: stalled member %+v", g.GroupID, m)
			case strings.HasPrefix(m.Error, "not asked"):
				notAsked++
			}
		}
	}
	caller.mu.Lock()
	defer caller.mu.Unlock()
	if len(caller.deadlines) == 0 || len(slices.Compact(caller.deadlines)) != 1 {
		t.Fatalf("calls had deadlines %v, want one shared by all", caller.deadlines)
	}
	if caller.most > slots {
		t.Fatalf("%d calls in flight at once, want at most %d", caller.most, slots)
	}
	if asked := len(caller.deadlines); asked+notAsked != 2*groups {
		t.Fatalf("%d asked and %d not asked, want %d members in all", asked, notAsked, 2*groups)
	}
}

// A peer that accepts the connection and never answers is reported with
// the error once the deadline passes, through the real TCP client.
func TestBlackholedPeerOverTCP(t *testing.T) {
	testutil.CheckLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		var conns []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
	}()
	defer func() { ln.Close(); <-accepted }()
	host := manyGroups(t, 2, ln.Addr().String())
	caller := tcp.NewClient(tcp.ClientOptions{DialTimeout: time.Second})
	defer caller.Close()
	h := New(host, Options{Caller: caller, PeerTimeout: 100 * time.Millisecond})
	rep := getReportFrom(t, h)
	for _, g := range rep.Groups {
		if m := g.Members[1]; m.ID != 2 || m.Status != nil || m.Error == "" {
			t.Fatalf("group %d: blackholed member %+v", g.GroupID, m)
		}
	}
}

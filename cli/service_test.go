package cli_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/cli"
	"github.com/raftkit/raftkit/client"
	"github.com/raftkit/raftkit/internal/adminrpc"
	"github.com/raftkit/raftkit/internal/adminrpc/admintest"
	"github.com/raftkit/raftkit/transport"
)

const group = 77

func fast() cli.Option {
	return cli.WithRouteOptions(client.Options{BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond, Seed: 1})
}

// newService returns a fake 3-member group led by leader and a Service
// that knows only its addresses.
func newService(t *testing.T, leader uint64, plain bool) (*admintest.Cluster, *cli.Service) {
	c := admintest.New(t, group, 3, plain)
	c.SetLeader(leader)
	addrs := []string{admintest.Addr(1), admintest.Addr(2), admintest.Addr(3)}
	return c, cli.New(c.Net, addrs, group, fast())
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func peer(id uint64) raftkit.Peer { return raftkit.Peer{ID: id, Addr: admintest.Addr(id)} }

// TestMembershipRoundTrip: every membership operation reaches the leader
// (member 2, found through member 1's not-leader hint) and changes the
// group as asked.
func TestMembershipRoundTrip(t *testing.T) {
	c, s := newService(t, 2, false)
	steps := []struct {
		name             string
		do               func() error
		voters, learners []uint64
	}{
		{"add-peer", func() error { return s.AddPeer(ctx(t), peer(4)) }, []uint64{1, 2, 3, 4}, nil},
		{"remove-peer", func() error { return s.RemovePeer(ctx(t), 3) }, []uint64{1, 2, 4}, nil},
		{"add-learners", func() error { return s.AddLearners(ctx(t), []raftkit.Peer{peer(5), peer(6)}) }, []uint64{1, 2, 4}, []uint64{5, 6}},
		{"promote-learner", func() error { return s.PromoteLearner(ctx(t), 5) }, []uint64{1, 2, 4, 5}, []uint64{6}},
		{"remove-learners", func() error { return s.RemoveLearners(ctx(t), []uint64{6}) }, []uint64{1, 2, 4, 5}, nil},
		{"change-peers", func() error { return s.ChangePeers(ctx(t), []raftkit.Peer{peer(1), peer(2), peer(3)}) }, []uint64{1, 2, 3}, nil},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		v, l := c.Members()
		if !reflect.DeepEqual(v, st.voters) || !reflect.DeepEqual(l, st.learners) {
			t.Fatalf("after %s: voters %v learners %v, want %v %v", st.name, v, l, st.voters, st.learners)
		}
	}
	calls := c.Calls()
	if calls[0] != "1 add-peer 4@127.0.0.1:8084" || calls[1] != "2 add-peer 4@127.0.0.1:8084" {
		t.Fatalf("calls %q: want member 1 refusing, then the hinted leader 2", calls[:2])
	}
	for _, call := range calls[1:] {
		if !strings.HasPrefix(call, "2 ") {
			t.Fatalf("call %q did not go to the cached leader", call)
		}
	}
}

// TestTransferAndGetLeader: transfer with and without a target, and the
// leader seen afterwards.
func TestTransferAndGetLeader(t *testing.T) {
	c, s := newService(t, 1, false)
	got, err := s.TransferLeader(ctx(t), 3)
	if err != nil || got != peer(3) || c.Leader() != 3 {
		t.Fatalf("transfer to 3: %v %v, leader %d", got, err, c.Leader())
	}
	got, err = s.TransferLeader(ctx(t), 0)
	if err != nil || got != peer(1) {
		t.Fatalf("transfer to the best: %v %v", got, err)
	}
	l, err := s.GetLeader(ctx(t))
	if err != nil || l != peer(1) {
		t.Fatalf("get-leader: %v %v", l, err)
	}
}

// TestListPeers: voters first, then learners, each with liveness and
// match from the leader, even when the first member asked is a follower.
func TestListPeers(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			c, s := newService(t, 3, plain)
			if err := s.AddLearners(ctx(t), []raftkit.Peer{peer(4)}); err != nil {
				t.Fatal(err)
			}
			c.SetDead(2)
			leader, ps, err := s.ListPeers(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			want := []cli.PeerState{
				{ID: 1, Addr: admintest.Addr(1), Alive: true, Match: 99},
				{ID: 2, Addr: admintest.Addr(2), Alive: false, Match: 98},
				{ID: 3, Addr: admintest.Addr(3), Alive: true, Match: 97},
				{ID: 4, Addr: admintest.Addr(4), Learner: true, Alive: true, Match: 96},
			}
			if leader != peer(3) || !reflect.DeepEqual(ps, want) {
				t.Fatalf("leader %v peers %+v\nwant %+v", leader, ps, want)
			}
			calls := c.Calls()
			last := calls[len(calls)-1]
			// The add-learners made member 3 the cached leader, so the
			// query goes there; plain members could answer from anywhere.
			if !strings.HasPrefix(last, "3 ") && !plain {
				t.Fatalf("list-peers answered by %q", last)
			}
		})
	}
}

// TestLeaderOnlyQueriesFindLeader: with a cold cache, get-leader and
// list-peers sent to a follower come back as not-leader hints and reach
// the leader.
func TestLeaderOnlyQueriesFindLeader(t *testing.T) {
	_, s := newService(t, 3, false)
	if _, _, err := s.ListPeers(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if l, err := s.GetLeader(ctx(t)); err != nil || l.ID != 3 {
		t.Fatalf("get-leader: %v %v", l, err)
	}
}

// TestNoLeader: without a known leader, get-leader fails as try-again once
// the context ends (checking members) or at once (plain members).
func TestNoLeader(t *testing.T) {
	for _, plain := range []bool{false, true} {
		c, s := newService(t, 1, plain)
		c.SetLeader(0)
		short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := s.GetLeader(short)
		cancel()
		if cli.CodeOf(err) != raftkit.CodeTryAgain && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("plain=%v: %v, want try-again or the deadline", plain, err)
		}
		if plain && !errors.Is(err, raftkit.ErrTryAgain) {
			t.Fatalf("plain: %v, want raftkit.ErrTryAgain", err)
		}
	}
}

// TestSnapshotAndReset: both go to the named server; snapshot without an
// address goes to the leader.
func TestSnapshotAndReset(t *testing.T) {
	c, s := newService(t, 2, false)
	idx, term, err := s.Snapshot(ctx(t), admintest.Addr(3))
	if err != nil || idx != 97 || term == 0 {
		t.Fatalf("snapshot at 3: %d %d %v", idx, term, err)
	}
	idx, _, err = s.Snapshot(ctx(t), "")
	if err != nil || idx != 98 {
		t.Fatalf("snapshot at the leader: %d %v", idx, err)
	}
	survivors := []raftkit.Peer{peer(1)}
	if err := s.ResetPeers(ctx(t), admintest.Addr(1), survivors); err != nil {
		t.Fatal(err)
	}
	calls := c.Calls()
	if last := calls[len(calls)-1]; last != "1 reset-peers [1@127.0.0.1:8081]" {
		t.Fatalf("last call %q", last)
	}
	if v, _ := c.Members(); !reflect.DeepEqual(v, []uint64{1}) {
		t.Fatalf("voters after reset: %v", v)
	}
}

// TestErrorsComeBack: a server's refusal keeps its code and message; an
// unreachable named server fails at once; injected errors pass through.
func TestErrorsComeBack(t *testing.T) {
	_, s := newService(t, 1, false)
	err := s.AddPeer(ctx(t), peer(2))
	if cli.CodeOf(err) != raftkit.CodeInvalidArgument || !strings.Contains(err.Error(), "already a voter") {
		t.Fatalf("adding a voter again: %v", err)
	}
	var re *transport.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("%v is not a RemoteError", err)
	}
	if _, _, err := s.Snapshot(ctx(t), "127.0.0.1:9999"); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("snapshot of a missing server: %v", err)
	}
	c, s := newService(t, 1, false)
	c.Fail(adminrpc.OpSnapshot, &raftkit.Error{Code: raftkit.CodeStorage, Msg: "disk full"})
	if _, _, err := s.Snapshot(ctx(t), admintest.Addr(1)); cli.CodeOf(err) != raftkit.CodeStorage {
		t.Fatalf("injected storage error came back as %v", err)
	}
}

// TestBusyRetried: busy answers are retried until the change goes through.
func TestBusyRetried(t *testing.T) {
	c, s := newService(t, 1, false)
	c.Busy(3)
	if err := s.RemovePeer(ctx(t), 3); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, call := range c.Calls() {
		if strings.HasPrefix(call, "1 ") {
			n++
		}
	}
	if n != 4 {
		t.Fatalf("%d calls at the leader, want 3 busy and 1 done: %q", n, c.Calls())
	}
}

// TestBadInputRejectedLocally: requests that cannot be valid never leave
// the client, and fail with raftkit.ErrInvalid.
func TestBadInputRejectedLocally(t *testing.T) {
	c, s := newService(t, 1, false)
	for name, do := range map[string]func() error{
		"zero id":          func() error { return s.RemovePeer(ctx(t), 0) },
		"empty addr":       func() error { return s.AddPeer(ctx(t), raftkit.Peer{ID: 4}) },
		"no voters":        func() error { return s.ChangePeers(ctx(t), nil) },
		"duplicate ids":    func() error { return s.RemoveLearners(ctx(t), []uint64{4, 4}) },
		"reset no address": func() error { return s.ResetPeers(ctx(t), "", []raftkit.Peer{peer(1)}) },
		"duplicate addr": func() error {
			return s.AddLearners(ctx(t), []raftkit.Peer{peer(4), {ID: 5, Addr: admintest.Addr(4)}})
		},
	} {
		if err := do(); !errors.Is(err, raftkit.ErrInvalid) {
			t.Errorf("%s: %v, want raftkit.ErrInvalid", name, err)
		}
	}
	if calls := c.Calls(); len(calls) != 0 {
		t.Fatalf("bad requests were sent: %q", calls)
	}
}

// TestStatus reads a member's status service.
func TestStatus(t *testing.T) {
	_, s := newService(t, 2, false)
	st, err := s.Status(ctx(t), admintest.Addr(2))
	if err != nil || st.NodeID != 2 || st.Role != raftkit.RoleLeader.String() {
		t.Fatalf("%+v %v", st, err)
	}
	if _, err := s.Status(ctx(t), "127.0.0.1:1"); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("status of a missing server: %v", err)
	}
}

// TestWireCodes pins the codes adminrpc repeats (it cannot import raftkit)
// to raftkit's: a bad request, a follower's redirect, no leader and an
// unserved group, each sent raw.
func TestWireCodes(t *testing.T) {
	c := admintest.New(t, group, 2, false)
	c.SetLeader(2)
	raw := func(g uint64, body string) uint16 {
		_, err := c.Net.Call(ctx(t), admintest.Addr(1), adminrpc.Service, g, []byte(body))
		var re *transport.RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("%s: %v, want a RemoteError", body, err)
		}
		return re.Code
	}
	if got := raw(group, `{"op":"bogus"}`); got != uint16(raftkit.CodeInvalidArgument) {
		t.Errorf("bad request: code %d", got)
	}
	if got := raw(group, `{"op":"get-leader"}`); got != uint16(raftkit.CodeNotLeader) {
		t.Errorf("follower: code %d", got)
	}
	c.SetLeader(0)
	if got := raw(group, `{"op":"list-peers"}`); got != uint16(raftkit.CodeTryAgain) {
		t.Errorf("no leader: code %d", got)
	}
	h := adminrpc.NewHandler(func(uint64) (adminrpc.Admin, error) { return nil, nil })
	_, err := h(context.Background(), 1, []byte(`{"op":"get-leader"}`))
	var we transport.WireError
	if !errors.As(err, &we) {
		t.Fatal(err)
	}
	if code, _ := we.WireError(); code != uint16(raftkit.CodeUnknownGroup) {
		t.Errorf("unknown group: code %d", code)
	}
}

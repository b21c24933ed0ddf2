package adminrpc

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/transport"
)

// recorder is an Admin that records each call as a string and fails with
// err when set.
type recorder struct {
	mu       sync.Mutex
	calls    []string
	deadline time.Duration // remaining time of the last call's ctx
	err      error
	leader   Peer
	members  []PeerState
	leading  *bool // nil: no LeaderChecker behaviour
}

func (f *recorder) record(ctx context.Context, format string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
	if d, ok := ctx.Deadline(); ok {
		f.deadline = time.Until(d)
	}
	return f.err
}

func (f *recorder) AddPeer(ctx context.Context, p Peer) error { return f.record(ctx, "add %v", p) }
func (f *recorder) RemovePeer(ctx context.Context, id uint64) error {
	return f.record(ctx, "remove %d", id)
}
func (f *recorder) ChangePeers(ctx context.Context, v []Peer) error {
	return f.record(ctx, "change %v", v)
}
func (f *recorder) AddLearners(ctx context.Context, ps []Peer) error {
	return f.record(ctx, "learners+ %v", ps)
}
func (f *recorder) RemoveLearners(ctx context.Context, ids []uint64) error {
	return f.record(ctx, "learners- %v", ids)
}
func (f *recorder) PromoteLearner(ctx context.Context, id uint64) error {
	return f.record(ctx, "promote %d", id)
}
func (f *recorder) TransferLeadership(ctx context.Context, id uint64) error {
	return f.record(ctx, "transfer %d", id)
}
func (f *recorder) Snapshot(ctx context.Context) (uint64, uint64, error) {
	return 42, 3, f.record(ctx, "snapshot")
}
func (f *recorder) ResetPeers(ctx context.Context, v []Peer) error {
	return f.record(ctx, "reset %v", v)
}
func (f *recorder) Peers() (Peer, []PeerState) { return f.leader, f.members }

// checking adds LeaderChecker to a recorder.
type checking struct{ *recorder }

func (c checking) IsLeader() bool { return *c.leading }

func newRecorder() *recorder {
	return &recorder{
		leader:  Peer{ID: 1, Addr: "a:1"},
		members: []PeerState{{ID: 1, Addr: "a:1", Role: RoleVoter, Alive: true, Match: 5}},
	}
}

func call(t *testing.T, h transport.ServiceHandler, group uint64, r Request) (*Response, error) {
	t.Helper()
	b, err := EncodeRequest(&r)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h(context.Background(), group, b)
	if err != nil {
		return nil, err
	}
	resp, err := DecodeResponse(out)
	if err != nil {
		t.Fatalf("handler answered a bad response: %v", err)
	}
	return resp, nil
}

// TestHandlerDispatch: each operation reaches the matching Admin method
// with its arguments, and the answer carries the node's membership.
func TestHandlerDispatch(t *testing.T) {
	for _, tc := range []struct {
		r    Request
		want string
	}{
		{Request{Op: OpAddPeer, Peers: []Peer{{4, "d:1"}}}, "add 4@d:1"},
		{Request{Op: OpRemovePeer, IDs: []uint64{2}}, "remove 2"},
		{Request{Op: OpChangePeers, Peers: []Peer{{1, "a:1"}, {4, "d:1"}}}, "change [1@a:1 4@d:1]"},
		{Request{Op: OpAddLearners, Peers: []Peer{{5, "e:1"}}}, "learners+ [5@e:1]"},
		{Request{Op: OpRemoveLearners, IDs: []uint64{5, 6}}, "learners- [5 6]"},
		{Request{Op: OpPromoteLearner, IDs: []uint64{5}}, "promote 5"},
		{Request{Op: OpTransferLeader}, "transfer 0"},
		{Request{Op: OpTransferLeader, IDs: []uint64{3}}, "transfer 3"},
		{Request{Op: OpSnapshot}, "snapshot"},
		{Request{Op: OpResetPeers, Peers: []Peer{{1, "a:1"}}}, "reset [1@a:1]"},
		{Request{Op: OpListPeers}, ""},
		{Request{Op: OpGetLeader}, ""},
	} {
		t.Run(string(tc.r.Op), func(t *testing.T) {
			f := newRecorder()
			var gotGroup uint64
			h := NewHandler(func(g uint64) (Admin, error) { gotGroup = g; return f, nil })
			resp, err := call(t, h, 9, tc.r)
			if err != nil {
				t.Fatal(err)
			}
			if gotGroup != 9 {
				t.Fatalf("looked up group %d, want 9", gotGroup)
			}
			want := []string{tc.want}
			if tc.want == "" {
				want = nil
			}
			if !reflect.DeepEqual(f.calls, want) {
				t.Fatalf("calls %q, want %q", f.calls, want)
			}
			if !resp.OK || resp.Leader != f.leader || !reflect.DeepEqual(resp.Peers, f.members) || resp.Message == "" {
				t.Fatalf("response %+v", resp)
			}
			if tc.r.Op == OpSnapshot && (resp.SnapshotIndex != 42 || resp.SnapshotTerm != 3) {
				t.Fatalf("snapshot %d/%d, want 42/3", resp.SnapshotIndex, resp.SnapshotTerm)
			}
		})
	}
}

// TestHandlerTimeout: the request's timeout, or the default, bounds the
// Admin's context.
func TestHandlerTimeout(t *testing.T) {
	for _, tc := range []struct {
		ms   int64
		want time.Duration
	}{{0, DefaultTimeout}, {2000, 2 * time.Second}, {MaxTimeout.Milliseconds(), MaxTimeout}} {
		f := newRecorder()
		h := NewHandler(func(uint64) (Admin, error) { return f, nil })
		if _, err := call(t, h, 1, Request{Op: OpSnapshot, TimeoutMillis: tc.ms}); err != nil {
			t.Fatal(err)
		}
		if f.deadline <= 0 || f.deadline > tc.want {
			t.Fatalf("timeout_ms %d: the Admin saw %v left, want at most %v", tc.ms, f.deadline, tc.want)
		}
	}
}

// wireErr is an error with a code and leader hint, as raftkit's are.
type wireErr struct{ code uint16 }

func (e *wireErr) Error() string               { return "wire error" }
func (e *wireErr) WireError() (uint16, string) { return e.code, "b:1" }

// TestHandlerErrors: errors of the Admin and of find come back unchanged;
// bad requests and missing groups are refused with their codes.
func TestHandlerErrors(t *testing.T) {
	adminErr := &wireErr{code: 1}
	f := newRecorder()
	f.err = adminErr
	h := NewHandler(func(uint64) (Admin, error) { return f, nil })
	if _, err := call(t, h, 1, Request{Op: OpRemovePeer, IDs: []uint64{2}}); err != adminErr {
		t.Fatalf("admin error came back as %v", err)
	}

	findErr := errors.New("no such group")
	h = NewHandler(func(uint64) (Admin, error) { return nil, findErr })
	if _, err := call(t, h, 1, Request{Op: OpGetLeader}); err != findErr {
		t.Fatalf("find error came back as %v", err)
	}

	h = NewHandler(func(uint64) (Admin, error) { return nil, nil })
	_, err := call(t, h, 7, Request{Op: OpGetLeader})
	var we transport.WireError
	if !errors.As(err, &we) || !strings.Contains(err.Error(), "group 7") {
		t.Fatalf("nil admin: %v", err)
	}
	if code, _ := we.WireError(); code != codeUnknownGroup {
		t.Fatalf("nil admin: code %d", code)
	}

	h = NewHandler(func(uint64) (Admin, error) { t.Fatal("find called for a bad request"); return nil, nil })
	if _, err := h(context.Background(), 1, []byte(`{"op":"nope"}`)); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad request: %v", err)
	}
}

// TestHandlerLeaderOnly: with a LeaderChecker, list-peers and get-leader
// from a non-leader redirect to the leader, or ask to try again when none
// is known; membership operations are left to the Admin to refuse.
func TestHandlerLeaderOnly(t *testing.T) {
	for _, tc := range []struct {
		name     string
		leading  bool
		leader   Peer
		wantCode uint16
		wantHint string
	}{
		{"leader answers", true, Peer{1, "a:1"}, 0, ""},
		{"follower redirects", false, Peer{2, "b:1"}, codeNotLeader, "b:1"},
		{"no leader", false, Peer{}, codeTryAgain, ""},
	} {
		for _, op := range []Op{OpListPeers, OpGetLeader} {
			t.Run(tc.name+"/"+string(op), func(t *testing.T) {
				f := newRecorder()
				f.leader, f.leading = tc.leader, &tc.leading
				h := NewHandler(func(uint64) (Admin, error) { return checking{f}, nil })
				_, err := call(t, h, 1, Request{Op: op})
				if tc.wantCode == 0 {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				var we transport.WireError
				if !errors.As(err, &we) {
					t.Fatalf("%v, want a wire error", err)
				}
				if code, hint := we.WireError(); code != tc.wantCode || hint != tc.wantHint {
					t.Fatalf("code %d hint %q, want %d %q", code, hint, tc.wantCode, tc.wantHint)
				}
			})
		}
	}
}

package adminrpc

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/raftkit/raftkit/transport"
)

func peers(n int) []Peer {
	ps := make([]Peer, n)
	for i := range ps {
		ps[i] = Peer{ID: uint64(i + 1), Addr: fmt.Sprintf("10.0.0.%d:%d", i%250, 8000+i)}
	}
	return ps
}

func ids(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

// TestRequestRoundTrip: every operation with the arguments it takes
// survives encoding and decoding unchanged.
func TestRequestRoundTrip(t *testing.T) {
	for _, r := range []Request{
		{Op: OpAddPeer, Peers: peers(1), TimeoutMillis: 1500},
		{Op: OpRemovePeer, IDs: []uint64{7}},
		{Op: OpChangePeers, Peers: peers(3)},
		{Op: OpAddLearners, Peers: peers(2)},
		{Op: OpRemoveLearners, IDs: []uint64{4, 5}},
		{Op: OpPromoteLearner, IDs: []uint64{4}},
		{Op: OpTransferLeader},
		{Op: OpTransferLeader, IDs: []uint64{2}},
		{Op: OpSnapshot, TimeoutMillis: MaxTimeout.Milliseconds()},
		{Op: OpResetPeers, Peers: peers(MaxPeers)},
		{Op: OpListPeers},
		{Op: OpGetLeader},
	} {
		t.Run(string(r.Op), func(t *testing.T) {
			b, err := EncodeRequest(&r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeRequest(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, r) {
				t.Fatalf("decoded %+v, want %+v", *got, r)
			}
		})
	}
}

// TestRequestRejected: malformed requests fail to decode with an error
// that matches ErrBadRequest, says what is wrong, and keeps raftkit's
// invalid-argument code across the transport.
func TestRequestRejected(t *testing.T) {
	huge := `{"op":"get-leader","peers":[` + strings.Repeat(" ", MaxMessageBytes) + `]}`
	for _, tc := range []struct {
		name, json, want string
	}{
		{"empty", ``, "decoding"},
		{"null", `null`, "unknown op"},
		{"not an object", `[1]`, "decoding"},
		{"unknown op", `{"op":"drop-table"}`, `unknown op "drop-table"`},
		{"unknown field", `{"op":"get-leader","force":true}`, "unknown field"},
		{"trailing data", `{"op":"get-leader"} {}`, "data after"},
		{"too large", huge, "more than"},
		{"negative id", `{"op":"remove-peer","ids":[-1]}`, "decoding"},
		{"zero id", `{"op":"remove-peer","ids":[0]}`, "node ID 0"},
		{"duplicate ids", `{"op":"remove-learners","ids":[3,3]}`, "listed twice"},
		{"missing id", `{"op":"promote-learner"}`, "exactly one"},
		{"two ids", `{"op":"remove-peer","ids":[1,2]}`, "exactly one"},
		{"transfer to two", `{"op":"transfer-leader","ids":[1,2]}`, "at most one"},
		{"ids not taken", `{"op":"snapshot","ids":[1]}`, "takes no IDs"},
		{"peers not taken", `{"op":"remove-peer","ids":[1],"peers":[{"id":1,"addr":"a:1"}]}`, "takes no peers"},
		{"no peers", `{"op":"change-peers","peers":[]}`, "at least one"},
		{"zero peer id", `{"op":"add-peer","peers":[{"id":0,"addr":"a:1"}]}`, "node ID 0"},
		{"empty addr", `{"op":"add-peer","peers":[{"id":4}]}`, "empty address"},
		{"space in addr", `{"op":"add-peer","peers":[{"id":4,"addr":"a b:1"}]}`, "space"},
		{"long addr", `{"op":"add-peer","peers":[{"id":4,"addr":"` + strings.Repeat("a", MaxAddrLen+1) + `"}]}`, "more than"},
		{"duplicate peer id", `{"op":"reset-peers","peers":[{"id":1,"addr":"a:1"},{"id":1,"addr":"b:1"}]}`, "listed twice"},
		{"duplicate addr", `{"op":"reset-peers","peers":[{"id":1,"addr":"a:1"},{"id":2,"addr":"a:1"}]}`, "listed twice"},
		{"negative timeout", `{"op":"snapshot","timeout_ms":-1}`, "out of range"},
		{"huge timeout", `{"op":"snapshot","timeout_ms":86400001}`, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeRequest([]byte(tc.json))
			if err == nil {
				t.Fatalf("decoded %+v, want an error", r)
			}
			if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q: want ErrBadRequest mentioning %q", err, tc.want)
			}
			var we transport.WireError
			if !errors.As(err, &we) {
				t.Fatal("not a WireError")
			}
			if code, _ := we.WireError(); code != codeInvalidArgument {
				t.Fatalf("wire code %d, want %d", code, codeInvalidArgument)
			}
		})
	}
}

// TestTooManyPeers: the limits apply to peers and IDs alike, and
// EncodeRequest refuses what DecodeRequest would.
func TestTooManyPeers(t *testing.T) {
	for _, r := range []Request{
		{Op: OpChangePeers, Peers: peers(MaxPeers + 1)},
		{Op: OpRemoveLearners, IDs: ids(MaxPeers + 1)},
		{Op: OpAddPeer},
	} {
		if _, err := EncodeRequest(&r); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s with %d peers, %d IDs: %v, want ErrBadRequest", r.Op, len(r.Peers), len(r.IDs), err)
		}
	}
}

// TestTimeout: 0 selects the default; otherwise milliseconds.
func TestTimeout(t *testing.T) {
	if d := (&Request{}).Timeout(); d != DefaultTimeout {
		t.Fatalf("default %v", d)
	}
	if d := (&Request{TimeoutMillis: 250}).Timeout(); d.Milliseconds() != 250 {
		t.Fatalf("250ms gave %v", d)
	}
}

// TestResponseRoundTrip: a full response survives encoding and decoding.
func TestResponseRoundTrip(t *testing.T) {
	r := Response{
		OK: true, Leader: Peer{ID: 1, Addr: "a:1"},
		Peers: []PeerState{
			{ID: 1, Addr: "a:1", Role: RoleVoter, Alive: true, Match: 10},
			{ID: 4, Addr: "d:1", Role: RoleLearner, Match: 3},
		},
		SnapshotIndex: 9, SnapshotTerm: 2, Message: "done",
	}
	b, err := EncodeResponse(&r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, r) {
		t.Fatalf("decoded %+v, want %+v", *got, r)
	}
}

// TestResponseRejected: malformed responses fail with ErrBadResponse.
func TestResponseRejected(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"garbage", `{`, "decoding"},
		{"unknown field", `{"ok":true,"extra":1}`, "unknown field"},
		{"bad role", `{"peers":[{"id":1,"addr":"a:1","role":"king"}]}`, `role "king"`},
		{"zero id", `{"peers":[{"id":0,"addr":"a:1","role":"voter"}]}`, "node ID 0"},
		{"duplicate", `{"peers":[{"id":1,"role":"voter"},{"id":1,"role":"learner"}]}`, "listed twice"},
		{"leader without id", `{"leader":{"id":0,"addr":"a:1"}}`, "without a node ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeResponse([]byte(tc.json))
			if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v: want ErrBadResponse mentioning %q", err, tc.want)
			}
		})
	}
}

func TestPeerString(t *testing.T) {
	if s := (Peer{ID: 4, Addr: "127.0.0.1:8084"}).String(); s != "4@127.0.0.1:8084" {
		t.Fatal(s)
	}
}

package adminrpc

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzDecodeRequest: decoding never panics, fails only with ErrBadRequest,
// and whatever it accepts encodes and decodes back to the same request.
func FuzzDecodeRequest(f *testing.F) {
	for _, r := range []Request{
		{Op: OpAddPeer, Peers: []Peer{{4, "127.0.0.1:8084"}}, TimeoutMillis: 100},
		{Op: OpRemoveLearners, IDs: []uint64{1, 2}},
		{Op: OpTransferLeader},
		{Op: OpResetPeers, Peers: []Peer{{1, "a:1"}, {2, "b:2"}}},
	} {
		b, err := EncodeRequest(&r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"op":"add-peer","peers":[{"id":1,"addr":"\u00e9:1"}],"OP":"x"}`))
	f.Add([]byte(`{"op":"snapshot","timeout_ms":1e3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRequest(data)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v does not match ErrBadRequest", err)
			}
			return
		}
		b, err := EncodeRequest(r)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", data, err)
		}
		again, err := DecodeRequest(b)
		if err != nil {
			t.Fatalf("re-decoding %q: %v", b, err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip changed %+v into %+v", r, again)
		}
	})
}

// FuzzDecodeResponse: as FuzzDecodeRequest, for responses.
func FuzzDecodeResponse(f *testing.F) {
	good := Response{OK: true, Leader: Peer{1, "a:1"}, Peers: []PeerState{
		{ID: 1, Addr: "a:1", Role: RoleVoter, Alive: true, Match: 3},
		{ID: 2, Addr: "b:1", Role: RoleLearner},
	}, SnapshotIndex: 5, SnapshotTerm: 1, Message: "ok"}
	b, err := EncodeResponse(&good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"ok":false}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeResponse(data)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v does not match ErrBadResponse", err)
			}
			return
		}
		b, err := EncodeResponse(r)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", data, err)
		}
		again, err := DecodeResponse(b)
		if err != nil {
			t.Fatalf("re-decoding %q: %v", b, err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip changed %+v into %+v", r, again)
		}
	})
}

package raftpb

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzUnmarshalMessage checks that Unmarshal never panics and that whatever it
// accepts survives a re-encoding: the encoding is canonical, so re-marshalling
// reproduces the input exactly, and decoding that yields an equal message.
func FuzzUnmarshalMessage(f *testing.F) {
	for _, tc := range sampleMessages() {
		if tc.m.Size() <= 4096 {
			f.Add(tc.m.MarshalAppend(nil))
		}
	}
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0})
	f.Add(cat(header(flagSnapshot), []byte{0, 1, 1, 0xff, 0xff, 0xff, 0x7f}))

	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		var m Message
		if err := m.Unmarshal(data); err != nil {
			if !errors.Is(err, ErrCorruptMessage) {
				t.Fatalf("error does not wrap ErrCorruptMessage: %v", err)
			}
			if !reflect.DeepEqual(m, Message{}) {
				t.Fatalf("failed Unmarshal modified the message: %+v", m)
			}
			return
		}
		if !bytes.Equal(data, orig) {
			t.Fatalf("Unmarshal modified its input")
		}
		enc := m.MarshalAppend(nil)
		if len(enc) != m.Size() {
			t.Fatalf("len(MarshalAppend) = %d, Size() = %d", len(enc), m.Size())
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding differs from the accepted input:\n got %x\nwant %x", enc, data)
		}
		var m2 Message
		if err := m2.Unmarshal(enc); err != nil {
			t.Fatalf("Unmarshal of a re-encoding: %v", err)
		}
		if a, b := normalize(m), normalize(m2); !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", b, a)
		}
	})
}

// FuzzUnmarshalHardState checks that HardState.Unmarshal never panics and
// round-trips whatever it accepts.
func FuzzUnmarshalHardState(f *testing.F) {
	f.Add((&HardState{Term: 1, Vote: 2, Commit: 3}).MarshalAppend(nil))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		var hs HardState
		if err := hs.Unmarshal(data); err != nil {
			if !errors.Is(err, ErrCorruptHardState) {
				t.Fatalf("error does not wrap ErrCorruptHardState: %v", err)
			}
			return
		}
		if enc := hs.MarshalAppend(nil); !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding %x differs from input %x", enc, data)
		}
	})
}

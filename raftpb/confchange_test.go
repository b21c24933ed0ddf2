package raftpb

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// sampleConfChanges covers every kind, empty and nil lists, edge values and
// addresses of every length class.
func sampleConfChanges() map[string]ConfChange {
	max := uint64(math.MaxUint64)
	return map[string]ConfChange{
		"empty":       {},
		"simple":      {Kind: ConfChangeSimple, Voters: []uint64{1, 2, 3}, Learners: []uint64{4}},
		"enter joint": {Kind: ConfChangeEnterJoint, Voters: []uint64{1, 2, 4}, Addrs: []PeerAddr{{4, "10.0.0.4:7000"}}},
		"leave joint": {Kind: ConfChangeLeaveJoint},
		"edge ids":    {Voters: []uint64{127, 128, 16383, 16384, max}, Learners: []uint64{max - 1}},
		"empty addr":  {Kind: ConfChangeEnterJoint, Voters: []uint64{1}, Addrs: []PeerAddr{{1, ""}, {0, "x"}}},
		"long addr":   {Voters: []uint64{9}, Addrs: []PeerAddr{{9, strings.Repeat("a", 300)}}},
		"empty lists": {Voters: []uint64{}, Learners: []uint64{}, Addrs: []PeerAddr{}},
	}
}

// canonical is cc as Unmarshal returns it: empty lists nil.
func canonical(cc ConfChange) ConfChange {
	if len(cc.Voters) == 0 {
		cc.Voters = nil
	}
	if len(cc.Learners) == 0 {
		cc.Learners = nil
	}
	if len(cc.Addrs) == 0 {
		cc.Addrs = nil
	}
	return cc
}

func TestConfChangeRoundTrip(t *testing.T) {
	for name, cc := range sampleConfChanges() {
		t.Run(name, func(t *testing.T) {
			prefix := []byte("prefix")
			enc := cc.MarshalAppend(bytes.Clone(prefix))
			if !bytes.HasPrefix(enc, prefix) {
				t.Fatalf("MarshalAppend clobbered its prefix: %x", enc)
			}
			enc = enc[len(prefix):]
			if len(enc) != cc.Size() {
				t.Fatalf("len(MarshalAppend) = %d, Size() = %d", len(enc), cc.Size())
			}
			var got ConfChange
			if err := got.Unmarshal(enc); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if want := canonical(cc); !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
			}
			if again := got.MarshalAppend(nil); !bytes.Equal(again, enc) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, enc)
			}
		})
	}
}

func TestConfChangeMarshalAppendAllocations(t *testing.T) {
	cc := sampleConfChanges()["enter joint"]
	buf := make([]byte, 0, cc.Size())
	if n := testing.AllocsPerRun(100, func() { buf = cc.MarshalAppend(buf[:0]) }); n != 0 {
		t.Fatalf("MarshalAppend into a large enough buffer allocated %v times", n)
	}
}

func TestConfChangeUnmarshalCorrupt(t *testing.T) {
	valid := (&ConfChange{Kind: ConfChangeEnterJoint, Voters: []uint64{1, 2}, Learners: []uint64{3},
		Addrs: []PeerAddr{{1, "a:1"}}}).MarshalAppend(nil)
	tests := []struct {
		name string
		data []byte
		want string // a fragment of the error
	}{
		{"empty", nil, "version: truncated"},
		{"bad version", []byte{2, 0, 0, 0, 0}, "unsupported version 2"},
		{"no kind", []byte{1}, "kind: truncated"},
		{"unknown kind", []byte{1, 3, 0, 0, 0}, "unknown kind 3"},
		{"truncated voter", []byte{1, 0, 1, 0x80}, "voter: truncated varint"},
		{"voter count too large", []byte{1, 0, 0xff, 0xff, 0x03, 1}, "voters count 65535"},
		{"non-minimal count", []byte{1, 0, 0x80, 0x00, 0, 0}, "non-minimal varint"},
		{"overflowing voter", append([]byte{1, 0, 1}, bytes.Repeat([]byte{0xff}, 11)...), "overflows 64 bits"},
		{"no learners", []byte{1, 0, 0}, "learners count: truncated"},
		{"no addrs", []byte{1, 0, 0, 0}, "addrs count: truncated"},
		{"addr count too large", []byte{1, 0, 0, 0, 2, 1, 0}, "addrs count 2"},
		{"addr too long", []byte{1, 0, 0, 0, 1, 1, 5, 'a'}, "addr length 5"},
		{"trailing", append(bytes.Clone(valid), 0), "1 trailing bytes"},
		{"truncated", valid[:len(valid)-1], "addr length 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cc := ConfChange{Kind: ConfChangeLeaveJoint, Voters: []uint64{42}}
			before := cc
			err := cc.Unmarshal(tc.data)
			if !errors.Is(err, ErrCorruptConfChange) {
				t.Fatalf("err = %v, want ErrCorruptConfChange", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to mention %q", err, tc.want)
			}
			if !reflect.DeepEqual(cc, before) {
				t.Fatalf("failed Unmarshal modified the value: %+v", cc)
			}
		})
	}
}

// TestConfChangeUnmarshalDoesNotAlias: the decoded addresses are copies, so
// the runtime may keep them after reusing the entry's buffer.
func TestConfChangeUnmarshalDoesNotAlias(t *testing.T) {
	data := (&ConfChange{Voters: []uint64{1}, Addrs: []PeerAddr{{1, "host:1"}}}).MarshalAppend(nil)
	var cc ConfChange
	if err := cc.Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'X'
	}
	if cc.Addrs[0].Addr != "host:1" {
		t.Fatalf("decoded address changed with its buffer: %q", cc.Addrs[0].Addr)
	}
}

func TestConfChangeKindString(t *testing.T) {
	for k, want := range map[ConfChangeKind]string{
		ConfChangeSimple: "Simple", ConfChangeEnterJoint: "EnterJoint", ConfChangeLeaveJoint: "LeaveJoint", 9: "ConfChangeKind(9)",
	} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(k), got, want)
		}
	}
}

// FuzzUnmarshalConfChange checks that Unmarshal never panics, fails only
// with ErrCorruptConfChange and without touching its target, and that what
// it accepts re-encodes to the same bytes.
func FuzzUnmarshalConfChange(f *testing.F) {
	for _, cc := range sampleConfChanges() {
		f.Add(cc.MarshalAppend(nil))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{1, 1, 0, 0, 1, 0, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		var cc ConfChange
		if err := cc.Unmarshal(data); err != nil {
			if !errors.Is(err, ErrCorruptConfChange) {
				t.Fatalf("error does not wrap ErrCorruptConfChange: %v", err)
			}
			if !reflect.DeepEqual(cc, ConfChange{}) {
				t.Fatalf("failed Unmarshal modified the value: %+v", cc)
			}
			return
		}
		if !bytes.Equal(data, orig) {
			t.Fatal("Unmarshal modified its input")
		}
		enc := cc.MarshalAppend(nil)
		if len(enc) != cc.Size() {
			t.Fatalf("len(MarshalAppend) = %d, Size() = %d", len(enc), cc.Size())
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding differs from the accepted input:\n got %x\nwant %x", enc, data)
		}
	})
}

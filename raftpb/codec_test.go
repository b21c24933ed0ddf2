package raftpb

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// normalize returns a deep copy of m in which empty slices are nil, the form
// Unmarshal produces.
func normalize(m Message) Message {
	if len(m.Entries) == 0 {
		m.Entries = nil
	} else {
		ents := make([]Entry, len(m.Entries))
		copy(ents, m.Entries)
		for i := range ents {
			if len(ents[i].Data) == 0 {
				ents[i].Data = nil
			}
		}
		m.Entries = ents
	}
	if m.Snapshot != nil {
		s := *m.Snapshot
		nilIfEmpty := func(l []uint64) []uint64 {
			if len(l) == 0 {
				return nil
			}
			return l
		}
		s.ConfState.Voters = nilIfEmpty(s.ConfState.Voters)
		s.ConfState.VotersOutgoing = nilIfEmpty(s.ConfState.VotersOutgoing)
		s.ConfState.Learners = nilIfEmpty(s.ConfState.Learners)
		m.Snapshot = &s
	}
	return m
}

func entries(n, size int) []Entry {
	ents := make([]Entry, n)
	for i := range ents {
		ents[i] = Entry{Term: 7, Index: uint64(1000 + i), Type: EntryNormal, Data: bytes.Repeat([]byte{byte(i)}, size)}
	}
	return ents
}

type namedMessage struct {
	name string
	m    Message
}

// sampleMessages covers every message type, the edge values of every field,
// and the empty, nil, large and joint-configuration cases.
func sampleMessages() []namedMessage {
	var out []namedMessage
	for t := MessageType(0); t < NumMessageTypes; t++ {
		out = append(out, namedMessage{t.String(), Message{Type: t, From: 1, To: 2, Term: 3, LogTerm: 2, Index: 10, Commit: 9}})
	}
	max := uint64(math.MaxUint64)
	out = append(out,
		namedMessage{"zero", Message{}},
		namedMessage{"unknown type", Message{Type: 200, From: 1, To: 2}},
		namedMessage{"max fields", Message{Type: 255, From: max, To: max, Term: max, LogTerm: max, Index: max,
			Commit: max, RejectHint: max, Reject: true, Transfer: true, Context: max,
			Entries: []Entry{{Term: max, Index: max, Type: 255, Data: []byte{0xff}}}}},
		namedMessage{"varint boundaries", Message{From: 127, To: 128, Term: 16383, LogTerm: 16384, Index: 1 << 63, Commit: 1<<63 - 1}},
		namedMessage{"reject", Message{Type: MsgAppResp, From: 2, To: 1, Term: 5, Index: 40, LogTerm: 3, RejectHint: 31, Reject: true}},
		namedMessage{"transfer vote", Message{Type: MsgVote, From: 3, To: 1, Term: 9, LogTerm: 8, Index: 77, Transfer: true}},
		namedMessage{"heartbeat round", Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 4, Commit: 9, Context: 1}},
		namedMessage{"heartbeat ack", Message{Type: MsgHeartbeatResp, From: 2, To: 1, Term: 4, Context: 1 << 40}},
		namedMessage{"read index", Message{Type: MsgReadIndex, From: 3, To: 1, Term: 4, Context: 127}},
		namedMessage{"read index resp", Message{Type: MsgReadIndexResp, From: 1, To: 3, Term: 4, Index: 88, Context: 128}},
		namedMessage{"read index reject", Message{Type: MsgReadIndexResp, From: 1, To: 3, Term: 4, Reject: true, Context: 128}},
		namedMessage{"context with everything", Message{Type: MsgApp, From: 1, To: 2, Term: 3, Context: 5, Transfer: true,
			Entries: entries(2, 3), Snapshot: &SnapshotMeta{Index: 3, Term: 2, ConfState: ConfState{Voters: []uint64{1}}}}},
		namedMessage{"empty entries", Message{Type: MsgApp, From: 1, To: 2, Term: 3, Entries: []Entry{}}},
		namedMessage{"nil and empty data", Message{Type: MsgApp, From: 1, To: 2, Term: 3, LogTerm: 3, Index: 4, Commit: 4,
			Entries: []Entry{{Term: 3, Index: 5, Type: EntryNoop}, {Term: 3, Index: 6, Data: []byte{}}, {Term: 3, Index: 7, Type: EntryConfChange, Data: []byte("cc")}}}},
		namedMessage{"unknown entry type", Message{Type: MsgApp, Entries: []Entry{{Term: 1, Index: 1, Type: 99, Data: []byte("x")}}}},
		namedMessage{"64x128", Message{Type: MsgApp, From: 1, To: 2, Term: 7, LogTerm: 7, Index: 999, Commit: 990, Entries: entries(64, 128)}},
		namedMessage{"big data", Message{Type: MsgApp, From: 1, To: 2, Term: 7, Entries: entries(3, 1<<20)}},
		namedMessage{"snapshot joint", Message{Type: MsgSnap, From: 1, To: 4, Term: 12, Snapshot: &SnapshotMeta{Index: 5000, Term: 11,
			ConfState: ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{1, 2, 5}, Learners: []uint64{4, max}}}}},
		namedMessage{"snapshot empty conf", Message{Type: MsgSnap, From: 1, To: 4, Term: 12, Snapshot: &SnapshotMeta{Index: 1, Term: 1,
			ConfState: ConfState{Voters: []uint64{}, Learners: nil}}}},
		namedMessage{"snapshot zero", Message{Type: MsgSnap, Snapshot: &SnapshotMeta{}}},
		namedMessage{"snapshot with entries", Message{Type: MsgApp, Entries: entries(2, 3), Snapshot: &SnapshotMeta{Index: 3, Term: 2,
			ConfState: ConfState{Voters: []uint64{1}}}}},
	)
	return out
}

func TestMessageRoundTrip(t *testing.T) {
	for _, tc := range sampleMessages() {
		t.Run(tc.name, func(t *testing.T) {
			enc := tc.m.MarshalAppend(nil)
			if got, want := len(enc), tc.m.Size(); got != want {
				t.Fatalf("len(encoding) = %d, Size() = %d", got, want)
			}
			prefix := []byte("prefix")
			withPrefix := tc.m.MarshalAppend(prefix[:len(prefix):len(prefix)])
			if !bytes.HasPrefix(withPrefix, prefix) || !bytes.Equal(withPrefix[len(prefix):], enc) {
				t.Fatalf("MarshalAppend onto a prefix did not append the same encoding")
			}
			var got Message
			if err := got.Unmarshal(enc); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if want := normalize(tc.m); !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
			}
			if again := got.MarshalAppend(nil); !bytes.Equal(again, enc) {
				t.Fatalf("re-encoding differs from the original encoding")
			}
		})
	}
}

func TestMessageUnmarshalReplacesFields(t *testing.T) {
	m := Message{Type: MsgSnap, Reject: true, Entries: entries(2, 1), Snapshot: &SnapshotMeta{Index: 1}}
	enc := (&Message{Type: MsgHeartbeat, Commit: 3}).MarshalAppend(nil)
	if err := m.Unmarshal(enc); err != nil {
		t.Fatal(err)
	}
	if want := (Message{Type: MsgHeartbeat, Commit: 3}); !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v, want %+v", m, want)
	}
}

func TestMessageUnmarshalAliasesData(t *testing.T) {
	src := Message{Type: MsgApp, Entries: []Entry{{Index: 1, Data: []byte("aaaa")}, {Index: 2, Data: []byte("bbbb")}}}
	enc := src.MarshalAppend(nil)
	var m Message
	if err := m.Unmarshal(enc); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(enc, []byte("aaaa"))
	enc[i] = 'z'
	if string(m.Entries[0].Data) != "zaaa" {
		t.Fatalf("Entry.Data does not alias the input: %q", m.Entries[0].Data)
	}
	if c := cap(m.Entries[0].Data); c != 4 {
		t.Fatalf("cap(Entry.Data) = %d, want 4 (clipped)", c)
	}
	_ = append(m.Entries[0].Data, "XXXX"...)
	if string(m.Entries[1].Data) != "bbbb" {
		t.Fatalf("appending to one entry's data overwrote the next: %q", m.Entries[1].Data)
	}
}

func TestMessageTruncated(t *testing.T) {
	for _, tc := range sampleMessages() {
		enc := tc.m.MarshalAppend(nil)
		if len(enc) > 1<<14 {
			continue // the small samples already cover every field
		}
		t.Run(tc.name, func(t *testing.T) {
			sentinel := Message{Type: MsgTimeoutNow, From: 42}
			for n := range len(enc) {
				m := sentinel
				err := m.Unmarshal(enc[:n:n])
				if !errors.Is(err, ErrCorruptMessage) {
					t.Fatalf("prefix of %d/%d bytes: err = %v, want ErrCorruptMessage", n, len(enc), err)
				}
				if !reflect.DeepEqual(m, sentinel) {
					t.Fatalf("prefix of %d bytes: failed Unmarshal modified the message", n)
				}
			}
			m := sentinel
			err := m.Unmarshal(append(enc[:len(enc):len(enc)], 0))
			if !errors.Is(err, ErrCorruptMessage) || !strings.Contains(err.Error(), "trailing") {
				t.Fatalf("trailing byte: err = %v", err)
			}
		})
	}
}

// header returns the fixed part of an encoding: version 1, type MsgApp, the
// given flags, and seven zero uvarints (From .. RejectHint).
func header(flags byte) []byte {
	return []byte{1, byte(MsgApp), flags, 0, 0, 0, 0, 0, 0, 0}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestMessageCorrupt(t *testing.T) {
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f} // 2^56-1
	good := (&Message{Type: MsgApp, Entries: []Entry{{Term: 1, Index: 1, Data: []byte("x")}}}).MarshalAppend(nil)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "version: truncated"},
		{"version 0", cat([]byte{0}, good[1:]), "unsupported version 0"},
		{"version 2", cat([]byte{2}, good[1:]), "unsupported version 2"},
		{"version 255", cat([]byte{255}, good[1:]), "unsupported version 255"},
		{"unknown flag", cat(header(0x10), []byte{0}), "unknown flag bits 0x10"},
		{"zero context", cat(header(flagContext), []byte{0, 0}), "zero context at offset 10"},
		{"non-minimal context", cat(header(flagContext), []byte{0x81, 0x00, 0}), "context: non-minimal varint at offset 10"},
		{"context flag, truncated", header(flagContext), "context: truncated varint at offset 10"},
		{"high flag", cat(header(0x80|flagReject), []byte{0}), "unknown flag bits 0x80"},
		{"non-minimal varint", []byte{1, 0, 0, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0}, "from: non-minimal varint at offset 3"},
		{"overflowing varint", cat([]byte{1, 0, 0}, bytes.Repeat([]byte{0xff}, 10), []byte{1}), "from: varint overflows"},
		{"huge entry count", cat(header(0), huge), "entry count 72057594037927935 at offset 10 exceeds"},
		{"max entry count", cat(header(0), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), "entry count 18446744073709551615"},
		{"entry count one too many", cat(header(0), []byte{3}, bytes.Repeat([]byte{0}, 3*minEntrySize-1)), "entry count 3"},
		{"huge data length", cat(header(0), []byte{1, 1, 1, 0}, huge, []byte("abc")), "entry 0 data length 72057594037927935"},
		{"data length one too many", cat(header(0), []byte{1, 1, 1, 0, 4}, []byte("abc")), "entry 0 data length 4 at offset 14 exceeds the 3 bytes left"},
		{"huge voters count", cat(header(flagSnapshot), []byte{0, 1, 1}, huge), "voters count 72057594037927935"},
		{"huge learners count", cat(header(flagSnapshot), []byte{0, 1, 1, 0, 0}, huge), "learners count 72057594037927935"},
		{"snapshot flag without meta", header(flagSnapshot | flagReject)[:10:10], "entry count: truncated"},
		{"trailing bytes", cat(good, []byte{0, 0}), "2 trailing bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			err := m.Unmarshal(tc.data)
			if !errors.Is(err, ErrCorruptMessage) {
				t.Fatalf("err = %v, want ErrCorruptMessage", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestMessageHugeCountsBounded checks that counts claiming far more elements
// than the input could hold are rejected before anything is allocated for them.
func TestMessageHugeCountsBounded(t *testing.T) {
	maxCount := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	for name, data := range map[string][]byte{
		"entries":  cat(header(0), maxCount, bytes.Repeat([]byte{0}, 64)),
		"data":     cat(header(0), []byte{1, 1, 1, 0}, maxCount, bytes.Repeat([]byte{0}, 64)),
		"voters":   cat(header(flagSnapshot), []byte{0, 1, 1}, maxCount),
		"outgoing": cat(header(flagSnapshot), []byte{0, 1, 1, 0}, maxCount),
		"learners": cat(header(flagSnapshot), []byte{0, 1, 1, 0, 0}, maxCount),
	} {
		t.Run(name, func(t *testing.T) {
			var m Message
			const runs = 100
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			allocs := testing.AllocsPerRun(runs, func() {
				if err := m.Unmarshal(data); !errors.Is(err, ErrCorruptMessage) {
					t.Fatalf("err = %v", err)
				}
			})
			runtime.ReadMemStats(&after)
			// Only the error value is allocated: a handful of small objects.
			// The count is exact only without the race detector (see
			// raceEnabled); the byte bound below holds either way.
			if !raceEnabled && allocs > 8 {
				t.Errorf("%v allocations per rejected Unmarshal", allocs)
			}
			if perRun := (after.TotalAlloc - before.TotalAlloc) / (runs + 1); perRun > 2048 {
				t.Errorf("%d bytes allocated per rejected Unmarshal", perRun)
			}
		})
	}
}

func TestMessageAllocs(t *testing.T) {
	for _, tc := range sampleMessages() {
		m := tc.m
		buf := make([]byte, 0, m.Size())
		if n := testing.AllocsPerRun(10, func() { buf = m.MarshalAppend(buf[:0]) }); n != 0 {
			t.Errorf("%s: MarshalAppend into a presized buffer: %v allocations, want 0", tc.name, n)
		}
	}

	// Unmarshal allocates only the Entries array, and for a snapshot the meta
	// and its non-empty lists.
	app := Message{Type: MsgApp, Entries: entries(64, 128)}
	snap := Message{Type: MsgSnap, Snapshot: &SnapshotMeta{Index: 9, ConfState: ConfState{
		Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{1, 2, 4}, Learners: []uint64{5}}}}
	for _, tc := range []struct {
		m    Message
		want float64
	}{{app, 1}, {snap, 4}, {Message{Type: MsgHeartbeat}, 0}} {
		enc := tc.m.MarshalAppend(nil)
		var m Message
		if n := testing.AllocsPerRun(10, func() {
			if err := m.Unmarshal(enc); err != nil {
				t.Fatal(err)
			}
		}); n != tc.want {
			t.Errorf("Unmarshal of %v: %v allocations, want %v", tc.m, n, tc.want)
		}
	}
}

func TestHardStateCodec(t *testing.T) {
	for _, hs := range []HardState{{}, {Term: 1, Vote: 2, Commit: 3}, {Term: math.MaxUint64, Vote: math.MaxUint64, Commit: math.MaxUint64}} {
		enc := hs.MarshalAppend([]byte("p"))
		if len(enc) != 1+HardStateSize || enc[0] != 'p' {
			t.Fatalf("%+v: encoding %x", hs, enc)
		}
		var got HardState
		if err := got.Unmarshal(enc[1:]); err != nil || got != hs {
			t.Fatalf("round trip of %+v: got %+v, %v", hs, got, err)
		}
	}
	enc := (&HardState{Term: 0x0102030405060708, Vote: 9, Commit: 10}).MarshalAppend(nil)
	if want := []byte{8, 7, 6, 5, 4, 3, 2, 1, 9, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0}; !bytes.Equal(enc, want) {
		t.Fatalf("encoding %x, want %x", enc, want)
	}
	for _, n := range []int{0, 1, 23, 25, 48} {
		hs := HardState{Term: 5}
		err := hs.Unmarshal(make([]byte, n))
		if !errors.Is(err, ErrCorruptHardState) || hs != (HardState{Term: 5}) {
			t.Fatalf("length %d: err = %v, hs = %+v", n, err, hs)
		}
	}
	hs := HardState{Term: 1, Vote: 2, Commit: 3}
	buf := make([]byte, 0, HardStateSize)
	if n := testing.AllocsPerRun(10, func() {
		buf = hs.MarshalAppend(buf[:0])
		if err := hs.Unmarshal(buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("HardState codec: %v allocations, want 0", n)
	}
}

func benchMessage() Message {
	return Message{Type: MsgApp, From: 1, To: 2, Term: 7, LogTerm: 7, Index: 999, Commit: 990, Entries: entries(64, 128)}
}

func BenchmarkMessageMarshal(b *testing.B) {
	m := benchMessage()
	buf := make([]byte, 0, m.Size())
	b.SetBytes(int64(m.Size()))
	b.ReportAllocs()
	for b.Loop() {
		buf = m.MarshalAppend(buf[:0])
	}
}

func BenchmarkMessageMarshalFresh(b *testing.B) {
	m := benchMessage()
	b.SetBytes(int64(m.Size()))
	b.ReportAllocs()
	for b.Loop() {
		_ = m.MarshalAppend(nil)
	}
}

func BenchmarkMessageUnmarshal(b *testing.B) {
	src := benchMessage()
	enc := src.MarshalAppend(nil)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	var m Message
	for b.Loop() {
		if err := m.Unmarshal(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleMessage_MarshalAppend() {
	m := Message{Type: MsgApp, From: 1, To: 2, Term: 3, LogTerm: 3, Index: 4, Commit: 4,
		Entries: []Entry{{Term: 3, Index: 5, Data: []byte("put x=1")}}}
	buf := make([]byte, 0, m.Size())
	buf = m.MarshalAppend(buf)
	fmt.Printf("%d bytes\n", len(buf))

	var got Message
	if err := got.Unmarshal(buf); err != nil {
		panic(err)
	}
	fmt.Println(got, got.Entries[0])
	// Output:
	// 22 bytes
	// MsgApp 1->2 t3 prev=3/4 commit=4 ents=1 3/5 Normal "put x=1"
}

package frame_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/frame"
)

func sampleMessage() *raftpb.Message {
	return &raftpb.Message{
		Type: raftpb.MsgApp, From: 1, To: 2, Term: 7, LogTerm: 6, Index: 41, Commit: 40,
		Entries: []raftpb.Entry{
			{Term: 7, Index: 42, Type: raftpb.EntryNormal, Data: []byte("hello")},
			{Term: 7, Index: 43, Type: raftpb.EntryNormal, Data: bytes.Repeat([]byte{0xab}, 300)},
		},
	}
}

func readOne(t *testing.T, b []byte) frame.Frame {
	t.Helper()
	r := frame.NewReader(bytes.NewReader(b), 0)
	f, err := r.Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("second Next: %v, want io.EOF", err)
	}
	return f
}

func TestRoundTripRaft(t *testing.T) {
	m := sampleMessage()
	b := frame.AppendRaft([]byte("prefix"), 9, m)
	if !bytes.HasPrefix(b, []byte("prefix")) {
		t.Fatalf("AppendRaft overwrote the buffer's prefix")
	}
	if got, want := len(b)-len("prefix"), frame.RaftFrameSize(m); got != want {
		t.Fatalf("frame length %d, RaftFrameSize %d", got, want)
	}
	f := readOne(t, b[len("prefix"):])
	if f.Type != frame.TypeRaft || f.Group != 9 {
		t.Fatalf("got %s group %d, want Raft group 9", f.Type, f.Group)
	}
	var got raftpb.Message
	if err := frame.DecodeRaft(f.Payload, &got); err != nil {
		t.Fatalf("DecodeRaft: %v", err)
	}
	if !reflect.DeepEqual(&got, m) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, *m)
	}
}

func TestRoundTripHello(t *testing.T) {
	for _, h := range []frame.Hello{
		{Addr: "10.0.0.1:7000", Version: frame.Version},
		{Addr: "", Version: frame.Version},
		{Addr: strings.Repeat("x", 200), Version: 255},
	} {
		f := readOne(t, frame.AppendHello(nil, h))
		if f.Type != frame.TypeHello || f.Group != 0 {
			t.Fatalf("got %s group %d, want Hello group 0", f.Type, f.Group)
		}
		got, err := frame.DecodeHello(f.Payload)
		if err != nil || got != h {
			t.Fatalf("DecodeHello = %+v, %v; want %+v", got, err, h)
		}
	}
}

func TestRoundTripRequest(t *testing.T) {
	for _, req := range []frame.Request{
		{Seq: 1, Service: "kv.get", Body: []byte("key")},
		{Seq: 1<<64 - 1, Service: "s"},
		{Seq: 0, Service: strings.Repeat("svc", 100), Body: bytes.Repeat([]byte{0}, 1000)},
	} {
		f := readOne(t, frame.AppendRequest(nil, 3, &req))
		if f.Type != frame.TypeRequest || f.Group != 3 {
			t.Fatalf("got %s group %d, want Request group 3", f.Type, f.Group)
		}
		if len(f.Payload) != req.Size() {
			t.Fatalf("payload %d bytes, Size %d", len(f.Payload), req.Size())
		}
		got, err := frame.DecodeRequest(f.Payload)
		if err != nil || !reflect.DeepEqual(got, req) {
			t.Fatalf("DecodeRequest = %+v, %v; want %+v", got, err, req)
		}
	}
}

func TestRoundTripResponse(t *testing.T) {
	for _, resp := range []frame.Response{
		{Seq: 5, Body: []byte("value")},
		{Seq: 6},
		{Seq: 7, Status: frame.StatusError, Msg: "boom"},
		{Seq: 8, Status: frame.StatusError},
		{Seq: 9, Status: frame.StatusError, Code: 1, Leader: "10.0.0.2:7000", Msg: "not leader"},
		{Seq: 10, Status: frame.StatusUnknownService, Msg: "kv.put"},
	} {
		f := readOne(t, frame.AppendResponse(nil, 4, &resp))
		if f.Type != frame.TypeResponse || f.Group != 4 {
			t.Fatalf("got %s group %d, want Response group 4", f.Type, f.Group)
		}
		if len(f.Payload) != resp.Size() {
			t.Fatalf("payload %d bytes, Size %d", len(f.Payload), resp.Size())
		}
		got, err := frame.DecodeResponse(f.Payload)
		if err != nil || !reflect.DeepEqual(got, resp) {
			t.Fatalf("DecodeResponse = %+v, %v; want %+v", got, err, resp)
		}
	}
}

type wireErr struct{}

func (wireErr) Error() string                      { return "not leader" }
func (wireErr) WireError() (code uint16, l string) { return 1, "n2:7000" }

func TestResponseErrors(t *testing.T) {
	ok := frame.Response{Seq: 1}
	if err := ok.Err(); err != nil {
		t.Fatalf("success Err() = %v", err)
	}

	wrapped := fmt.Errorf("apply: %w", wireErr{})
	r := frame.ErrorResponse(2, wrapped)
	var re *transport.RemoteError
	if err := r.Err(); !errors.As(err, &re) {
		t.Fatalf("Err() = %v, want a *RemoteError", err)
	}
	if re.Code != 1 || re.Leader != "n2:7000" || re.Msg != wrapped.Error() {
		t.Fatalf("RemoteError = %+v", *re)
	}

	// An error without a code is still an error, though its code is zero.
	r = frame.ErrorResponse(3, errors.New("plain"))
	if err := r.Err(); !errors.As(err, &re) || re.Code != 0 || re.Msg != "plain" {
		t.Fatalf("Err() = %v", err)
	}

	r = frame.Response{Seq: 4, Status: frame.StatusUnknownService, Msg: "kv"}
	if err := r.Err(); !errors.Is(err, transport.ErrUnknownService) {
		t.Fatalf("Err() = %v, want ErrUnknownService", err)
	}
}

// header builds a frame header by hand, so tests can lie in it.
func header(typ byte, group uint64, n uint32, sum uint32) []byte {
	h := make([]byte, frame.HeaderSize)
	h[0] = typ
	binary.BigEndian.PutUint64(h[1:], group)
	binary.BigEndian.PutUint32(h[9:], n)
	binary.BigEndian.PutUint32(h[13:], sum)
	return h
}

func rawFrame(typ byte, payload []byte) []byte {
	sum := crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli))
	return append(header(typ, 1, uint32(len(payload)), sum), payload...)
}

func TestReaderCorruption(t *testing.T) {
	good := frame.AppendRaft(nil, 1, sampleMessage())
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	badSum := bytes.Clone(good)
	badSum[frame.HeaderSize-1] ^= 1

	for _, tc := range []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"empty stream", nil, 0, io.EOF},
		{"short header", good[:5], 0, io.ErrUnexpectedEOF},
		{"short payload", good[:len(good)-1], 0, io.ErrUnexpectedEOF},
		{"type zero", rawFrame(0, nil), 0, transport.ErrCorruptFrame},
		{"unknown type", rawFrame(5, []byte("x")), 0, transport.ErrCorruptFrame},
		{"payload bit flip", flipped, 0, transport.ErrCorruptFrame},
		{"checksum bit flip", badSum, 0, transport.ErrCorruptFrame},
		{"over budget", good, len(good) - frame.HeaderSize - 1, transport.ErrFrameTooLarge},
		{"max length claim", header(2, 1, 1<<32-1, 0), 0, transport.ErrFrameTooLarge},
		{"huge claim, short data", header(2, 1, 1<<30, 0), frame.MaxPayload, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := frame.NewReader(bytes.NewReader(tc.in), tc.max).Next()
			if !errors.Is(err, tc.want) {
				t.Fatalf("Next() error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecodeCorruption(t *testing.T) {
	seq := []byte{0, 0, 0, 0, 0, 0, 0, 1}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name string
		typ  frame.Type
		p    []byte
	}{
		{"hello empty", frame.TypeHello, nil},
		{"hello no version", frame.TypeHello, []byte{0}},
		{"hello trailing", frame.TypeHello, []byte{0, 1, 2}},
		{"hello long address", frame.TypeHello, []byte{5, 'a', 1}},
		{"hello non-minimal varint", frame.TypeHello, []byte{0x80, 0, 1}},
		{"hello overflowing varint", frame.TypeHello, bytes.Repeat([]byte{0xff}, 11)},
		{"raft empty", frame.TypeRaft, nil},
		{"raft garbage", frame.TypeRaft, []byte{1, 2, 3}},
		{"request short seq", frame.TypeRequest, []byte{0, 0, 0}},
		{"request no service", frame.TypeRequest, seq},
		{"request empty service", frame.TypeRequest, cat(seq, []byte{0})},
		{"request service too long", frame.TypeRequest, cat(seq, []byte{9, 'a'})},
		{"response short", frame.TypeResponse, cat(seq, []byte{0, 0})},
		{"response unknown status", frame.TypeResponse, cat(seq, []byte{3, 0, 0, 0, 0})},
		{"response ok with code", frame.TypeResponse, cat(seq, []byte{0, 0, 1, 0, 0})},
		{"response ok with message", frame.TypeResponse, cat(seq, []byte{0, 0, 0, 0, 1, 'x'})},
		{"response error with body", frame.TypeResponse, cat(seq, []byte{1, 0, 0, 0, 0, 'b'})},
		{"response unknown service with code", frame.TypeResponse, cat(seq, []byte{2, 0, 7, 0, 0})},
		{"response truncated leader", frame.TypeResponse, cat(seq, []byte{1, 0, 0, 4, 'a'})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := decode(tc.typ, tc.p); !errors.Is(err, transport.ErrCorruptFrame) {
				t.Fatalf("decode error = %v, want ErrCorruptFrame", err)
			}
		})
	}
}

// decode runs the decoder of typ on p and returns its error.
func decode(typ frame.Type, p []byte) error {
	var err error
	switch typ {
	case frame.TypeHello:
		_, err = frame.DecodeHello(p)
	case frame.TypeRaft:
		err = frame.DecodeRaft(p, new(raftpb.Message))
	case frame.TypeRequest:
		_, err = frame.DecodeRequest(p)
	case frame.TypeResponse:
		_, err = frame.DecodeResponse(p)
	default:
		err = fmt.Errorf("no decoder for %s", typ)
	}
	return err
}

// TestReaderFreshPayloads checks that each payload is a slice of its own,
// since the raft handler keeps entry data that aliases it.
func TestReaderFreshPayloads(t *testing.T) {
	var b []byte
	for i := range 3 {
		b = frame.AppendRequest(b, 1, &frame.Request{Seq: uint64(i), Service: "s", Body: []byte("body")})
	}
	r := frame.NewReader(bytes.NewReader(b), 0)
	var payloads [][]byte
	for range 3 {
		f, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, f.Payload)
	}
	want := bytes.Clone(payloads[0])
	payloads[1][0] ^= 0xff
	payloads[2][0] ^= 0xff
	if !bytes.Equal(payloads[0], want) || cap(payloads[0]) != len(payloads[0]) {
		t.Fatalf("payloads share memory or have spare capacity")
	}
}

// TestReaderLargePayload crosses the Reader's incremental growth with a
// payload several times its first chunk, delivered a few bytes at a time.
func TestReaderLargePayload(t *testing.T) {
	body := make([]byte, 3<<20+17)
	for i := range body {
		body[i] = byte(i * 7)
	}
	b := frame.AppendRequest(nil, 1, &frame.Request{Seq: 1, Service: "big", Body: body})
	f, err := frame.NewReader(&trickle{b: b, n: 4093}, 4<<20).Next()
	if err != nil {
		t.Fatal(err)
	}
	req, err := frame.DecodeRequest(f.Payload)
	if err != nil || !bytes.Equal(req.Body, body) {
		t.Fatalf("large request did not survive: %v", err)
	}
	if cap(f.Payload) != len(f.Payload) {
		t.Fatalf("payload capacity %d, length %d", cap(f.Payload), len(f.Payload))
	}
}

// trickle returns at most n bytes per Read, like a slow network.
type trickle struct {
	b []byte
	n int
}

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[k:]
	return k, nil
}

func TestAppendAllocs(t *testing.T) {
	m := sampleMessage()
	req := &frame.Request{Seq: 1, Service: "kv", Body: []byte("key")}
	resp := &frame.Response{Seq: 1, Status: frame.StatusError, Code: 1, Leader: "x", Msg: "m"}
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		b := frame.AppendRaft(buf[:0], 1, m)
		b = frame.AppendRequest(b, 1, req)
		b = frame.AppendResponse(b, 1, resp)
		_ = frame.AppendHello(b, frame.Hello{Addr: "a:1", Version: frame.Version})
	})
	if allocs != 0 {
		t.Fatalf("appending into a buffer with room allocated %.1f times", allocs)
	}
}

func BenchmarkAppendRaft(b *testing.B) {
	m := sampleMessage()
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(frame.RaftFrameSize(m)))
	b.ReportAllocs()
	for b.Loop() {
		buf = frame.AppendRaft(buf[:0], 1, m)
	}
}

func BenchmarkReadRaft(b *testing.B) {
	m := sampleMessage()
	var stream []byte
	const perStream = 1000
	for range perStream {
		stream = frame.AppendRaft(stream, 1, m)
	}
	b.SetBytes(int64(len(stream) / perStream))
	b.ReportAllocs()
	var r *frame.Reader
	src := bytes.NewReader(stream)
	i := 0
	for b.Loop() {
		if i%perStream == 0 {
			src.Reset(stream)
			r = frame.NewReader(src, 0)
		}
		i++
		f, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		var got raftpb.Message
		if err := frame.DecodeRaft(f.Payload, &got); err != nil {
			b.Fatal(err)
		}
	}
}

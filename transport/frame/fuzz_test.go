package frame_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/frame"
)

// fuzzMax keeps the fuzzer's allocations small while still letting it find
// the over-budget path.
const fuzzMax = 1 << 16

// FuzzReadFrame feeds arbitrary bytes to a Reader and decodes every frame it
// returns. Nothing may panic; every error must be one the transport knows
// how to classify; and whatever decodes must re-encode to the very bytes
// read, since the format is canonical.
func FuzzReadFrame(f *testing.F) {
	var stream []byte
	stream = frame.AppendHello(stream, frame.Hello{Addr: "127.0.0.1:7000", Version: frame.Version})
	stream = frame.AppendRaft(stream, 3, sampleMessage())
	stream = frame.AppendRaft(stream, 4, &raftpb.Message{Type: raftpb.MsgSnap, Snapshot: &raftpb.SnapshotMeta{
		Index: 10, Term: 2, ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}}})
	stream = frame.AppendRequest(stream, 5, &frame.Request{Seq: 1, Service: "kv", Body: []byte("k")})
	stream = frame.AppendResponse(stream, 5, &frame.Response{Seq: 1, Body: []byte("v")})
	stream = frame.AppendResponse(stream, 5, &frame.Response{Seq: 2, Status: frame.StatusError, Code: 1, Leader: "l", Msg: "m"})
	stream = frame.AppendResponse(stream, 5, &frame.Response{Seq: 3, Status: frame.StatusUnknownService, Msg: "x"})
	f.Add(stream)
	f.Add([]byte{})
	f.Add(header(2, 1, fuzzMax+1, 0))
	f.Add(rawFrame(9, []byte("junk")))
	f.Add(rawFrame(1, []byte{0x80, 0x00, 1}))
	f.Add(rawFrame(4, []byte{0, 0, 0, 0, 0, 0, 0, 1, 3, 0, 0, 0, 0}))

	f.Fuzz(func(t *testing.T, data []byte) {
		r := frame.NewReader(bytes.NewReader(data), fuzzMax)
		for {
			fr, err := r.Next()
			if err != nil {
				if !knownError(err) {
					t.Fatalf("Next: unexpected error %v", err)
				}
				return
			}
			if len(fr.Payload) > fuzzMax {
				t.Fatalf("payload of %d bytes exceeds the budget", len(fr.Payload))
			}
			checkReencode(t, fr)
		}
	})
}

func knownError(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, transport.ErrCorruptFrame) || errors.Is(err, transport.ErrFrameTooLarge)
}

// checkReencode decodes fr's payload and, when it is valid, checks that
// encoding the result reproduces the frame.
func checkReencode(t *testing.T, fr frame.Frame) {
	t.Helper()
	orig := bytes.Clone(fr.Payload)
	var enc []byte
	switch fr.Type {
	case frame.TypeHello:
		h, err := frame.DecodeHello(fr.Payload)
		if err != nil {
			checkCorrupt(t, err)
			return
		}
		enc = frame.AppendHello(nil, h)
	case frame.TypeRaft:
		var m raftpb.Message
		if err := frame.DecodeRaft(fr.Payload, &m); err != nil {
			checkCorrupt(t, err)
			return
		}
		enc = frame.AppendRaft(nil, fr.Group, &m)
	case frame.TypeRequest:
		req, err := frame.DecodeRequest(fr.Payload)
		if err != nil {
			checkCorrupt(t, err)
			return
		}
		enc = frame.AppendRequest(nil, fr.Group, &req)
	case frame.TypeResponse:
		resp, err := frame.DecodeResponse(fr.Payload)
		if err != nil {
			checkCorrupt(t, err)
			return
		}
		_ = resp.Err()
		enc = frame.AppendResponse(nil, fr.Group, &resp)
	default:
		t.Fatalf("Reader returned a frame of unknown type %d", fr.Type)
	}
	if fr.Type == frame.TypeHello {
		fr.Group = 0 // a Hello's group carries nothing; the encoder writes 0
	}
	again := readOne(t, enc)
	if again.Type != fr.Type || again.Group != fr.Group || !bytes.Equal(again.Payload, orig) {
		t.Fatalf("re-encoding differs:\n got %s/%d %x\nwant %s/%d %x",
			again.Type, again.Group, again.Payload, fr.Type, fr.Group, orig)
	}
}

func checkCorrupt(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, transport.ErrCorruptFrame) {
		t.Fatalf("decode error does not wrap ErrCorruptFrame: %v", err)
	}
}

// FuzzDecodePayload wraps arbitrary payloads in frames with a correct
// checksum, which random mutation of whole frames almost never produces, so
// that the fuzzer explores the payload decoders themselves.
func FuzzDecodePayload(f *testing.F) {
	f.Add(byte(frame.TypeHello), frame.AppendHello(nil, frame.Hello{Addr: "a:1", Version: 1})[frame.HeaderSize:])
	f.Add(byte(frame.TypeRaft), sampleMessage().MarshalAppend(nil))
	req := frame.Request{Seq: 1, Service: "kv", Body: []byte("k")}
	f.Add(byte(frame.TypeRequest), frame.AppendRequest(nil, 1, &req)[frame.HeaderSize:])
	for _, resp := range []frame.Response{
		{Seq: 1, Body: []byte("v")},
		{Seq: 2, Status: frame.StatusError, Code: 3, Leader: "l:1", Msg: "m"},
		{Seq: 3, Status: frame.StatusUnknownService, Msg: "kv"},
	} {
		f.Add(byte(frame.TypeResponse), frame.AppendResponse(nil, 1, &resp)[frame.HeaderSize:])
	}

	f.Fuzz(func(t *testing.T, typ byte, payload []byte) {
		typ = typ%4 + 1
		b := frame.AppendFrame(nil, frame.Type(typ), 1, func(b []byte) []byte { return append(b, payload...) })
		fr := readOne(t, b)
		if !bytes.Equal(fr.Payload, payload) {
			t.Fatalf("payload changed in transit")
		}
		checkReencode(t, fr)
	})
}

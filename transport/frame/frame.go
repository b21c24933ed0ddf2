package frame

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/raftkit/raftkit/raftpb"
)

// Type says what a frame's payload holds.
type Type uint8

// The frame types. Zero is not a type, so that a zeroed header never decodes.
const (
	TypeHello    Type = 1
	TypeRaft     Type = 2
	TypeRequest  Type = 3
	TypeResponse Type = 4
)

func (t Type) valid() bool { return t >= TypeHello && t <= TypeResponse }

func (t Type) String() string {
	switch t {
	case TypeHello:
		return "Hello"
	case TypeRaft:
		return "Raft"
	case TypeRequest:
		return "Request"
	case TypeResponse:
		return "Response"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

const (
	// HeaderSize is the length of a frame header.
	HeaderSize = 17
	// DefaultMaxPayload is the payload budget of a Reader created with no
	// explicit one. It must fit the largest append batch the runtime sends.
	DefaultMaxPayload = 64 << 20
	// MaxPayload is the largest payload any Reader accepts or AppendFrame
	// produces: the 32-bit length field could name twice as much, but this
	// fits an int on every platform.
	MaxPayload = math.MaxInt32
	// Version is the protocol version a Hello carries. A host rejects a
	// peer whose version differs, so that a future format change fails at
	// the handshake instead of in the middle of a stream.
	Version = 1
)

// castagnoli is read-only after initialisation. CRC-32C has hardware
// support on amd64 and arm64, which matters at the transport's data rates.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Frame is one decoded frame. Payload is freshly allocated for this frame
// alone: whoever receives the Frame owns it and may keep slices of it.
type Frame struct {
	Type    Type
	Group   uint64
	Payload []byte
}

// AppendFrame appends a frame of type typ for group to buf: a header, then
// whatever appendPayload appends to the slice it is given. It returns the
// extended slice. appendPayload must only append (never modify or reslice
// what it was given below its length). Nothing is allocated beyond what
// appendPayload allocates when buf has room for the whole frame.
//
// AppendFrame panics if the payload exceeds MaxPayload bytes: no decoder
// could accept such a frame, so producing one is a programming error. Callers
// bound their payloads by their peer's budget before encoding.
//
// AppendFrame keeps no state: it is safe for concurrent use on distinct
// buffers.
func AppendFrame(buf []byte, typ Type, group uint64, appendPayload func([]byte) []byte) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, HeaderSize)...)
	buf = appendPayload(buf)
	payload := buf[start+HeaderSize:]
	if len(payload) > MaxPayload {
		panic(fmt.Sprintf("frame: payload of %d bytes exceeds the %d-byte limit", len(payload), MaxPayload))
	}
	h := buf[start : start+HeaderSize]
	h[0] = byte(typ)
	binary.BigEndian.PutUint64(h[1:9], group)
	binary.BigEndian.PutUint32(h[9:13], uint32(len(payload)))
	binary.BigEndian.PutUint32(h[13:17], crc32.Checksum(payload, castagnoli))
	return buf
}

// RaftFrameSize is the length of the Raft frame carrying m.
//
// It only reads m; see raftpb.Message.Size for what may run concurrently.
func RaftFrameSize(m *raftpb.Message) int { return HeaderSize + m.Size() }

// AppendRaft appends a Raft frame carrying m for group to buf. It grows buf
// at most once and allocates nothing when buf has room for
// RaftFrameSize(m) more bytes. The frame does not alias m, so the caller may
// reuse m at once.
//
// It only reads m; see raftpb.Message.MarshalAppend for what may run
// concurrently.
func AppendRaft(buf []byte, group uint64, m *raftpb.Message) []byte {
	buf = slices.Grow(buf, RaftFrameSize(m))
	return AppendFrame(buf, TypeRaft, group, m.MarshalAppend)
}

// AppendHello appends a Hello frame to buf. Safe for concurrent use on
// distinct buffers.
func AppendHello(buf []byte, h Hello) []byte {
	buf = slices.Grow(buf, HeaderSize+h.size())
	return AppendFrame(buf, TypeHello, 0, h.appendPayload)
}

// AppendRequest appends a Request frame for group to buf. It allocates
// nothing when buf has room for HeaderSize+r.Size() more bytes. It only
// reads r: safe for concurrent use on distinct buffers.
func AppendRequest(buf []byte, group uint64, r *Request) []byte {
	buf = slices.Grow(buf, HeaderSize+r.Size())
	return AppendFrame(buf, TypeRequest, group, r.appendPayload)
}

// AppendResponse appends a Response frame for group to buf. It allocates
// nothing when buf has room for HeaderSize+r.Size() more bytes. It only
// reads r: safe for concurrent use on distinct buffers.
func AppendResponse(buf []byte, group uint64, r *Response) []byte {
	buf = slices.Grow(buf, HeaderSize+r.Size())
	return AppendFrame(buf, TypeResponse, group, r.appendPayload)
}

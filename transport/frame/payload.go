package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/transport"
)

// Hello is the first frame on every connection: it names the sender.
type Hello struct {
	// Addr is the sender's listen address, its identity; a client that
	// serves nothing sends an empty one.
	Addr    string
	Version uint8
}

// Request asks the receiving host's service Service to handle Body for the
// frame's group. Seq matches the Response to the Request on its connection.
type Request struct {
	Seq     uint64
	Service string
	Body    []byte
}

// Status tells what a Response carries.
type Status uint8

const (
	// StatusOK: the handler succeeded; Body is its response.
	StatusOK Status = 0
	// StatusError: the handler failed; Code, Leader and Msg describe it.
	StatusError Status = 1
	// StatusUnknownService: the host has no handler for the service; Msg
	// names it.
	StatusUnknownService Status = 2
)

// Response answers the Request with the same Seq on the same connection.
type Response struct {
	Seq    uint64
	Status Status
	Code   uint16
	Leader string
	Msg    string
	Body   []byte
}

// uvarintLen is the length of binary.AppendUvarint(nil, x).
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

func stringSize(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (h *Hello) size() int { return stringSize(h.Addr) + 1 }

func (h *Hello) appendPayload(b []byte) []byte {
	return append(appendString(b, h.Addr), h.Version)
}

// Size is the length of r's payload. It only reads r.
func (r *Request) Size() int { return 8 + stringSize(r.Service) + len(r.Body) }

func (r *Request) appendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = appendString(b, r.Service)
	return append(b, r.Body...)
}

// Size is the length of r's payload. It only reads r.
func (r *Response) Size() int {
	return 8 + 1 + 2 + stringSize(r.Leader) + stringSize(r.Msg) + len(r.Body)
}

func (r *Response) appendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = append(b, byte(r.Status))
	b = binary.BigEndian.AppendUint16(b, r.Code)
	b = appendString(b, r.Leader)
	b = appendString(b, r.Msg)
	return append(b, r.Body...)
}

// ErrorResponse is the response for a handler that failed with err. An err
// implementing transport.WireError keeps its code and leader hint; any other
// error travels with code 0. Safe for concurrent use.
func ErrorResponse(seq uint64, err error) Response {
	r := Response{Seq: seq, Status: StatusError, Msg: err.Error()}
	var we transport.WireError
	if errors.As(err, &we) {
		r.Code, r.Leader = we.WireError()
	}
	return r
}

// Err is the error a caller sees for r: nil for StatusOK, a
// *transport.RemoteError for StatusError, and an error wrapping
// transport.ErrUnknownService (not a RemoteError: no handler ran) for
// StatusUnknownService. It only reads r.
func (r *Response) Err() error {
	switch r.Status {
	case StatusOK:
		return nil
	case StatusUnknownService:
		return fmt.Errorf("%w %q", transport.ErrUnknownService, r.Msg)
	}
	return &transport.RemoteError{Code: r.Code, Leader: r.Leader, Msg: r.Msg}
}

// payloadDecoder reads a payload front to back; the first failure sticks,
// so decoders check once at the end.
type payloadDecoder struct {
	typ Type
	b   []byte
	err error
}

func (d *payloadDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s payload: %s", transport.ErrCorruptFrame, d.typ, fmt.Sprintf(format, args...))
	}
}

func (d *payloadDecoder) u8(what string) byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("truncated %s", what)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *payloadDecoder) u16(what string) uint16 {
	if d.err != nil || len(d.b) < 2 {
		d.fail("truncated %s", what)
		return 0
	}
	v := binary.BigEndian.Uint16(d.b)
	d.b = d.b[2:]
	return v
}

func (d *payloadDecoder) u64(what string) uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail("truncated %s", what)
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *payloadDecoder) str(what string) string {
	if d.err != nil {
		return ""
	}
	n, k := binary.Uvarint(d.b)
	switch {
	case k <= 0:
		d.fail("bad %s length varint", what)
		return ""
	case k > 1 && d.b[k-1] == 0:
		d.fail("non-minimal %s length varint", what)
		return ""
	case n > uint64(len(d.b)-k):
		d.fail("%s length %d exceeds the %d bytes left", what, n, len(d.b)-k)
		return ""
	}
	s := string(d.b[k : k+int(n)])
	d.b = d.b[k+int(n):]
	return s
}

// rest returns the remaining bytes as a body: nil when empty, and clipped so
// that appending to it never writes past it.
func (d *payloadDecoder) rest() []byte {
	if d.err != nil || len(d.b) == 0 {
		return nil
	}
	b := d.b[:len(d.b):len(d.b)]
	d.b = nil
	return b
}

func (d *payloadDecoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

// DecodeHello decodes a Hello payload. Errors wrap transport.ErrCorruptFrame.
// It does not retain p. Safe for concurrent use while nobody writes p.
func DecodeHello(p []byte) (Hello, error) {
	d := payloadDecoder{typ: TypeHello, b: p}
	h := Hello{Addr: d.str("address"), Version: d.u8("version")}
	if err := d.end(); err != nil {
		return Hello{}, err
	}
	return h, nil
}

// DecodeRaft decodes a Raft payload into m. The message's entry data alias
// p, so p must not be reused while m lives. Errors wrap both
// transport.ErrCorruptFrame and raftpb.ErrCorruptMessage; on error m is
// unchanged. Safe for concurrent use on distinct messages while nobody
// writes p.
func DecodeRaft(p []byte, m *raftpb.Message) error {
	if err := m.Unmarshal(p); err != nil {
		return fmt.Errorf("%w: Raft payload: %w", transport.ErrCorruptFrame, err)
	}
	return nil
}

// DecodeRequest decodes a Request payload. Body aliases p. Errors wrap
// transport.ErrCorruptFrame. Safe for concurrent use while nobody writes p.
func DecodeRequest(p []byte) (Request, error) {
	d := payloadDecoder{typ: TypeRequest, b: p}
	r := Request{Seq: d.u64("seq"), Service: d.str("service")}
	if d.err == nil && r.Service == "" {
		d.fail("empty service name")
	}
	r.Body = d.rest()
	if err := d.end(); err != nil {
		return Request{}, err
	}
	return r, nil
}

// DecodeResponse decodes a Response payload. Body aliases p. Errors wrap
// transport.ErrCorruptFrame. Safe for concurrent use while nobody writes p.
func DecodeResponse(p []byte) (Response, error) {
	d := payloadDecoder{typ: TypeResponse, b: p}
	r := Response{Seq: d.u64("seq"), Status: Status(d.u8("status")), Code: d.u16("code")}
	r.Leader = d.str("leader")
	r.Msg = d.str("message")
	r.Body = d.rest()
	if d.err == nil {
		switch r.Status {
		case StatusOK:
			if r.Code != 0 || r.Leader != "" || r.Msg != "" {
				d.fail("success with an error code, leader or message")
			}
		case StatusError, StatusUnknownService:
			if r.Body != nil {
				d.fail("error with a body")
			}
			if r.Status == StatusUnknownService && (r.Code != 0 || r.Leader != "") {
				d.fail("unknown service with a code or leader")
			}
		default:
			d.fail("unknown status %d", r.Status)
		}
	}
	if err := d.end(); err != nil {
		return Response{}, err
	}
	return r, nil
}

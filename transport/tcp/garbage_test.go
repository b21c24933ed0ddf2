package tcp_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/transport/frame"
	"github.com/raftkit/raftkit/transport/tcp"
)

func hello() []byte {
	return frame.AppendHello(nil, frame.Hello{Addr: "127.0.0.1:1", Version: frame.Version})
}

// rawHeader is a frame header with whatever fields a test wants to lie in.
func rawHeader(typ byte, n uint32, sum uint32) []byte {
	h := make([]byte, frame.HeaderSize)
	h[0] = typ
	binary.BigEndian.PutUint64(h[1:], 1)
	binary.BigEndian.PutUint32(h[9:], n)
	binary.BigEndian.PutUint32(h[13:], sum)
	return h
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestGarbageSendersAreDisconnected connects raw sockets that break the
// protocol in every way we know, and checks that each is cut off with the
// right reason and a warning while a well-behaved peer keeps being served.
func TestGarbageSendersAreDisconnected(t *testing.T) {
	testutil.CheckLeaks(t)
	logs := newLogSink(t)
	ra := &testutil.Recorder{}
	a := newTransport(t, tcp.Options{
		Logger: sloggerFor(logs), MaxFrameSize: 1 << 20, HandshakeTimeout: 200 * time.Millisecond,
	}, ra)
	good := newTransport(t, tcp.Options{}, &testutil.Recorder{})

	goodRaft := frame.AppendRaft(nil, 1, msg(1, 1, "data"))
	badCRC := bytes.Clone(goodRaft)
	badCRC[len(badCRC)-1] ^= 0xff
	notAMessage := frame.AppendFrame(nil, frame.TypeRaft, 1, func(b []byte) []byte { return append(b, 9, 9, 9) })
	oldHello := frame.AppendHello(nil, frame.Hello{Addr: "x:1", Version: frame.Version + 1})
	response := frame.AppendResponse(nil, 1, &frame.Response{Seq: 1})

	for _, tc := range []struct {
		name   string
		send   []byte
		reason func(tcp.Disconnects) uint64
		warn   string
	}{
		{"http junk", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), corrupt, "corrupt frame"},
		{"no hello", goodRaft, handshake, "handshake"},
		{"silence", nil, handshake, "handshake"},
		{"wrong version", oldHello, handshake, "handshake"},
		{"oversize header", cat(hello(), rawHeader(2, 1<<20+1, 0)), tooLarge, "frame too large"},
		{"oversize before hello", rawHeader(1, 1<<31, 0), tooLarge, "frame too large"},
		{"wrong crc", cat(hello(), badCRC), corrupt, "corrupt frame"},
		{"unknown type", cat(hello(), rawHeader(7, 0, 0)), corrupt, "corrupt frame"},
		{"malformed message", cat(hello(), notAMessage), corrupt, "corrupt frame"},
		{"response to a server", cat(hello(), response), protocol, "reason=protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.reason(a.Stats().Disconnects)
			conn, err := net.Dial("tcp", a.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			// The server closes the connection: the read ends with EOF or
			// a reset, well before this deadline.
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.Copy(io.Discard, conn); isTimeout(err) {
				t.Fatal("server did not close the connection")
			}
			testutil.WaitFor(t, 10*time.Second, "the disconnect to be counted", func() bool { return tc.reason(a.Stats().Disconnects) == before+1 })
			testutil.WaitFor(t, 10*time.Second, "a warning naming the remote and the reason", func() bool {
				_, ok := logs.find("WARN", "disconnecting peer", tc.warn, "remote="+conn.LocalAddr().String())
				return ok
			})

			// The good peer is still served, on its long-lived connection.
			idx := uint64(len(ra.All()) + 1)
			good.Send(a.Addr(), 5, msg(2, idx, ""))
			testutil.WaitFor(t, 10*time.Second, "the good peer's message", func() bool { return ra.Has(5, idx) })
		})
	}
	if st := good.Stats(); st.Dials != 1 {
		t.Fatalf("good peer dialed %d times, want 1", st.Dials)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func corrupt(d tcp.Disconnects) uint64   { return d.Corrupt }
func handshake(d tcp.Disconnects) uint64 { return d.Handshake }
func tooLarge(d tcp.Disconnects) uint64  { return d.TooLarge }
func protocol(d tcp.Disconnects) uint64  { return d.Protocol }

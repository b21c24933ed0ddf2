package frame

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/raftkit/raftkit/transport"
)

const (
	// readBufferSize is the Reader's buffer: large enough that a stream of
	// small frames (heartbeats, acknowledgements) costs one read call per
	// many frames.
	readBufferSize = 32 << 10
	// firstChunk is the most a Reader allocates for a payload before the
	// peer has sent that many bytes. Beyond it the buffer grows as data
	// arrives, so a peer that claims a large frame and stalls pins little
	// memory. It holds a default 1 MiB snapshot chunk with its header in
	// one allocation: growing such a frame from a smaller buffer copied it
	// twice and made snapshot copies about 1.6 times slower.
	firstChunk = 1<<20 + 4<<10
)

// Reader reads frames one at a time from a byte stream.
//
// A Reader is not safe for concurrent use; it belongs to the goroutine that
// reads its connection.
type Reader struct {
	r   *bufio.Reader
	max int
	hdr [HeaderSize]byte
}

// NewReader returns a Reader that buffers r and accepts payloads of at most
// maxPayload bytes; maxPayload <= 0 means DefaultMaxPayload, and budgets over
// MaxPayload are capped to it.
func NewReader(r io.Reader, maxPayload int) *Reader {
	if maxPayload <= 0 {
		maxPayload = DefaultMaxPayload
	}
	maxPayload = min(maxPayload, MaxPayload)
	return &Reader{r: bufio.NewReaderSize(r, readBufferSize), max: maxPayload}
}

// Next reads the next frame. At a clean end of stream between frames it
// returns io.EOF; a stream that ends inside a frame gives
// io.ErrUnexpectedEOF. A frame of unknown type or with a bad checksum gives
// an error wrapping transport.ErrCorruptFrame, and one whose length exceeds
// the budget an error wrapping transport.ErrFrameTooLarge; both are detected
// from the header where possible, before the payload is read. After any
// error the stream position is undefined: the caller must stop reading.
//
// The payload is checked against the checksum but not decoded; use the
// Decode functions for that. It is allocated afresh for each frame, growing
// with the bytes actually received, and never beyond the length the header
// claims.
func (r *Reader) Next() (Frame, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Type: Type(r.hdr[0]), Group: binary.BigEndian.Uint64(r.hdr[1:9])}
	n := binary.BigEndian.Uint32(r.hdr[9:13])
	sum := binary.BigEndian.Uint32(r.hdr[13:17])
	if !f.Type.valid() {
		return Frame{}, fmt.Errorf("%w: unknown frame type %d", transport.ErrCorruptFrame, r.hdr[0])
	}
	if uint64(n) > uint64(r.max) {
		return Frame{}, fmt.Errorf("%w: %s frame of %d bytes exceeds the %d-byte limit",
			transport.ErrFrameTooLarge, f.Type, n, r.max)
	}
	p, err := r.readPayload(int(n))
	if err != nil {
		return Frame{}, err
	}
	if got := crc32.Checksum(p, castagnoli); got != sum {
		return Frame{}, fmt.Errorf("%w: %s frame checksum %#08x, header says %#08x",
			transport.ErrCorruptFrame, f.Type, got, sum)
	}
	f.Payload = p
	return f, nil
}

// readPayload reads exactly n bytes into a new slice of capacity n. Up to
// firstChunk it allocates n at once; beyond, it doubles as data arrives
// (each buffer at most n bytes), trading a few copies for memory that tracks
// what the peer really sent.
func (r *Reader) readPayload(n int) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	p := make([]byte, min(n, firstChunk))
	have := 0
	for {
		k, err := io.ReadFull(r.r, p[have:])
		have += k
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if have == n {
			return p, nil
		}
		grown := make([]byte, min(n, 2*len(p)))
		copy(grown, p)
		p = grown
	}
}

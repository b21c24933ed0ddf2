package tracker

import "fmt"

// inflight is one AppendEntries the leader has sent but the follower has not
// acknowledged yet.
type inflight struct {
	index uint64 // index of the last entry the message carried
	bytes uint64 // payload size the message counted against the byte bound
}

// Inflights is the leader's pipeline window for one follower in
// StateReplicate: the AppendEntries sent but not yet acknowledged. It bounds
// both the number of such messages (maxCount) and their total payload
// (maxBytes), so that one slow follower cannot make the leader queue an
// unbounded amount of data in the transport.
//
// Entries are kept in a ring buffer in the order they were sent, which is
// also ascending lastIndex order; an acknowledgement up to some index
// therefore always frees a prefix of the ring. The buffer starts empty and
// grows (doubling) only when the window actually fills up, never beyond
// maxCount slots, because most followers keep far fewer messages in flight
// than the configured maximum. Once grown it is kept, so Add and FreeLE do
// not allocate in steady state.
//
// Invariants:
//   - 0 <= count <= len(buf) <= maxCount, and 0 <= start < len(buf) when
//     len(buf) > 0;
//   - the live entries are buf[start], buf[start+1], ... (count of them,
//     wrapping at len(buf)) with strictly increasing index;
//   - bytes is the sum of the live entries' bytes.
//
// An Inflights is not safe for concurrent use; it belongs to the Raft core's
// single goroutine like the rest of the tracker.
type Inflights struct {
	start int        // ring position of the oldest live entry
	count int        // number of live entries
	bytes uint64     // sum of the live entries' bytes
	buf   []inflight // ring storage; len(buf) is the current capacity

	maxCount int    // bound on count; > 0
	maxBytes uint64 // bound on bytes; 0 disables the byte bound
}

// NewInflights returns an empty window admitting at most maxCount messages
// and, when maxBytes > 0, at most maxBytes payload bytes (see Full for the
// exact rule). maxCount must be positive: a window that admits nothing would
// stall replication forever, so it is rejected as a configuration bug.
func NewInflights(maxCount int, maxBytes uint64) *Inflights {
	if maxCount <= 0 {
		panic(fmt.Sprintf("tracker: Inflights maxCount %d must be positive", maxCount))
	}
	return &Inflights{maxCount: maxCount, maxBytes: maxBytes}
}

// Add records an AppendEntries whose last entry is lastIndex and whose
// payload is bytes. lastIndex must be strictly greater than that of every
// message still in the window; the leader guarantees this by only sending
// new entries in StateReplicate and by resetting the window whenever it
// falls back to probing. Add panics if the window is Full (the caller must
// check before sending) or if lastIndex does not increase, since either
// would silently break the accounting FreeLE relies on.
func (in *Inflights) Add(lastIndex uint64, bytes uint64) {
	if in.Full() {
		panic("tracker: Inflights.Add on a full window")
	}
	if in.count > 0 {
		if last := in.buf[in.wrap(in.start+in.count-1)].index; lastIndex <= last {
			panic(fmt.Sprintf("tracker: Inflights.Add index %d not above last inflight %d", lastIndex, last))
		}
	}
	if in.count == len(in.buf) {
		in.grow()
	}
	in.buf[in.wrap(in.start+in.count)] = inflight{index: lastIndex, bytes: bytes}
	in.count++
	in.bytes += bytes
}

// grow enlarges the ring, doubling it but never beyond maxCount, and moves
// the live entries to the front so that start becomes 0. It is only called
// when the ring is completely full and count < maxCount (Add checked Full).
func (in *Inflights) grow() {
	size := min(max(2*len(in.buf), 4), in.maxCount)
	buf := make([]inflight, size)
	n := copy(buf, in.buf[in.start:])
	copy(buf[n:], in.buf[:in.start])
	in.buf = buf
	in.start = 0
}

// wrap maps a position that may have run one lap past the end of the ring
// back into it. Positions passed here are always < 2*len(buf), so a single
// subtraction replaces a modulo.
func (in *Inflights) wrap(pos int) int {
	if pos >= len(in.buf) {
		pos -= len(in.buf)
	}
	return pos
}

// FreeLE frees every inflight message whose lastIndex is <= to, i.e. all the
// messages an acknowledgement of the log up to index to has covered. Since
// the window is sorted this is always a prefix; acknowledgements for indexes
// below the oldest inflight (stale or duplicated responses) free nothing.
func (in *Inflights) FreeLE(to uint64) {
	if in.count == 0 || to < in.buf[in.start].index {
		return
	}
	pos, freed := in.start, 0
	for freed < in.count && in.buf[pos].index <= to {
		in.bytes -= in.buf[pos].bytes
		freed++
		if pos++; pos == len(in.buf) {
			pos = 0
		}
	}
	in.count -= freed
	in.start = pos
	if in.count == 0 {
		// Rewind so that the next burst is laid out contiguously from the
		// front. Not needed for correctness, but it keeps the ring tidy.
		in.start = 0
	}
}

// Full reports whether the window admits no further message: it holds
// maxCount messages, or a byte bound is set and the payload in flight has
// reached it. The byte rule only looks at what is already in flight, so an
// empty window always admits one message however large; otherwise a single
// entry bigger than maxBytes could never be replicated.
func (in *Inflights) Full() bool {
	return in.count == in.maxCount || (in.maxBytes > 0 && in.bytes >= in.maxBytes)
}

// Count returns the number of messages in flight.
func (in *Inflights) Count() int { return in.count }

// Bytes returns the total payload bytes in flight.
func (in *Inflights) Bytes() uint64 { return in.bytes }

// Reset empties the window, e.g. when the follower leaves StateReplicate and
// nothing sent before can be assumed to arrive. The ring's storage is kept
// so that returning to StateReplicate does not allocate again.
func (in *Inflights) Reset() {
	in.start = 0
	in.count = 0
	in.bytes = 0
}

// Clone returns a deep copy that shares no storage with in, so that either
// can be modified without affecting the other (used for status snapshots
// and tests).
func (in *Inflights) Clone() *Inflights {
	c := *in
	if in.buf != nil {
		c.buf = make([]inflight, len(in.buf))
		copy(c.buf, in.buf)
	}
	return &c
}

// FreeFirstOne frees the oldest message in flight. The leader calls it when
// a heartbeat response arrives while the window is full: if the window's
// messages were lost, freeing one lets the next send reveal the gap (the
// follower rejects it and the peer drops back to probing) instead of the
// window stalling forever.
func (in *Inflights) FreeFirstOne() {
	if in.count > 0 {
		in.FreeLE(in.buf[in.start].index)
	}
}

package tcp

import "sync/atomic"

// Stats counts what a Transport did since New. Counters only grow.
type Stats struct {
	FramesIn, FramesOut uint64 // frames of every type, Hello included
	BytesIn, BytesOut   uint64 // frame bytes, headers included
	// Writes counts Write calls on connections; each carries one batch, so
	// FramesOut/Writes is the mean batch size.
	Writes        uint64
	Accepted      uint64 // inbound connections accepted
	Dials         uint64 // outbound dials attempted
	DialFailures  uint64
	WriteFailures uint64 // failed writes to peers (each starts a backoff)
	// DroppedSends counts Sends that returned false; DroppedQueued counts
	// messages Send had accepted but that were discarded with their queue
	// when the peer's connection failed.
	DroppedSends, DroppedQueued uint64
	Disconnects                 Disconnects
}

// Disconnects counts inbound connections ended, by reason.
type Disconnects struct {
	Closed    uint64 // the peer closed, a read failed, or this host shut down
	Handshake uint64 // no valid Hello in time, a failed TLS handshake, a wrong version
	TooLarge  uint64 // a frame over MaxFrameSize
	Corrupt   uint64 // bad checksum, unknown frame type, malformed payload
	Protocol  uint64 // a frame of a type an accepted connection must not carry
	Handler   uint64 // HandleRaft returned an error
}

// reason is why an inbound connection ended; the values index counters.
type reason int

const (
	reasonClosed reason = iota
	reasonHandshake
	reasonTooLarge
	reasonCorrupt
	reasonProtocol
	reasonHandler
	numReasons
)

var reasonNames = [numReasons]string{"closed", "handshake", "frame too large", "corrupt frame", "protocol", "handler error"}

func (r reason) String() string { return reasonNames[r] }

// counters is the live form of Stats.
type counters struct {
	framesIn, framesOut, bytesIn, bytesOut, writes atomic.Uint64
	accepted, dials, dialFailures, writeFailures   atomic.Uint64
	droppedSends, droppedQueued                    atomic.Uint64
	disconnects                                    [numReasons]atomic.Uint64
}

func (c *counters) snapshot() Stats {
	d := func(r reason) uint64 { return c.disconnects[r].Load() }
	return Stats{
		FramesIn: c.framesIn.Load(), FramesOut: c.framesOut.Load(),
		BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
		Writes: c.writes.Load(), Accepted: c.accepted.Load(),
		Dials: c.dials.Load(), DialFailures: c.dialFailures.Load(),
		WriteFailures: c.writeFailures.Load(),
		DroppedSends:  c.droppedSends.Load(), DroppedQueued: c.droppedQueued.Load(),
		Disconnects: Disconnects{
			Closed: d(reasonClosed), Handshake: d(reasonHandshake), TooLarge: d(reasonTooLarge),
			Corrupt: d(reasonCorrupt), Protocol: d(reasonProtocol), Handler: d(reasonHandler),
		},
	}
}

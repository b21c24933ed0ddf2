package transport

import (
	"context"
	"errors"
	"fmt"

	"github.com/raftkit/raftkit/raftpb"
)

// Handler receives what arrives at a host. The NodeHost implements it.
type Handler interface {
	// HandleRaft is called once per raft message received, from the
	// goroutine reading the connection it arrived on, so the messages one
	// peer host sends arrive in the order it sent them. m and everything it
	// references (entries and their data) belong to the handler from then
	// on: the transport never reuses that memory. HandleRaft must not block
	// for long. A non-nil error (for example a group this host does not
	// serve) makes the transport log it and disconnect the peer.
	HandleRaft(group uint64, m *raftpb.Message) error
}

// ServiceHandler serves one application request type on the raft port.
// req belongs to the handler. A returned error reaches the caller as a
// *RemoteError; an error implementing WireError keeps its code and leader
// hint across the wire.
//
// It runs on a goroutine of its own per request and may block until ctx,
// which is cancelled when the connection closes, is done.
type ServiceHandler func(ctx context.Context, group uint64, req []byte) (resp []byte, err error)

// WireError is implemented by errors that travel to a remote caller with a
// code and a leader hint (raftkit's *Error does).
type WireError interface {
	error
	WireError() (code uint16, leader string)
}

// RemoteError is an error a remote service handler returned.
type RemoteError struct {
	Code   uint16 // 0 when the handler's error carried no code
	Leader string // a leader hint, when the error is "not leader"
	Msg    string
}

func (e *RemoteError) Error() string {
	if e.Leader != "" {
		return fmt.Sprintf("remote: %s (code %d, leader %s)", e.Msg, e.Code, e.Leader)
	}
	return fmt.Sprintf("remote: %s (code %d)", e.Msg, e.Code)
}

// Errors of the transport itself; errors.Is-friendly.
var (
	// ErrClosed: the transport or client was closed.
	ErrClosed = errors.New("transport: closed")
	// ErrUnreachable: no connection to the peer could be made (it is down
	// or in reconnect backoff); the call was not sent.
	ErrUnreachable = errors.New("transport: peer unreachable")
	// ErrFrameTooLarge: a frame exceeds the configured maximum size.
	ErrFrameTooLarge = errors.New("transport: frame too large")
	// ErrCorruptFrame: a frame failed to decode or its checksum mismatched.
	ErrCorruptFrame = errors.New("transport: corrupt frame")
	// ErrUnknownService: the remote host has no handler for the service.
	ErrUnknownService = errors.New("transport: unknown service")
	// ErrConnectionLost: the connection broke while a call was in flight,
	// so whether the remote handler ran is unknown.
	ErrConnectionLost = errors.New("transport: connection lost")
)

// Transport carries raft messages between hosts. One Transport serves every
// raft group of a host.
type Transport interface {
	// Send encodes m at once (so the caller may reuse or mutate m and its
	// entries as soon as Send returns) and queues it for the host at addr.
	// It never blocks on the network. It returns false when the message was
	// dropped: the peer is unreachable or in reconnect backoff, or its queue
	// is over budget. Raft tolerates lost messages; the caller should treat
	// false as a hint that the peer is unreachable.
	//
	// Concurrency: safe for concurrent use. Messages to one addr are sent in
	// the order of the Send calls that queued them.
	Send(addr string, group uint64, m *raftpb.Message) bool

	// Addr is the address this transport listens on (its identity).
	Addr() string

	// Close stops the listener and every connection and waits for the
	// transport's goroutines to exit. Safe to call more than once.
	Close() error
}

// CallService runs a service handler for a transport, turning a panic into
// an error for that one request: a faulty application handler fails its
// caller instead of crashing the host that serves every group.
func CallService(ctx context.Context, h ServiceHandler, group uint64, req []byte) (resp []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, fmt.Errorf("transport: service handler panicked: %v", r)
		}
	}()
	return h(ctx, group, req)
}

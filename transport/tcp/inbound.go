package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/frame"
)

// inConn is one accepted connection. Its reader goroutine (serve) owns
// every field but the writer's queue.
type inConn struct {
	t      *Transport
	conn   net.Conn
	ctx    context.Context // cancelled when the connection ends
	remote string          // the network address of the other end
	peer   string          // the listen address its Hello named
	w      *connWriter     // service responses; nil until the first request
}

// serve runs one accepted connection to its end, then accounts for why it
// ended. Ending cancels ctx, which closes the connection and tells the
// connection's service handlers to stop.
func (t *Transport) serve(c net.Conn) {
	defer t.wg.Done()
	ctx, cancel := context.WithCancel(t.ctx)
	stop := closeOnDone(ctx, &t.wg, c)
	ic := &inConn{t: t, conn: c, ctx: ctx, remote: c.RemoteAddr().String()}
	why, err := ic.run()
	cancel()
	stop()
	c.Close()
	if why == reasonClosed || t.ctx.Err() != nil {
		t.log.Debug("transport: connection closed", "remote", ic.remote, "peer", ic.peer, "err", err)
	} else {
		t.log.Warn("transport: disconnecting peer", "remote", ic.remote, "peer", ic.peer, "reason", why.String(), "err", err)
	}
	t.stats.disconnects[why].Add(1)
}

// run reads frames until the connection fails or the peer misbehaves, and
// returns why it stopped.
func (c *inConn) run() (reason, error) {
	r := frame.NewReader(c.conn, c.t.opts.MaxFrameSize)
	if why, err := c.handshake(r); err != nil {
		return why, err
	}
	for {
		f, err := r.Next()
		if err != nil {
			return readReason(err, reasonClosed), err
		}
		c.t.stats.framesIn.Add(1)
		c.t.stats.bytesIn.Add(uint64(frame.HeaderSize + len(f.Payload)))
		switch f.Type {
		case frame.TypeRaft:
			// The payload is this frame's alone, so the message's entries
			// may alias it and pass to the handler.
			var m raftpb.Message
			if err := frame.DecodeRaft(f.Payload, &m); err != nil {
				return reasonCorrupt, err
			}
			if err := c.t.h.HandleRaft(f.Group, &m); err != nil {
				return reasonHandler, fmt.Errorf("group %d %s: %w", f.Group, m.Type, err)
			}
		case frame.TypeRequest:
			req, err := frame.DecodeRequest(f.Payload)
			if err != nil {
				return reasonCorrupt, err
			}
			c.dispatch(f.Group, req)
		default:
			return reasonProtocol, fmt.Errorf("unexpected %s frame", f.Type)
		}
	}
}

// handshake reads the Hello within HandshakeTimeout. The deadline also
// bounds the TLS handshake, which runs inside the first read.
func (c *inConn) handshake(r *frame.Reader) (reason, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(c.t.opts.HandshakeTimeout)); err != nil {
		return reasonClosed, err
	}
	f, err := r.Next()
	if err != nil {
		return readReason(err, reasonHandshake), fmt.Errorf("before hello: %w", err)
	}
	c.t.stats.framesIn.Add(1)
	c.t.stats.bytesIn.Add(uint64(frame.HeaderSize + len(f.Payload)))
	if f.Type != frame.TypeHello {
		return reasonHandshake, fmt.Errorf("first frame is %s, not Hello", f.Type)
	}
	h, err := frame.DecodeHello(f.Payload)
	if err != nil {
		return reasonCorrupt, err
	}
	c.peer = h.Addr
	if h.Version != frame.Version {
		return reasonHandshake, fmt.Errorf("protocol version %d, want %d", h.Version, frame.Version)
	}
	if err := c.conn.SetReadDeadline(time.Time{}); err != nil {
		return reasonClosed, err
	}
	return reasonClosed, nil
}

// readReason classifies a Reader error; other is the reason for errors that
// are not the peer's frames' fault (EOF, resets, timeouts).
func readReason(err error, other reason) reason {
	switch {
	case errors.Is(err, transport.ErrFrameTooLarge):
		return reasonTooLarge
	case errors.Is(err, transport.ErrCorruptFrame):
		return reasonCorrupt
	}
	return other
}

// dispatch runs the request's handler on a goroutine of its own, so a slow
// service never stalls the raft messages behind it on this connection.
func (c *inConn) dispatch(group uint64, req frame.Request) {
	if c.w == nil {
		c.w = newConnWriter(c.conn, c.t.opts.WriteTimeout, &c.t.stats)
		// The reader goroutine is counted in wg, so these Adds are safe
		// against a concurrent Close.
		c.t.wg.Add(1)
		go func() {
			defer c.t.wg.Done()
			if err := c.w.run(c.ctx); err != nil && c.ctx.Err() == nil {
				// Unblock the reader; it reports the connection's end.
				c.conn.Close()
			}
		}()
	}
	h := c.t.service(req.Service)
	if h == nil {
		c.respond(group, frame.Response{Seq: req.Seq, Status: frame.StatusUnknownService, Msg: req.Service})
		return
	}
	c.t.wg.Add(1)
	go func() {
		defer c.t.wg.Done()
		body, err := transport.CallService(c.ctx, h, group, req.Body)
		if err != nil {
			c.respond(group, frame.ErrorResponse(req.Seq, err))
			return
		}
		c.respond(group, frame.Response{Seq: req.Seq, Body: body})
	}()
}

// respond queues resp on the connection's writer; it is lost if the
// connection has ended, as the caller has then failed already.
func (c *inConn) respond(group uint64, resp frame.Response) {
	if n := resp.Size(); n > c.t.opts.MaxFrameSize {
		resp = frame.ErrorResponse(resp.Seq, fmt.Errorf("%w: response of %d bytes exceeds the %d-byte limit",
			transport.ErrFrameTooLarge, n, c.t.opts.MaxFrameSize))
	}
	c.w.enqueue(func(b []byte) []byte { return frame.AppendResponse(b, group, &resp) })
}

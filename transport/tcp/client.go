package tcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/frame"
)

// ErrConnectionLost is transport.ErrConnectionLost, kept here for callers
// of this package: a Call whose connection broke after the request was
// queued may or may not have reached the handler, so unlike
// transport.ErrUnreachable it is not safe to assume nothing happened.
var ErrConnectionLost = transport.ErrConnectionLost

// Client calls the services of remote Transports. It keeps one connection
// per address, on which any number of concurrent calls are multiplexed.
type Client struct {
	opts   ClientOptions
	log    *slog.Logger
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[string]*clientConn
}

// NewClient returns a Client; it connects lazily, on the first Call to each
// address, so it starts no goroutine until then.
func NewClient(opts ClientOptions) *Client {
	opts = opts.withDefaults()
	c := &Client{opts: opts, log: opts.Logger, conns: make(map[string]*clientConn)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// Call sends req to the service named service at addr for group and waits
// for the response. Errors:
//   - a *transport.RemoteError (use errors.As) when the remote handler
//     failed; it keeps the code and leader hint of a transport.WireError;
//   - an error wrapping transport.ErrUnknownService (not a RemoteError)
//     when the remote host does not serve service;
//   - an error wrapping transport.ErrUnreachable when no connection could
//     be made: nothing was sent;
//   - an error wrapping ErrConnectionLost when the connection broke while
//     the call was in flight: the outcome is unknown; the next Call
//     redials;
//   - ctx.Err() when ctx ended first (the remote handler keeps running
//     until it finishes or the connection closes);
//   - an error wrapping transport.ErrClosed after Close, or
//     transport.ErrFrameTooLarge for a request over MaxFrameSize.
//
// The response belongs to the caller; req is not retained.
//
// Safe for concurrent use.
func (c *Client) Call(ctx context.Context, addr, service string, group uint64, req []byte) ([]byte, error) {
	if service == "" {
		return nil, errors.New("tcp: Call with an empty service name")
	}
	r := frame.Request{Service: service, Body: req}
	if n := r.Size(); n > c.opts.MaxFrameSize {
		return nil, fmt.Errorf("%w: request of %d bytes exceeds the %d-byte limit", transport.ErrFrameTooLarge, n, c.opts.MaxFrameSize)
	}
	for attempt := 1; ; attempt++ {
		cc, err := c.conn(ctx, addr)
		if err != nil {
			return nil, err
		}
		resp, err := cc.call(ctx, group, r)
		if errors.Is(err, errNotSent) && attempt < 3 {
			// The connection broke before this call was registered, so
			// nothing was sent and a fresh connection is safe to try.
			continue
		}
		if errors.Is(err, errNotSent) {
			return nil, fmt.Errorf("%w: %s: connections keep breaking", transport.ErrUnreachable, addr)
		}
		return resp, err
	}
}

// conn returns an established connection to addr, dialing if there is none.
// Concurrent callers share one dial.
func (c *Client) conn(ctx context.Context, addr string) (*clientConn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, transport.ErrClosed
	}
	cc := c.conns[addr]
	if cc == nil {
		cc = newClientConn(c, addr)
		c.conns[addr] = cc
		c.wg.Add(1)
		go cc.dial()
	}
	c.mu.Unlock()
	select {
	case <-cc.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if cc.dialErr != nil {
		return nil, cc.dialErr
	}
	return cc, nil
}

// forget removes cc from the map, if it is still there, so the next Call
// redials.
func (c *Client) forget(cc *clientConn) {
	c.mu.Lock()
	if c.conns[cc.addr] == cc {
		delete(c.conns, cc.addr)
	}
	c.mu.Unlock()
}

// Close closes every connection, fails the calls in flight with an error
// wrapping transport.ErrClosed, and waits for the client's goroutines. Later
// Calls fail the same way.
//
// Safe for concurrent use and to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// errNotSent marks a call that failed before its request was queued.
var errNotSent = errors.New("tcp: request not sent")

// clientConn is one multiplexed connection. Calls register a channel under
// a fresh sequence number; the reader delivers each response to the channel
// of its number.
type clientConn struct {
	c    *Client
	addr string

	ready   chan struct{} // closed when the dial is over
	dialErr error         // set before ready closes
	conn    net.Conn
	w       *connWriter
	ctx     context.Context // ends the connection's goroutines
	cancel  context.CancelFunc

	done  chan struct{} // closed when the connection broke
	mu    sync.Mutex
	err   error // why it broke; set before done closes
	seq   uint64
	calls map[uint64]chan frame.Response
}

func newClientConn(c *Client, addr string) *clientConn {
	cc := &clientConn{c: c, addr: addr, ready: make(chan struct{}), done: make(chan struct{}),
		calls: make(map[uint64]chan frame.Response)}
	cc.ctx, cc.cancel = context.WithCancel(c.ctx)
	return cc
}

// dial connects, queues the Hello and starts the reader and writer. It runs
// on its own goroutine so that no caller's context cancels a dial others
// wait for.
func (cc *clientConn) dial() {
	defer cc.c.wg.Done()
	defer close(cc.ready)
	conn, err := dial(cc.ctx, cc.c.opts.DialContext, cc.c.opts.TLS, cc.c.opts.DialTimeout, cc.addr)
	if err != nil {
		cc.c.forget(cc)
		cc.cancel()
		if cc.c.ctx.Err() != nil {
			cc.dialErr = transport.ErrClosed
		} else {
			cc.dialErr = fmt.Errorf("%w: %s: %w", transport.ErrUnreachable, cc.addr, err)
		}
		return
	}
	cc.conn = conn
	cc.w = newConnWriter(conn, cc.c.opts.WriteTimeout, nil)
	cc.w.enqueue(func(b []byte) []byte { return frame.AppendHello(b, frame.Hello{Version: frame.Version}) })
	stop := closeOnDone(cc.ctx, &cc.c.wg, conn)
	cc.c.wg.Add(2)
	go func() {
		defer cc.c.wg.Done()
		if err := cc.w.run(cc.ctx); err != nil {
			cc.broke(err)
		}
	}()
	go func() {
		defer cc.c.wg.Done()
		cc.broke(cc.readLoop())
		stop()
		conn.Close()
	}()
}

// readLoop delivers responses until the connection fails.
func (cc *clientConn) readLoop() error {
	r := frame.NewReader(cc.conn, cc.c.opts.MaxFrameSize)
	for {
		f, err := r.Next()
		if err != nil {
			return err
		}
		if f.Type != frame.TypeResponse {
			return fmt.Errorf("%w: unexpected %s frame from a server", transport.ErrCorruptFrame, f.Type)
		}
		resp, err := frame.DecodeResponse(f.Payload)
		if err != nil {
			return err
		}
		cc.mu.Lock()
		ch := cc.calls[resp.Seq]
		delete(cc.calls, resp.Seq)
		cc.mu.Unlock()
		if ch != nil {
			ch <- resp // buffered: never blocks
		}
	}
}

// broke marks the connection broken (the first cause wins), fails its calls
// and ends its goroutines.
func (cc *clientConn) broke(cause error) {
	cc.c.forget(cc)
	cc.mu.Lock()
	if cc.err == nil {
		if cc.c.ctx.Err() != nil {
			cc.err = fmt.Errorf("%w: %s", transport.ErrClosed, cc.addr)
		} else {
			cc.err = fmt.Errorf("%w: %s: %w", ErrConnectionLost, cc.addr, cause)
			cc.c.log.Warn("transport: client connection broken", "addr", cc.addr, "err", cause)
		}
		cc.calls = nil
		close(cc.done)
	}
	cc.mu.Unlock()
	cc.cancel()
}

// call registers a call, queues its request and waits for its response.
func (cc *clientConn) call(ctx context.Context, group uint64, r frame.Request) ([]byte, error) {
	ch := make(chan frame.Response, 1)
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		if cc.c.ctx.Err() != nil {
			return nil, cc.err
		}
		return nil, errNotSent
	}
	cc.seq++
	r.Seq = cc.seq
	cc.calls[r.Seq] = ch
	cc.mu.Unlock()
	// A false enqueue means the writer stopped, which only happens as the
	// connection breaks: done is about to close.
	cc.w.enqueue(func(b []byte) []byte { return frame.AppendRequest(b, group, &r) })
	select {
	case resp := <-ch:
		return result(resp)
	case <-cc.done:
		select {
		case resp := <-ch: // it arrived just before the break
			return result(resp)
		default:
			return nil, cc.err
		}
	case <-ctx.Done():
		cc.mu.Lock()
		delete(cc.calls, r.Seq) // a late response is then ignored
		cc.mu.Unlock()
		return nil, ctx.Err()
	}
}

func result(resp frame.Response) ([]byte, error) {
	if err := resp.Err(); err != nil {
		return nil, err
	}
	return resp.Body, nil
}

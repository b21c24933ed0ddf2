package tcp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/tcp"
)

func newClient(t *testing.T, opts tcp.ClientOptions) *tcp.Client {
	c := tcp.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func echo(_ context.Context, group uint64, req []byte) ([]byte, error) {
	return fmt.Appendf(nil, "group %d: %s", group, req), nil
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestServiceConcurrentCalls(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newTransport(t, tcp.Options{}, &testutil.Recorder{})
	srv.RegisterService("echo", echo)
	c := newClient(t, tcp.ClientOptions{})
	ctx := ctxTimeout(t, 10*time.Second)

	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			req := fmt.Sprintf("request %d", i)
			resp, err := c.Call(ctx, srv.Addr(), "echo", uint64(i%7), []byte(req))
			if want := fmt.Sprintf("group %d: %s", i%7, req); err != nil || string(resp) != want {
				errs <- fmt.Errorf("call %d = %q, %v; want %q", i, resp, err, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := srv.Stats(); st.Accepted != 1 {
		t.Fatalf("server accepted %d connections for one client, want 1", st.Accepted)
	}
}

// notLeader is a WireError, like raftkit's *Error with CodeNotLeader.
type notLeader struct{ leader string }

func (e notLeader) Error() string                           { return "not leader" }
func (e notLeader) WireError() (code uint16, leader string) { return 1, e.leader }

func TestServiceErrors(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newTransport(t, tcp.Options{}, &testutil.Recorder{})
	srv.RegisterService("redirect", func(context.Context, uint64, []byte) ([]byte, error) {
		return nil, fmt.Errorf("propose: %w", notLeader{leader: "10.0.0.3:7000"})
	})
	srv.RegisterService("fail", func(context.Context, uint64, []byte) ([]byte, error) {
		return []byte("ignored"), errors.New("disk on fire")
	})
	srv.RegisterService("empty", func(context.Context, uint64, []byte) ([]byte, error) { return nil, nil })
	srv.RegisterService("panic", func(context.Context, uint64, []byte) ([]byte, error) { panic("handler bug") })
	c := newClient(t, tcp.ClientOptions{})
	ctx := ctxTimeout(t, 10*time.Second)

	_, err := c.Call(ctx, srv.Addr(), "redirect", 1, nil)
	var re *transport.RemoteError
	if !errors.As(err, &re) || re.Code != 1 || re.Leader != "10.0.0.3:7000" || re.Msg != "propose: not leader" {
		t.Fatalf("redirect: %v (%#v)", err, re)
	}
	_, err = c.Call(ctx, srv.Addr(), "fail", 1, nil)
	if !errors.As(err, &re) || re.Code != 0 || re.Leader != "" || re.Msg != "disk on fire" {
		t.Fatalf("fail: %v", err)
	}
	// A panicking handler fails its own call; the host keeps serving.
	_, err = c.Call(ctx, srv.Addr(), "panic", 1, nil)
	if !errors.As(err, &re) || !strings.Contains(re.Msg, "handler bug") {
		t.Fatalf("panic: %v", err)
	}
	resp, err := c.Call(ctx, srv.Addr(), "empty", 1, []byte("x"))
	if err != nil || len(resp) != 0 {
		t.Fatalf("empty = %q, %v", resp, err)
	}
	_, err = c.Call(ctx, srv.Addr(), "nope", 1, nil)
	if !errors.Is(err, transport.ErrUnknownService) || errors.As(err, &re) {
		t.Fatalf("unknown service: %v, want ErrUnknownService and no RemoteError", err)
	}

	// Removing a service makes it unknown; registering it again revives it.
	srv.RegisterService("empty", nil)
	if _, err := c.Call(ctx, srv.Addr(), "empty", 1, nil); !errors.Is(err, transport.ErrUnknownService) {
		t.Fatalf("removed service: %v", err)
	}
	srv.RegisterService("empty", echo)
	if _, err := c.Call(ctx, srv.Addr(), "empty", 1, nil); err != nil {
		t.Fatalf("re-registered service: %v", err)
	}
}

// blocker is a service whose handlers block until their context ends, and
// report that they saw it end.
type blocker struct {
	started, ended chan struct{}
}

func newBlocker() *blocker {
	return &blocker{started: make(chan struct{}, 16), ended: make(chan struct{}, 16)}
}

func (b *blocker) handle(ctx context.Context, _ uint64, _ []byte) ([]byte, error) {
	b.started <- struct{}{}
	<-ctx.Done()
	b.ended <- struct{}{}
	return nil, ctx.Err()
}

func TestServiceHandlerCancelledWhenConnectionCloses(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newTransport(t, tcp.Options{}, &testutil.Recorder{})
	b := newBlocker()
	srv.RegisterService("block", b.handle)
	c := tcp.NewClient(tcp.ClientOptions{})
	defer c.Close()

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, srv.Addr(), "block", 1, nil)
		errc <- err
	}()
	<-b.started
	// Abandoning the call does not stop the handler: only the connection's
	// end does.
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	select {
	case <-b.ended:
		t.Fatal("handler ended while its connection was open")
	default:
	}
	c.Close()
	<-b.ended
}

func TestClientFailsFastWhenServerCloses(t *testing.T) {
	testutil.CheckLeaks(t)
	srv, err := tcp.New(tcp.Options{Addr: "127.0.0.1:0"}, &testutil.Recorder{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() }) // in case the test stops before its own Close
	addr := srv.Addr()
	b := newBlocker()
	srv.RegisterService("block", b.handle)
	c := newClient(t, tcp.ClientOptions{})

	errc := make(chan error, 3)
	ctx := ctxTimeout(t, time.Minute)
	for range 3 {
		go func() {
			_, err := c.Call(ctx, addr, "block", 1, nil)
			errc <- err
		}()
	}
	for range 3 {
		<-b.started
	}
	// Close waits for the handlers, which end because their connection's
	// context does; the calls must then fail at once, not at their
	// minute-long deadline.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-errc; !errors.Is(err, tcp.ErrConnectionLost) {
			t.Fatalf("in-flight call: %v, want ErrConnectionLost", err)
		}
	}
	// Nothing listens any more: the next call cannot connect.
	if _, err := c.Call(ctxTimeout(t, 10*time.Second), addr, "block", 1, nil); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("call to a closed server: %v, want ErrUnreachable", err)
	}

	// A server on the same port again: the client redials.
	srv2 := newTransport(t, tcp.Options{Addr: addr}, &testutil.Recorder{})
	srv2.RegisterService("echo", echo)
	if resp, err := c.Call(ctxTimeout(t, 10*time.Second), addr, "echo", 2, []byte("again")); err != nil || string(resp) != "group 2: again" {
		t.Fatalf("call after restart = %q, %v", resp, err)
	}
}

func TestClientCloseFailsCalls(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newTransport(t, tcp.Options{}, &testutil.Recorder{})
	b := newBlocker()
	srv.RegisterService("block", b.handle)
	c := tcp.NewClient(tcp.ClientOptions{})

	errc := make(chan error, 1)
	ctx := ctxTimeout(t, time.Minute)
	go func() {
		_, err := c.Call(ctx, srv.Addr(), "block", 1, nil)
		errc <- err
	}()
	<-b.started
	c.Close()
	if err := <-errc; !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("call in flight at Close: %v, want ErrClosed", err)
	}
	if _, err := c.Call(context.Background(), srv.Addr(), "block", 1, nil); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("call after Close: %v, want ErrClosed", err)
	}
	<-b.ended
}

func TestClientRequestLimits(t *testing.T) {
	testutil.CheckLeaks(t)
	c := newClient(t, tcp.ClientOptions{MaxFrameSize: 100})
	ctx := ctxTimeout(t, 10*time.Second)
	if _, err := c.Call(ctx, "127.0.0.1:1", "svc", 1, make([]byte, 200)); !errors.Is(err, transport.ErrFrameTooLarge) {
		t.Fatalf("oversized request: %v", err)
	}
	if _, err := c.Call(ctx, "127.0.0.1:1", "", 1, nil); err == nil {
		t.Fatal("call with an empty service name succeeded")
	}
}

func TestServiceResponseOverLimit(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := newTransport(t, tcp.Options{MaxFrameSize: 1024}, &testutil.Recorder{})
	srv.RegisterService("big", func(context.Context, uint64, []byte) ([]byte, error) {
		return make([]byte, 4096), nil
	})
	c := newClient(t, tcp.ClientOptions{})
	_, err := c.Call(ctxTimeout(t, 10*time.Second), srv.Addr(), "big", 1, nil)
	var re *transport.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("oversized response: %v, want a RemoteError", err)
	}
}

// TestServicesAndRaftShareAPort runs calls while raft traffic flows to the
// same transport, and registers services while calls run.
func TestServicesAndRaftShareAPort(t *testing.T) {
	testutil.CheckLeaks(t)
	ra := &testutil.Recorder{}
	srv := newTransport(t, tcp.Options{}, ra)
	peer := newTransport(t, tcp.Options{}, &testutil.Recorder{})
	c := newClient(t, tcp.ClientOptions{})
	ctx := ctxTimeout(t, 10*time.Second)
	srv.RegisterService("echo", echo)

	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 50 {
			srv.RegisterService(fmt.Sprintf("svc%d", i), echo)
		}
	})
	wg.Go(func() { sendAll(t, peer, 2, []string{srv.Addr()}, []uint64{1}, 100) })
	for i := range 50 {
		if _, err := c.Call(ctx, srv.Addr(), "echo", 1, fmt.Append(nil, i)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	testutil.WaitFor(t, 10*time.Second, "raft messages", func() bool { return ra.Count() == 100 })
	checkOrdered(t, ra, []uint64{2}, []uint64{1}, 100)
	if _, err := c.Call(ctx, srv.Addr(), "svc49", 1, nil); err != nil {
		t.Fatal(err)
	}
}

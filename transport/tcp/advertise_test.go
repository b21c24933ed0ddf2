package tcp_test

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/transport/tcp"
)

// forwarder relays every connection accepted on a loopback port to target,
// standing in for a proxy or NAT between peers. It closes with the test.
func forwarder(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(out, in); out.Close() }()
			go func() { defer wg.Done(); io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// A host behind a forwarder advertises the forwarder's address: peers dial
// that, through their DialContext, and its Hellos name it.
func TestAdvertiseAddrAndDialContext(t *testing.T) {
	testutil.CheckLeaks(t)
	ra, rb := &testutil.Recorder{}, &testutil.Recorder{}
	listen := freeAddr(t)
	fwd := forwarder(t, listen)
	a := newTransport(t, tcp.Options{Addr: listen, AdvertiseAddr: fwd}, ra)
	if a.Addr() != fwd {
		t.Fatalf("Addr() = %s, want the advertised %s", a.Addr(), fwd)
	}

	var dialed atomic.Value
	sink := newLogSink(t)
	b := newTransport(t, tcp.Options{
		Logger: sloggerFor(sink),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed.Store(addr)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}, rb)
	sendUntil(t, b, a.Addr(), 1, msg(2, 1, "to a"), func() bool { return ra.Has(1, 1) })
	if got, _ := dialed.Load().(string); got != fwd {
		t.Fatalf("b dialed %q, want %q through its DialContext", got, fwd)
	}

	// a's Hello to b names the advertised address: b logs it as the peer
	// when a's connection closes.
	sendUntil(t, a, b.Addr(), 1, msg(1, 1, "to b"), func() bool { return rb.Has(1, 1) })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "b to log the closed connection", func() bool {
		_, ok := sink.find("connection closed", "peer="+fwd)
		return ok
	})
}

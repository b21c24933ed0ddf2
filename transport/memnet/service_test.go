package memnet_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/memnet"
)

type notLeader struct{}

func (notLeader) Error() string                           { return "not leader" }
func (notLeader) WireError() (code uint16, leader string) { return 1, "b" }

func TestCall(t *testing.T) {
	testutil.CheckLeaks(t)
	n := newNet(t, 1)
	a := listen(t, n, "a", &testutil.Recorder{})
	a.RegisterService("echo", func(_ context.Context, g uint64, req []byte) ([]byte, error) {
		resp := fmt.Appendf(nil, "%d:%s", g, req)
		req[0] = 'X' // the handler owns its copy
		return resp, nil
	})
	a.RegisterService("redirect", func(context.Context, uint64, []byte) ([]byte, error) {
		return nil, fmt.Errorf("propose: %w", notLeader{})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			req := fmt.Appendf(nil, "r%d", i)
			resp, err := n.Call(ctx, "a", "echo", 3, req)
			if want := fmt.Sprintf("3:r%d", i); err != nil || string(resp) != want || req[0] != 'r' {
				t.Errorf("call %d = %q, %v (req now %q)", i, resp, err, req)
			}
		})
	}
	wg.Wait()

	_, err := n.Call(ctx, "a", "redirect", 1, nil)
	var re *transport.RemoteError
	if !errors.As(err, &re) || re.Code != 1 || re.Leader != "b" || re.Msg != "propose: not leader" {
		t.Fatalf("redirect: %v", err)
	}
	if _, err := n.Call(ctx, "a", "missing", 1, nil); !errors.Is(err, transport.ErrUnknownService) {
		t.Fatalf("unknown service: %v", err)
	}
	if _, err := n.Call(ctx, "nowhere", "echo", 1, nil); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("unknown address: %v", err)
	}
	n.Isolate("a")
	if _, err := n.Call(ctx, "a", "echo", 1, []byte("x")); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("isolated endpoint: %v", err)
	}
}

func TestCallFailsFastWhenEndpointCloses(t *testing.T) {
	testutil.CheckLeaks(t)
	n := newNet(t, 1)
	a := listen(t, n, "a", &testutil.Recorder{})
	started, ended := make(chan struct{}, 2), make(chan struct{}, 2)
	a.RegisterService("block", func(ctx context.Context, _ uint64, _ []byte) ([]byte, error) {
		started <- struct{}{}
		<-ctx.Done()
		ended <- struct{}{}
		return nil, ctx.Err()
	})

	// An abandoned call leaves its handler running, as over TCP.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 2)
	go func() {
		_, err := n.Call(ctx, "a", "block", 1, nil)
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}

	go func() {
		_, err := n.Call(context.Background(), "a", "block", 1, nil)
		errc <- err
	}()
	<-started
	a.Close()
	if err := <-errc; !errors.Is(err, memnet.ErrConnectionLost) {
		t.Fatalf("in-flight call at Close: %v", err)
	}
	<-ended
	<-ended
	if _, err := n.Call(context.Background(), "a", "block", 1, nil); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("call to a closed endpoint: %v", err)
	}
}

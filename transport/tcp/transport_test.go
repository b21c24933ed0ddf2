package tcp_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/transport/tcp"
)

// checkOrdered checks that r received, from each sender in froms and on each
// group in groups, messages with indexes 1..n in order.
func checkOrdered(t *testing.T, r *testutil.Recorder, froms, groups []uint64, n int) {
	t.Helper()
	next := map[[2]uint64]uint64{}
	for _, d := range r.All() {
		key := [2]uint64{d.Msg.From, d.Group}
		next[key]++
		if d.Msg.Index != next[key] {
			t.Fatalf("from %d group %d: got index %d, want %d", d.Msg.From, d.Group, d.Msg.Index, next[key])
		}
		want := fmt.Sprintf("from %d group %d index %d", d.Msg.From, d.Group, d.Msg.Index)
		if len(d.Msg.Entries) != 1 || string(d.Msg.Entries[0].Data) != want {
			t.Fatalf("from %d group %d index %d: entries %+v, want data %q", d.Msg.From, d.Group, d.Msg.Index, d.Msg.Entries, want)
		}
	}
	for _, from := range froms {
		for _, g := range groups {
			if got := next[[2]uint64{from, g}]; got != uint64(n) {
				t.Fatalf("from %d group %d: %d messages, want %d", from, g, got, n)
			}
		}
	}
}

// sendAll sends n messages on every group from tr to each of the addrs,
// interleaving groups, and reuses one message value throughout: Send must
// have encoded it before returning. It reports with t.Errorf, so it may run
// on goroutines of its own.
func sendAll(t *testing.T, tr *tcp.Transport, from uint64, addrs []string, groups []uint64, n int) {
	t.Helper()
	m := &raftpb.Message{Type: raftpb.MsgApp, From: from, Term: 1, Entries: make([]raftpb.Entry, 1)}
	for i := 1; i <= n; i++ {
		for _, g := range groups {
			for _, addr := range addrs {
				m.Index = uint64(i)
				m.Entries[0].Data = fmt.Appendf(m.Entries[0].Data[:0], "from %d group %d index %d", from, g, i)
				if !tr.Send(addr, g, m) {
					t.Errorf("Send %d to %s group %d returned false", i, addr, g)
					return
				}
			}
		}
	}
}

func TestTwoHostsExchangeInOrder(t *testing.T) {
	testutil.CheckLeaks(t)
	ra, rb := &testutil.Recorder{}, &testutil.Recorder{}
	a := newTransport(t, tcp.Options{}, ra)
	b := newTransport(t, tcp.Options{}, rb)
	groups := []uint64{1, 2, 77}
	const n = 200
	sendAll(t, a, 1, []string{b.Addr()}, groups, n)
	sendAll(t, b, 2, []string{a.Addr()}, groups, n)
	testutil.WaitFor(t, 10*time.Second, "all messages", func() bool { return ra.Count() == n*len(groups) && rb.Count() == n*len(groups) })
	checkOrdered(t, rb, []uint64{1}, groups, n)
	checkOrdered(t, ra, []uint64{2}, groups, n)

	want := n*uint64(len(groups)) + 1 // and the Hello
	testutil.WaitFor(t, 10*time.Second, "writes to be counted", func() bool { return a.Stats().FramesOut == want })
	st := a.Stats()
	if st.Dials != 1 || st.Accepted != 1 {
		t.Fatalf("a dialed %d and accepted %d connections, want 1 and 1", st.Dials, st.Accepted)
	}
	if st.FramesIn != want {
		t.Fatalf("a received %d frames, want %d", st.FramesIn, want)
	}
	if st.BytesOut == 0 || st.BytesOut != b.Stats().BytesIn {
		t.Fatalf("a sent %d bytes, b received %d", st.BytesOut, b.Stats().BytesIn)
	}
}

func TestThreeHostsExchangeInOrder(t *testing.T) {
	testutil.CheckLeaks(t)
	recs := []*testutil.Recorder{{}, {}, {}}
	var trs []*tcp.Transport
	for _, r := range recs {
		trs = append(trs, newTransport(t, tcp.Options{}, r))
	}
	groups := []uint64{1, 2, 3, 4}
	const n = 100
	done := make(chan struct{})
	for i, tr := range trs {
		var others []string
		for j, o := range trs {
			if j != i {
				others = append(others, o.Addr())
			}
		}
		go func() {
			defer func() { done <- struct{}{} }()
			sendAll(t, tr, uint64(i+1), others, groups, n)
		}()
	}
	for range trs {
		<-done
	}
	for i, r := range recs {
		testutil.WaitFor(t, 10*time.Second, "all messages", func() bool { return r.Count() == 2*n*len(groups) })
		var froms []uint64
		for j := range trs {
			if j != i {
				froms = append(froms, uint64(j+1))
			}
		}
		checkOrdered(t, r, froms, groups, n)
	}
}

// gatedDialer blocks every dial until the gate opens, so a test can queue
// messages while the first connection is being made.
func gatedDialer(gate <-chan struct{}) tcp.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

func TestSendsAreBatched(t *testing.T) {
	testutil.CheckLeaks(t)
	gate := make(chan struct{})
	rb := &testutil.Recorder{}
	a := newTransport(t, tcp.Options{DialContext: gatedDialer(gate)}, &testutil.Recorder{})
	b := newTransport(t, tcp.Options{}, rb)
	const n = 1000
	for i := 1; i <= n; i++ {
		if !a.Send(b.Addr(), 1, msg(1, uint64(i), "x")) {
			t.Fatalf("Send %d returned false", i)
		}
	}
	close(gate)
	testutil.WaitFor(t, 10*time.Second, "all messages", func() bool { return rb.Count() == n })
	// The sender counts a write once Write returns, which may be after the
	// receiver has the data.
	testutil.WaitFor(t, 10*time.Second, "the write to be counted", func() bool { return a.Stats().FramesOut == n+1 })
	// The writer was held in its dial while every Send queued, so the Hello
	// and all n messages leave in a single write.
	if st := a.Stats(); st.Writes != 1 || st.FramesOut != n+1 {
		t.Fatalf("%d frames in %d writes, want %d in 1", st.FramesOut, st.Writes, n+1)
	}
	for i, d := range rb.All() {
		if d.Msg.Index != uint64(i+1) {
			t.Fatalf("message %d has index %d", i, d.Msg.Index)
		}
	}
}

func TestQueueBudget(t *testing.T) {
	testutil.CheckLeaks(t)
	gate := make(chan struct{})
	rb := &testutil.Recorder{}
	a := newTransport(t, tcp.Options{DialContext: gatedDialer(gate), MaxQueueBytes: 1000}, &testutil.Recorder{})
	b := newTransport(t, tcp.Options{}, rb)
	body := strings.Repeat("x", 300)
	accepted := 0
	for i := 1; i <= 10; i++ {
		if a.Send(b.Addr(), 1, msg(1, uint64(i), body)) {
			accepted++
		}
	}
	if accepted != 3 {
		t.Fatalf("%d of 10 ~320-byte messages accepted into a 1000-byte queue, want 3", accepted)
	}
	if st := a.Stats(); st.DroppedSends != 7 {
		t.Fatalf("DroppedSends = %d, want 7", st.DroppedSends)
	}
	close(gate)
	testutil.WaitFor(t, 10*time.Second, "queued messages", func() bool { return rb.Count() == accepted })
}

func TestOversizeMessageDropped(t *testing.T) {
	testutil.CheckLeaks(t)
	a := newTransport(t, tcp.Options{MaxFrameSize: 1024}, &testutil.Recorder{})
	if a.Send(freeAddr(t), 1, msg(1, 1, strings.Repeat("x", 2000))) {
		t.Fatal("Send of a message over MaxFrameSize returned true")
	}
	if st := a.Stats(); st.DroppedSends != 1 || st.Dials != 0 {
		t.Fatalf("stats %+v, want one dropped send and no dial", st)
	}
}

func TestReconnectAfterPeerRestart(t *testing.T) {
	testutil.CheckLeaks(t)
	a := newTransport(t, tcp.Options{BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond}, &testutil.Recorder{})
	rb := &testutil.Recorder{}
	b, err := tcp.New(tcp.Options{Addr: "127.0.0.1:0"}, rb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() }) // in case the test stops before its own Close
	addr := b.Addr()
	sendUntil(t, a, addr, 1, msg(1, 1, ""), func() bool { return rb.Has(1, 1) })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	rb2 := &testutil.Recorder{}
	newTransport(t, tcp.Options{Addr: addr}, rb2)
	sendUntil(t, a, addr, 1, msg(1, 2, ""), func() bool { return rb2.Has(1, 2) })
	if st := a.Stats(); st.Dials < 2 {
		t.Fatalf("Dials = %d, want a redial", st.Dials)
	}
}

func TestBackoffDropsThenRecovers(t *testing.T) {
	testutil.CheckLeaks(t)
	const backoff = 200 * time.Millisecond
	a := newTransport(t, tcp.Options{BackoffMin: backoff, BackoffMax: backoff}, &testutil.Recorder{})
	addr := freeAddr(t)

	// The first Send queues and triggers the dial; once it has failed,
	// Sends are refused for the backoff.
	if !a.Send(addr, 1, msg(1, 1, "")) {
		t.Fatal("first Send returned false")
	}
	testutil.WaitFor(t, 10*time.Second, "a failed dial", func() bool { return a.Stats().DialFailures == 1 })
	if a.Send(addr, 1, msg(1, 2, "")) {
		t.Fatal("Send during backoff returned true")
	}
	if st := a.Stats(); st.DroppedSends != 1 || st.DroppedQueued != 1 {
		t.Fatalf("DroppedSends %d DroppedQueued %d, want 1 and 1", st.DroppedSends, st.DroppedQueued)
	}

	rb := &testutil.Recorder{}
	newTransport(t, tcp.Options{Addr: addr}, rb)
	sendUntil(t, a, addr, 1, msg(1, 3, ""), func() bool { return rb.Has(1, 3) })
}

func TestHandlerErrorDisconnects(t *testing.T) {
	testutil.CheckLeaks(t)
	logs := newLogSink(t)
	refuse := errors.New("no such group")
	ra := &testutil.Recorder{Reject: func(g uint64) error {
		if g == 99 {
			return refuse
		}
		return nil
	}}
	a := newTransport(t, tcp.Options{Logger: sloggerFor(logs)}, ra)
	b := newTransport(t, tcp.Options{BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond}, &testutil.Recorder{})

	b.Send(a.Addr(), 99, msg(2, 1, ""))
	testutil.WaitFor(t, 10*time.Second, "the handler disconnect", func() bool { return a.Stats().Disconnects.Handler == 1 })
	testutil.WaitFor(t, 10*time.Second, "a warning about the handler error", func() bool {
		_, ok := logs.find("WARN", "reason=handler error", "no such group", "remote=")
		return ok
	})
	// b notices the broken connection on a later write, backs off and
	// reconnects.
	sendUntil(t, b, a.Addr(), 1, msg(2, 2, ""), func() bool { return ra.Has(1, 2) })
}

func TestCloseIsFinal(t *testing.T) {
	testutil.CheckLeaks(t)
	rb := &testutil.Recorder{}
	a, err := tcp.New(tcp.Options{Addr: "127.0.0.1:0"}, &testutil.Recorder{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() }) // in case the test stops before its own Close
	b := newTransport(t, tcp.Options{}, rb)
	sendUntil(t, a, b.Addr(), 1, msg(1, 1, ""), func() bool { return rb.Has(1, 1) })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if a.Send(b.Addr(), 1, msg(1, 2, "")) {
		t.Fatal("Send after Close returned true")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, opts := range []tcp.Options{
		{Addr: "127.0.0.1:0", BackoffMin: 2e9, BackoffMax: 1e9},
		{Addr: "127.0.0.1:0", MaxFrameSize: -1},
		{Addr: "127.0.0.1:0", WriteTimeout: -1},
		{Addr: "not an address"},
	} {
		if tr, err := tcp.New(opts, &testutil.Recorder{}); err == nil {
			tr.Close()
			t.Errorf("New(%+v) succeeded", opts)
		}
	}
	if _, err := tcp.New(tcp.Options{Addr: "127.0.0.1:0"}, nil); err == nil {
		t.Error("New with a nil handler succeeded")
	}
}

// counter is a Handler that only counts, for benchmarks.
type counter struct{ n atomic.Int64 }

func (c *counter) HandleRaft(uint64, *raftpb.Message) error { c.n.Add(1); return nil }

func BenchmarkSend(b *testing.B) {
	rb := &counter{}
	a, err := tcp.New(tcp.Options{Addr: "127.0.0.1:0"}, &testutil.Recorder{})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	dst, err := tcp.New(tcp.Options{Addr: "127.0.0.1:0"}, rb)
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Close()
	m := msg(1, 1, strings.Repeat("x", 100))
	b.ReportAllocs()
	sent := 0
	for b.Loop() {
		if a.Send(dst.Addr(), 1, m) {
			sent++
		}
	}
	b.StopTimer()
	deadline := time.Now().Add(10 * time.Second)
	for rb.n.Load() < int64(sent) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	st := a.Stats()
	b.ReportMetric(float64(st.FramesOut)/float64(max(st.Writes, 1)), "frames/write")
	b.ReportMetric(float64(st.DroppedSends)/float64(max(st.DroppedSends+uint64(sent), 1)), "dropped-fraction")
}

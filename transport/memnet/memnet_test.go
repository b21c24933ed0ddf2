package memnet_test

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/memnet"
)

// checkLeaks fails t if, after the cleanups registered after it, more
// goroutines live than when it was called. Call it first in a test.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines leaked:\n%s", buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type delivered struct {
	group uint64
	m     raftpb.Message
}

type recorder struct {
	mu     sync.Mutex
	got    []delivered
	reject func(group uint64) error
}

func (r *recorder) HandleRaft(group uint64, m *raftpb.Message) error {
	if r.reject != nil {
		if err := r.reject(group); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.got = append(r.got, delivered{group, *m})
	r.mu.Unlock()
	return nil
}

func (r *recorder) all() []delivered {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) count() int { return len(r.all()) }

func (r *recorder) has(group, index uint64) bool {
	return slices.ContainsFunc(r.all(), func(d delivered) bool { return d.group == group && d.m.Index == index })
}

func newNet(t *testing.T, seed int64) *memnet.Network {
	n := memnet.New(seed)
	t.Cleanup(func() { n.Close() })
	return n
}

func listen(t *testing.T, n *memnet.Network, addr string, h transport.Handler) *memnet.Endpoint {
	t.Helper()
	e, err := n.Listen(addr, h)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func msg(from, index uint64) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgApp, From: from, Index: index,
		Entries: []raftpb.Entry{{Index: index + 1, Data: fmt.Appendf(nil, "%d/%d", from, index)}}}
}

func TestDeliveryInOrderAcrossGroups(t *testing.T) {
	checkLeaks(t)
	n := newNet(t, 1)
	addrs := []string{"a", "b", "c"}
	recs := map[string]*recorder{}
	eps := map[string]*memnet.Endpoint{}
	for _, a := range addrs {
		recs[a] = &recorder{}
		eps[a] = listen(t, n, a, recs[a])
	}
	const perGroup = 200
	groups := []uint64{1, 2, 3}
	var wg sync.WaitGroup
	for i, from := range addrs {
		wg.Go(func() {
			m := msg(uint64(i+1), 0) // reused: Send must copy it
			for idx := uint64(1); idx <= perGroup; idx++ {
				for _, g := range groups {
					for _, to := range addrs {
						if to == from {
							continue
						}
						m.Index = idx
						m.Entries[0].Data = fmt.Appendf(m.Entries[0].Data[:0], "%d/%d", i+1, idx)
						if !eps[from].Send(to, g, m) {
							t.Errorf("Send %s->%s returned false", from, to)
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()
	for _, a := range addrs {
		r := recs[a]
		waitFor(t, "every message", func() bool { return r.count() == 2*perGroup*len(groups) })
		next := map[[2]uint64]uint64{}
		for _, d := range r.all() {
			key := [2]uint64{d.m.From, d.group}
			next[key]++
			want := fmt.Sprintf("%d/%d", d.m.From, next[key])
			if d.m.Index != next[key] || string(d.m.Entries[0].Data) != want {
				t.Fatalf("%s: from %d group %d got index %d data %q, want %d %q",
					a, d.m.From, d.group, d.m.Index, d.m.Entries[0].Data, next[key], want)
			}
		}
	}
}

func TestMessagesAreDeepCopies(t *testing.T) {
	checkLeaks(t)
	n := newNet(t, 1)
	rb := &recorder{}
	a := listen(t, n, "a", &recorder{})
	listen(t, n, "b", rb)
	m := msg(1, 1)
	m.Snapshot = &raftpb.SnapshotMeta{Index: 5, ConfState: raftpb.ConfState{Voters: []uint64{1, 2}}}
	a.Send("b", 1, m)
	a.Send("b", 1, m)
	m.Entries[0].Data[0] = 'X'
	m.Snapshot.ConfState.Voters[0] = 99
	waitFor(t, "both copies", func() bool { return rb.count() == 2 })
	got := rb.all()
	got[0].m.Entries[0].Data[0] = 'Y'
	d := got[1].m
	if string(d.Entries[0].Data) != "1/1" || d.Snapshot.ConfState.Voters[0] != 1 {
		t.Fatalf("delivered message shares memory: %+v", d)
	}
}

func TestPartitionIsolateAndHeal(t *testing.T) {
	checkLeaks(t)
	n := newNet(t, 1)
	ra, rb, rc := &recorder{}, &recorder{}, &recorder{}
	a := listen(t, n, "a", ra)
	b := listen(t, n, "b", rb)
	listen(t, n, "c", rc)

	n.Partition("a", "b")
	if a.Send("b", 1, msg(1, 1)) || b.Send("a", 1, msg(2, 1)) {
		t.Fatal("Send across a partition returned true")
	}
	if !a.Send("c", 1, msg(1, 1)) {
		t.Fatal("Send outside the partition returned false")
	}
	n.Isolate("c")
	if a.Send("c", 1, msg(1, 2)) {
		t.Fatal("Send to an isolated endpoint returned true")
	}
	if !a.Send("a", 1, msg(1, 1)) {
		t.Fatal("an endpoint cannot reach itself")
	}
	n.Heal()
	if !a.Send("b", 1, msg(1, 3)) || !b.Send("a", 1, msg(2, 3)) || !a.Send("c", 1, msg(1, 3)) {
		t.Fatal("Send after Heal returned false")
	}
	waitFor(t, "messages after heal", func() bool { return rb.has(1, 3) && ra.has(1, 3) && rc.has(1, 3) })
	if rb.has(1, 1) || rc.has(1, 2) {
		t.Fatal("a message crossed a cut")
	}
}

// TestDropRateIsSeeded sends from one goroutine, so the seeded source makes
// the same choices on every run.
func TestDropRateIsSeeded(t *testing.T) {
	checkLeaks(t)
	run := func(seed int64) []uint64 {
		n := memnet.New(seed)
		defer n.Close()
		rb := &recorder{}
		a := listen(t, n, "a", &recorder{})
		listen(t, n, "b", rb)
		n.SetDropRate(0.3)
		const total = 1000
		for i := uint64(1); i <= total; i++ {
			if !a.Send("b", 1, msg(1, i)) {
				t.Fatalf("lossy Send returned false")
			}
		}
		// Mark the end with a message sent without loss.
		n.SetDropRate(0)
		a.Send("b", 1, msg(1, total+1))
		waitFor(t, "the last message", func() bool { return rb.has(1, total+1) })
		var got []uint64
		for _, d := range rb.all() {
			got = append(got, d.m.Index)
		}
		return got
	}
	first, again, other := run(7), run(7), run(8)
	if !slices.Equal(first, again) {
		t.Fatal("the same seed dropped different messages")
	}
	if slices.Equal(first, other) {
		t.Fatal("different seeds dropped the same messages")
	}
	if kept := len(first) - 1; kept < 600 || kept > 800 {
		t.Fatalf("kept %d of 1000 messages at a 30%% drop rate", kept)
	}
}

func TestClosedEndpoint(t *testing.T) {
	checkLeaks(t)
	n := newNet(t, 1)
	a := listen(t, n, "a", &recorder{})
	b := listen(t, n, "b", &recorder{})
	a.Send("b", 1, msg(1, 1))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if a.Send("b", 1, msg(1, 2)) || b.Send("a", 1, msg(2, 1)) {
		t.Fatal("Send to or from a closed endpoint returned true")
	}
	rb := &recorder{}
	listen(t, n, "b", rb)
	a.Send("b", 1, msg(1, 3))
	waitFor(t, "delivery to the new endpoint", func() bool { return rb.has(1, 3) })
}

func TestListenErrors(t *testing.T) {
	checkLeaks(t)
	n := memnet.New(1)
	listen(t, n, "a", &recorder{})
	if _, err := n.Listen("a", &recorder{}); err == nil {
		t.Fatal("Listen on a taken address succeeded")
	}
	if _, err := n.Listen("", &recorder{}); err == nil {
		t.Fatal("Listen on an empty address succeeded")
	}
	n.Close()
	if _, err := n.Listen("b", &recorder{}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Listen after Close: %v", err)
	}
}

func TestHandlerErrorDropsQueue(t *testing.T) {
	checkLeaks(t)
	n := newNet(t, 1)
	var mu sync.Mutex
	rejected := 0
	rb := &recorder{reject: func(g uint64) error {
		if g != 99 {
			return nil
		}
		mu.Lock()
		rejected++
		mu.Unlock()
		return errors.New("unknown group")
	}}
	a := listen(t, n, "a", &recorder{})
	listen(t, n, "b", rb)
	a.Send("b", 99, msg(1, 1))
	waitFor(t, "the rejection", func() bool { mu.Lock(); defer mu.Unlock(); return rejected == 1 })
	a.Send("b", 1, msg(1, 2))
	waitFor(t, "a later message", func() bool { return rb.has(1, 2) })
}

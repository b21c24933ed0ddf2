package memnet_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/memnet"
)

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
	testutil.CheckLeaks(t)
	n := newNet(t, 1)
	addrs := []string{"a", "b", "c"}
	recs := map[string]*testutil.Recorder{}
	eps := map[string]*memnet.Endpoint{}
	for _, a := range addrs {
		recs[a] = &testutil.Recorder{}
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
		testutil.WaitFor(t, 10*time.Second, "every message", func() bool { return r.Count() == 2*perGroup*len(groups) })
		next := map[[2]uint64]uint64{}
		for _, d := range r.All() {
			key := [2]uint64{d.Msg.From, d.Group}
			next[key]++
			want := fmt.Sprintf("%d/%d", d.Msg.From, next[key])
			if d.Msg.Index != next[key] || string(d.Msg.Entries[0].Data) != want {
				t.Fatalf("%s: from %d group %d got index %d data %q, want %d %q",
					a, d.Msg.From, d.Group, d.Msg.Index, d.Msg.Entries[0].Data, next[key], want)
			}
		}
	}
}

func TestMessagesAreDeepCopies(t *testing.T) {
	testutil.CheckLeaks(t)
	n := newNet(t, 1)
	rb := &testutil.Recorder{}
	a := listen(t, n, "a", &testutil.Recorder{})
	listen(t, n, "b", rb)
	m := msg(1, 1)
	m.Snapshot = &raftpb.SnapshotMeta{Index: 5, ConfState: raftpb.ConfState{Voters: []uint64{1, 2}}}
	a.Send("b", 1, m)
	a.Send("b", 1, m)
	m.Entries[0].Data[0] = 'X'
	m.Snapshot.ConfState.Voters[0] = 99
	testutil.WaitFor(t, 10*time.Second, "both copies", func() bool { return rb.Count() == 2 })
	got := rb.All()
	got[0].Msg.Entries[0].Data[0] = 'Y'
	d := got[1].Msg
	if string(d.Entries[0].Data) != "1/1" || d.Snapshot.ConfState.Voters[0] != 1 {
		t.Fatalf("delivered message shares memory: %+v", d)
	}
}

func TestPartitionIsolateAndHeal(t *testing.T) {
	testutil.CheckLeaks(t)
	n := newNet(t, 1)
	ra, rb, rc := &testutil.Recorder{}, &testutil.Recorder{}, &testutil.Recorder{}
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
	testutil.WaitFor(t, 10*time.Second, "messages after heal", func() bool { return rb.Has(1, 3) && ra.Has(1, 3) && rc.Has(1, 3) })
	if rb.Has(1, 1) || rc.Has(1, 2) {
		t.Fatal("a message crossed a cut")
	}
}

// TestDropRateIsSeeded sends from one goroutine, so the seeded source makes
// the same choices on every run.
func TestDropRateIsSeeded(t *testing.T) {
	testutil.CheckLeaks(t)
	run := func(seed int64) []uint64 {
		n := memnet.New(seed)
		defer n.Close()
		rb := &testutil.Recorder{}
		a := listen(t, n, "a", &testutil.Recorder{})
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
		testutil.WaitFor(t, 10*time.Second, "the last message", func() bool { return rb.Has(1, total+1) })
		var got []uint64
		for _, d := range rb.All() {
			got = append(got, d.Msg.Index)
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
	testutil.CheckLeaks(t)
	n := newNet(t, 1)
	a := listen(t, n, "a", &testutil.Recorder{})
	b := listen(t, n, "b", &testutil.Recorder{})
	a.Send("b", 1, msg(1, 1))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if a.Send("b", 1, msg(1, 2)) || b.Send("a", 1, msg(2, 1)) {
		t.Fatal("Send to or from a closed endpoint returned true")
	}
	rb := &testutil.Recorder{}
	listen(t, n, "b", rb)
	a.Send("b", 1, msg(1, 3))
	testutil.WaitFor(t, 10*time.Second, "delivery to the new endpoint", func() bool { return rb.Has(1, 3) })
}

func TestListenErrors(t *testing.T) {
	testutil.CheckLeaks(t)
	n := memnet.New(1)
	listen(t, n, "a", &testutil.Recorder{})
	if _, err := n.Listen("a", &testutil.Recorder{}); err == nil {
		t.Fatal("Listen on a taken address succeeded")
	}
	if _, err := n.Listen("", &testutil.Recorder{}); err == nil {
		t.Fatal("Listen on an empty address succeeded")
	}
	n.Close()
	if _, err := n.Listen("b", &testutil.Recorder{}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Listen after Close: %v", err)
	}
}

func TestHandlerErrorDropsQueue(t *testing.T) {
	testutil.CheckLeaks(t)
	n := newNet(t, 1)
	var mu sync.Mutex
	rejected := 0
	rb := &testutil.Recorder{Reject: func(g uint64) error {
		if g != 99 {
			return nil
		}
		mu.Lock()
		rejected++
		mu.Unlock()
		return errors.New("unknown group")
	}}
	a := listen(t, n, "a", &testutil.Recorder{})
	listen(t, n, "b", rb)
	a.Send("b", 99, msg(1, 1))
	testutil.WaitFor(t, 10*time.Second, "the rejection", func() bool { mu.Lock(); defer mu.Unlock(); return rejected == 1 })
	a.Send("b", 1, msg(1, 2))
	testutil.WaitFor(t, 10*time.Second, "a later message", func() bool { return rb.Has(1, 2) })
}

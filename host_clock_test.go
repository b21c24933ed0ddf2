package raftkit

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// After a pause the clock hands out every tick it missed, and is not
// fresh until it has.
func TestHostClockCatchesUpAfterAPause(t *testing.T) {
	c := newHostClock(10*time.Millisecond, time.Now)
	at := func(d time.Duration) time.Time { return c.origin.Add(d) }
	if k := c.advance(at(10 * time.Millisecond)); k != 1 {
		t.Fatalf("first fire: %d ticks", k)
	}
	c.handedOut(at(10 * time.Millisecond))
	if !c.fresh(at(25 * time.Millisecond)) {
		t.Fatal("stale 15ms after a tick")
	}
	if k := c.advance(at(15 * time.Millisecond)); k != 0 {
		t.Fatalf("an early fire handed out %d ticks", k)
	}
	// Paused for 2 s: nothing handed out meanwhile.
	if c.fresh(at(2010 * time.Millisecond)) {
		t.Fatal("fresh after 2 s without ticks")
	}
	if k := c.advance(at(2010 * time.Millisecond)); k != 200 {
		t.Fatalf("after the pause: %d ticks, want the 200 missed", k)
	}
	c.handedOut(at(2010 * time.Millisecond))
	if !c.fresh(at(2011 * time.Millisecond)) {
		t.Fatal("stale right after catching up")
	}
}

// A leader whose process was paused does not answer a lease read from a
// lease the pause outlived: cut off from its followers, the read must wait
// for a heartbeat round that cannot succeed (or fail when the ticks the
// pause missed end the leadership).
func TestLeaseReadAfterPauseNeedsARound(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	var shift atomic.Int64
	c.now = func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	// A long lease (500 ticks of 2 ms, 0.9 of it) so that it is surely
	// still running when the read arrives.
	c.tune = func(o *NodeOptions) { o.ElectionTicks = 500 }
	c.startAll()
	c.applyN(0, 3, "p")
	l := c.leader(0)
	lead := c.node(l, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := lead.ReadIndex(ctx, ReadLease); err != nil {
		t.Fatalf("lease read on a healthy leader: %v", err)
	}
	c.net.Isolate(c.addrs[l])
	// A pause of the whole process, as its clock sees it: the next
	// reading is an hour on, and no tick was handed out meanwhile.
	shift.Store(int64(time.Hour))
	rctx, rcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer rcancel()
	// Either the read waits for a round it cannot finish, or the caught-up
	// ticks end the leadership (check quorum) first; it never succeeds.
	_, err := lead.ReadIndex(rctx, ReadLease)
	if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrLeaderChanged) && !errors.Is(err, ErrNotLeader) {
		t.Fatalf("lease read after a pause on a cut-off leader: %v, want it refused", err)
	}
}

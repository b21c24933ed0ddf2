package raftkit

import (
	"sync/atomic"
	"time"
)

// hostClock turns elapsed time into the logical ticks the host's groups
// run on. It counts ticks from the monotonic clock rather than from timer
// fires, so that a process that was paused (SIGSTOP, a stalled VM, a long
// GC) delivers the ticks it missed once it runs again: a leader's lease,
// counted in ticks, then ends when it should instead of outliving the
// pause (Go's time.Ticker drops the fires a paused receiver missed).
//
// Concurrency: advance is called by the ticker goroutine only; fresh is
// safe for concurrent use.
type hostClock struct {
	now       func() time.Time
	origin    time.Time // carries a monotonic reading with time.Now
	interval  time.Duration
	delivered int64        // ticks handed out so far; ticker goroutine only
	lastAt    atomic.Int64 // when ticks were last handed out, nanoseconds since origin
}

func newHostClock(interval time.Duration, now func() time.Time) *hostClock {
	return &hostClock{now: now, origin: now(), interval: interval}
}

// advance returns how many ticks are due at now and not yet handed out.
// The caller hands them out, then calls delivered(now).
func (c *hostClock) advance(now time.Time) int {
	due := int64(now.Sub(c.origin) / c.interval)
	k := due - c.delivered
	if k <= 0 {
		return 0
	}
	c.delivered = due
	return int(k)
}

// handedOut records that every tick due at now is in the groups' inboxes.
func (c *hostClock) handedOut(now time.Time) { c.lastAt.Store(int64(now.Sub(c.origin))) }

// fresh reports whether ticks were handed out within the last two tick
// intervals: if not, the ticker is behind (the process was paused, or is
// starved), and a group's count of ticks may lag real time.
func (c *hostClock) fresh(now time.Time) bool {
	return int64(now.Sub(c.origin))-c.lastAt.Load() < 2*int64(c.interval)
}

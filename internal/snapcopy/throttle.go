package snapcopy

import (
	"sync"
	"time"
)

// bucket is a token bucket of bytes that lets callers go into debt: a
// reservation always succeeds and says how long to wait before using the
// bytes, so a reservation bigger than the burst is served at the rate
// rather than never. Over any interval of length t, at most
// burst + rate·t bytes are released.
//
// Concurrency: safe for concurrent use. Time comes from the caller.
type bucket struct {
	rate  float64 // bytes per second, > 0
	burst float64 // capacity, > 0

	mu     sync.Mutex
	tokens float64 // may be negative: the debt of waiting reservations
	last   time.Time
}

// burstTime is how much of the rate the bucket holds when full: the burst
// a server idle for that long may send at once.
const burstTime = 100 * time.Millisecond

func newBucket(rate int64, now time.Time) *bucket {
	b := &bucket{rate: float64(rate), last: now}
	b.burst = max(b.rate*burstTime.Seconds(), 1)
	b.tokens = b.burst
	return b
}

// refill adds the tokens earned since the last call. Requires b.mu.
func (b *bucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
}

// reserve takes n tokens at now and returns how long the caller must wait
// before it may send the n bytes (0: at once).
func (b *bucket) reserve(now time.Time, n int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// refund returns the n tokens of a reservation its caller gave up.
func (b *bucket) refund(n int) {
	b.mu.Lock()
	b.tokens = min(b.burst, b.tokens+float64(n))
	b.mu.Unlock()
}

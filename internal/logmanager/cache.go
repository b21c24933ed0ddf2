package logmanager

import "github.com/raftkit/raftkit/raftpb"

// tailCache holds a contiguous run of the newest entries of the log, bounded
// in bytes by evicting the oldest. Entries are never modified once cached:
// slices handed out stay valid after later appends, which replace the
// backing array instead of writing into it when they truncate.
type tailCache struct {
	ents     []raftpb.Entry
	bytes    uint64
	maxBytes uint64
}

// first is the index of the first cached entry, 0 when empty.
func (c *tailCache) first() uint64 {
	if len(c.ents) == 0 {
		return 0
	}
	return c.ents[0].Index
}

// next is the index after the last cached entry, 0 when empty.
func (c *tailCache) next() uint64 {
	if len(c.ents) == 0 {
		return 0
	}
	return c.ents[len(c.ents)-1].Index + 1
}

func (c *tailCache) term(i uint64) (uint64, bool) {
	first := c.first()
	if first == 0 || i < first || i >= c.next() {
		return 0, false
	}
	return c.ents[i-first].Term, true
}

// slice returns the cached entries in [lo, hi) within maxBytes (at least
// one); lo must be cached.
func (c *tailCache) slice(lo, hi, maxBytes uint64) []raftpb.Entry {
	first := c.first()
	hi = min(hi, c.next())
	out := c.ents[lo-first : hi-first : hi-first]
	var size uint64
	for i := range out {
		size += out[i].Size()
		if size > maxBytes && i > 0 {
			return out[:i:i]
		}
	}
	return out
}

func (c *tailCache) append(ents []raftpb.Entry) {
	if len(ents) == 0 || c.maxBytes == 0 {
		return
	}
	at := ents[0].Index
	switch first, next := c.first(), c.next(); {
	case first == 0 || at > next || at <= first:
		// Empty, a gap, or a rewrite of everything cached: start afresh.
		c.ents, c.bytes = nil, 0
	case at < next:
		// A conflicting suffix: keep the prefix in a new array so slices
		// handed out earlier keep seeing the entries they saw.
		kept := c.ents[:at-first]
		c.ents = append(make([]raftpb.Entry, 0, len(kept)+len(ents)), kept...)
		c.bytes = 0
		for i := range c.ents {
			c.bytes += c.ents[i].Size()
		}
	}
	c.ents = append(c.ents, ents...)
	for i := range ents {
		c.bytes += ents[i].Size()
	}
	c.evict()
}

// evict drops the oldest entries beyond maxBytes, always keeping the newest.
func (c *tailCache) evict() {
	drop := 0
	for c.bytes > c.maxBytes && drop < len(c.ents)-1 {
		c.bytes -= c.ents[drop].Size()
		drop++
	}
	if drop == 0 {
		return
	}
	// Copy once a quarter of the array is dead, so eviction stays amortized
	// O(1) per entry and the dropped entries' data can be collected.
	c.ents = c.ents[drop:]
	if cap(c.ents) > 4*len(c.ents)+64 {
		c.ents = append([]raftpb.Entry(nil), c.ents...)
	}
}

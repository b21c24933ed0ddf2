package logmanager

import "github.com/raftkit/raftkit/raftpb"

// chunkEntries is the capacity of one cache chunk. Chunks keep appends and
// eviction O(1) per entry without ever copying the whole cache, which a
// single growing slice of hundreds of thousands of entries would.
const chunkEntries = 512

// chunk is a run of consecutive entries in an array that is never written
// below len once written: slices handed out of it stay valid.
type chunk struct {
	ents  []raftpb.Entry
	bytes uint64
}

// tailCache holds a contiguous run of the newest entries of the log in
// chunks, bounded in bytes by evicting whole chunks from the front (the
// bound may be exceeded by less than one chunk, and the newest chunk is
// always kept). Entries are never modified once cached: a conflicting
// append copies the kept part of the chunk it truncates into a new array,
// so slices handed out earlier keep seeing the entries they saw.
type tailCache struct {
	chunks   []chunk
	bytes    uint64
	maxBytes uint64
	chunkCap int // entries per chunk; 0 means chunkEntries (tests use less)
}

func (c *tailCache) capacity() int {
	if c.chunkCap > 0 {
		return c.chunkCap
	}
	return chunkEntries
}

// first is the index of the first cached entry, 0 when empty.
func (c *tailCache) first() uint64 {
	if len(c.chunks) == 0 {
		return 0
	}
	return c.chunks[0].ents[0].Index
}

// next is the index after the last cached entry, 0 when empty.
func (c *tailCache) next() uint64 {
	if len(c.chunks) == 0 {
		return 0
	}
	last := c.chunks[len(c.chunks)-1].ents
	return last[len(last)-1].Index + 1
}

// locate returns the chunk holding index i (cached) and i's offset in it.
func (c *tailCache) locate(i uint64) (int, int) {
	// Every chunk but the last is full, so the position is arithmetic.
	off := i - c.first()
	n := uint64(c.capacity())
	return int(off / n), int(off % n)
}

func (c *tailCache) term(i uint64) (uint64, bool) {
	first := c.first()
	if first == 0 || i < first || i >= c.next() {
		return 0, false
	}
	k, o := c.locate(i)
	return c.chunks[k].ents[o].Term, true
}

// slice returns the cached entries in [lo, hi) within maxBytes (at least
// one); lo must be cached. A range inside one chunk is returned without
// copying; one spanning chunks is copied into a new slice.
func (c *tailCache) slice(lo, hi, maxBytes uint64) []raftpb.Entry {
	hi = min(hi, c.next())
	k, o := c.locate(lo)
	if cur := c.chunks[k].ents; o+int(hi-lo) <= len(cur) {
		return limitBytes(cur[o:o+int(hi-lo):o+int(hi-lo)], maxBytes)
	}
	out := make([]raftpb.Entry, 0, min(hi-lo, uint64(4*c.capacity())))
	var size uint64
	for i := lo; i < hi; i++ {
		k, o := c.locate(i)
		e := c.chunks[k].ents[o]
		size += e.Size()
		if size > maxBytes && len(out) > 0 {
			break
		}
		out = append(out, e)
	}
	return out
}

// limitBytes trims ents to maxBytes, keeping at least one entry.
func limitBytes(ents []raftpb.Entry, maxBytes uint64) []raftpb.Entry {
	var size uint64
	for i := range ents {
		size += ents[i].Size()
		if size > maxBytes && i > 0 {
			return ents[:i:i]
		}
	}
	return ents
}

func (c *tailCache) append(ents []raftpb.Entry) {
	if len(ents) == 0 || c.maxBytes == 0 {
		return
	}
	at := ents[0].Index
	switch first, next := c.first(), c.next(); {
	case first == 0 || at > next || at <= first:
		// Empty, a gap, or a rewrite of everything cached: start afresh.
		c.chunks, c.bytes = nil, 0
	case at < next:
		c.truncate(at)
	}
	for i := range ents {
		c.push(ents[i])
	}
	c.evict()
}

// truncate drops the cached entries at or after at (first < at < next).
func (c *tailCache) truncate(at uint64) {
	k, o := c.locate(at)
	for _, ch := range c.chunks[k+1:] {
		c.bytes -= ch.bytes
	}
	clear(c.chunks[k+1:])
	c.chunks = c.chunks[:k+1]
	old := c.chunks[k]
	kept := chunk{ents: make([]raftpb.Entry, o, c.capacity())}
	copy(kept.ents, old.ents[:o])
	for i := range kept.ents {
		kept.bytes += memSize(&kept.ents[i])
	}
	c.bytes -= old.bytes - kept.bytes
	if o == 0 {
		c.chunks = c.chunks[:k]
		return
	}
	c.chunks[k] = kept
}

func (c *tailCache) push(e raftpb.Entry) {
	n := len(c.chunks)
	if n == 0 || len(c.chunks[n-1].ents) == c.capacity() {
		c.chunks = append(c.chunks, chunk{ents: make([]raftpb.Entry, 0, c.capacity())})
		n++
	}
	last := &c.chunks[n-1]
	last.ents = append(last.ents, e)
	size := memSize(&e)
	last.bytes += size
	c.bytes += size
}

// evict drops whole chunks from the front while the rest still exceeds
// maxBytes, always keeping the newest chunk.
func (c *tailCache) evict() {
	drop := 0
	for drop < len(c.chunks)-1 && c.bytes > c.maxBytes {
		c.bytes -= c.chunks[drop].bytes
		drop++
	}
	if drop > 0 {
		clear(c.chunks[:drop])
		c.chunks = append(c.chunks[:0], c.chunks[drop:]...)
	}
}

// entryMemOverhead is what a cached entry costs beyond its data: the Entry
// value in the chunk and the data's own allocation. The cache's budget is
// memory, so it counts this rather than the entry's wire size.
const entryMemOverhead = 64

func memSize(e *raftpb.Entry) uint64 { return uint64(len(e.Data)) + entryMemOverhead }

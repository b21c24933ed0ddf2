package logengine

import (
	"fmt"
	"slices"
)

// loc locates one entry on disk: the segment, the offset of the entry's
// encoding (term, type, data length, data) and the data length. The term is
// kept in memory so Term never reads the disk.
type loc struct {
	term uint64
	seq  uint64
	off  uint32
	dlen uint32
}

// encLen is the size of the entry's encoding, which is what it counts
// against its segment's live bytes.
func (l loc) encLen() uint32 { return entryEncLen(l.term, l.dlen) }

// group is the in-memory index of one group's log: entries [first, last]
// with last = first+len(ents)-1, and the term of first-1. Guarded by
// Engine.mu; only the writer goroutine mutates it (and the recovery code
// before the writer starts).
type group struct {
	id       uint64
	first    uint64
	prevTerm uint64
	ents     []loc
	// ckptSeq/ckptOff is the position of the group's latest truncate or
	// reset record (0/0: none). Records of the group before it are not
	// needed to recover the group's bounds.
	ckptSeq uint64
	ckptOff int64
	log     *GroupLog
}

func (g *group) last() uint64 { return g.first + uint64(len(g.ents)) - 1 }

// term returns the term of i, which must be in [first-1, last].
func (g *group) term(i uint64) uint64 {
	if i == g.first-1 {
		return g.prevTerm
	}
	return g.ents[i-g.first].term
}

// segOf returns the segment seq, caching the last lookup in *c.
func (e *Engine) segOf(seq uint64, c **segment) *segment {
	if *c == nil || (*c).seq != seq {
		*c = e.segs[seq]
	}
	return *c
}

// adjustLive adds sign*encLen of each loc to its segment's live bytes.
func (e *Engine) adjustLive(ls []loc, sign int64) {
	var c *segment
	for _, l := range ls {
		if s := e.segOf(l.seq, &c); s != nil {
			s.live += sign * int64(l.encLen())
		}
	}
}

// applyEntries installs an append of locs at index i, discarding the
// group's entries at or after i. i is in [first, last+1] (validated).
func (e *Engine) applyEntries(g *group, i uint64, locs []loc) {
	k := i - g.first
	e.adjustLive(g.ents[k:], -1)
	g.ents = append(g.ents[:k], locs...)
	e.adjustLive(locs, +1)
}

// applyRewrite repoints entries [i, i+len(locs)) to their GC copies.
func (e *Engine) applyRewrite(g *group, i uint64, locs []loc) {
	k := i - g.first
	old := g.ents[k : k+uint64(len(locs))]
	e.adjustLive(old, -1)
	copy(old, locs)
	e.adjustLive(locs, +1)
}

// applyTruncate makes the group's log start at first with the term of
// first-1 being prevTerm. first is in [g.first, last+1].
func (e *Engine) applyTruncate(g *group, first, prevTerm uint64) {
	k := first - g.first
	e.adjustLive(g.ents[:k], -1)
	g.ents = g.ents[k:]
	if cap(g.ents) > 64 && len(g.ents) < cap(g.ents)/4 {
		g.ents = slices.Clone(g.ents)
	}
	g.first, g.prevTerm = first, prevTerm
}

// applyReset empties the group's log, restarting it after (index, term).
func (e *Engine) applyReset(g *group, index, term uint64) {
	e.adjustLive(g.ents, -1)
	g.ents = nil
	g.first, g.prevTerm = index+1, term
}

// run is a contiguous piece of a group's log during replay.
type run struct {
	start uint64
	locs  []loc
}

func (r *run) end() uint64 { return r.start + uint64(len(r.locs)) }

// rgroup is a group being replayed. Before the group's latest checkpoint
// the replayed history may be incomplete (segments GC deleted), so the log
// is kept as sorted, disjoint runs that may leave gaps; once every record is
// replayed the runs must form exactly [first, last].
//
// Invariant: every run owns its backing array beyond its length (split runs
// are capacity-clipped or cloned), so appending to a run never clobbers
// another.
type rgroup struct {
	first, prevTerm uint64
	runs            []run
	ckptSeq         uint64
	ckptOff         int64
}

func newRGroup() *rgroup { return &rgroup{first: 1} }

// truncFrom drops the entries at or after i.
func (g *rgroup) truncFrom(i uint64) {
	for len(g.runs) > 0 {
		r := &g.runs[len(g.runs)-1]
		if r.start >= i {
			g.runs = g.runs[:len(g.runs)-1]
			continue
		}
		if r.end() > i {
			r.locs = r.locs[:i-r.start]
		}
		return
	}
}

// truncBefore drops the entries before f.
func (g *rgroup) truncBefore(f uint64) {
	k := 0
	for k < len(g.runs) && g.runs[k].end() <= f {
		k++
	}
	g.runs = g.runs[k:]
	if len(g.runs) > 0 && g.runs[0].start < f {
		r := &g.runs[0]
		r.locs = r.locs[f-r.start:]
		r.start = f
	}
}

// put writes locs at [i, i+len(locs)), overwriting what is there. locs is
// copied.
func (g *rgroup) put(i uint64, locs []loc) {
	j := i + uint64(len(locs))
	n := len(g.runs)
	if n == 0 || g.runs[n-1].end() <= i {
		if n > 0 && g.runs[n-1].end() == i {
			g.runs[n-1].locs = append(g.runs[n-1].locs, locs...)
			return
		}
		g.runs = append(g.runs, run{start: i, locs: slices.Clone(locs)})
		return
	}
	out := make([]run, 0, n+2)
	inserted := false
	insert := func() {
		if !inserted {
			out = append(out, run{start: i, locs: slices.Clone(locs)})
			inserted = true
		}
	}
	for _, r := range g.runs {
		end := r.end()
		if end <= i {
			out = append(out, r)
			continue
		}
		if r.start >= j {
			insert()
			out = append(out, r)
			continue
		}
		if r.start < i {
			k := i - r.start
			out = append(out, run{start: r.start, locs: r.locs[:k:k]})
		}
		insert()
		if end > j {
			out = append(out, run{start: j, locs: slices.Clone(r.locs[j-r.start:])})
		}
	}
	insert()
	g.runs = out
}

// checkpoint applies a truncate record: the log becomes [first, last].
func (g *rgroup) checkpoint(first, prevTerm, last uint64) {
	g.truncBefore(first)
	if last < ^uint64(0) {
		g.truncFrom(last + 1)
	}
	g.first, g.prevTerm = first, prevTerm
}

// reset applies a reset record.
func (g *rgroup) reset(index, term uint64) {
	g.runs = g.runs[:0]
	g.first, g.prevTerm = index+1, term
}

// finish returns the group's entries once replay is over, or an error if
// the runs do not cover exactly [first, last].
func (g *rgroup) finish(id uint64) ([]loc, error) {
	want := g.first
	total := 0
	for _, r := range g.runs {
		if r.start != want {
			return nil, fmt.Errorf("logengine: group %d: entries missing at index %d (next held entry %d)", id, want, r.start)
		}
		want = r.end()
		total += len(r.locs)
	}
	switch len(g.runs) {
	case 0:
		return nil, nil
	case 1:
		return g.runs[0].locs, nil
	}
	ents := make([]loc, 0, total)
	for _, r := range g.runs {
		ents = append(ents, r.locs...)
	}
	return ents, nil
}

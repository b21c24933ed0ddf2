package logengine

import (
	"fmt"
	"slices"
)

// collect runs GC on the writer goroutine: one pass, or (full) passes until
// one makes no progress.
func (e *Engine) collect(full bool) error {
	defer func() { e.w.gcWanted = false }()
	for {
		progress, err := e.gcPass()
		if err != nil || !progress || !full {
			return err
		}
	}
}

// gcPass picks the non-active segments with no live entries, and the oldest
// ones whose live bytes are below RewriteThreshold (at most
// MaxWriteBatchBytes of them), copies their live entries into the active
// segment, writes a checkpoint for every group whose bounds they could
// change on replay, syncs that round, and only then deletes them. It
// reports whether it deleted anything.
func (e *Engine) gcPass() (bool, error) {
	if err := e.Err(); err != nil {
		return false, err
	}
	var victims map[uint64]*segment
	var rewrite int64
	for _, s := range e.order[:len(e.order)-1] {
		if s.live != 0 && (s.live >= e.opts.RewriteThreshold ||
			(rewrite > 0 && rewrite+s.live > int64(e.opts.MaxWriteBatchBytes))) {
			continue
		}
		if victims == nil {
			victims = map[uint64]*segment{}
		}
		victims[s.seq] = s
		rewrite += s.live
	}
	if len(victims) == 0 {
		return false, nil
	}
	var ids []uint64
	for _, s := range victims {
		for id := range s.groups {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)

	e.beginRound()
	e.mu.RLock()
	groups := make([]*group, 0, len(ids))
	for _, id := range ids {
		if g := e.groups[id]; g != nil {
			groups = append(groups, g)
		}
	}
	e.mu.RUnlock()
	for _, g := range groups {
		if err := e.encodeRewrites(g, victims); err != nil {
			return false, e.fail(err)
		}
	}
	for _, g := range groups {
		if needsCheckpoint(g, victims) {
			e.encodeTruncate(g, truncRec{group: g.id, first: g.first, prevTerm: g.prevTerm, last: g.last()})
		}
	}
	if err := e.commitRound(); err != nil {
		return false, err
	}

	// The round is durable: the victims hold nothing replay needs.
	var dead []*segment
	e.mu.Lock()
	for _, s := range victims {
		if s.live != 0 {
			e.log.Error("logengine: GC left live entries in a segment; keeping it", "file", s.name, "live", s.live)
			continue
		}
		delete(e.segs, s.seq)
		dead = append(dead, s)
	}
	e.order = slices.DeleteFunc(e.order, func(s *segment) bool { return e.segs[s.seq] == nil })
	e.mu.Unlock()
	slices.SortFunc(dead, func(a, b *segment) int { return cmpU64(a.seq, b.seq) })
	for _, s := range dead {
		if err := s.rf.Close(); err != nil {
			e.log.Warn("logengine: closing a deleted segment", "file", s.name, "err", err)
		}
		s.rf = nil
		if err := e.retire(s); err != nil {
			return false, e.fail(err)
		}
	}
	if len(dead) > 0 {
		err := e.fs.SyncDir(e.dir)
		e.dirSyncs.Add(1)
		if err != nil {
			return false, e.fail(fmt.Errorf("sync directory %s: %w", e.dir, err))
		}
	}
	return len(dead) > 0, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// needsCheckpoint reports whether deleting the victims could change what
// replay makes of g's bounds: some victim holds a record of g at or after
// g's latest truncate or reset record.
func needsCheckpoint(g *group, victims map[uint64]*segment) bool {
	for _, s := range victims {
		off, ok := s.groups[g.id]
		if ok && (s.seq > g.ckptSeq || (s.seq == g.ckptSeq && off >= g.ckptOff)) {
			return true
		}
	}
	return false
}

// encodeRewrites appends rewrite records for g's live entries held by the
// victims: one record per run of consecutive indexes, the entries' encoded
// bytes copied verbatim (after checking them against the index).
func (e *Engine) encodeRewrites(g *group, victims map[uint64]*segment) error {
	w := &e.w
	n := len(g.ents)
	for k := 0; k < n; {
		if victims[g.ents[k].seq] == nil {
			k++
			continue
		}
		j := k
		for j < n && victims[g.ents[j].seq] != nil {
			j++
		}
		first := g.first + uint64(k)
		b, start := beginRecord(w.buf, recRewrite)
		b = appendEntriesHeader(b, entriesHeader{group: g.id, first: first, count: uint64(j - k)})
		lo := len(w.locs)
		for i := k; i < j; {
			// Coalesce entries contiguous in one segment into one read.
			l := g.ents[i]
			s := victims[l.seq]
			end, m := int64(l.off)+int64(l.encLen()), i+1
			for m < j && g.ents[m].seq == l.seq && int64(g.ents[m].off) == end {
				end += int64(g.ents[m].encLen())
				m++
			}
			at := len(b)
			b = append(b, make([]byte, end-int64(l.off))...)
			if n, err := s.rf.ReadAt(b[at:], int64(l.off)); n < len(b)-at {
				return fmt.Errorf("gc: read %s at %d: %w", s.name, l.off, err)
			}
			for ; i < m; i++ {
				l := g.ents[i]
				sz := int(l.encLen())
				if _, err := decodeEntryAt(b[at:at+sz], l.term, l.dlen); err != nil {
					return fmt.Errorf("gc: %s at offset %d: %w", s.name, l.off, err)
				}
				w.locs = append(w.locs, loc{term: l.term, off: uint32(at), dlen: l.dlen})
				e.rewritten.Add(int64(sz))
				at += sz
			}
		}
		finishRecord(b, start)
		w.buf = b
		w.ops = append(w.ops, op{kind: opRewrite, g: g, rec: start, a: first, lo: lo, hi: len(w.locs)})
		k = j
	}
	return nil
}

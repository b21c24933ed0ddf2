package logengine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/raftkit/raftkit/storage/vfs"
)

// replayer rebuilds the index from the segments, in seq order.
type replayer struct {
	groups map[uint64]*rgroup
	pend   []int // offsets of the records of the round being read
	locs   []loc // scratch
}

func (rp *replayer) group(id uint64) *rgroup {
	g := rp.groups[id]
	if g == nil {
		g = newRGroup()
		rp.groups[id] = g
	}
	return g
}

// scanResult is what scanning one segment decided.
type scanResult struct {
	tail   int64 // end of the valid data
	torn   bool  // the last segment must be truncated at tail
	remove bool  // the last segment's header is torn: delete the file
}

// recover reads every segment, verifies and replays it, repairs a torn
// tail, builds the index and opens the active segment.
func (e *Engine) recover() error {
	names, err := e.fs.ReadDir(e.dir)
	if err != nil {
		return fmt.Errorf("logengine: list %s: %w", e.dir, err)
	}
	var seqs []uint64
	for _, name := range names {
		if seq, ok := parseSegmentName(name); ok {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	rp := &replayer{groups: map[uint64]*rgroup{}}
	var lastRes scanResult
	for i, seq := range seqs {
		isLast := i == len(seqs)-1
		s := newSegment(e.dir, seq)
		data, err := e.readSegment(s)
		if err != nil {
			return err
		}
		res, err := rp.scan(s, data, isLast)
		if err != nil {
			s.rf.Close()
			return err
		}
		if res.remove {
			s.rf.Close()
			e.log.Warn("logengine: removing a segment whose creation was torn", "file", s.name)
			if err := e.fs.Remove(s.name); err != nil {
				return fmt.Errorf("logengine: remove %s: %w", s.name, err)
			}
			if err := e.fs.SyncDir(e.dir); err != nil {
				return fmt.Errorf("logengine: sync directory %s: %w", e.dir, err)
			}
			break
		}
		s.size = res.tail
		e.segs[seq] = s
		e.order = append(e.order, s)
		lastRes = res
	}
	for id, rg := range rp.groups {
		ents, err := rg.finish(id)
		if err != nil {
			return err
		}
		g := e.groupLocked(id)
		g.first, g.prevTerm, g.ents = rg.first, rg.prevTerm, ents
		g.ckptSeq, g.ckptOff = rg.ckptSeq, rg.ckptOff
		e.adjustLive(ents, +1)
	}
	e.w.gcWanted = true // collect what the last run left, after the first round
	return e.openActive(lastRes)
}

// readSegment opens s's read handle and reads the whole file.
func (e *Engine) readSegment(s *segment) ([]byte, error) {
	f, err := e.fs.Open(s.name)
	if err != nil {
		return nil, fmt.Errorf("logengine: open %s: %w", s.name, err)
	}
	size, err := f.Size()
	if err == nil && size > 1<<32 {
		err = fmt.Errorf("segment of %d bytes is too large", size)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("logengine: %s: %w", s.name, err)
	}
	data := make([]byte, size)
	if n, err := f.ReadAt(data, 0); n != len(data) || (err != nil && !errors.Is(err, io.EOF)) {
		f.Close()
		return nil, fmt.Errorf("logengine: read %s: %d of %d bytes: %w", s.name, n, size, err)
	}
	s.rf = f
	return data, nil
}

// openActive makes the last segment the active one (truncating its torn
// tail and preallocating the rest), or creates the first segment.
func (e *Engine) openActive(res scanResult) error {
	w := &e.w
	if len(e.order) == 0 {
		f, s, err := e.createSegment(1)
		if err != nil {
			return fmt.Errorf("logengine: %w", err)
		}
		e.segs[s.seq] = s
		e.order = append(e.order, s)
		w.wf, w.active, w.tail = f, s, headerSize
		e.segCreated.Add(1)
		return nil
	}
	s := e.order[len(e.order)-1]
	f, err := e.fs.OpenRW(s.name)
	if err != nil {
		return fmt.Errorf("logengine: open %s: %w", s.name, err)
	}
	w.wf, w.active, w.tail = f, s, s.size
	if res.torn {
		e.log.Warn("logengine: truncating a torn tail", "file", s.name, "offset", s.size)
		if err := f.Truncate(s.size); err != nil {
			return fmt.Errorf("logengine: truncate %s: %w", s.name, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("logengine: sync %s: %w", s.name, err)
		}
	}
	if s.size < e.opts.SegmentSize {
		if err := e.reserve(f, s.size); err != nil {
			return fmt.Errorf("logengine: preallocate %s: %w", s.name, err)
		}
	}
	return e.fillActiveRest(f, s)
}

// fillActiveRest zero-fills the active segment past its file size, so a
// recovered log appends at overwrite cost as a freshly rolled one does.
func (e *Engine) fillActiveRest(f vfs.File, s *segment) error {
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("logengine: size of %s: %w", s.name, err)
	}
	if size >= e.opts.SegmentSize {
		return nil
	}
	if err := e.fillZeros(f, size, e.opts.SegmentSize, nil); err != nil {
		return fmt.Errorf("logengine: zero-fill %s: %w", s.name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("logengine: sync %s: %w", s.name, err)
	}
	return nil
}

// scan verifies the records of one segment and replays its complete
// rounds. A bad record in the last segment with no valid round record after
// it is a torn write: the scan stops at the start of its round. Any other
// bad record is corruption.
func (rp *replayer) scan(s *segment, data []byte, isLast bool) (scanResult, error) {
	corrupt := func(off int, why string) error {
		return fmt.Errorf("logengine: corrupt log: %s at offset %d: %s", s.name, off, why)
	}
	salt, err := checkHeader(data, s.seq)
	if err != nil {
		// A round record verifying under either salt the seq could have
		// proves the file held data; without one (zeros: a prepared file
		// renamed before its header was written) the roll was torn. A
		// recycled file never gets here by a torn roll: it is renamed
		// only after its new header is durable.
		if isLast && !roundAfter(data, 0, saltOf(s.seq)) && !roundAfter(data, 0, 0) {
			return scanResult{remove: true}, nil
		}
		return scanResult{}, corrupt(0, "segment header: "+err.Error())
	}
	s.salt = salt
	pos, roundStart, roundEnd := headerSize, -1, 0
	rp.pend = rp.pend[:0]
	torn := func(off int, why string) (scanResult, error) {
		if !isLast || roundAfter(data, off+1, salt) {
			return scanResult{}, corrupt(off, why)
		}
		cut := off
		if roundStart >= 0 {
			cut = roundStart
		}
		return scanResult{tail: int64(cut), torn: true}, nil
	}
	for {
		r, n, st, why := readRecord(data, pos, salt)
		switch st {
		case recEnd:
			if roundStart >= 0 {
				return torn(pos, "round ends early")
			}
			if allZero(data[pos:]) {
				return scanResult{tail: int64(pos)}, nil
			}
			if salt == 0 {
				return torn(pos, "data after the end of the log")
			}
			// Format 2 ends every round with a zero length field, and
			// what follows it is a recycled file's old records (or an
			// unacknowledged torn round's), none of which verifies as a
			// round record under this segment's salt. One that does
			// proves committed data past the end marker.
			if roundAfter(data, pos+1, salt) {
				return scanResult{}, corrupt(pos, "a round after the end of the log")
			}
			return scanResult{tail: int64(pos)}, nil
		case recBad:
			return torn(pos, why)
		}
		if r.typ == recRound {
			if roundStart >= 0 {
				return torn(pos, "round record inside a round")
			}
			if len(r.payload) != 4 {
				return torn(pos, "malformed round record")
			}
			l := binary.LittleEndian.Uint32(r.payload)
			if l < roundRecSize {
				return torn(pos, "round shorter than its record")
			}
			roundStart, roundEnd = pos, pos+int(l)
		} else {
			if roundStart < 0 {
				return torn(pos, "record outside a round")
			}
			if pos+n > roundEnd {
				return torn(pos, "record overruns its round")
			}
			if err := checkRecord(r); err != nil {
				return torn(pos, err.Error())
			}
			rp.pend = append(rp.pend, pos)
		}
		pos += n
		if pos == roundEnd {
			rp.commit(s, data)
			roundStart = -1
		}
	}
}

// checkRecord fully decodes a non-round record.
func checkRecord(r record) error {
	switch r.typ {
	case recEntries, recRewrite:
		it, err := newEntryIter(r.payload)
		if err != nil {
			return err
		}
		for {
			_, _, _, _, ok, err := it.next()
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
		}
	case recTruncate:
		_, err := decodeTruncate(r.payload)
		return err
	case recReset:
		_, err := decodeReset(r.payload)
		return err
	}
	return fmt.Errorf("unknown record type %d", r.typ)
}

// commit replays the records of a complete round (already checked).
func (rp *replayer) commit(s *segment, data []byte) {
	for _, off := range rp.pend {
		r, _, _, _ := readRecord(data, off, s.salt)
		var id uint64
		switch r.typ {
		case recEntries, recRewrite:
			it, _ := newEntryIter(r.payload)
			id = it.group
			base := off + frameSize + 1
			locs := rp.locs[:0]
			for {
				term, _, encOff, dlen, ok, _ := it.next()
				if !ok {
					break
				}
				locs = append(locs, loc{term: term, seq: s.seq, off: uint32(base + encOff), dlen: dlen})
			}
			rp.locs = locs
			g := rp.group(id)
			if r.typ == recEntries {
				g.truncFrom(it.first)
			}
			g.put(it.first, locs)
		case recTruncate:
			tr, _ := decodeTruncate(r.payload)
			id = tr.group
			g := rp.group(id)
			g.checkpoint(tr.first, tr.prevTerm, tr.last)
			g.ckptSeq, g.ckptOff = s.seq, int64(off)
		case recReset:
			rr, _ := decodeReset(r.payload)
			id = rr.group
			g := rp.group(id)
			g.reset(rr.index, rr.term)
			g.ckptSeq, g.ckptOff = s.seq, int64(off)
		}
		s.groups[id] = int64(off)
	}
	rp.pend = rp.pend[:0]
}

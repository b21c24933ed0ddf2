package logengine

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/raftkit/raftkit/storage"
	"github.com/raftkit/raftkit/storage/vfs"
)

// request is one Submit (or GC) call waiting in the queue.
type request struct {
	writes []Write
	done   func(error)
	gc     bool
	size   int // estimated encoded bytes
}

// requestSize estimates the encoded size of writes, an upper bound.
func requestSize(ws []Write) int {
	n := 0
	for i := range ws {
		n += 48
		for k := range ws[i].Entries {
			n += 21 + len(ws[i].Entries[k].Data)
		}
	}
	return n
}

type opKind uint8

const (
	opEntries opKind = iota
	opRewrite
	opTruncate
	opReset
)

// op is one record of the round being built, to install into the index
// once the round is durable.
type op struct {
	kind opKind
	g    *group
	rec  int    // offset of the record in the round buffer
	a, b uint64 // entries/rewrite: a = first index; truncate: first, prevTerm; reset: index, term
	lo   int    // entries/rewrite: w.locs[lo:hi]
	hi   int
}

// overlay is a group's state as the round being built leaves it, so that
// several writes to one group in one round validate and encode in order.
// Entries at or after pstart are pending in this round (their terms in
// pterms); those in [first, pstart) are in the index unchanged.
type overlay struct {
	g                     *group
	first, last, prevTerm uint64
	pstart                uint64
	pterms                []uint64
}

func (o *overlay) term(i uint64) uint64 {
	switch {
	case len(o.pterms) > 0 && i >= o.pstart:
		return o.pterms[i-o.pstart]
	case i == o.first-1:
		return o.prevTerm
	}
	return o.g.ents[i-o.g.first].term
}

// writerState is owned by the writer goroutine (and by Open before it
// starts); nothing else touches it.
type writerState struct {
	active *segment
	wf     vfs.File // write handle of the active segment
	tail   int64    // end of the active segment's data

	batch   []request
	results []error
	buf     []byte // the round being encoded
	ops     []op
	locs    []loc
	ovIdx   map[uint64]int
	ovs     []overlay
	scratch map[uint64][2]uint64

	gcWanted bool     // a truncation, reset or roll happened: run a GC pass
	free     []string // dead segment files kept for reuse, oldest first
}

// run is the writer goroutine.
func (e *Engine) run() {
	defer close(e.stopped)
	for range e.wake {
		for {
			batch, closed := e.take()
			if closed {
				for _, r := range batch {
					r.done(ErrClosed)
				}
				return
			}
			if len(batch) == 0 {
				break
			}
			e.process(batch)
			clear(batch)
		}
	}
}

// take removes the next batch from the queue: requests up to
// MaxWriteBatchBytes (at least one). After Close it returns everything
// queued and closed = true.
func (e *Engine) take() (batch []request, closed bool) {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	if e.closed {
		q := e.queue
		e.queue = nil
		return q, true
	}
	n, total := 0, 0
	for n < len(e.queue) {
		sz := e.queue[n].size
		if n > 0 && total+sz > e.opts.MaxWriteBatchBytes {
			break
		}
		total += sz
		n++
	}
	e.w.batch = append(e.w.batch[:0], e.queue[:n]...)
	rest := copy(e.queue, e.queue[n:])
	clear(e.queue[rest:])
	e.queue = e.queue[:rest]
	return e.w.batch, false
}

// process writes one batch as one round, then completes its requests, then
// runs GC if asked or due.
func (e *Engine) process(batch []request) {
	if err := e.Err(); err != nil {
		for _, r := range batch {
			r.done(err)
		}
		return
	}
	w := &e.w
	e.beginRound()
	w.results = w.results[:0]
	wantGC := false
	for i := range batch {
		var err error
		if batch[i].gc {
			wantGC = true
		} else {
			err = e.encodeRequest(&batch[i])
		}
		w.results = append(w.results, err)
	}
	err := e.commitRound()
	e.requests.Add(int64(len(batch)))
	for i, r := range batch {
		if r.gc {
			continue
		}
		if err != nil {
			r.done(err)
		} else {
			r.done(w.results[i])
		}
	}
	if err == nil && (wantGC || w.gcWanted) {
		err = e.collect(wantGC)
	}
	if wantGC {
		for _, r := range batch {
			if r.gc {
				r.done(err)
			}
		}
	}
}

// beginRound resets the round buffers.
func (e *Engine) beginRound() {
	w := &e.w
	w.buf = appendRoundPlaceholder(w.buf[:0])
	w.ops = w.ops[:0]
	w.locs = w.locs[:0]
	if w.ovIdx == nil {
		w.ovIdx = map[uint64]int{}
		w.scratch = map[uint64][2]uint64{}
	}
	clear(w.ovIdx)
	w.ovs = w.ovs[:0]
}

// lookupGroup returns group id, creating it.
func (e *Engine) lookupGroup(id uint64) *group {
	e.mu.RLock()
	g := e.groups[id]
	e.mu.RUnlock()
	if g == nil {
		e.mu.Lock()
		g = e.groupLocked(id)
		e.mu.Unlock()
	}
	return g
}

// bounds returns [first, last] of group id as the round so far leaves it.
func (e *Engine) bounds(id uint64) (uint64, uint64) {
	if i, ok := e.w.ovIdx[id]; ok {
		o := &e.w.ovs[i]
		return o.first, o.last
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if g := e.groups[id]; g != nil {
		return g.first, g.last()
	}
	return 1, 0
}

// overlayOf returns the round's overlay of group id, creating it.
func (e *Engine) overlayOf(id uint64) *overlay {
	w := &e.w
	if i, ok := w.ovIdx[id]; ok {
		return &w.ovs[i]
	}
	g := e.lookupGroup(id)
	n := len(w.ovs)
	if n < cap(w.ovs) {
		w.ovs = w.ovs[:n+1]
	} else {
		w.ovs = append(w.ovs, overlay{})
	}
	o := &w.ovs[n]
	*o = overlay{g: g, first: g.first, last: g.last(), prevTerm: g.prevTerm, pterms: o.pterms[:0]}
	w.ovIdx[id] = n
	return o
}

// checkWrite validates wr against the group's bounds [first, last] and
// returns the bounds after it.
func checkWrite(wr *Write, first, last uint64) (uint64, uint64, error) {
	set := 0
	if len(wr.Entries) > 0 {
		set++
	}
	if wr.TruncatePrefix > 0 {
		set++
	}
	if wr.Reset != nil {
		set++
	}
	if set > 1 {
		return 0, 0, errors.New("a Write sets more than one of Entries, TruncatePrefix and Reset")
	}
	switch {
	case len(wr.Entries) > 0:
		ents := wr.Entries
		i := ents[0].Index
		if i < first {
			return 0, 0, fmt.Errorf("%w: append at index %d below first index %d", storage.ErrCompacted, i, first)
		}
		if i > last+1 {
			return 0, 0, fmt.Errorf("%w: append at index %d leaves a gap after last index %d", storage.ErrUnavailable, i, last)
		}
		for k := 1; k < len(ents); k++ {
			if ents[k].Index != ents[k-1].Index+1 {
				return 0, 0, fmt.Errorf("appended entries not consecutive: index %d follows %d", ents[k].Index, ents[k-1].Index)
			}
		}
		l := ents[len(ents)-1].Index
		if l < i || l == math.MaxUint64 {
			return 0, 0, errors.New("appended entries overflow the index space")
		}
		return first, l, nil
	case wr.TruncatePrefix > 0:
		t := wr.TruncatePrefix
		if t <= first {
			return first, last, nil
		}
		if t > last+1 {
			return 0, 0, fmt.Errorf("%w: truncate prefix to %d past last index %d", storage.ErrUnavailable, t, last)
		}
		return t, last, nil
	case wr.Reset != nil:
		if wr.Reset.Index == math.MaxUint64 {
			return 0, 0, errors.New("reset index overflows the index space")
		}
		return wr.Reset.Index + 1, wr.Reset.Index, nil
	}
	return first, last, nil
}

// validate checks a whole request against the round's state, in order.
func (e *Engine) validate(r *request) error {
	if r.size > maxBatchBytes {
		return fmt.Errorf("logengine: request of about %d bytes exceeds the 1 GiB limit", r.size)
	}
	multi := len(r.writes) > 1
	if multi {
		clear(e.w.scratch)
	}
	for i := range r.writes {
		wr := &r.writes[i]
		var first, last uint64
		if v, ok := e.w.scratch[wr.Group]; multi && ok {
			first, last = v[0], v[1]
		} else {
			first, last = e.bounds(wr.Group)
		}
		nf, nl, err := checkWrite(wr, first, last)
		if err != nil {
			return fmt.Errorf("logengine: group %d: %w", wr.Group, err)
		}
		if multi {
			e.w.scratch[wr.Group] = [2]uint64{nf, nl}
		}
	}
	return nil
}

// encodeRequest validates r and appends its records to the round.
func (e *Engine) encodeRequest(r *request) error {
	if err := e.validate(r); err != nil {
		return err
	}
	for i := range r.writes {
		e.encodeWrite(&r.writes[i])
	}
	return nil
}

// encodeWrite appends the record of one validated write.
func (e *Engine) encodeWrite(wr *Write) {
	w := &e.w
	switch {
	case len(wr.Entries) > 0:
		o := e.overlayOf(wr.Group)
		ents := wr.Entries
		i := ents[0].Index
		b, start := beginRecord(w.buf, recEntries)
		b = appendEntriesHeader(b, entriesHeader{group: wr.Group, first: i, count: uint64(len(ents))})
		lo := len(w.locs)
		if len(o.pterms) > 0 && i >= o.pstart {
			o.pterms = o.pterms[:i-o.pstart]
		} else {
			o.pstart, o.pterms = i, o.pterms[:0]
		}
		for k := range ents {
			ent := &ents[k]
			w.locs = append(w.locs, loc{term: ent.Term, off: uint32(len(b)), dlen: uint32(len(ent.Data))})
			b = appendEntry(b, ent)
			o.pterms = append(o.pterms, ent.Term)
		}
		finishRecord(b, start)
		w.buf = b
		w.ops = append(w.ops, op{kind: opEntries, g: o.g, rec: start, a: i, lo: lo, hi: len(w.locs)})
		o.last = ents[len(ents)-1].Index
		e.entries.Add(int64(len(ents)))
	case wr.TruncatePrefix > 0:
		o := e.overlayOf(wr.Group)
		t := wr.TruncatePrefix
		if t <= o.first {
			return
		}
		prev := o.term(t - 1)
		if len(o.pterms) > 0 && o.pstart < t {
			o.pterms = o.pterms[t-o.pstart:]
			o.pstart = t
		}
		e.encodeTruncate(o.g, truncRec{group: wr.Group, first: t, prevTerm: prev, last: o.last})
		o.first, o.prevTerm = t, prev
	case wr.Reset != nil:
		o := e.overlayOf(wr.Group)
		rr := resetRec{group: wr.Group, index: wr.Reset.Index, term: wr.Reset.Term}
		b, start := beginRecord(w.buf, recReset)
		b = appendReset(b, rr)
		finishRecord(b, start)
		w.buf = b
		w.ops = append(w.ops, op{kind: opReset, g: o.g, rec: start, a: rr.index, b: rr.term})
		o.first, o.last, o.prevTerm = rr.index+1, rr.index, rr.term
		o.pstart, o.pterms = rr.index+1, o.pterms[:0]
		w.gcWanted = true
	}
}

// encodeTruncate appends a truncate record (a prefix truncation or a GC
// checkpoint).
func (e *Engine) encodeTruncate(g *group, tr truncRec) {
	w := &e.w
	b, start := beginRecord(w.buf, recTruncate)
	b = appendTruncate(b, tr)
	finishRecord(b, start)
	w.buf = b
	w.ops = append(w.ops, op{kind: opTruncate, g: g, rec: start, a: tr.first, b: tr.prevTerm})
	w.gcWanted = true
}

// commitRound writes the round (if it holds any record) with one write and
// one sync, rolling first if the active segment would overflow, then
// installs it into the index. Any error fails the engine.
func (e *Engine) commitRound() error {
	w := &e.w
	if len(w.buf) == roundRecSize {
		return nil
	}
	finishRound(w.buf)
	if w.tail+int64(len(w.buf)) > e.opts.SegmentSize && w.tail > headerSize {
		if err := e.roll(); err != nil {
			return e.fail(err)
		}
	}
	base := w.tail
	n := len(w.buf)
	if salt := w.active.salt; salt != 0 {
		saltRecord(w.buf, 0, salt)
		for _, o := range w.ops {
			saltRecord(w.buf, o.rec, salt)
		}
	}
	// The zero length field after the round marks the end of the data
	// in a recycled file, whose old records follow; the next round
	// overwrites it.
	w.buf = append(w.buf, 0, 0, 0, 0)
	_, err := w.wf.WriteAt(w.buf, base)
	w.buf = w.buf[:n]
	if err != nil {
		return e.fail(fmt.Errorf("write %s at %d: %w", w.active.name, base, err))
	}
	e.bytesWritten.Add(int64(n))
	start := time.Now()
	err = w.wf.Sync()
	took := time.Since(start)
	e.syncNanos.Add(int64(took))
	if e.opts.SyncObserver != nil {
		e.opts.SyncObserver(took)
	}
	e.fsyncs.Add(1)
	if err != nil {
		return e.fail(fmt.Errorf("sync %s: %w", w.active.name, err))
	}
	w.tail += int64(len(w.buf))
	e.rounds.Add(1)
	e.install(base)
	return nil
}

// install applies the durable round's ops to the index.
func (e *Engine) install(base int64) {
	w := &e.w
	s := w.active
	for i := range w.locs {
		w.locs[i].seq = s.seq
		w.locs[i].off += uint32(base)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s.size = w.tail
	for _, o := range w.ops {
		g := o.g
		pos := base + int64(o.rec)
		s.groups[g.id] = pos
		switch o.kind {
		case opEntries:
			e.applyEntries(g, o.a, w.locs[o.lo:o.hi])
		case opRewrite:
			e.applyRewrite(g, o.a, w.locs[o.lo:o.hi])
		case opTruncate:
			e.applyTruncate(g, o.a, o.b)
			g.ckptSeq, g.ckptOff = s.seq, pos
		case opReset:
			e.applyReset(g, o.a, o.b)
			g.ckptSeq, g.ckptOff = s.seq, pos
		}
	}
}

// roll starts a new active segment. The old one is already durable: every
// round is synced before the next begins.
func (e *Engine) roll() error {
	w := &e.w
	f, s, err := e.takeSegment(w.active.seq + 1)
	if err != nil {
		return err
	}
	e.fsyncs.Add(1)
	e.dirSyncs.Add(1)
	e.segCreated.Add(1)
	e.bytesWritten.Add(headerSize)
	e.mu.Lock()
	e.segs[s.seq] = s
	e.order = append(e.order, s)
	e.mu.Unlock()
	if err := w.wf.Close(); err != nil {
		e.log.Warn("logengine: closing the write handle of a full segment", "file", w.active.name, "err", err)
	}
	w.wf, w.active, w.tail = f, s, headerSize
	w.gcWanted = true
	e.log.Debug("logengine: rolled to a new segment", "file", s.name)
	return nil
}

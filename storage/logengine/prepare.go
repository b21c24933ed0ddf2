package logengine

// This file holds the segment preparer: the goroutine that makes the next
// segment file ready before the writer needs it.

import (
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/raftkit/raftkit/storage/vfs"
)

// prepName is the file the preparer readies for the next roll. It is not a
// segment name, so recovery never replays it; Open deletes a leftover one.
const prepName = "next.prep"

// prepared is one readied file, or why there is none.
type prepared struct {
	f   vfs.File
	err error
}

// preparer hands the writer one readied file per roll. At most one request
// is outstanding: the writer asks (want) only after it took the previous
// file (ready), so neither channel ever blocks its sender.
type preparer struct {
	want   chan struct{} // cap 1; writer → preparer
	ready  chan prepared // cap 1; preparer → writer
	urgent chan struct{} // cap 1; the writer is waiting for ready
	stop   chan struct{} // closed by Close, after the writer stopped
	done   chan struct{} // closed when the preparer returns
}

func newPreparer() *preparer {
	return &preparer{
		want:   make(chan struct{}, 1),
		ready:  make(chan prepared, 1),
		urgent: make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// fillPace spreads a fill over time: it fills at twice the rate the
// writer has been appending since the fill began (at least minFillRate),
// so the next file is ready before it is needed without the fill's
// writeback crowding the writer's fsyncs.
type fillPace struct {
	e        *Engine
	start    time.Time
	written0 int64
	filled   int64
}

const minFillRate = 16 << 20 // bytes per second

func newFillPace(e *Engine) *fillPace {
	return &fillPace{e: e, start: time.Now(), written0: e.bytesWritten.Load()}
}

// next accounts n more bytes filled and returns how long to rest.
func (p *fillPace) next(n int64) time.Duration {
	p.filled += n
	elapsed := time.Since(p.start)
	rate := 2 * float64(p.e.bytesWritten.Load()-p.written0) / max(elapsed.Seconds(), 1e-3)
	rate = max(rate, minFillRate)
	due := time.Duration(float64(p.filled) / rate * float64(time.Second))
	return max(due-elapsed, 0)
}

// rest pauses the preparer for d, or less if the writer starts waiting
// for it or the engine closes (then it returns vfs.ErrStopped).
func (p *preparer) rest(d time.Duration) error {
	select {
	case <-p.urgent:
		p.urgent <- struct{}{} // stay urgent for the rest of this file
		return nil
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.stop:
		return vfs.ErrStopped
	case <-p.urgent:
		p.urgent <- struct{}{}
	case <-t.C:
	}
	return nil
}

// prepareLoop readies a file each time the writer asks, until stop.
func (e *Engine) prepareLoop() {
	p := e.prep
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case <-p.want:
		}
		f, err := e.prepareFile(p.stop)
		if errors.Is(err, vfs.ErrStopped) {
			return
		}
		p.ready <- prepared{f: f, err: err}
	}
}

// prepareFile creates prepName, preallocates it to SegmentSize, fills it
// with zeros where that makes later appends cheaper (see fillZeros), and
// syncs it, so that the roll that takes it writes only a header.
func (e *Engine) prepareFile(stop <-chan struct{}) (vfs.File, error) {
	name := path.Join(e.dir, prepName)
	f, err := e.fs.Create(name)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	err = e.reserve(f, 0)
	// Fill and sync a step at a time, resting as long as each step took
	// unless the writer is already waiting: one sync of a whole segment of
	// zeros, or a fill at full speed, is a writeback burst that stalls the
	// writer's own fsyncs on the same device (measured: p99 commit latency
	// 4x at 64 clients with 1 KiB entries).
	_, fills := f.(vfs.ZeroFiller)
	if err == nil && !(fills && e.opts.ZeroFill) {
		err = f.Sync()
	}
	pace := newFillPace(e)
	for off := int64(0); err == nil && fills && e.opts.ZeroFill && off < e.opts.SegmentSize; off += fillStep {
		err = e.fillZeros(f, off, min(off+fillStep, e.opts.SegmentSize), stop)
		if err == nil {
			err = f.Sync()
		}
		if err == nil {
			err = e.prep.rest(pace.next(fillStep))
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, vfs.ErrStopped) {
			// Closing: a half-readied file is of no use to anyone.
			return nil, errors.Join(err, e.fs.Remove(name))
		}
		return nil, fmt.Errorf("prepare %s: %w", name, err)
	}
	return f, nil
}

// fillStep is how much of a readied file is filled between syncs.
const fillStep = 256 << 10

// fillZeros writes zeros over [off, end) of f when the file system
// gains from it (vfs.ZeroFiller) and Options.ZeroFill is set. Appends
// then overwrite written blocks, and the fdatasync of each round flushes
// data only, with no extent or size change to commit: on ext4 that halves
// its latency (see Options.ZeroFill for the cost). Zeros after the data read as a zero length field, which is
// the end of the data (see the package documentation), so a filled segment
// recovers as one that was not.
func (e *Engine) fillZeros(f vfs.File, off, end int64, stop <-chan struct{}) error {
	zf, ok := f.(vfs.ZeroFiller)
	if !ok || !e.opts.ZeroFill || off >= end {
		return nil
	}
	return zf.ZeroFill(off, end-off, stop)
}

// takePrepared turns the readied file into segment seq: rename, header,
// sync, directory sync. If the preparer failed it falls back to creating
// the segment in place, so a preparation error costs only time; an error
// here fails the engine as any roll error does. It asks for the next file
// before returning.
func (e *Engine) takePrepared(seq uint64) (vfs.File, *segment, error) {
	var p prepared
	select {
	case p = <-e.prep.ready:
	default:
		e.prep.urgent <- struct{}{}
		p = <-e.prep.ready
	}
	select { // the next file starts unhurried
	case <-e.prep.urgent:
	default:
	}
	defer func() { e.prep.want <- struct{}{} }()
	if p.err != nil {
		e.log.Warn("logengine: preparing a segment failed; creating it in place", "err", p.err)
		return e.createSegment(seq)
	}
	s := newSegment(e.dir, seq)
	err := e.fs.Rename(path.Join(e.dir, prepName), s.name)
	// Reopen under the segment's name, so that errors (and file systems
	// that track files by name) speak of the segment from here on.
	p.f.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("rename prepared segment to %s: %w", s.name, err)
	}
	f, err := e.fs.OpenRW(s.name)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", s.name, err)
	}
	fail := func(op string, err error) (vfs.File, *segment, error) {
		f.Close()
		return nil, nil, fmt.Errorf("%s %s: %w", op, s.name, err)
	}
	if _, err := f.WriteAt(appendHeader(nil, seq), 0); err != nil {
		return fail("write header of", err)
	}
	if err := f.Sync(); err != nil {
		return fail("sync", err)
	}
	if err := e.fs.SyncDir(e.dir); err != nil {
		return fail("sync directory of", err)
	}
	rf, err := e.fs.Open(s.name)
	if err != nil {
		return fail("open", err)
	}
	s.rf = rf
	s.size, s.salt = headerSize, saltOf(seq)
	return f, s, nil
}

// stopPreparer stops the preparer and closes and deletes a readied file
// nobody took. Called by Close once the writer has stopped.
func (e *Engine) stopPreparer() error {
	close(e.prep.stop)
	<-e.prep.done
	select {
	case p := <-e.prep.ready:
		if p.err == nil {
			return errors.Join(p.f.Close(), e.fs.Remove(path.Join(e.dir, prepName)))
		}
	default:
	}
	return nil
}

// removeLeftoverPrep deletes a prepName left by an earlier process. It
// holds no data: a file becomes a segment only by the roll's rename.
func (e *Engine) removeLeftoverPrep() error {
	name := path.Join(e.dir, prepName)
	if _, err := e.fs.Stat(name); err != nil {
		return nil
	}
	if err := e.fs.Remove(name); err != nil {
		return fmt.Errorf("logengine: remove %s: %w", name, err)
	}
	return nil
}

package logengine

// This file holds the segment preparer: the goroutine that makes the next
// segment file ready before the writer needs it.

import (
	"errors"
	"fmt"
	"path"

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
	want  chan struct{} // cap 1; writer → preparer
	ready chan prepared // cap 1; preparer → writer
	stop  chan struct{} // closed by Close, after the writer stopped
	done  chan struct{} // closed when the preparer returns
}

func newPreparer() *preparer {
	return &preparer{
		want:  make(chan struct{}, 1),
		ready: make(chan prepared, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
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
	err = f.Preallocate(0, e.opts.SegmentSize)
	if err == nil {
		err = e.fillZeros(f, 0, stop)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		if errors.Is(err, vfs.ErrStopped) {
			return nil, err
		}
		return nil, fmt.Errorf("prepare %s: %w", name, err)
	}
	return f, nil
}

// fillZeros writes zeros over [off, SegmentSize) of f when the file system
// gains from it (vfs.ZeroFiller) and Options.NoZeroFill is unset. Appends
// then overwrite written blocks, and the fdatasync of each round flushes
// data only, with no extent or size change to commit: on ext4 that halves
// its latency. Zeros after the data read as a zero length field, which is
// the end of the data (see the package documentation), so a filled segment
// recovers as one that was not.
func (e *Engine) fillZeros(f vfs.File, off int64, stop <-chan struct{}) error {
	zf, ok := f.(vfs.ZeroFiller)
	if !ok || e.opts.NoZeroFill || off >= e.opts.SegmentSize {
		return nil
	}
	return zf.ZeroFill(off, e.opts.SegmentSize-off, stop)
}

// takePrepared turns the readied file into segment seq: rename, header,
// sync, directory sync. If the preparer failed it falls back to creating
// the segment in place, so a preparation error costs only time; an error
// here fails the engine as any roll error does. It asks for the next file
// before returning.
func (e *Engine) takePrepared(seq uint64) (vfs.File, *segment, error) {
	p := <-e.prep.ready
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
	s.size = headerSize
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

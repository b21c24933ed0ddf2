package logengine

// This file holds segment recycling: GC keeps up to RecycleSegments dead
// segment files instead of deleting them, and a roll reuses one before it
// takes a freshly prepared file.
//
// Why: the blocks of a fresh file are allocated but unwritten, so the
// fdatasync of every round appended to it must also commit the conversion
// of those blocks to written ones (a journal transaction on ext4). A
// recycled file's blocks were written in its previous life, so appending
// to it is an overwrite and each round's fdatasync flushes data only — what
// Options.ZeroFill buys by writing every segment twice, for free. The old
// records left past the new data are harmless: their checksums carry the
// old seq's salt, and every round is followed by a zero length field (see
// format.go and the package documentation).

import (
	"fmt"
	"path"
	"slices"

	"github.com/raftkit/raftkit/storage/vfs"
)

// freeName is the name of a dead segment kept for reuse: its old seq with
// the suffix ".free", so recovery never replays it.
func freeName(dir string, seq uint64) string {
	return path.Join(dir, fmt.Sprintf("%020d.free", seq))
}

// parseFreeName returns the old seq of a free file name (base name only).
func parseFreeName(name string) (uint64, bool) { return parseSeqName(name, ".free") }

// loadFreeFiles lists the free files an earlier run left, keeping up to
// RecycleSegments of them (oldest first) and removing the rest. Called by
// Open before the writer starts.
func (e *Engine) loadFreeFiles() error {
	names, err := e.fs.ReadDir(e.dir)
	if err != nil {
		return fmt.Errorf("logengine: list %s: %w", e.dir, err)
	}
	var seqs []uint64
	for _, name := range names {
		if seq, ok := parseFreeName(name); ok {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	removed := false
	for _, seq := range seqs {
		name := freeName(e.dir, seq)
		if len(e.w.free) < e.opts.RecycleSegments {
			e.w.free = append(e.w.free, name)
			e.nfree.Store(int64(len(e.w.free)))
			continue
		}
		if err := e.fs.Remove(name); err != nil {
			return fmt.Errorf("logengine: remove %s: %w", name, err)
		}
		removed = true
	}
	if removed {
		if err := e.fs.SyncDir(e.dir); err != nil {
			return fmt.Errorf("logengine: sync directory %s: %w", e.dir, err)
		}
	}
	return nil
}

// retire disposes of a dead segment whose read handle is closed: it keeps
// the file for reuse when the pool has room and the file is no larger than
// a segment (an oversized round's segment would make every later reuse
// oversized too), and deletes it otherwise. The caller syncs the directory.
// Writer goroutine only.
func (e *Engine) retire(s *segment) error {
	if len(e.w.free) < e.opts.RecycleSegments && s.size <= e.opts.SegmentSize {
		name := freeName(e.dir, s.seq)
		if err := e.fs.Rename(s.name, name); err != nil {
			return fmt.Errorf("rename %s to %s: %w", s.name, name, err)
		}
		e.w.free = append(e.w.free, name)
		e.nfree.Store(int64(len(e.w.free)))
		e.log.Debug("logengine: kept a dead segment for reuse", "file", name)
		return nil
	}
	if err := e.fs.Remove(s.name); err != nil {
		return fmt.Errorf("remove %s: %w", s.name, err)
	}
	e.segDeleted.Add(1)
	e.log.Debug("logengine: deleted a segment", "file", s.name)
	return nil
}

// takeSegment makes segment seq for a roll: from a free file if there is
// one, else from the preparer's file.
func (e *Engine) takeSegment(seq uint64) (vfs.File, *segment, error) {
	if len(e.w.free) == 0 {
		return e.takePrepared(seq)
	}
	name := e.w.free[0]
	e.w.free = slices.Delete(e.w.free, 0, 1)
	e.nfree.Store(int64(len(e.w.free)))
	return e.recycle(name, seq)
}

// recycle turns the free file name into segment seq. The new header is
// made durable before the rename, so a file with a segment's name always
// has that segment's header: a crash in between leaves a free file, which
// the next Open reuses as any other.
func (e *Engine) recycle(name string, seq uint64) (vfs.File, *segment, error) {
	f, err := e.fs.OpenRW(name)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", name, err)
	}
	s := newSegment(e.dir, seq)
	fail := func(op, file string, err error) (vfs.File, *segment, error) {
		f.Close()
		return nil, nil, fmt.Errorf("%s %s: %w", op, file, err)
	}
	// Blocks the previous life allocated stay; this reserves any it did
	// not reach (a segment rolled early).
	if err := e.reserve(f, 0); err != nil {
		return fail("preallocate", name, err)
	}
	if _, err := f.WriteAt(appendHeader(nil, seq), 0); err != nil {
		return fail("write header of", name, err)
	}
	// The zero length field right after the header ends the data until
	// the first round overwrites it.
	if _, err := f.WriteAt(make([]byte, frameSize), headerSize); err != nil {
		return fail("write end marker of", name, err)
	}
	if err := f.Sync(); err != nil {
		return fail("sync", name, err)
	}
	if err := e.fs.Rename(name, s.name); err != nil {
		return fail("rename "+name+" to", s.name, err)
	}
	if err := e.fs.SyncDir(e.dir); err != nil {
		return fail("sync directory of", s.name, err)
	}
	rf, err := e.fs.Open(s.name)
	if err != nil {
		return fail("open", s.name, err)
	}
	s.rf = rf
	s.size, s.salt = headerSize, saltOf(seq)
	e.segRecycled.Add(1)
	e.log.Debug("logengine: reused a dead segment", "from", name, "file", s.name)
	return f, s, nil
}

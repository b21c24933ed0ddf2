package logengine

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/raftkit/raftkit/storage/vfs"
)

// segment is one log file. Fields other than seq and name are guarded by
// Engine.mu; the writer goroutine, the only mutator, may read them without it.
type segment struct {
	seq  uint64
	name string
	// rf is the read handle Entries preads through (concurrent ReadAt is
	// allowed by vfs.File).
	rf vfs.File
	// size is the end of the valid data: records are in [headerSize, size).
	size int64
	// salt is XORed into the checksum of every record here: saltOf(seq)
	// in format 2, 0 in a format 1 segment (see format.go).
	salt uint32
	// live is the sum of the encoded sizes of the entries some group still
	// indexes in this segment.
	live int64
	// groups maps each group with a record in this segment to the offset of
	// its last record here; GC uses it to decide whether deleting the
	// segment needs a checkpoint of the group.
	groups map[uint64]int64
}

func segmentName(dir string, seq uint64) string {
	return path.Join(dir, fmt.Sprintf("%020d.log", seq))
}

// parseSegmentName returns the seq of a segment file name (base name only).
func parseSegmentName(name string) (uint64, bool) { return parseSeqName(name, ".log") }

// parseSeqName returns the seq of a file named "<20-digit seq><suffix>"
// (base name only); seq 0 is never used.
func parseSeqName(name, suffix string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, suffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || seq == 0 {
		return 0, false
	}
	return seq, true
}

func newSegment(dir string, seq uint64) *segment {
	return &segment{seq: seq, name: segmentName(dir, seq), groups: map[uint64]int64{}}
}

// createSegment creates, preallocates, zero-fills (see fillZeros), heads
// and syncs segment seq, then syncs the directory so the name is durable.
// It returns the write handle and the segment with its read handle open.
// Rolls normally take a prepared file instead (takePrepared).
func (e *Engine) createSegment(seq uint64) (vfs.File, *segment, error) {
	fs := e.fs
	s := newSegment(e.dir, seq)
	f, err := fs.Create(s.name)
	if err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", s.name, err)
	}
	fail := func(op string, err error) (vfs.File, *segment, error) {
		f.Close()
		return nil, nil, fmt.Errorf("%s %s: %w", op, s.name, err)
	}
	if err := e.reserve(f, 0); err != nil {
		return fail("preallocate", err)
	}
	if err := e.fillZeros(f, 0, e.opts.SegmentSize, nil); err != nil {
		return fail("zero-fill", err)
	}
	if _, err := f.WriteAt(appendHeader(nil, seq), 0); err != nil {
		return fail("write header of", err)
	}
	if err := f.Sync(); err != nil {
		return fail("sync", err)
	}
	if err := fs.SyncDir(e.dir); err != nil {
		return fail("sync directory of", err)
	}
	rf, err := fs.Open(s.name)
	if err != nil {
		return fail("open", err)
	}
	s.rf = rf
	s.size, s.salt = headerSize, saltOf(seq)
	return f, s, nil
}

// reserve preallocates a segment file's blocks from off to SegmentSize and,
// where the file can (vfs.Extender), raises its size to SegmentSize
// without writing: appends then stay inside the size, so the fdatasync of
// a small round commits no size change (measured: 128-byte appends synced
// in ~100 µs instead of ~150 µs on ext4). What lies past the data reads as
// zeros, the end of the data, as in a preallocated file. With ZeroFill the
// fill sets the size instead, so that a file's size keeps saying how far
// it was filled (Open fills an active segment from its size on).
func (e *Engine) reserve(f vfs.File, off int64) error {
	_, fills := f.(vfs.ZeroFiller)
	if x, ok := f.(vfs.Extender); ok && !(fills && e.opts.ZeroFill) {
		return x.Extend(e.opts.SegmentSize) // reserves [0, SegmentSize) too
	}
	return f.Preallocate(off, e.opts.SegmentSize-off)
}

package logengine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftkit/raftkit/storage/vfs"
)

// appendMany appends n rounds of k entries to group 1 after its last index
// and records them in m.
func appendMany(t *testing.T, e *Engine, m model, n, k int) {
	t.Helper()
	for range n {
		es := ents(1, lastIndex(t, e, 1)+1, uint64(k), 1)
		ok(t, e.Group(1).Append(es))
		m.append(t, es)
	}
}

// TestZeroFilledSegments checks the OS layout: every segment, the first
// (filled by Open) and the rolled ones (filled by the preparer), is written
// to SegmentSize, the readied file is gone after Close, and the log reads
// back the same after a reopen and keeps appending.
func TestZeroFilledSegments(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 16 << 10, ZeroFill: true}
	e := open(t, vfs.OS{}, dir, opts)
	m := newModel()
	appendMany(t, e, m, 300, 8)
	if st := e.Stats(); st.SegmentsCreated < 4 {
		t.Fatalf("only %d segments created; the test wants rolls", st.SegmentsCreated)
	}
	ok(t, e.Close())
	names, err := os.ReadDir(dir)
	ok(t, err)
	for _, n := range names {
		if _, isSeg := parseSegmentName(n.Name()); !isSeg {
			t.Fatalf("unexpected file %s after Close", n.Name())
		}
		fi, err := n.Info()
		ok(t, err)
		if fi.Size() != opts.SegmentSize {
			t.Fatalf("%s is %d bytes, want %d (zero-filled)", n.Name(), fi.Size(), opts.SegmentSize)
		}
	}
	e = open(t, vfs.OS{}, dir, opts)
	m.check(t, e.Group(1))
	appendMany(t, e, m, 20, 8)
	ok(t, e.Close())
	e = open(t, vfs.OS{}, dir, opts)
	defer e.Close()
	m.check(t, e.Group(1))
}

// TestZeroFillOnReopen opens with ZeroFill a log whose active segment's
// size ends at its data (as a file system without fallocate leaves it):
// the segment is filled past its data, and nothing changes.
func TestZeroFillOnReopen(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 16 << 10, ZeroFill: true}
	e := open(t, vfs.OS{}, dir, Options{SegmentSize: opts.SegmentSize})
	m := newModel()
	appendMany(t, e, m, 10, 3)
	st := e.Stats()
	active := segmentName(dir, st.ActiveSegment)
	ok(t, e.Close())
	ok(t, os.Truncate(active, st.Segments[len(st.Segments)-1].Size))
	e = open(t, vfs.OS{}, dir, opts)
	if fi, err := os.Stat(active); err != nil || fi.Size() != opts.SegmentSize {
		t.Fatalf("active segment after a filling reopen: %v, %v", fi, err)
	}
	m.check(t, e.Group(1))
	appendMany(t, e, m, 10, 3)
	ok(t, e.Close())
	e = open(t, vfs.OS{}, dir, opts)
	defer e.Close()
	m.check(t, e.Group(1))
}

// TestLeftoverPrepIgnored puts a readied file with junk in it where a
// crash would leave one: Open deletes it and replays nothing from it.
func TestLeftoverPrepIgnored(t *testing.T) {
	dir := t.TempDir()
	e := open(t, vfs.OS{}, dir, osOpts)
	m := newModel()
	appendMany(t, e, m, 5, 2)
	ok(t, e.Close())
	// The junk is a valid segment 2 holding entries of another term for
	// the same indexes: replayed, it would replace the group's log.
	other := t.TempDir()
	oe := open(t, vfs.OS{}, other, osOpts)
	ok(t, oe.Group(1).Append(ents(1, 1, 10, 9)))
	ok(t, oe.Close())
	junk, err := os.ReadFile(segmentName(other, 1))
	ok(t, err)
	copy(junk, appendHeader(nil, 2))
	ok(t, os.WriteFile(filepath.Join(dir, prepName), junk, 0o644))
	e = open(t, vfs.OS{}, dir, osOpts)
	defer e.Close()
	m.check(t, e.Group(1))
	if _, err := os.Stat(filepath.Join(dir, prepName)); err == nil {
		// The preparer may have readied a new one already: it must not be
		// the junk.
		b, err := os.ReadFile(filepath.Join(dir, prepName))
		ok(t, err)
		if string(b) == string(junk) {
			t.Fatal("the leftover next.prep was not deleted")
		}
	}
	appendMany(t, e, m, 5, 2)
	m.check(t, e.Group(1))
}

// TestPrepareFailure makes every preparation fail: rolls create their
// segment in place instead, and nothing is lost.
func TestPrepareFailure(t *testing.T) {
	fs := vfs.NewMemFS()
	fs.InjectFault(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && strings.HasSuffix(name, "/"+prepName) {
			return vfs.ErrNoSpace
		}
		return nil
	})
	opts := Options{SegmentSize: 4 << 10}
	e := open(t, fs, "/d", opts)
	m := newModel()
	appendMany(t, e, m, 200, 4)
	if st := e.Stats(); st.SegmentsCreated < 4 {
		t.Fatalf("only %d segments created; the test wants rolls", st.SegmentsCreated)
	}
	ok(t, e.Close())
	fs.Crash()
	e = open(t, fs, "/d", opts)
	defer e.Close()
	m.check(t, e.Group(1))
}

// TestSegmentsExtendedToFullSize: on the OS's files every segment's size is
// SegmentSize from its creation on (appends never change it), and the
// unwritten rest reads as the end of the data on reopen.
func TestSegmentsExtendedToFullSize(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 16 << 10}
	e := open(t, vfs.OS{}, dir, opts)
	m := newModel()
	appendMany(t, e, m, 300, 8)
	st := e.Stats()
	if len(st.Segments) < 3 {
		t.Fatalf("only %d segments", len(st.Segments))
	}
	for _, s := range st.Segments {
		fi, err := os.Stat(segmentName(dir, s.Seq))
		ok(t, err)
		if fi.Size() != opts.SegmentSize {
			t.Fatalf("segment %d: file of %d bytes holding %d, want %d", s.Seq, fi.Size(), s.Size, opts.SegmentSize)
		}
	}
	ok(t, e.Close())
	e = open(t, vfs.OS{}, dir, opts)
	defer e.Close()
	m.check(t, e.Group(1))
	appendMany(t, e, m, 10, 3)
	m.check(t, e.Group(1))
}

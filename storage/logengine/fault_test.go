package logengine

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/raftkit/raftkit/storage/vfs"
)

// failLog makes op fail with err on segment files and on the file the
// preparer readies for the next roll.
func failLog(fs *vfs.MemFS, op vfs.Op, err error) {
	fs.InjectFault(func(o vfs.Op, name string) error {
		if o == op && (strings.HasSuffix(name, ".log") || strings.HasSuffix(name, "/"+prepName)) {
			return err
		}
		return nil
	})
}

func TestFaultsFailPermanently(t *testing.T) {
	cases := []struct {
		name  string
		op    vfs.Op
		err   error
		cause error
	}{
		{"sync EIO", vfs.OpSync, vfs.ErrIO, syscall.EIO},
		{"write ENOSPC", vfs.OpWrite, vfs.ErrNoSpace, syscall.ENOSPC},
		{"create on roll", vfs.OpCreate, vfs.ErrIO, syscall.EIO},
		{"preallocate on roll", vfs.OpPreallocate, vfs.ErrNoSpace, syscall.ENOSPC},
		{"rename on roll", vfs.OpRename, vfs.ErrIO, syscall.EIO},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := vfs.NewMemFS()
			e := open(t, fs, "/d", Options{SegmentSize: 4 << 10})
			defer e.Close()
			gl := e.Group(1)
			ok(t, gl.Append(ents(1, 1, 3, 1)))
			failLog(fs, c.op, c.err)
			var err error
			for i := uint64(4); err == nil && i < 1000; i++ {
				err = gl.Append(ents(1, i, 1, 1))
			}
			if !errors.Is(err, ErrFailed) || !errors.Is(err, c.cause) {
				t.Fatalf("append under fault: %v", err)
			}
			fs.InjectFault(nil)
			// Permanent: even with the fault gone nothing works.
			if err := gl.Append(ents(1, 1, 1, 2)); !errors.Is(err, ErrFailed) {
				t.Fatalf("append after failure: %v", err)
			}
			if _, err := gl.LastIndex(); !errors.Is(err, ErrFailed) {
				t.Fatalf("read after failure: %v", err)
			}
			if err := e.GC(); !errors.Is(err, ErrFailed) {
				t.Fatalf("GC after failure: %v", err)
			}
			if !errors.Is(e.Err(), ErrFailed) || !errors.Is(e.Err(), c.cause) {
				t.Fatalf("Err() = %v", e.Err())
			}
			done := make(chan error, 1)
			e.Submit([]Write{{Group: 2, Entries: ents(2, 1, 1, 1)}}, func(err error) { done <- err })
			if err := <-done; !errors.Is(err, ErrFailed) {
				t.Fatalf("Submit after failure: %v", err)
			}
		})
	}
}

// TestFailedSyncThenReopen: after a failed fsync the process reopens; the
// acknowledged entries are there, the failed one may or may not be.
func TestFailedSyncThenReopen(t *testing.T) {
	fs := vfs.NewMemFS()
	e := open(t, fs, "/d", Options{})
	ok(t, e.Group(1).Append(ents(1, 1, 5, 1)))
	failLog(fs, vfs.OpSync, vfs.ErrIO)
	if err := e.Group(1).Append(ents(1, 6, 1, 1)); !errors.Is(err, ErrFailed) {
		t.Fatalf("append: %v", err)
	}
	e.Close()
	fs.InjectFault(nil)
	fs.Crash()
	e = open(t, fs, "/d", Options{})
	defer e.Close()
	if l := lastIndex(t, e, 1); l != 5 {
		t.Fatalf("last index %d after a crash following a failed sync, want 5", l)
	}
	m := newModel()
	m.append(t, ents(1, 1, 5, 1))
	m.check(t, e.Group(1))
}

// TestGCRemoveFault: a failed removal fails the engine too.
func TestGCRemoveFault(t *testing.T) {
	fs := vfs.NewMemFS()
	e := open(t, fs, "/d", Options{SegmentSize: 4 << 10, RecycleSegments: -1})
	defer e.Close()
	for i := uint64(1); e.Stats().ActiveSegment < 3; i++ {
		ok(t, e.Group(1).Append(ents(1, i, 1, 1)))
	}
	failLog(fs, vfs.OpRemove, vfs.ErrIO)
	ok(t, e.Group(1).Reset(1000, 1)) // durable; the GC after it fails
	if err := e.GC(); !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("GC with a failing remove: %v", err)
	}
}

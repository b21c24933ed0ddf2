package vfs

import (
	"errors"
	"os"
	"slices"
)

// OS is the FS of the operating system.
type OS struct{}

var _ FS = OS{}

type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (f osFile) Sync() error { return fdatasync(f.File) }

func (f osFile) Preallocate(off, length int64) error { return preallocate(f.File, off, length) }

var _ Extender = osFile{}

var _ WritebackStarter = osFile{}

// StartWriteback implements WritebackStarter.
func (f osFile) StartWriteback(off, length int64) error { return startWriteback(f.File, off, length) }

// Extend implements Extender.
func (f osFile) Extend(size int64) error { return extend(f.File, size) }

// zeroChunk is how many zeros one write of ZeroFill carries: big enough
// that the fill is sequential and cheap per byte, small enough that a stop
// is noticed within a millisecond or so.
const zeroChunk = 1 << 20

var _ ZeroFiller = osFile{}

// ZeroFill implements ZeroFiller.
func (f osFile) ZeroFill(off, length int64, stop <-chan struct{}) error {
	zeros := make([]byte, min(length, zeroChunk))
	for done := int64(0); done < length; {
		select {
		case <-stop:
			return ErrStopped
		default:
		}
		n := min(int64(len(zeros)), length-done)
		if _, err := f.WriteAt(zeros[:n], off+done); err != nil {
			return err
		}
		done += n
	}
	return nil
}

// Create implements FS.
func (OS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Open implements FS.
func (OS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// OpenRW implements FS.
func (OS) OpenRW(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Remove implements FS.
func (OS) Remove(name string) error { return os.Remove(name) }

// RemoveAll implements FS.
func (OS) RemoveAll(name string) error { return os.RemoveAll(name) }

// Rename implements FS.
func (OS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// MkdirAll implements FS.
func (OS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

// ReadDir implements FS.
func (OS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	slices.Sort(names)
	return names, nil
}

// Stat implements FS.
func (OS) Stat(name string) (os.FileInfo, error) { return os.Stat(name) }

// SyncDir implements FS.
func (OS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// Fdatasync flushes f's data and the metadata needed to read it back (its
// size), skipping timestamps (fsync where the OS has no fdatasync). It is
// what OS files' Sync does, for tools that manage *os.File themselves, such
// as the benchmark's drivers.
func Fdatasync(f *os.File) error { return fdatasync(f) }

// PreallocateKeepSize reserves blocks for [off, off+length) of f without
// changing its size; a no-op where the file system or OS cannot. It is
// what OS files' Preallocate does.
func PreallocateKeepSize(f *os.File, off, length int64) error { return preallocate(f, off, length) }

// Extend reserves blocks for [0, size) of f and makes its size at least
// size, without writing (see Extender); a no-op where the file system or
// OS cannot. It is what OS files' Extend does.
func Extend(f *os.File, size int64) error { return extend(f, size) }

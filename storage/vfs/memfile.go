package vfs

// This file holds the File side of MemFS.

import (
	"io"
	"io/fs"
	"os"
	"slices"
	"syscall"
	"time"
)

// fileInfo is MemFS's os.FileInfo; it is an immutable value.
type fileInfo struct {
	name string
	size int64
	dir  bool
}

func (fi fileInfo) Name() string       { return fi.name }
func (fi fileInfo) Size() int64        { return fi.size }
func (fi fileInfo) IsDir() bool        { return fi.dir }
func (fi fileInfo) ModTime() time.Time { return time.Time{} }
func (fi fileInfo) Sys() any           { return nil }
func (fi fileInfo) Mode() fs.FileMode {
	if fi.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

// memFile is a MemFS File; its state is guarded by m.mu.
type memFile struct {
	m        *MemFS
	ino      *inode
	name     string
	off      int64
	readOnly bool
	closed   bool
	gen      uint64
}

// begin locks the MemFS, checks that f is usable and consults the fault
// function for op (none if op is 0); on success the caller must unlock.
func (f *memFile) begin(op Op, opName string, write bool) error {
	f.m.mu.Lock()
	var err error
	switch {
	case f.closed || f.gen != f.m.gen:
		err = pathErr(opName, f.name, os.ErrClosed)
	case write && f.readOnly:
		err = pathErr(opName, f.name, syscall.EBADF)
	case op != 0:
		err = f.m.inject(op, f.name)
	}
	if err != nil {
		f.m.mu.Unlock()
	}
	return err
}

func (f *memFile) readAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, pathErr("read", f.name, syscall.EINVAL)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Read(p []byte) (int, error) {
	if err := f.begin(OpRead, "read", false); err != nil {
		return 0, err
	}
	defer f.m.mu.Unlock()
	n, err := f.readAt(p, f.off)
	f.off += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.begin(OpRead, "read", false); err != nil {
		return 0, err
	}
	defer f.m.mu.Unlock()
	return f.readAt(p, off)
}

// resize returns b with length n, zero-filling any growth.
func resize(b []byte, n int64) []byte {
	if n <= int64(len(b)) {
		return b[:n]
	}
	return append(b, make([]byte, n-int64(len(b)))...)
}

func (f *memFile) writeAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, pathErr("write", f.name, syscall.EINVAL)
	}
	end := off + int64(len(p))
	if err := f.m.grow("write", f.name, end-int64(len(f.ino.data))); err != nil {
		return 0, err
	}
	if end > int64(len(f.ino.data)) {
		f.ino.data = resize(f.ino.data, end)
	}
	return copy(f.ino.data[off:], p), nil
}

func (f *memFile) Write(p []byte) (int, error) {
	if err := f.begin(OpWrite, "write", true); err != nil {
		return 0, err
	}
	defer f.m.mu.Unlock()
	n, err := f.writeAt(p, f.off)
	f.off += int64(n)
	return n, err
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.begin(OpWrite, "write", true); err != nil {
		return 0, err
	}
	defer f.m.mu.Unlock()
	return f.writeAt(p, off)
}

func (f *memFile) Sync() error {
	if err := f.begin(OpSync, "sync", false); err != nil {
		return err
	}
	defer f.m.mu.Unlock()
	f.ino.durable = slices.Clone(f.ino.data)
	return nil
}

func (f *memFile) Truncate(size int64) error {
	if err := f.begin(OpTruncate, "truncate", true); err != nil {
		return err
	}
	defer f.m.mu.Unlock()
	if size < 0 {
		return pathErr("truncate", f.name, syscall.EINVAL)
	}
	if err := f.m.grow("truncate", f.name, size-int64(len(f.ino.data))); err != nil {
		return err
	}
	f.ino.data = resize(f.ino.data, size)
	return nil
}

func (f *memFile) Size() (int64, error) {
	if err := f.begin(0, "stat", false); err != nil {
		return 0, err
	}
	defer f.m.mu.Unlock()
	return int64(len(f.ino.data)), nil
}

func (f *memFile) Preallocate(off, length int64) error {
	if err := f.begin(OpPreallocate, "preallocate", true); err != nil {
		return err
	}
	defer f.m.mu.Unlock()
	if off < 0 || length <= 0 {
		return pathErr("preallocate", f.name, syscall.EINVAL)
	}
	return f.m.grow("preallocate", f.name, off+length-int64(len(f.ino.data)))
}

func (f *memFile) Close() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if f.closed || f.gen != f.m.gen {
		f.closed = true
		return pathErr("close", f.name, os.ErrClosed)
	}
	f.closed = true
	return nil
}

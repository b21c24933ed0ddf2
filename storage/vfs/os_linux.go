package vfs

import (
	"errors"
	"os"
	"syscall"
)

// fdatasync flushes the file's data and the metadata needed to read it back
// (its size), skipping timestamps: cheaper than fsync for appends.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// preallocate reserves blocks without changing the size (FALLOC_FL_KEEP_SIZE).
// File systems without fallocate support make it a no-op.
func preallocate(f *os.File, off, length int64) error {
	const keepSize = 0x1
	return fallocate(f, keepSize, off, length)
}

// extend reserves blocks for [0, size) and raises the size to at least
// size (fallocate's default mode never shrinks a file).
func extend(f *os.File, size int64) error { return fallocate(f, 0, 0, size) }

// fallocate calls fallocate(2), retrying on EINTR; unsupported is a no-op.
func fallocate(f *os.File, mode uint32, off, length int64) error {
	for {
		err := syscall.Fallocate(int(f.Fd()), mode, off, length)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS):
			return nil
		}
		return err
	}
}

// startWriteback starts writeback of the dirty pages of [off, off+length)
// without waiting (SYNC_FILE_RANGE_WRITE); unsupported is a no-op.
func startWriteback(f *os.File, off, length int64) error {
	const syncFileRangeWrite = 0x2
	for {
		err := syscall.SyncFileRange(int(f.Fd()), off, length, syncFileRangeWrite)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.ESPIPE):
			return nil
		}
		return err
	}
}

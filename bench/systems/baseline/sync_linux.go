package baseline

import (
	"errors"
	"os"
	"syscall"
)

// syncFunc returns fdatasync for f: it flushes the data and the metadata
// needed to read it back (the size), skipping timestamps, which is all a log
// needs and cheaper than fsync.
func syncFunc(f *os.File) func() error {
	fd := int(f.Fd()) // taken once: the file outlives every call
	return func() error {
		for {
			err := syscall.Fdatasync(fd)
			if !errors.Is(err, syscall.EINTR) {
				return err
			}
		}
	}
}

// preallocate reserves size bytes of blocks for f without changing its size
// (FALLOC_FL_KEEP_SIZE), as raftkit's log engine does for its segments. File
// systems without fallocate get no preallocation: the log still works, its
// fdatasyncs just also commit block allocation until it first wraps.
func preallocate(f *os.File, size int64) error {
	const keepSize = 0x1 // FALLOC_FL_KEEP_SIZE
	err := syscall.Fallocate(int(f.Fd()), keepSize, 0, size)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return nil
	}
	return err
}

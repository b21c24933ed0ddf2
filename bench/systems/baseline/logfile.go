package baseline

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/raftkit/raftkit/storage/vfs"
)

// logName is the one file the package owns in a replica's directory.
const logName = "baseline.log"

// logFile is a replica's log: a preallocated file of fixed capacity that
// batches are appended to, wrapping to offset 0 when the next batch would
// not fit. Only its disk goroutine uses it (no locking).
//
// Why preallocate and wrap: an append that extends a file must also allocate
// blocks, and fdatasync then has to commit that allocation and the new size
// along with the data. Reserving the blocks and the size up front (as
// raftkit's log engine does for its segments) and never writing past the
// capacity keeps every fdatasync to the cost of the data (and of marking
// first-written blocks written), which is the irreducible work of a
// durable log. Nothing ever
// reads the file back, so overwriting old batches loses nothing.
type logFile struct {
	f    *os.File
	sync func() error // fdatasync on Linux, f.Sync elsewhere
	size int64        // capacity; a batch never straddles it

	pos     int64 // file offset of the next batch
	written int64 // logical bytes appended since reset (ignores wrapping)

	seg   [][]byte // the batches of the contiguous run being built
	round []byte   // reused concatenation buffer for one write per run
}

// openLog creates (truncating) the log in dir and reserves size bytes for it.
// A restarted replica starts a new log: the baseline recovers nothing.
func openLog(dir string, size int64) (*logFile, error) {
	f, err := os.OpenFile(filepath.Join(dir, logName), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	if err := vfs.Extend(f, size); err != nil {
		f.Close()
		return nil, fmt.Errorf("baseline: preallocate %s: %w", f.Name(), err)
	}
	return &logFile{f: f, sync: func() error { return vfs.Fdatasync(f) }, size: size}, nil
}

// reset makes the next batch go to offset 0, as for a fresh log.
func (l *logFile) reset() { l.pos, l.written = 0, 0 }

// appendRound writes the batches, in order, and makes them durable with one
// fdatasync. Each batch goes at the current offset, or at 0 if it would
// cross the capacity; that rule depends only on the sequence of batch
// lengths, so every replica puts every batch at the same offset whatever its
// rounds are. A round is one write, two when it wraps.
func (l *logFile) appendRound(batches [][]byte) error {
	start := l.pos
	l.seg = l.seg[:0]
	for _, b := range batches {
		n := int64(len(b))
		if l.pos+n > l.size {
			if err := l.flush(start); err != nil {
				return err
			}
			l.pos, start = 0, 0
		}
		l.seg = append(l.seg, b)
		l.pos += n
		l.written += n
	}
	if err := l.flush(start); err != nil {
		return err
	}
	return l.sync()
}

// flush writes the pending run at off: directly when it is a single batch,
// else concatenated so that it costs one write system call.
func (l *logFile) flush(off int64) error {
	var buf []byte
	switch len(l.seg) {
	case 0:
		return nil
	case 1:
		buf = l.seg[0]
	default:
		l.round = l.round[:0]
		for _, b := range l.seg {
			l.round = append(l.round, b...)
		}
		buf = l.round
	}
	clear(l.seg) // drop references to buffers going back to the pool
	l.seg = l.seg[:0]
	_, err := l.f.WriteAt(buf, off)
	return err
}

func (l *logFile) close() error { return l.f.Close() }

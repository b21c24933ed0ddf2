package harness

import (
	"os"
	"syscall"
)

// datasync flushes f's data and the metadata needed to read it back
// (fdatasync), as a log engine does after an append.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

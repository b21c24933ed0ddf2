package storage

import (
	"fmt"

	"github.com/raftkit/raftkit/storage/vfs"
)

// memorySnapshotsDir is where MemorySnapshots keeps its snapshots inside its
// MemFS.
const memorySnapshotsDir = "/snapshots"

// MemorySnapshots is a SnapshotStorage held in memory, for tests and
// examples: a FileSnapshots over a private vfs.MemFS. A state machine writes
// a writer's files, and reads a reader's, through FS (or MemFS); a test can
// simulate a power failure with MemFS().Crash() followed by Reopen.
//
// Concurrency: as FileSnapshots; every method is safe for concurrent use.
type MemorySnapshots struct {
	*FileSnapshots
	mem *vfs.MemFS
}

var _ SnapshotStorage = (*MemorySnapshots)(nil)

// NewMemorySnapshots returns an empty MemorySnapshots on a fresh MemFS.
func NewMemorySnapshots() *MemorySnapshots {
	mem := vfs.NewMemFS()
	s, err := OpenFileSnapshots(mem, memorySnapshotsDir)
	if err != nil { // a fresh MemFS without faults cannot fail
		panic(fmt.Sprintf("storage: NewMemorySnapshots: %v", err))
	}
	return &MemorySnapshots{FileSnapshots: s, mem: mem}
}

// MemFS returns the in-memory file system holding the snapshots, for fault
// injection and crashes. It is the same value as FS.
func (m *MemorySnapshots) MemFS() *vfs.MemFS { return m.mem }

// Reopen returns a new MemorySnapshots over the same MemFS, as a restarted
// process would see it (typically after MemFS().Crash()): leftover
// directories are cleaned up and corrupt snapshots reported by Corrupt. The
// receiver must not be used afterwards.
func (m *MemorySnapshots) Reopen() (*MemorySnapshots, error) {
	s, err := OpenFileSnapshots(m.mem, memorySnapshotsDir)
	if err != nil {
		return nil, err
	}
	return &MemorySnapshots{FileSnapshots: s, mem: m.mem}, nil
}

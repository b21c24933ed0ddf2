package raftkit

import (
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/raftkit/raftkit/storage"
	"github.com/raftkit/raftkit/storage/vfs"
)

// Snapshotter is implemented by a StateMachine that supports snapshots.
// Without it a group never snapshots and never compacts its log, and a
// follower that falls behind a compacted leader cannot catch up.
//
// Both methods are called from the group's apply loop, like Apply, never
// concurrently with another StateMachine method of the same group.
type Snapshotter interface {
	// SaveSnapshot is called when every entry up to the snapshot's index,
	// and none after it, has been applied. It must capture a point-in-time
	// view of the state and return at once: apply is paused only while it
	// runs. The returned function writes that view into the snapshot; it
	// runs on a goroutine of its own while apply continues, so it must not
	// read state that later entries change. A state machine that keeps its
	// state in memory copies it (the Counter copies its value); one backed
	// by a store takes the store's own snapshot or checkpoint handle.
	SaveSnapshot() (SnapshotSaveFunc, error)
	// LoadSnapshot replaces the whole state with the snapshot's: at
	// restart, before any entry after the snapshot is applied, and when a
	// follower installs a snapshot from its leader.
	LoadSnapshot(r *SnapshotReader) error
}

// SnapshotSaveFunc writes a captured state through w. A returned error
// abandons the snapshot (its files are removed) and is logged; the group
// carries on and tries again when a trigger is due, but not before an
// election timeout has passed. A panic in it is turned into such an error.
type SnapshotSaveFunc func(w *SnapshotWriter) error

// SnapshotInfo names a snapshot: the last log entry it covers. A plain
// value.
type SnapshotInfo struct {
	Index, Term uint64
}

// SnapshotWriter is where a SnapshotSaveFunc writes its files.
//
// Concurrency: safe for use by one goroutine at a time; the files it
// creates are independent.
type SnapshotWriter struct {
	fs   vfs.FS
	dir  string
	info SnapshotInfo
}

// Info is the snapshot being written.
func (w *SnapshotWriter) Info() SnapshotInfo { return w.info }

// Create creates the snapshot file name (slash-separated; directories are
// created as needed) and returns it for writing. The runtime syncs every
// file when the snapshot is committed; Close only closes. Names must stay
// inside the snapshot's directory, and names starting with "__" are
// raftkit's own (the manifest, the address book): both are refused with
// ErrInvalid.
func (w *SnapshotWriter) Create(name string) (io.WriteCloser, error) {
	if err := checkSnapshotFileName(name); err != nil {
		return nil, err
	}
	full := path.Join(w.dir, name)
	if d := path.Dir(name); d != "." {
		if err := w.fs.MkdirAll(path.Join(w.dir, d)); err != nil {
			return nil, fmt.Errorf("snapshot file %s: %w", name, err)
		}
	}
	f, err := w.fs.Create(full)
	if err != nil {
		return nil, fmt.Errorf("snapshot file %s: %w", name, err)
	}
	return f, nil
}

// SnapshotReader gives LoadSnapshot the files of a committed snapshot.
//
// Concurrency: safe for use by one goroutine at a time.
type SnapshotReader struct {
	fs    vfs.FS
	dir   string
	info  SnapshotInfo
	files []storage.SnapshotFile
}

// Info is the snapshot being loaded.
func (r *SnapshotReader) Info() SnapshotInfo { return r.info }

// Files lists the snapshot's files, slash-separated and sorted.
func (r *SnapshotReader) Files() []string {
	names := make([]string, len(r.files))
	for i, f := range r.files {
		names[i] = f.Name
	}
	slices.Sort(names)
	return names
}

// Open opens the snapshot file name for reading. Its contents were
// verified against their checksums when the snapshot was committed or
// received.
func (r *SnapshotReader) Open(name string) (io.ReadCloser, error) {
	if err := checkSnapshotFileName(name); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(r.files, func(f storage.SnapshotFile) bool { return f.Name == name }) {
		return nil, fmt.Errorf("snapshot %d has no file %q", r.info.Index, name)
	}
	f, err := r.fs.Open(path.Join(r.dir, name))
	if err != nil {
		return nil, fmt.Errorf("snapshot file %s: %w", name, err)
	}
	return f, nil
}

// checkSnapshotFileName refuses names that would leave the snapshot's
// directory or collide with raftkit's own files (the manifest, the address
// book: every top-level name starting with "__").
func checkSnapshotFileName(name string) error {
	bad := name == "" || strings.HasPrefix(name, "/") || path.Clean(name) != name ||
		strings.HasPrefix(name, "__") || slices.Contains(strings.Split(name, "/"), "..")
	if bad {
		return &Error{Code: CodeInvalidArgument, Msg: fmt.Sprintf("invalid snapshot file name %q", name)}
	}
	return nil
}

// userFiles drops raftkit's own files from a snapshot's file list.
func userFiles(files []storage.SnapshotFile) []storage.SnapshotFile {
	return slices.DeleteFunc(files, func(f storage.SnapshotFile) bool { return strings.HasPrefix(f.Name, "__") })
}

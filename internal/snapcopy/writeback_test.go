package snapcopy

import (
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/storage/vfs"
)

// writebackFS records the ranges whose writeback the copier starts.
type writebackFS struct {
	vfs.FS
	mu      sync.Mutex
	started map[string]int64 // bytes started per file
}

type writebackFile struct {
	vfs.File
	fs   *writebackFS
	name string
}

func (w *writebackFS) Create(name string) (vfs.File, error) {
	f, err := w.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &writebackFile{File: f, fs: w, name: name}, nil
}

func (f *writebackFile) StartWriteback(off, length int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.fs.started[f.name] += length
	return nil
}

// TestCopyStartsWritebackOfEveryChunk: on files that can, the copier starts
// writeback of every chunk it writes, so the commit's sync finds the data
// on its way to disk.
func TestCopyStartsWritebackOfEveryChunk(t *testing.T) {
	e := newEnv(t, ServerOptions{})
	files := testFiles(testChunk)
	commitSnapshot(t, e.src.FileSnapshots, 10, 2, files)
	fsys := &writebackFS{FS: vfs.NewMemFS(), started: map[string]int64{}}
	if err := fsys.MkdirAll("/w"); err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(ctxTimeout(t, 30*time.Second), e.net, srcAddr, testGroup, 10, 2, fsys, "/w", smallChunks); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if got := fsys.started["/w/"+name]; got != int64(len(data)) {
			t.Errorf("%s: writeback started for %d bytes, want %d", name, got, len(data))
		}
	}
}

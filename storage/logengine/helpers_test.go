package logengine

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
	"github.com/raftkit/raftkit/storage/vfs"
)

// fsCase is a file system to run a test on, with the directory to use.
type fsCase struct {
	name string
	make func(t *testing.T) (vfs.FS, string)
}

var fsCases = []fsCase{
	{"os", func(t *testing.T) (vfs.FS, string) { return vfs.OS{}, t.TempDir() }},
	{"mem", func(t *testing.T) (vfs.FS, string) { return vfs.NewMemFS(), "/data" }},
}

// forEachFS runs f on every file system.
func forEachFS(t *testing.T, f func(t *testing.T, fs vfs.FS, dir string)) {
	for _, c := range fsCases {
		t.Run(c.name, func(t *testing.T) {
			fs, dir := c.make(t)
			f(t, fs, dir)
		})
	}
}

func open(t *testing.T, fs vfs.FS, dir string, opts Options) *Engine {
	t.Helper()
	e, err := Open(fs, dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return e
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ents returns entries [from, from+n) of term, with data naming group,
// index and term.
func ents(g, from, n, term uint64) []raftpb.Entry {
	out := make([]raftpb.Entry, n)
	for i := range out {
		idx := from + uint64(i)
		out[i] = raftpb.Entry{Term: term, Index: idx, Type: raftpb.EntryType(idx % 3),
			Data: []byte(fmt.Sprintf("g%d-i%d-t%d-%s", g, idx, term, strings.Repeat("x", int(idx%17))))}
	}
	return out
}

// model is the expected content of one group, kept in a MemoryStorage.
type model struct{ *storage.MemoryStorage }

func newModel() model { return model{storage.NewMemoryStorage()} }

func (m model) append(t *testing.T, es []raftpb.Entry) {
	t.Helper()
	ok(t, m.Append(es))
}

// check compares gl with m: bounds, every term, and every entry, read in
// several chunk sizes.
func (m model) check(t *testing.T, gl *GroupLog) {
	t.Helper()
	wf, _ := m.FirstIndex()
	wl, _ := m.LastIndex()
	f, err1 := gl.FirstIndex()
	l, err2 := gl.LastIndex()
	ok(t, errors.Join(err1, err2))
	if f != wf || l != wl {
		t.Fatalf("group %d: bounds [%d, %d], want [%d, %d]", gl.ID(), f, l, wf, wl)
	}
	for i := wf - 1; i <= wl; i++ {
		want, _ := m.Term(i)
		got, err := gl.Term(i)
		if err != nil || got != want {
			t.Fatalf("group %d: Term(%d) = %d, %v; want %d", gl.ID(), i, got, err, want)
		}
	}
	if wf > 1 {
		if _, err := gl.Term(wf - 2); !errors.Is(err, storage.ErrCompacted) {
			t.Fatalf("group %d: Term below the snapshot: %v", gl.ID(), err)
		}
	}
	if _, err := gl.Term(wl + 1); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("group %d: Term past the end: %v", gl.ID(), err)
	}
	if wl < wf {
		return
	}
	for _, maxBytes := range []uint64{0, 100, 1 << 30} {
		for lo := wf; lo <= wl; {
			got, err := gl.Entries(lo, wl+1, maxBytes)
			ok(t, err)
			want, _ := m.Entries(lo, wl+1, maxBytes)
			if len(got) != len(want) {
				t.Fatalf("group %d: Entries(%d, %d, %d) returned %d entries, want %d", gl.ID(), lo, wl+1, maxBytes, len(got), len(want))
			}
			for i := range got {
				if !sameEntry(got[i], want[i]) {
					t.Fatalf("group %d: entry %d = %v, want %v", gl.ID(), want[i].Index, got[i], want[i])
				}
			}
			lo += uint64(len(got))
		}
	}
}

func sameEntry(a, b raftpb.Entry) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type && string(a.Data) == string(b.Data)
}

// hookFS wraps an FS and calls a hook before every File.Sync.
type hookFS struct {
	vfs.FS
	onSync atomic.Pointer[func(name string)]
}

type hookFile struct {
	vfs.File
	fs   *hookFS
	name string
}

func (h *hookFS) wrap(f vfs.File, name string, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &hookFile{File: f, fs: h, name: name}, nil
}

func (h *hookFS) Create(name string) (vfs.File, error) {
	f, err := h.FS.Create(name)
	return h.wrap(f, name, err)
}

func (h *hookFS) OpenRW(name string) (vfs.File, error) {
	f, err := h.FS.OpenRW(name)
	return h.wrap(f, name, err)
}

func (f *hookFile) Sync() error {
	if p := f.fs.onSync.Load(); p != nil {
		(*p)(f.name)
	}
	return f.File.Sync()
}

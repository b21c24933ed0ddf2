package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestMemFSLikeOS(t *testing.T) {
	exerciseFS(t, NewMemFS(), "/")
	exerciseFS(t, NewMemFS(), "")
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// put creates name holding data; it syncs the file if sync is set, and
// never syncs the directory.
func put(t *testing.T, m *MemFS, name, data string, sync bool) {
	t.Helper()
	f, err := m.Create(name)
	check(t, err)
	_, err = f.Write([]byte(data))
	check(t, err)
	if sync {
		check(t, f.Sync())
	}
	check(t, f.Close())
}

// content returns name's current contents, or "<missing>".
func content(t *testing.T, m *MemFS, name string) string {
	t.Helper()
	f, err := m.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "<missing>"
	}
	check(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	check(t, err)
	return string(b)
}

// dump renders the current tree and then, after a Crash, the durable tree.
// It crashes m.
func dump(m *MemFS) string {
	var b strings.Builder
	var walk func(p string, ino *inode)
	walk = func(p string, ino *inode) {
		if !ino.isDir {
			fmt.Fprintf(&b, "%s %q durable %q\n", p, ino.data, ino.durable)
			return
		}
		fmt.Fprintf(&b, "%s/ %v durable %v\n", p, sortedNames(ino.ents), sortedNames(ino.dents))
		for _, n := range sortedNames(ino.ents) {
			walk(p+"/"+n, ino.ents[n])
		}
	}
	m.mu.Lock()
	walk("", m.root)
	m.mu.Unlock()
	m.Crash()
	b.WriteString("-- crash --\n")
	m.mu.Lock()
	walk("", m.root)
	m.mu.Unlock()
	return b.String()
}

// fixture returns a MemFS with a durable directory d holding a durable file
// d/f ("durable", plus an unsynced " tail"), a file d/g whose name is not
// durable, and an empty directory e; h is d/f opened read-write.
func fixture(t *testing.T) (*MemFS, File) {
	m := NewMemFS()
	check(t, m.MkdirAll("d"))
	check(t, m.MkdirAll("e"))
	put(t, m, "d/f", "durable", true)
	check(t, m.SyncDir("d"))
	put(t, m, "d/g", "g", true)
	h, err := m.OpenRW("d/f")
	check(t, err)
	_, err = h.WriteAt([]byte(" tail"), 7)
	check(t, err)
	return m, h
}

func TestMemFSErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   func(m *MemFS) error
		want error // nil: success
	}{
		{"create in missing dir", func(m *MemFS) error { _, err := m.Create("x/f"); return err }, fs.ErrNotExist},
		{"create over dir", func(m *MemFS) error { _, err := m.Create("e"); return err }, syscall.EISDIR},
		{"create below file", func(m *MemFS) error { _, err := m.Create("d/f/x"); return err }, syscall.ENOTDIR},
		{"create root", func(m *MemFS) error { _, err := m.Create("/"); return err }, syscall.EINVAL},
		{"open missing", func(m *MemFS) error { _, err := m.Open("d/x"); return err }, fs.ErrNotExist},
		{"openrw missing", func(m *MemFS) error { _, err := m.OpenRW("d/x"); return err }, fs.ErrNotExist},
		{"open dir", func(m *MemFS) error { _, err := m.Open("e"); return err }, syscall.EISDIR},
		{"open cleaned", func(m *MemFS) error { _, err := m.Open("/x/../d//./f"); return err }, nil},
		{"remove missing", func(m *MemFS) error { return m.Remove("d/x") }, fs.ErrNotExist},
		{"remove non-empty", func(m *MemFS) error { return m.Remove("d") }, syscall.ENOTEMPTY},
		{"remove empty dir", func(m *MemFS) error { return m.Remove("e") }, nil},
		{"remove root", func(m *MemFS) error { return m.Remove("") }, syscall.EINVAL},
		{"removeall missing", func(m *MemFS) error { return m.RemoveAll("x/y") }, nil},
		{"removeall tree", func(m *MemFS) error { return m.RemoveAll("d") }, nil},
		{"removeall below file", func(m *MemFS) error { return m.RemoveAll("d/f/x") }, syscall.ENOTDIR},
		{"removeall root", func(m *MemFS) error { return m.RemoveAll(".") }, syscall.EINVAL},
		{"rename missing", func(m *MemFS) error { return m.Rename("d/x", "d/y") }, fs.ErrNotExist},
		{"rename to missing dir", func(m *MemFS) error { return m.Rename("d/f", "x/f") }, fs.ErrNotExist},
		{"rename file over dir", func(m *MemFS) error { return m.Rename("d/f", "e") }, syscall.EISDIR},
		{"rename dir over file", func(m *MemFS) error { return m.Rename("e", "d/f") }, syscall.ENOTDIR},
		{"rename dir over non-empty", func(m *MemFS) error { return m.Rename("e", "d") }, syscall.ENOTEMPTY},
		{"rename dir over empty", func(m *MemFS) error { return m.Rename("d", "e") }, nil},
		{"rename dir below itself", func(m *MemFS) error { return m.Rename("d", "d/sub") }, syscall.EINVAL},
		{"rename to itself", func(m *MemFS) error { return m.Rename("d/f", "/d/f") }, nil},
		{"rename root", func(m *MemFS) error { return m.Rename("/", "x") }, syscall.EINVAL},
		{"mkdirall below file", func(m *MemFS) error { return m.MkdirAll("d/f/x") }, syscall.ENOTDIR},
		{"mkdirall over file", func(m *MemFS) error { return m.MkdirAll("d/f") }, syscall.ENOTDIR},
		{"readdir missing", func(m *MemFS) error { _, err := m.ReadDir("x"); return err }, fs.ErrNotExist},
		{"readdir file", func(m *MemFS) error { _, err := m.ReadDir("d/f"); return err }, syscall.ENOTDIR},
		{"stat missing", func(m *MemFS) error { _, err := m.Stat("d/x"); return err }, fs.ErrNotExist},
		{"stat below file", func(m *MemFS) error { _, err := m.Stat("d/f/x"); return err }, syscall.ENOTDIR},
		{"syncdir missing", func(m *MemFS) error { return m.SyncDir("x") }, fs.ErrNotExist},
		{"syncdir file", func(m *MemFS) error { return m.SyncDir("d/f") }, syscall.ENOTDIR},
		{"syncdir root", func(m *MemFS) error { return m.SyncDir("") }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := fixture(t)
			err := tc.op(m)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMemFSNamespace(t *testing.T) {
	m, _ := fixture(t)
	for _, root := range []string{"", ".", "/"} {
		if names, err := m.ReadDir(root); err != nil || !slices.Equal(names, []string{"d", "e"}) {
			t.Fatalf("ReadDir(%q) = %v, %v", root, names, err)
		}
	}
	put(t, m, "d/a", "a", false)
	if names, _ := m.ReadDir("d"); !slices.Equal(names, []string{"a", "f", "g"}) {
		t.Fatalf("ReadDir(d) = %v", names)
	}
	if names, err := m.ReadDir("e"); err != nil || names == nil || len(names) != 0 {
		t.Fatalf("ReadDir(e) = %#v, %v", names, err)
	}
	check(t, m.Rename("d/a", "d/f")) // replaces
	if got := content(t, m, "d/f"); got != "a" {
		t.Fatalf("d/f = %q after the rename", got)
	}
	check(t, m.Rename("e", "d/e2"))
	check(t, m.MkdirAll("d/e2/x/y"))
	fi, err := m.Stat("d//e2/x/../x")
	check(t, err)
	if fi.Name() != "x" || !fi.IsDir() || fi.Mode() != fs.ModeDir|0o755 || fi.Size() != 0 ||
		!fi.ModTime().IsZero() || fi.Sys() != nil {
		t.Fatalf("Stat = %v %v %v %v", fi.Name(), fi.IsDir(), fi.Mode(), fi.Size())
	}
	fi, err = m.Stat("/d/g")
	check(t, err)
	if fi.Name() != "g" || fi.IsDir() || fi.Mode() != 0o644 || fi.Size() != 1 {
		t.Fatalf("Stat = %v %v %v %v", fi.Name(), fi.IsDir(), fi.Mode(), fi.Size())
	}
	check(t, m.RemoveAll("d/e2"))
	if _, err := m.Stat("d/e2/x/y"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat after RemoveAll: %v", err)
	}
	if s := OpSyncDir.String() + Op(0).String() + Op(99).String(); s != "syncdirinvalidinvalid" {
		t.Fatalf("Op names: %s", s)
	}
}

func TestMemFile(t *testing.T) {
	m, h := fixture(t)
	buf := make([]byte, 4)
	// Read and Write move the offset; ReadAt and WriteAt do not.
	if n, err := h.Read(buf); n != 4 || err != nil || string(buf) != "dura" {
		t.Fatalf("Read = %d %q, %v", n, buf, err)
	}
	check(t, errOf(h.Write([]byte("BLE"))))
	check(t, errOf(h.WriteAt([]byte("D"), 0)))
	if n, err := h.ReadAt(buf, 0); n != 4 || err != nil || string(buf) != "Dura" {
		t.Fatalf("ReadAt = %d %q, %v", n, buf, err)
	}
	if n, err := h.Read(buf); n != 4 || err != nil || string(buf) != " tai" {
		t.Fatalf("Read = %d %q, %v", n, buf, err)
	}
	if n, err := h.Read(buf); n != 1 || err != nil || string(buf[:1]) != "l" {
		t.Fatalf("Read = %d %q, %v", n, buf, err)
	}
	if n, err := h.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read at EOF = %d, %v", n, err)
	}
	if n, err := h.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty Read = %d, %v", n, err)
	}
	if n, err := h.ReadAt(buf, 10); n != 2 || err != io.EOF {
		t.Fatalf("short ReadAt = %d, %v", n, err)
	}
	if n, err := h.ReadAt(buf, 100); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt past EOF = %d, %v", n, err)
	}
	// Writing past the end, and truncating down then up, zero-fill.
	check(t, errOf(h.WriteAt([]byte("Z"), 14)))
	if got := content(t, m, "d/f"); got != "DuraBLE tail\x00\x00Z" {
		t.Fatalf("content %q", got)
	}
	check(t, h.Truncate(2))
	check(t, h.Truncate(4))
	if got := content(t, m, "d/f"); got != "Du\x00\x00" {
		t.Fatalf("content %q", got)
	}
	check(t, h.Preallocate(0, 100))
	if n, err := h.Size(); n != 4 || err != nil {
		t.Fatalf("Size = %d, %v", n, err)
	}
	for _, err := range []error{
		errOf(h.ReadAt(buf, -1)), errOf(h.WriteAt(buf, -1)), h.Truncate(-1),
		h.Preallocate(-1, 1), h.Preallocate(0, 0),
	} {
		if !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("bad argument: %v", err)
		}
	}
	// A read-only File refuses changes but may Sync.
	r, err := m.Open("d/f")
	check(t, err)
	for _, err := range []error{
		errOf(r.Write(buf)), errOf(r.WriteAt(buf, 0)), r.Truncate(0), r.Preallocate(0, 1),
	} {
		if !errors.Is(err, syscall.EBADF) {
			t.Fatalf("change through a read-only File: %v", err)
		}
	}
	check(t, r.Sync())
	// A File outlives the removal of its name.
	check(t, m.Remove("d/f"))
	check(t, errOf(h.Write([]byte("x"))))
	if n, err := r.ReadAt(buf, 0); n != 4 || err != nil {
		t.Fatalf("ReadAt of a removed file = %d, %v", n, err)
	}
	// Closed Files refuse everything, Close included.
	check(t, r.Close())
	if err := r.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.Read(buf); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
}

// errOf drops the first result.
func errOf[T any](_ T, err error) error { return err }

func TestMemFSDurability(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(t *testing.T, m *MemFS)
		want map[string]string // name → contents after the crash
	}{
		{"fixture", func(*testing.T, *MemFS) {}, map[string]string{"d/f": "durable", "d/g": "<missing>"}},
		{"synced file in unsynced dir vanishes", func(t *testing.T, m *MemFS) {
			check(t, m.MkdirAll("n"))
			put(t, m, "n/x", "x", true)
		}, map[string]string{"n/x": "<missing>", "n": ""}},
		{"synced name, unsynced contents", func(t *testing.T, m *MemFS) {
			put(t, m, "d/x", "x", false)
			check(t, m.SyncDir("d"))
		}, map[string]string{"d/x": "", "d/g": "g"}},
		{"sync both", func(t *testing.T, m *MemFS) {
			put(t, m, "d/x", "x", true)
			check(t, m.SyncDir("d"))
		}, map[string]string{"d/x": "x", "d/g": "g"}},
		{"rename without SyncDir", func(t *testing.T, m *MemFS) {
			check(t, m.Rename("d/f", "d/r"))
		}, map[string]string{"d/f": "durable", "d/r": "<missing>"}},
		{"rename with SyncDir", func(t *testing.T, m *MemFS) {
			check(t, m.Rename("d/f", "d/r"))
			check(t, m.SyncDir("d"))
		}, map[string]string{"d/f": "<missing>", "d/r": "durable"}},
		{"rename over a file without SyncDir", func(t *testing.T, m *MemFS) {
			put(t, m, "d/new", "new", true)
			check(t, m.Rename("d/new", "d/f"))
		}, map[string]string{"d/f": "durable", "d/new": "<missing>"}},
		{"rename across dirs, new dir synced only", func(t *testing.T, m *MemFS) {
			check(t, m.Rename("d/f", "e/f"))
			check(t, m.SyncDir("e"))
		}, map[string]string{"d/f": "durable", "e/f": "durable"}},
		{"rename across dirs, both synced", func(t *testing.T, m *MemFS) {
			check(t, m.Rename("d/f", "e/f"))
			check(t, m.SyncDir("e"))
			check(t, m.SyncDir("d"))
		}, map[string]string{"d/f": "<missing>", "e/f": "durable"}},
		{"rename of a dir without SyncDir", func(t *testing.T, m *MemFS) {
			check(t, m.Rename("d", "e/d"))
			check(t, m.SyncDir("e"))
		}, map[string]string{"d/f": "durable", "e/d/f": "durable"}},
		{"remove without SyncDir", func(t *testing.T, m *MemFS) {
			check(t, m.Remove("d/f"))
		}, map[string]string{"d/f": "durable"}},
		{"remove with SyncDir", func(t *testing.T, m *MemFS) {
			check(t, m.Remove("d/f"))
			check(t, m.SyncDir("d"))
		}, map[string]string{"d/f": "<missing>"}},
		{"removeall without SyncDir", func(t *testing.T, m *MemFS) {
			check(t, m.RemoveAll("d"))
		}, map[string]string{"d/f": "durable"}},
		{"removeall with SyncDir", func(t *testing.T, m *MemFS) {
			check(t, m.RemoveAll("d"))
			check(t, m.SyncDir("/"))
		}, map[string]string{"d/f": "<missing>"}},
		{"truncate without Sync", func(t *testing.T, m *MemFS) {
			f, err := m.OpenRW("d/f")
			check(t, err)
			check(t, f.Truncate(3))
		}, map[string]string{"d/f": "durable"}},
		{"truncate with Sync", func(t *testing.T, m *MemFS) {
			f, err := m.OpenRW("d/f")
			check(t, err)
			check(t, f.Truncate(3))
			check(t, f.Sync())
		}, map[string]string{"d/f": "dur"}},
		{"create over a file without Sync", func(t *testing.T, m *MemFS) {
			_, err := m.Create("d/f")
			check(t, err)
		}, map[string]string{"d/f": "durable"}},
		{"mkdirall is durable", func(t *testing.T, m *MemFS) {
			check(t, m.MkdirAll("d/x/y"))
		}, map[string]string{"d/x/y": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := fixture(t)
			tc.do(t, m)
			m.Crash()
			for name, want := range tc.want {
				if fi, err := m.Stat(name); want == "" && err == nil && fi.IsDir() {
					continue
				}
				if got := content(t, m, name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestMemFSDurableAccessors(t *testing.T) {
	m, _ := fixture(t)
	if n, err := m.DurableSize("d/f"); n != 7 || err != nil {
		t.Fatalf("DurableSize = %d, %v", n, err)
	}
	if _, err := m.DurableSize("d/g"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("DurableSize of an undurable name: %v", err)
	}
	if _, err := m.DurableSize("d"); !errors.Is(err, syscall.EISDIR) {
		t.Fatalf("DurableSize of a dir: %v", err)
	}
	if names, err := m.DurableReadDir("d"); err != nil || !slices.Equal(names, []string{"f"}) {
		t.Fatalf("DurableReadDir = %v, %v", names, err)
	}
	if _, err := m.DurableReadDir("d/f"); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("DurableReadDir of a file: %v", err)
	}
	// A cross-directory rename synced in the new directory only leaves two
	// independent copies.
	check(t, m.Rename("d/f", "e/f"))
	check(t, m.SyncDir("e"))
	m.Crash()
	put(t, m, "e/f", "new", false)
	if got := content(t, m, "d/f"); got != "durable" {
		t.Fatalf("d/f = %q", got)
	}
}

func TestMemFSCrashInvalidatesFiles(t *testing.T) {
	m, h := fixture(t)
	m.Crash()
	buf := make([]byte, 1)
	for i, err := range []error{
		errOf(h.Read(buf)), errOf(h.ReadAt(buf, 0)), errOf(h.Write(buf)), errOf(h.WriteAt(buf, 0)),
		h.Sync(), h.Truncate(0), errOf(h.Size()), h.Preallocate(0, 1), h.Close(),
	} {
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("call %d after the crash: %v", i, err)
		}
	}
	if got := content(t, m, "d/f"); got != "durable" {
		t.Fatalf("d/f = %q", got)
	}
	m.InjectFault(func(Op, string) error { return ErrIO })
	if err := h.Sync(); !errors.Is(err, os.ErrClosed) { // checked before the fault
		t.Fatalf("Sync: %v", err)
	}
}

func TestMemFSFaults(t *testing.T) {
	buf := make([]byte, 3)
	for _, tc := range []struct {
		op   Op
		name string // as the fault function sees it
		do   func(m *MemFS, h File) error
	}{
		{OpCreate, "d/new", func(m *MemFS, _ File) error { return errOf(m.Create("d/new")) }},
		{OpCreate, "/d/f", func(m *MemFS, _ File) error { return errOf(m.Create("/d/./f")) }},
		{OpOpen, "d/f", func(m *MemFS, _ File) error { return errOf(m.Open("d/f")) }},
		{OpOpen, "d/f", func(m *MemFS, _ File) error { return errOf(m.OpenRW("d/f")) }},
		{OpRead, "d/f", func(_ *MemFS, h File) error { return errOf(h.Read(buf)) }},
		{OpRead, "d/f", func(_ *MemFS, h File) error { return errOf(h.ReadAt(buf, 0)) }},
		{OpWrite, "d/f", func(_ *MemFS, h File) error { return errOf(h.Write([]byte("xyz"))) }},
		{OpWrite, "d/f", func(_ *MemFS, h File) error { return errOf(h.WriteAt([]byte("xyz"), 20)) }},
		{OpSync, "d/f", func(_ *MemFS, h File) error { return h.Sync() }},
		{OpTruncate, "d/f", func(_ *MemFS, h File) error { return h.Truncate(0) }},
		{OpPreallocate, "d/f", func(_ *MemFS, h File) error { return h.Preallocate(0, 100) }},
		{OpRemove, "d/f", func(m *MemFS, _ File) error { return m.Remove("d/f") }},
		{OpRemoveAll, "d", func(m *MemFS, _ File) error { return m.RemoveAll("d/") }},
		{OpRename, "d/f", func(m *MemFS, _ File) error { return m.Rename("d/f", "e/f") }},
		{OpMkdirAll, "x/y", func(m *MemFS, _ File) error { return m.MkdirAll("x/y") }},
		{OpReadDir, "d", func(m *MemFS, _ File) error { return errOf(m.ReadDir("d")) }},
		{OpStat, "d/f", func(m *MemFS, _ File) error { return errOf(m.Stat("d/f")) }},
		{OpSyncDir, "d", func(m *MemFS, _ File) error { return m.SyncDir("d") }},
	} {
		t.Run(tc.op.String(), func(t *testing.T) {
			ref, refH := fixture(t)
			m, h := fixture(t)
			var calls []string
			m.InjectFault(func(op Op, name string) error {
				calls = append(calls, fmt.Sprint(op, " ", name))
				if op == tc.op {
					return ErrIO
				}
				return nil
			})
			if err := tc.do(m, h); err != ErrIO {
				t.Fatalf("got %v, want exactly ErrIO", err)
			}
			if want := []string{fmt.Sprint(tc.op, " ", tc.name)}; !slices.Equal(calls, want) {
				t.Fatalf("fault function saw %v, want %v", calls, want)
			}
			if off, refOff := h.(*memFile).off, refH.(*memFile).off; off != refOff {
				t.Fatalf("offset moved to %d", off)
			}
			if got, want := dump(m), dump(ref); got != want {
				t.Fatalf("the failed operation had an effect:\n%s\nwant:\n%s", got, want)
			}
		})
	}
	if !errors.Is(ErrIO, syscall.EIO) || !errors.Is(ErrNoSpace, syscall.ENOSPC) || errors.Is(ErrIO, syscall.ENOSPC) {
		t.Fatal("Errno does not wrap its syscall.Errno")
	}
	if got := ErrNoSpace.Error(); got != "vfs: injected fault: no space left on device" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestMemFSCapacity(t *testing.T) {
	m, h := fixture(t) // d/f holds 12 bytes, d/g 1
	m.SetCapacity(20)
	noSpace := func(err error) {
		t.Helper()
		if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrNoSpace) {
			t.Fatalf("got %v, want ENOSPC", err)
		}
	}
	if n, err := h.WriteAt([]byte("123456789"), 12); n != 0 {
		t.Fatalf("WriteAt over capacity wrote %d", n)
	} else {
		noSpace(err)
	}
	noSpace(h.Truncate(20))
	noSpace(h.Preallocate(0, 20))
	check(t, h.Preallocate(0, 19))
	check(t, errOf(h.WriteAt([]byte("DUR"), 0))) // no growth
	check(t, errOf(h.WriteAt([]byte("1234567"), 12)))
	if got := content(t, m, "d/f"); got != "DURable tail1234567" {
		t.Fatalf("d/f = %q", got)
	}
	x, err := m.Create("d/x") // an empty file takes no space
	check(t, err)
	noSpace(errOf(x.Write([]byte("y"))))
	check(t, m.Remove("d/g"))
	check(t, errOf(x.Write([]byte("y"))))
	m.SetCapacity(-1)
	check(t, errOf(x.Write(make([]byte, 1000))))
}

func TestMemFSCrashKeepPartial(t *testing.T) {
	const durable, tail = "0123", "abcdefgh"
	run := func(seed uint64) (f, g string) {
		m := NewMemFS()
		put(t, m, "f", durable, true)
		check(t, m.SyncDir(""))
		h, err := m.OpenRW("f")
		check(t, err)
		check(t, errOf(h.WriteAt([]byte(tail[:3]), 4)))
		check(t, errOf(h.WriteAt([]byte(tail[3:]), 7)))
		put(t, m, "g", "g", true) // its name is not durable
		m.CrashKeepPartial(rand.New(rand.NewPCG(seed, 0)))
		if _, err := h.Size(); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("File usable after CrashKeepPartial: %v", err)
		}
		f = content(t, m, "f")
		m.Crash() // what survived is now durable
		if again := content(t, m, "f"); again != f {
			t.Fatalf("second crash changed %q to %q", f, again)
		}
		return f, content(t, m, "g")
	}
	lengths := map[int]bool{}
	for seed := range uint64(64) {
		f, g := run(seed)
		if again, _ := run(seed); again != f {
			t.Fatalf("seed %d: %q then %q", seed, f, again)
		}
		if g != "<missing>" || !strings.HasPrefix(durable+tail, f) || len(f) < len(durable) {
			t.Fatalf("seed %d: f = %q, g = %q", seed, f, g)
		}
		lengths[len(f)] = true
	}
	if !lengths[4] || !lengths[12] || !lengths[5] || !lengths[10] { // 5, 10: torn writes
		t.Fatalf("kept lengths %v", lengths)
	}

	// An overwrite in the middle keeps a prefix of the new bytes, then the
	// old ones; an unsynced truncation is undone.
	for seed := range uint64(16) {
		m := NewMemFS()
		put(t, m, "o", "AAAAAAAA", true)
		put(t, m, "t", "TTTT", true)
		check(t, m.SyncDir(""))
		h, err := m.OpenRW("o")
		check(t, err)
		check(t, errOf(h.WriteAt([]byte("BBB"), 2)))
		h, err = m.OpenRW("t")
		check(t, err)
		check(t, h.Truncate(1))
		m.CrashKeepPartial(rand.New(rand.NewPCG(seed, 1)))
		got := content(t, m, "o")
		if !slices.Contains([]string{"AAAAAAAA", "AABAAAAA", "AABBAAAA", "AABBBAAA"}, got) {
			t.Fatalf("seed %d: o = %q", seed, got)
		}
		if got := content(t, m, "t"); got != "TTTT" {
			t.Fatalf("seed %d: t = %q", seed, got)
		}
	}
}

// TestMemFSConcurrent is for the race detector; its result does not depend
// on the interleaving.
func TestMemFSConcurrent(t *testing.T) {
	m := NewMemFS()
	check(t, m.MkdirAll("d"))
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			name := fmt.Sprintf("d/%d", i)
			f, err := m.Create(name)
			if err != nil {
				t.Error(err)
				return
			}
			for range 50 {
				_, _ = f.Write([]byte("x"))
				_ = f.Sync()
				_, _ = m.ReadDir("d")
				_, _ = m.Stat(name)
			}
			_ = f.Close()
		})
	}
	wg.Go(func() {
		for range 5 {
			_ = m.SyncDir("d")
			m.Crash()
		}
	})
	wg.Wait()
	names, err := m.ReadDir("d")
	check(t, err)
	for _, n := range names {
		if got := content(t, m, "d/"+n); strings.Trim(got, "x") != "" || len(got) > 50 {
			t.Fatalf("d/%s = %q", n, got)
		}
	}
}

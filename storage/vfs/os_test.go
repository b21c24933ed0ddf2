package vfs

import (
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func TestOS(t *testing.T) { exerciseFS(t, OS{}, t.TempDir()) }

// exerciseFS runs one scenario against any FS; MemFS runs it too, which
// checks that it behaves like the operating system. root must be an empty
// directory.
func exerciseFS(t *testing.T, fsys FS, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	wantSize := func(f File, want int64) {
		t.Helper()
		if n, err := f.Size(); err != nil || n != want {
			t.Fatalf("Size = %d, %v; want %d", n, err, want)
		}
	}
	dir := filepath.Join(root, "d", "e")
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")

	if _, err := fsys.Create(a); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Create in a missing directory: %v", err)
	}
	must(fsys.MkdirAll(dir))
	must(fsys.MkdirAll(dir)) // idempotent
	f, err := fsys.Create(a)
	must(err)
	if n, err := f.Write([]byte("hello world")); n != 11 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	must(f.Sync())
	wantSize(f, 11)
	must(f.Preallocate(0, 1<<16))
	wantSize(f, 11) // Preallocate keeps the size
	must(f.Truncate(5))
	wantSize(f, 5)
	buf := make([]byte, 10)
	if n, err := f.ReadAt(buf, 0); n != 5 || err != io.EOF || string(buf[:n]) != "hello" {
		t.Fatalf("ReadAt = %d %q, %v", n, buf[:n], err)
	}
	must(f.Close())

	must(fsys.Rename(a, b))
	must(fsys.SyncDir(dir))
	if names, err := fsys.ReadDir(dir); err != nil || !slices.Equal(names, []string{"b"}) {
		t.Fatalf("ReadDir = %v, %v", names, err)
	}
	fi, err := fsys.Stat(b)
	must(err)
	if fi.Name() != "b" || fi.Size() != 5 || fi.IsDir() || !fi.Mode().IsRegular() {
		t.Fatalf("Stat(b) = %s %d %v %v", fi.Name(), fi.Size(), fi.IsDir(), fi.Mode())
	}
	if fi, err := fsys.Stat(dir); err != nil || !fi.IsDir() || fi.Name() != "e" {
		t.Fatalf("Stat(dir) = %v, %v", fi, err)
	}
	if _, err := fsys.Stat(a); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat of the old name: %v", err)
	}

	r, err := fsys.Open(b)
	must(err)
	if n, err := r.Read(buf[:3]); n != 3 || err != nil || string(buf[:3]) != "hel" {
		t.Fatalf("Read = %d %q, %v", n, buf[:n], err)
	}
	if n, err := r.Read(buf); n != 2 || err != nil || string(buf[:2]) != "lo" {
		t.Fatalf("Read = %d %q, %v", n, buf[:n], err)
	}
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read at EOF = %d, %v", n, err)
	}
	if _, err := r.Write([]byte("x")); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("Write on a read-only file: %v", err)
	}
	must(r.Close())

	w, err := fsys.OpenRW(b)
	must(err)
	if _, err := w.WriteAt([]byte("J"), 0); err != nil { // does not move the offset
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("XY")); err != nil {
		t.Fatal(err)
	}
	if n, err := w.ReadAt(buf[:5], 0); n != 5 || err != nil || string(buf[:5]) != "XYllo" {
		t.Fatalf("ReadAt = %d %q, %v", n, buf[:n], err)
	}
	must(w.Close())
	if _, err := fsys.OpenRW(a); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenRW of a missing file: %v", err)
	}

	c, err := fsys.Create(b) // truncates
	must(err)
	wantSize(c, 0)
	must(c.Close())
	if err := fsys.Remove(filepath.Join(root, "d")); err == nil {
		t.Fatal("Remove of a non-empty directory succeeded")
	}
	must(fsys.Remove(b))
	if err := fsys.Remove(b); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Remove of a missing file: %v", err)
	}
	must(fsys.RemoveAll(filepath.Join(root, "d")))
	must(fsys.RemoveAll(filepath.Join(root, "missing")))
	must(fsys.SyncDir(root))
	if names, err := fsys.ReadDir(root); err != nil || len(names) != 0 {
		t.Fatalf("ReadDir(root) = %v, %v", names, err)
	}
}

// TestOSZeroFill checks that ZeroFill overwrites with zeros, extends the
// size, leaves bytes before off alone, and stops on a closed channel.
func TestOSZeroFill(t *testing.T) {
	f, err := OS{}.Create(filepath.Join(t.TempDir(), "z"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(slices.Repeat([]byte{0xff}, 3000), 0); err != nil {
		t.Fatal(err)
	}
	zf, ok := f.(ZeroFiller)
	if !ok {
		t.Fatal("OS files do not implement ZeroFiller")
	}
	const length = 3<<20 + 5 // several chunks and a partial one
	if err := zf.ZeroFill(1000, length, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Size(); err != nil || n != 1000+length {
		t.Fatalf("size after ZeroFill = %d, %v; want %d", n, err, 1000+length)
	}
	b := make([]byte, 1000+length)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(b[:1000], func(c byte) bool { return c != 0xff }) ||
		slices.ContainsFunc(b[1000:], func(c byte) bool { return c != 0 }) {
		t.Fatal("ZeroFill wrote the wrong bytes")
	}
	stop := make(chan struct{})
	close(stop)
	if err := zf.ZeroFill(0, length, stop); !errors.Is(err, ErrStopped) {
		t.Fatalf("ZeroFill with a closed stop: %v", err)
	}
	if _, isFiller := any(&memFile{}).(ZeroFiller); isFiller {
		t.Fatal("MemFS files implement ZeroFiller; the log engine would materialise zeros in memory")
	}
}

// TestOSExtend: Extend raises the size over zeros without touching the
// data, and never shrinks a file.
func TestOSExtend(t *testing.T) {
	f, err := OS{}.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("0123456789"), 0); err != nil {
		t.Fatal(err)
	}
	ext, ok := f.(Extender)
	if !ok {
		t.Fatal("OS files do not implement Extender")
	}
	for _, size := range []int64{1 << 20, 100} {
		if err := ext.Extend(size); err != nil {
			t.Fatal(err)
		}
		if got, err := f.Size(); err != nil || got != 1<<20 {
			t.Fatalf("after Extend(%d): size %d, %v; want %d", size, got, err, 1<<20)
		}
	}
	b := make([]byte, 1<<20)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if string(b[:10]) != "0123456789" || slices.ContainsFunc(b[10:], func(c byte) bool { return c != 0 }) {
		t.Fatal("Extend changed the data or left non-zero bytes past it")
	}
}

// TestOSStartWriteback: starting writeback of written, unwritten and
// beyond-the-end ranges succeeds and changes no data.
func TestOSStartWriteback(t *testing.T) {
	f, err := OS{}.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := []byte("durable only after Sync")
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	ws, ok := f.(WritebackStarter)
	if !ok {
		t.Fatal("OS files do not implement WritebackStarter")
	}
	for _, r := range [][2]int64{{0, int64(len(data))}, {0, 1 << 20}, {1 << 30, 4096}} {
		if err := ws.StartWriteback(r[0], r[1]); err != nil {
			t.Fatalf("StartWriteback(%d, %d): %v", r[0], r[1], err)
		}
	}
	b := make([]byte, len(data))
	if _, err := f.ReadAt(b, 0); err != nil || string(b) != string(data) {
		t.Fatalf("read back %q, %v", b, err)
	}
}

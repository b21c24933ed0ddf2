package storage

import (
	"errors"
	"maps"
	"path/filepath"
	"testing"

	"github.com/raftkit/raftkit/storage/vfs"
)

func openBook(t *testing.T, fsys vfs.FS, dir string) *AddressBook {
	t.Helper()
	a, err := OpenAddressBook(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAddressBookMergeAndReopen(t *testing.T) {
	fsys := vfs.NewMemFS()
	if err := fsys.MkdirAll("g"); err != nil {
		t.Fatal(err)
	}
	a := openBook(t, fsys, "g")
	if got := a.Addresses(); len(got) != 0 {
		t.Fatalf("new book holds %v", got)
	}
	changed, err := a.Merge(map[uint64]string{1: "a:1", 2: "b:2", 0: "zero:0", 3: ""})
	if err != nil || !changed {
		t.Fatalf("Merge = %v, %v", changed, err)
	}
	// Merging what is there already writes nothing.
	fsys.InjectFault(func(op vfs.Op, name string) error { return vfs.Errno(5) })
	if changed, err := a.Merge(map[uint64]string{1: "a:1"}); err != nil || changed {
		t.Fatalf("Merge of known addresses = %v, %v", changed, err)
	}
	// A failed write keeps the old book in memory and on disk.
	if _, err := a.Merge(map[uint64]string{4: "d:4"}); err == nil {
		t.Fatal("Merge under a write fault succeeded")
	}
	fsys.InjectFault(nil)
	want := map[uint64]string{1: "a:1", 2: "b:2"}
	if got := a.Addresses(); !maps.Equal(got, want) {
		t.Fatalf("after failed merge: %v, want %v", got, want)
	}
	if _, err := a.Merge(map[uint64]string{2: "b:22"}); err != nil {
		t.Fatal(err)
	}
	fsys.Crash()
	want[2] = "b:22"
	if got := openBook(t, fsys, "g").Addresses(); !maps.Equal(got, want) {
		t.Fatalf("after crash: %v, want %v", got, want)
	}
}

func TestAddressBookCorrupt(t *testing.T) {
	good := encodeAddrs(map[uint64]string{7: "h:7"})
	for name, b := range map[string][]byte{
		"empty":     {},
		"magic":     append([]byte("XXADDR1\x00"), good[8:]...),
		"checksum":  append(append([]byte(nil), good[:len(good)-1]...), good[len(good)-1]^1),
		"truncated": good[:len(good)-6],
	} {
		t.Run(name, func(t *testing.T) {
			fsys := vfs.NewMemFS()
			if err := fsys.MkdirAll("g"); err != nil {
				t.Fatal(err)
			}
			if err := writeFileSync(fsys, filepath.Join("g", addrFile), b); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenAddressBook(fsys, "g"); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("OpenAddressBook = %v, want ErrCorrupt", err)
			}
		})
	}
}

func FuzzDecodeAddrs(f *testing.F) {
	f.Add(encodeAddrs(map[uint64]string{1: "a:1", 2: "b:2"}))
	f.Add([]byte(addrMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		addrs, err := decodeAddrs("peers", b)
		if err != nil {
			return
		}
		again, err := decodeAddrs("peers", encodeAddrs(addrs))
		if err != nil || !maps.Equal(addrs, again) {
			t.Fatalf("re-decode = %v, %v; want %v", again, err, addrs)
		}
	})
}

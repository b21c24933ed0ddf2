package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage/vfs"
)

// faultAfter returns a fault function that lets the first n operations
// through and fails the rest with vfs.ErrIO when sticky (a process that dies
// at that point), or only the (n+1)th when not. calls reports how many
// operations were attempted.
func faultAfter(n int, sticky bool) (f func(vfs.Op, string) error, calls func() int) {
	var mu sync.Mutex
	count := 0
	f = func(vfs.Op, string) error {
		mu.Lock()
		defer mu.Unlock()
		count++
		if count == n+1 || (sticky && count > n) {
			return vfs.ErrIO
		}
		return nil
	}
	return f, func() int { mu.Lock(); defer mu.Unlock(); return count }
}

// countOps returns how many MemFS operations fn performs.
func countOps(mfs *vfs.MemFS, fn func()) int {
	f, calls := faultAfter(1<<30, false)
	mfs.InjectFault(f)
	fn()
	mfs.InjectFault(nil)
	return calls()
}

func openMeta(t *testing.T, fsys vfs.FS, dir string) *FileMeta {
	t.Helper()
	m, err := OpenFileMeta(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHardStateGuard(t *testing.T) {
	hs := func(term, vote, commit uint64) raftpb.HardState {
		return raftpb.HardState{Term: term, Vote: vote, Commit: commit}
	}
	tests := []struct {
		name      string
		from, to  raftpb.HardState
		regressed bool
	}{
		{"first vote", hs(0, 0, 0), hs(1, 1, 0), false},
		{"same state", hs(2, 1, 5), hs(2, 1, 5), false},
		{"commit advance", hs(2, 1, 5), hs(2, 1, 7), false},
		{"commit lowered", hs(2, 1, 5), hs(2, 1, 3), false},
		{"cast vote in term", hs(2, 0, 5), hs(2, 3, 5), false},
		{"new term drops vote", hs(2, 1, 5), hs(3, 0, 5), false},
		{"new term new vote", hs(2, 1, 5), hs(3, 2, 5), false},
		{"term lowered", hs(3, 0, 5), hs(2, 0, 5), true},
		{"vote changed", hs(3, 1, 5), hs(3, 2, 5), true},
		{"vote withdrawn", hs(3, 1, 5), hs(3, 0, 5), true},
	}
	impls := []struct {
		name string
		open func(t *testing.T) MetaStorage
	}{
		{"memory", func(*testing.T) MetaStorage { return NewMemoryMeta() }},
		{"file", func(t *testing.T) MetaStorage { return openMeta(t, vfs.OS{}, t.TempDir()) }},
		{"memfs", func(t *testing.T) MetaStorage { return openMeta(t, vfs.NewMemFS(), "g1/meta") }},
	}
	for _, impl := range impls {
		for _, tt := range tests {
			t.Run(impl.name+"/"+tt.name, func(t *testing.T) {
				m := impl.open(t)
				if !tt.from.IsEmpty() {
					if err := m.SetHardState(tt.from); err != nil {
						t.Fatal(err)
					}
				}
				err := m.SetHardState(tt.to)
				want := tt.to
				if tt.regressed {
					if !errors.Is(err, ErrHardStateRegression) {
						t.Fatalf("SetHardState(%+v) over %+v = %v, want ErrHardStateRegression", tt.to, tt.from, err)
					}
					want = tt.from
				} else if err != nil {
					t.Fatalf("SetHardState(%+v) over %+v = %v", tt.to, tt.from, err)
				}
				if got, err := m.HardState(); err != nil || got != want {
					t.Fatalf("HardState = %+v, %v; want %+v", got, err, want)
				}
			})
		}
	}
}

func TestFileMetaPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b") // created by Open
	m := openMeta(t, vfs.OS{}, dir)
	if hs, err := m.HardState(); err != nil || !hs.IsEmpty() {
		t.Fatalf("fresh HardState = %+v, %v", hs, err)
	}
	want := raftpb.HardState{Term: 7, Vote: 3, Commit: 42}
	if err := m.SetHardState(want); err != nil {
		t.Fatal(err)
	}
	// A leftover tmp file from a crashed write is removed on open.
	if err := os.WriteFile(filepath.Join(dir, metaTmpFile), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	m = openMeta(t, vfs.OS{}, dir)
	if hs, err := m.HardState(); err != nil || hs != want {
		t.Fatalf("reopened HardState = %+v, %v; want %+v", hs, err, want)
	}
	if _, err := os.Stat(filepath.Join(dir, metaTmpFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("meta.tmp after open: %v", err)
	}
}

func TestFileMetaCorrupt(t *testing.T) {
	good := encodeHardState(raftpb.HardState{Term: 5, Vote: 2, Commit: 9})
	flip := func(i int) []byte { b := append([]byte(nil), good...); b[i] ^= 0x40; return b }
	badVersion := append([]byte(nil), good...)
	badVersion[8] = 2
	binary.LittleEndian.PutUint32(badVersion[metaSize-4:], crc32.Checksum(badVersion[:metaSize-4], castagnoli))
	tests := []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "size 0"},
		{"truncated", good[:metaSize-1], "size"},
		{"extended", append(append([]byte(nil), good...), 0), "size"},
		{"magic", flip(0), "magic"},
		{"version byte", flip(8), "checksum"},
		{"term byte", flip(12), "checksum"},
		{"vote byte", flip(20), "checksum"},
		{"commit byte", flip(35), "checksum"},
		{"crc byte", flip(metaSize - 1), "checksum"},
		{"version", badVersion, "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			name := filepath.Join(dir, metaFile)
			if err := os.WriteFile(name, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := OpenFileMeta(vfs.OS{}, dir)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), name) ||
				!strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("OpenFileMeta = %v; want ErrCorrupt naming %s and saying %q", err, name, tt.msg)
			}
		})
	}
}

func TestFileMetaCrash(t *testing.T) {
	mfs := vfs.NewMemFS()
	m := openMeta(t, mfs, "g/meta")
	states := []raftpb.HardState{{Term: 1, Vote: 1}, {Term: 1, Vote: 1, Commit: 3}, {Term: 4}}
	for _, hs := range states {
		if err := m.SetHardState(hs); err != nil {
			t.Fatal(err)
		}
		mfs.Crash()
		m = openMeta(t, mfs, "g/meta")
		if got, err := m.HardState(); err != nil || got != hs {
			t.Fatalf("after crash HardState = %+v, %v; want %+v", got, err, hs)
		}
	}
}

// TestFileMetaInterrupted fails each operation of SetHardState in turn,
// either once (the process carries on) or for good (the process dies there),
// then crashes: the state must be the old or the new one, the new one if
// SetHardState succeeded, and the old one if it failed before the rename.
func TestFileMetaInterrupted(t *testing.T) {
	oldHS := raftpb.HardState{Term: 3, Vote: 1, Commit: 10}
	newHS := raftpb.HardState{Term: 4, Vote: 2, Commit: 11}
	setup := func(t *testing.T) (*vfs.MemFS, *FileMeta) {
		mfs := vfs.NewMemFS()
		m := openMeta(t, mfs, "meta")
		if err := m.SetHardState(oldHS); err != nil {
			t.Fatal(err)
		}
		return mfs, m
	}
	mfs, m := setup(t)
	n := countOps(mfs, func() { _ = m.SetHardState(newHS) })
	if n < 4 {
		t.Fatalf("SetHardState did %d operations", n)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for k := range n {
		for _, sticky := range []bool{false, true} {
			t.Run(fmt.Sprintf("op%d/sticky=%v", k, sticky), func(t *testing.T) {
				mfs, m := setup(t)
				f, _ := faultAfter(k, sticky)
				// tried: the rename was attempted, after which a failure
				// leaves the durable state unknown to the FileMeta;
				// renamed: it took place.
				var tried, renamed bool
				mfs.InjectFault(func(op vfs.Op, name string) error {
					err := f(op, name)
					if op == vfs.OpRename {
						tried, renamed = true, err == nil
					}
					return err
				})
				err := m.SetHardState(newHS)
				mfs.InjectFault(nil)
				if err == nil {
					t.Fatalf("SetHardState succeeded despite a fault at op %d", k)
				}
				if !errors.Is(err, vfs.ErrIO) {
					t.Fatalf("SetHardState = %v, want it to wrap the injected error", err)
				}
				got, herr := m.HardState()
				switch {
				case !tried && (herr != nil || got != oldHS):
					t.Fatalf("failure before rename: HardState = %+v, %v; want %+v", got, herr, oldHS)
				case tried && herr == nil:
					t.Fatalf("failure at or after rename: HardState = %+v, want an error", got)
				}
				if !tried && !sticky { // still usable
					if err := m.SetHardState(newHS); err != nil {
						t.Fatalf("retry: %v", err)
					}
				}
				mfs.CrashKeepPartial(rng)
				m2 := openMeta(t, mfs, "meta")
				got, _ = m2.HardState()
				if got != oldHS && got != newHS {
					t.Fatalf("after crash HardState = %+v, want %+v or %+v", got, oldHS, newHS)
				}
				if !renamed && sticky && got != oldHS {
					t.Fatalf("after crash HardState = %+v, want the old %+v", got, oldHS)
				}
				if !tried && !sticky && got != newHS {
					t.Fatalf("after crash HardState = %+v, want the retried %+v", got, newHS)
				}
			})
		}
	}
}

func TestFileMetaFailStop(t *testing.T) {
	mfs := vfs.NewMemFS()
	m := openMeta(t, mfs, "meta")
	mfs.InjectFault(func(op vfs.Op, _ string) error {
		if op == vfs.OpSyncDir {
			return vfs.ErrIO
		}
		return nil
	})
	if err := m.SetHardState(raftpb.HardState{Term: 1}); !errors.Is(err, vfs.ErrIO) {
		t.Fatalf("SetHardState = %v, want ErrIO", err)
	}
	mfs.InjectFault(nil)
	if _, err := m.HardState(); !errors.Is(err, vfs.ErrIO) {
		t.Fatalf("HardState after failure = %v, want ErrIO", err)
	}
	if err := m.SetHardState(raftpb.HardState{Term: 2}); !errors.Is(err, vfs.ErrIO) {
		t.Fatalf("SetHardState after failure = %v, want ErrIO", err)
	}
	// Reopening carries on from what is on disk (here, without a crash, the
	// renamed state).
	m = openMeta(t, mfs, "meta")
	if hs, err := m.HardState(); err != nil || hs.Term != 1 {
		t.Fatalf("reopened HardState = %+v, %v", hs, err)
	}
}

func TestFileMetaOpenMakesStateDurable(t *testing.T) {
	// A process died after the rename but before syncing the directory; the
	// next process reads the new state and must be able to rely on it.
	mfs := vfs.NewMemFS()
	m := openMeta(t, mfs, "meta")
	mfs.InjectFault(func(op vfs.Op, _ string) error {
		if op == vfs.OpSyncDir {
			return vfs.ErrIO
		}
		return nil
	})
	want := raftpb.HardState{Term: 9, Vote: 9}
	_ = m.SetHardState(want)
	mfs.InjectFault(nil)
	m = openMeta(t, mfs, "meta")
	if hs, _ := m.HardState(); hs != want {
		t.Fatalf("HardState = %+v, want %+v", hs, want)
	}
	mfs.Crash()
	m = openMeta(t, mfs, "meta")
	if hs, _ := m.HardState(); hs != want {
		t.Fatalf("after crash HardState = %+v, want %+v", hs, want)
	}
}

func TestFileMetaConcurrent(t *testing.T) {
	m := openMeta(t, vfs.NewMemFS(), "meta")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for term := uint64(1); term <= 50; term++ {
				err := m.SetHardState(raftpb.HardState{Term: term, Commit: uint64(g)})
				if err != nil && !errors.Is(err, ErrHardStateRegression) {
					t.Error(err)
				}
				if _, err := m.HardState(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if hs, _ := m.HardState(); hs.Term != 50 {
		t.Fatalf("final term %d, want 50", hs.Term)
	}
}

func TestManifestDecode(t *testing.T) {
	files := []SnapshotFile{{"a", 3, 0xdeadbeef}, {"d/b", 0, 0}}
	for _, meta := range []raftpb.SnapshotMeta{{Index: 1, Term: 1}, smeta(1<<40, 1<<33)} {
		b := encodeManifest(meta, files)
		gotMeta, gotFiles, err := decodeManifest("m", b)
		if err != nil || !gotMeta.ConfState.Equal(meta.ConfState) || gotMeta.Index != meta.Index ||
			gotMeta.Term != meta.Term || !slices.Equal(gotFiles, files) {
			t.Fatalf("round trip = %+v %+v %v", gotMeta, gotFiles, err)
		}
		for n := range len(b) { // every truncation is refused
			if _, _, err := decodeManifest("m", b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("truncated to %d: %v", n, err)
			}
		}
	}
	for _, name := range []string{"", "/abs", "../up", "..", "a/../b", "a//b", snapMetaFile} {
		b := encodeManifest(raftpb.SnapshotMeta{Index: 1}, []SnapshotFile{{Name: name}})
		if _, _, err := decodeManifest("m", b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("file name %q accepted", name)
		}
	}
}

func FuzzDecodeManifest(f *testing.F) {
	f.Add(encodeManifest(smeta(5, 2), []SnapshotFile{{"x", 1, 2}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		meta, files, err := decodeManifest("m", b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if again := encodeManifest(meta, files); string(again) != string(b) {
			t.Fatalf("accepted %x re-encodes to %x", b, again)
		}
	})
}

package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage/vfs"
)

func smeta(index, term uint64) raftpb.SnapshotMeta {
	return raftpb.SnapshotMeta{Index: index, Term: term, ConfState: raftpb.ConfState{
		Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{1, 4}, Learners: []uint64{5},
	}}
}

// snapFiles returns the files a state machine writes for a snapshot at index.
func snapFiles(index uint64) map[string]string {
	return map[string]string{
		"state":        strings.Repeat(fmt.Sprint(index), 100),
		"empty":        "",
		"sub/part-001": fmt.Sprintf("part of %d", index),
	}
}

func openSnaps(t *testing.T, fsys vfs.FS, dir string) *FileSnapshots {
	t.Helper()
	s, err := OpenFileSnapshots(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeFiles writes files into dir with fsys.
func writeFiles(fsys vfs.FS, dir string, files map[string]string) error {
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := fsys.MkdirAll(filepath.Dir(p)); err != nil {
			return err
		}
		f, err := fsys.Create(p)
		if err != nil {
			return err
		}
		_, err = f.Write([]byte(data))
		if err = errors.Join(err, f.Close()); err != nil {
			return err
		}
	}
	return nil
}

// commitSnap creates, fills and commits a snapshot.
func commitSnap(s *FileSnapshots, meta raftpb.SnapshotMeta) error {
	w, err := s.Create(meta)
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := writeFiles(s.FS(), w.Dir(), snapFiles(meta.Index)); err != nil {
		return err
	}
	return w.Commit()
}

func mustCommit(t *testing.T, s *FileSnapshots, index, term uint64) {
	t.Helper()
	if err := commitSnap(s, smeta(index, term)); err != nil {
		t.Fatalf("commit %d/%d: %v", index, term, err)
	}
}

func listIndexes(t *testing.T, s *FileSnapshots) []uint64 {
	t.Helper()
	metas, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, m := range metas {
		out = append(out, m.Index)
	}
	return out
}

// checkLatest checks that Latest is the snapshot at index, complete, with
// the files snapFiles wrote.
func checkLatest(t *testing.T, s *FileSnapshots, index, term uint64) {
	t.Helper()
	r, err := s.Latest()
	if err != nil {
		t.Fatalf("Latest: %v", err)
	}
	defer r.Close()
	if got, want := r.Meta(), smeta(index, term); !reflect.DeepEqual(got, want) {
		t.Fatalf("Latest meta = %+v, want %+v", got, want)
	}
	if err := s.VerifyFiles(r); err != nil {
		t.Fatalf("VerifyFiles: %v", err)
	}
	want := snapFiles(index)
	var names []string
	for _, f := range r.Files() {
		names = append(names, f.Name)
		if f.Size != int64(len(want[f.Name])) {
			t.Errorf("file %s size %d, want %d", f.Name, f.Size, len(want[f.Name]))
		}
	}
	if wantNames := slices.Sorted(maps.Keys(want)); !slices.Equal(names, wantNames) {
		t.Fatalf("Files = %v, want %v", names, wantNames)
	}
}

// fsKinds runs fn over the OS file system and over a MemFS.
func fsKinds(t *testing.T, fn func(t *testing.T, fsys vfs.FS, dir string)) {
	t.Run("os", func(t *testing.T) { fn(t, vfs.OS{}, filepath.Join(t.TempDir(), "snaps")) })
	t.Run("memfs", func(t *testing.T) { fn(t, vfs.NewMemFS(), "/data/snaps") })
}

func TestSnapshotsCommitListReopen(t *testing.T) {
	fsKinds(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := openSnaps(t, fsys, dir)
		if _, err := s.Latest(); !errors.Is(err, ErrSnapshotTemporarilyUnavailable) {
			t.Fatalf("Latest on empty = %v", err)
		}
		for _, idx := range []uint64{10, 20, 300} {
			mustCommit(t, s, idx, idx/10)
			checkLatest(t, s, idx, idx/10)
		}
		if got := listIndexes(t, s); !slices.Equal(got, []uint64{10, 20, 300}) {
			t.Fatalf("List = %v", got)
		}
		s = openSnaps(t, fsys, dir)
		if got := listIndexes(t, s); !slices.Equal(got, []uint64{10, 20, 300}) {
			t.Fatalf("List after reopen = %v", got)
		}
		metas, _ := s.List()
		if !reflect.DeepEqual(metas[1], smeta(20, 2)) {
			t.Fatalf("List meta = %+v", metas[1])
		}
		checkLatest(t, s, 300, 30)
		if c := s.Corrupt(); len(c) != 0 {
			t.Fatalf("Corrupt = %v", c)
		}
	})
}

func TestSnapshotsCreateRules(t *testing.T) {
	s := openSnaps(t, vfs.NewMemFS(), "snaps")
	mustCommit(t, s, 20, 2)
	tests := []struct {
		index uint64
		want  error
	}{
		{0, nil}, // any error
		{10, ErrSnapshotOutOfDate},
		{20, ErrSnapshotOutOfDate},
	}
	for _, tt := range tests {
		_, err := s.Create(smeta(tt.index, 1))
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("Create(%d) = %v, want %v", tt.index, err, tt.want)
		}
	}
	// Two writers racing for the same index: the second commit loses.
	w1, err := s.Create(smeta(30, 3))
	if err != nil {
		t.Fatal(err)
	}
	w2, err := s.Create(smeta(30, 3))
	if err != nil {
		t.Fatal(err)
	}
	if w1.Dir() == w2.Dir() {
		t.Fatalf("writers share %s", w1.Dir())
	}
	if err := w1.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w2.Commit(); !errors.Is(err, ErrSnapshotOutOfDate) {
		t.Fatalf("second Commit = %v, want ErrSnapshotOutOfDate", err)
	}
	if _, err := s.FS().Stat(w2.Dir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("losing writer's dir: %v", err)
	}
}

func TestSnapshotWriterLifecycle(t *testing.T) {
	s := openSnaps(t, vfs.NewMemFS(), "snaps")
	w, err := s.Create(smeta(5, 1))
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Meta(); !reflect.DeepEqual(got, smeta(5, 1)) {
		t.Fatalf("Meta = %+v", got)
	}
	if err := writeFiles(s.FS(), w.Dir(), snapFiles(5)); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FS().Stat(w.Dir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("aborted dir: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("second Abort = %v", err)
	}
	if err := w.Commit(); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("Commit after Abort = %v", err)
	}
	if got := listIndexes(t, s); got != nil {
		t.Fatalf("List = %v", got)
	}

	w, _ = s.Create(smeta(6, 1))
	_ = writeFiles(s.FS(), w.Dir(), snapFiles(6))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("second Commit = %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort after Commit = %v", err)
	}
	checkLatest(t, s, 6, 1)

	// The manifest name is reserved.
	w, _ = s.Create(smeta(7, 1))
	_ = writeFiles(s.FS(), w.Dir(), map[string]string{snapMetaFile: "x"})
	if err := w.Commit(); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("Commit with __meta = %v", err)
	}
	checkLatest(t, s, 6, 1)
}

func TestSnapshotsDeleteAndInUse(t *testing.T) {
	fsKinds(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := openSnaps(t, fsys, dir)
		for _, idx := range []uint64{10, 20, 30} {
			mustCommit(t, s, idx, 1)
		}
		if err := s.Delete(20); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(20); !errors.Is(err, ErrSnapshotNotFound) {
			t.Fatalf("second Delete = %v", err)
		}
		if got := listIndexes(t, s); !slices.Equal(got, []uint64{10, 30}) {
			t.Fatalf("List = %v", got)
		}
		r1, _ := s.Latest()
		r2, _ := s.Latest()
		if err := s.Delete(30); !errors.Is(err, ErrSnapshotInUse) {
			t.Fatalf("Delete in use = %v", err)
		}
		_ = r1.Close()
		if err := r1.Close(); !errors.Is(err, fs.ErrClosed) {
			t.Fatalf("second Close = %v", err)
		}
		if err := s.Delete(30); !errors.Is(err, ErrSnapshotInUse) {
			t.Fatalf("Delete with one reader left = %v", err)
		}
		_ = r2.Close()
		if err := s.Delete(30); err != nil {
			t.Fatal(err)
		}
		checkLatest(t, s, 10, 1)
		names, _ := fsys.ReadDir(dir)
		if want := []string{snapDirName(10, 1)}; !slices.Equal(names, want) {
			t.Fatalf("dir holds %v, want %v", names, want)
		}
		s = openSnaps(t, fsys, dir)
		if got := listIndexes(t, s); !slices.Equal(got, []uint64{10}) {
			t.Fatalf("List after reopen = %v", got)
		}
	})
}

func TestSnapshotsOpenRemovesTmp(t *testing.T) {
	fsKinds(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := openSnaps(t, fsys, dir)
		mustCommit(t, s, 10, 1)
		w, _ := s.Create(smeta(20, 1))
		_ = writeFiles(fsys, w.Dir(), snapFiles(20))
		// Unrelated names are left alone.
		_ = writeFiles(fsys, dir, map[string]string{"README": "hi"})
		s = openSnaps(t, fsys, dir)
		names, _ := fsys.ReadDir(dir)
		if want := []string{"README", snapDirName(10, 1)}; !slices.Equal(names, want) {
			t.Fatalf("dir holds %v, want %v", names, want)
		}
		checkLatest(t, s, 10, 1)
	})
}

func TestSnapshotsCorrupt(t *testing.T) {
	snapDir := func(dir string, index uint64) string { return filepath.Join(dir, snapDirName(index, 1)) }
	flipByte := func(fsys vfs.FS, name string, off int64) error {
		f, err := fsys.OpenRW(name)
		if err != nil {
			return err
		}
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, off); err != nil {
			return err
		}
		b[0] ^= 1
		_, err = f.WriteAt(b, off)
		return errors.Join(err, f.Close())
	}
	tests := []struct {
		name    string
		corrupt func(fsys vfs.FS, dir string) (bad string, err error) // corrupts snapshot 20
	}{
		{"manifest byte", func(fsys vfs.FS, dir string) (string, error) {
			return snapDir(dir, 20), flipByte(fsys, filepath.Join(snapDir(dir, 20), snapMetaFile), 30)
		}},
		{"manifest crc", func(fsys vfs.FS, dir string) (string, error) {
			p := filepath.Join(snapDir(dir, 20), snapMetaFile)
			fi, _ := fsys.Stat(p)
			return snapDir(dir, 20), flipByte(fsys, p, fi.Size()-1)
		}},
		{"manifest missing", func(fsys vfs.FS, dir string) (string, error) {
			return snapDir(dir, 20), fsys.Remove(filepath.Join(snapDir(dir, 20), snapMetaFile))
		}},
		{"manifest empty", func(fsys vfs.FS, dir string) (string, error) {
			f, err := fsys.Create(filepath.Join(snapDir(dir, 20), snapMetaFile))
			if err == nil {
				err = f.Close()
			}
			return snapDir(dir, 20), err
		}},
		{"file missing", func(fsys vfs.FS, dir string) (string, error) {
			return snapDir(dir, 20), fsys.Remove(filepath.Join(snapDir(dir, 20), "sub", "part-001"))
		}},
		{"file truncated", func(fsys vfs.FS, dir string) (string, error) {
			f, err := fsys.OpenRW(filepath.Join(snapDir(dir, 20), "state"))
			if err != nil {
				return "", err
			}
			return snapDir(dir, 20), errors.Join(f.Truncate(3), f.Close())
		}},
		{"name mismatch", func(fsys vfs.FS, dir string) (string, error) {
			bad := filepath.Join(dir, snapDirName(20, 7))
			return bad, fsys.Rename(snapDir(dir, 20), bad)
		}},
		{"malformed name", func(fsys vfs.FS, dir string) (string, error) {
			bad := filepath.Join(dir, "snap-20")
			return bad, fsys.Rename(snapDir(dir, 20), bad)
		}},
		{"not a directory", func(fsys vfs.FS, dir string) (string, error) {
			if err := fsys.RemoveAll(snapDir(dir, 20)); err != nil {
				return "", err
			}
			return snapDir(dir, 20), writeFiles(fsys, dir, map[string]string{snapDirName(20, 1): "x"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsKinds(t, func(t *testing.T, fsys vfs.FS, dir string) {
				s := openSnaps(t, fsys, dir)
				mustCommit(t, s, 10, 1)
				mustCommit(t, s, 20, 1)
				bad, err := tt.corrupt(fsys, dir)
				if err != nil {
					t.Fatal(err)
				}
				s = openSnaps(t, fsys, dir)
				if got := s.Corrupt(); !slices.Equal(got, []string{bad}) {
					t.Fatalf("Corrupt = %v, want [%s]", got, bad)
				}
				if got := listIndexes(t, s); !slices.Equal(got, []uint64{10}) {
					t.Fatalf("List = %v, want [10]", got)
				}
				checkLatest(t, s, 10, 1) // falls back
				if _, err := fsys.Stat(bad); err != nil {
					t.Fatalf("corrupt dir was removed: %v", err)
				}
				// A new snapshot at the same index replaces a corrupt one.
				if strings.HasSuffix(bad, snapDirName(20, 1)) {
					mustCommit(t, s, 20, 1)
					if got := s.Corrupt(); len(got) != 0 {
						t.Fatalf("Corrupt after replacement = %v", got)
					}
					s = openSnaps(t, fsys, dir)
					checkLatest(t, s, 20, 1)
				}
			})
		})
	}
}

func TestVerifyFilesDetectsCorruption(t *testing.T) {
	tests := []struct {
		name   string
		change map[string]string // written over the committed files
		remove string
		file   string // the file the error must name
	}{
		{"same size, different bytes", map[string]string{"sub/part-001": "PART OF 10"}, "", "part-001"},
		{"longer", map[string]string{"empty": "now with data"}, "", "empty"},
		{"extra file", map[string]string{"sub/extra": "x"}, "", "extra"},
		{"missing file", nil, "state", "state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openSnaps(t, vfs.NewMemFS(), "snaps")
			mustCommit(t, s, 10, 1)
			r, _ := s.Latest()
			defer r.Close()
			if err := s.VerifyFiles(r); err != nil {
				t.Fatal(err)
			}
			if err := writeFiles(s.FS(), r.Dir(), tt.change); err != nil {
				t.Fatal(err)
			}
			if tt.remove != "" {
				_ = s.FS().Remove(filepath.Join(r.Dir(), tt.remove))
			}
			err := VerifyFiles(s.FS(), r)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.file) {
				t.Fatalf("VerifyFiles = %v, want ErrCorrupt naming %s", err, tt.file)
			}
		})
	}
}

// TestSnapshotCommitInterrupted fails each operation of Commit in turn,
// once or for good, then crashes: afterwards the snapshot is absent or
// complete, present if Commit succeeded, and the earlier snapshot intact.
func TestSnapshotCommitInterrupted(t *testing.T) {
	setup := func(t *testing.T) (*vfs.MemFS, *FileSnapshots, SnapshotWriter) {
		mfs := vfs.NewMemFS()
		s := openSnaps(t, mfs, "snaps")
		mustCommit(t, s, 10, 1)
		w, err := s.Create(smeta(20, 2))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeFiles(mfs, w.Dir(), snapFiles(20)); err != nil {
			t.Fatal(err)
		}
		return mfs, s, w
	}
	mfs, _, w := setup(t)
	n := countOps(mfs, func() { _ = w.Commit() })
	if n < 10 {
		t.Fatalf("Commit did only %d operations", n)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for k := range n + 1 { // k == n: no fault
		for _, sticky := range []bool{false, true} {
			t.Run(fmt.Sprintf("op%d/sticky=%v", k, sticky), func(t *testing.T) {
				mfs, s, w := setup(t)
				f, _ := faultAfter(k, sticky)
				mfs.InjectFault(f)
				err := w.Commit()
				mfs.InjectFault(nil)
				if (err == nil) != (k == n) {
					t.Fatalf("Commit = %v with a fault at op %d of %d", err, k, n)
				}
				if err != nil && !errors.Is(err, vfs.ErrIO) {
					t.Fatalf("Commit = %v, want it to wrap the injected error", err)
				}
				inProcess := listIndexes(t, s)
				if want := []uint64{10}; err == nil {
					want = []uint64{10, 20}
				} else if !slices.Equal(inProcess, want) {
					t.Fatalf("List after failed Commit = %v, want %v", inProcess, want)
				}
				if k%2 == 0 {
					mfs.CrashKeepPartial(rng)
				} else {
					mfs.Crash()
				}
				s = openSnaps(t, mfs, "snaps")
				if c := s.Corrupt(); len(c) != 0 {
					t.Fatalf("Corrupt after crash = %v", c)
				}
				got := listIndexes(t, s)
				switch {
				case slices.Equal(got, []uint64{10, 20}):
					checkLatest(t, s, 20, 2)
				case slices.Equal(got, []uint64{10}) && err != nil:
					checkLatest(t, s, 10, 1)
				default:
					t.Fatalf("List after crash = %v (Commit: %v)", got, err)
				}
				names, _ := mfs.ReadDir("snaps")
				for _, name := range names {
					if strings.HasPrefix(name, snapTmpPrefix) {
						t.Fatalf("tmp dir %s left after open", name)
					}
				}
			})
		}
	}
}

// TestSnapshotDeleteInterrupted does the same for Delete: afterwards the
// snapshot is gone or complete, gone if Delete succeeded.
func TestSnapshotDeleteInterrupted(t *testing.T) {
	setup := func(t *testing.T) (*vfs.MemFS, *FileSnapshots) {
		mfs := vfs.NewMemFS()
		s := openSnaps(t, mfs, "snaps")
		mustCommit(t, s, 10, 1)
		mustCommit(t, s, 20, 2)
		return mfs, s
	}
	mfs, s := setup(t)
	n := countOps(mfs, func() { _ = s.Delete(20) })
	for k := range n + 1 {
		for _, sticky := range []bool{false, true} {
			t.Run(fmt.Sprintf("op%d/sticky=%v", k, sticky), func(t *testing.T) {
				mfs, s := setup(t)
				f, _ := faultAfter(k, sticky)
				mfs.InjectFault(f)
				err := s.Delete(20)
				mfs.InjectFault(nil)
				if (err == nil) != (k == n) {
					t.Fatalf("Delete = %v with a fault at op %d of %d", err, k, n)
				}
				mfs.Crash()
				s = openSnaps(t, mfs, "snaps")
				got := listIndexes(t, s)
				switch {
				case slices.Equal(got, []uint64{10}):
				case slices.Equal(got, []uint64{10, 20}) && err != nil:
					checkLatest(t, s, 20, 2)
				default:
					t.Fatalf("List after crash = %v (Delete: %v)", got, err)
				}
				if c := s.Corrupt(); len(c) != 0 {
					t.Fatalf("Corrupt after crash = %v", c)
				}
			})
		}
	}
}

func TestSnapshotsOpenFailsOnIOError(t *testing.T) {
	mfs := vfs.NewMemFS()
	s := openSnaps(t, mfs, "snaps")
	mustCommit(t, s, 1, 1)
	mfs.InjectFault(func(op vfs.Op, _ string) error {
		if op == vfs.OpRead {
			return vfs.ErrIO
		}
		return nil
	})
	if _, err := OpenFileSnapshots(mfs, "snaps"); !errors.Is(err, vfs.ErrIO) {
		t.Fatalf("OpenFileSnapshots = %v, want ErrIO", err)
	}
	// OS: a dir that cannot be created.
	file := filepath.Join(t.TempDir(), "file")
	_ = os.WriteFile(file, nil, 0o644)
	if _, err := OpenFileSnapshots(vfs.OS{}, filepath.Join(file, "snaps")); err == nil {
		t.Fatal("OpenFileSnapshots under a file succeeded")
	}
}

func TestSnapshotsDuplicateIndex(t *testing.T) {
	// Two valid snapshots at one index (Commit never makes them): the lower
	// term is kept, the other reported.
	mfs := vfs.NewMemFS()
	a, b := openSnaps(t, mfs, "a"), openSnaps(t, mfs, "b")
	mustCommit(t, a, 20, 1)
	mustCommit(t, b, 20, 2)
	dup := filepath.Join("a", snapDirName(20, 2))
	if err := mfs.Rename(filepath.Join("b", snapDirName(20, 2)), dup); err != nil {
		t.Fatal(err)
	}
	a = openSnaps(t, mfs, "a")
	if got := a.Corrupt(); !slices.Equal(got, []string{dup}) {
		t.Fatalf("Corrupt = %v, want [%s]", got, dup)
	}
	checkLatest(t, a, 20, 1)
}

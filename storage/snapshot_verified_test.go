package storage

import (
	"hash/crc32"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/raftkit/raftkit/storage/vfs"
)

// verifiedList is what a copier that checked every byte would pass to
// CommitVerified for snapFiles(index).
func verifiedList(index uint64) []SnapshotFile {
	files := snapFiles(index)
	var out []SnapshotFile
	for _, name := range slices.Sorted(maps.Keys(files)) {
		out = append(out, SnapshotFile{Name: name, Size: int64(len(files[name])),
			CRC32C: crc32.Checksum([]byte(files[name]), castagnoli)})
	}
	return out
}

func TestCommitVerified(t *testing.T) {
	fsKinds(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := openSnaps(t, fsys, dir)
		w, err := s.Create(smeta(10, 2))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeFiles(fsys, w.Dir(), snapFiles(10)); err != nil {
			t.Fatal(err)
		}
		if err := w.(VerifiedCommitter).CommitVerified(verifiedList(10)); err != nil {
			t.Fatal(err)
		}
		checkLatest(t, s, 10, 2)
		checkLatest(t, openSnaps(t, fsys, dir), 10, 2)
	})
}

// TestCommitVerifiedRefusesMismatch: a directory that does not hold
// exactly the verified files, at their sizes, is not committed.
func TestCommitVerifiedRefusesMismatch(t *testing.T) {
	cases := map[string]func(files map[string]string, list []SnapshotFile) []SnapshotFile{
		"extra file": func(files map[string]string, list []SnapshotFile) []SnapshotFile {
			files["stray"] = "x"
			return list
		},
		"missing file": func(files map[string]string, list []SnapshotFile) []SnapshotFile {
			delete(files, "state")
			return list
		},
		"other size": func(files map[string]string, list []SnapshotFile) []SnapshotFile {
			files["state"] = strings.Repeat("z", 7)
			return list
		},
		"listed twice": func(files map[string]string, list []SnapshotFile) []SnapshotFile {
			return append(list, list[0])
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			fsys := vfs.NewMemFS()
			s := openSnaps(t, fsys, "/snaps")
			w, err := s.Create(smeta(10, 2))
			if err != nil {
				t.Fatal(err)
			}
			files := snapFiles(10)
			list := mutate(files, verifiedList(10))
			if err := writeFiles(fsys, w.Dir(), files); err != nil {
				t.Fatal(err)
			}
			if err := w.(VerifiedCommitter).CommitVerified(list); err == nil {
				t.Fatal("CommitVerified succeeded")
			}
			if got := listIndexes(t, s); len(got) != 0 {
				t.Fatalf("snapshots %v after a refused commit", got)
			}
		})
	}
}

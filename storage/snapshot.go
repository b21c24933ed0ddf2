package storage

import (
	"cmp"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage/vfs"
)

var (
	// ErrSnapshotInUse is wrapped by the error Delete returns for a snapshot
	// that a reader obtained from Latest has not closed yet.
	ErrSnapshotInUse = errors.New("storage: snapshot in use")
	// ErrSnapshotNotFound is wrapped by the error Delete returns when no
	// valid committed snapshot has the index.
	ErrSnapshotNotFound = errors.New("storage: snapshot not found")
)

// Names inside a FileSnapshots directory.
const (
	snapDirPrefix = "snap-"  // committed: snap-<index:20>-<term:20>
	snapTmpPrefix = "tmp-"   // being written or deleted; removed on open
	snapMetaFile  = "__meta" // manifest, at the top of each snapshot dir
)

func snapDirName(index, term uint64) string {
	return fmt.Sprintf("%s%020d-%020d", snapDirPrefix, index, term)
}

// parseSnapDirName parses "snap-<20 digits>-<20 digits>".
func parseSnapDirName(name string) (index, term uint64, ok bool) {
	rest, found := strings.CutPrefix(name, snapDirPrefix)
	if !found || len(rest) != 41 || rest[20] != '-' ||
		strings.ContainsFunc(rest[:20]+rest[21:], func(r rune) bool { return r < '0' || r > '9' }) {
		return 0, 0, false
	}
	index, err1 := strconv.ParseUint(rest[:20], 10, 64)
	term, err2 := strconv.ParseUint(rest[21:], 10, 64)
	return index, term, err1 == nil && err2 == nil
}

// FileSnapshots is a SnapshotStorage keeping each snapshot in a directory
// under dir:
//
//	<dir>/snap-<index:020>-<term:020>/   committed snapshot
//	    <files written by the state machine, subdirectories allowed>
//	    __meta     manifest: SnapshotMeta and each file's size and CRC32C
//	<dir>/tmp-<index>-<term>-<n>/        snapshot being written or deleted
//
// Commit makes a snapshot visible with a single directory rename after its
// files and manifest are synced, so after a crash a snapshot is either absent
// or complete. OpenFileSnapshots removes leftover tmp directories and skips
// committed ones that fail validation, reporting them through Corrupt.
//
// Readers: Latest hands out a reference-counted reader; Delete of a snapshot
// with an open reader fails with ErrSnapshotInUse instead of waiting.
//
// Concurrency: every method, and those of its writers and readers, is safe
// for concurrent use. File I/O of Commit and Delete runs outside the
// storage's lock except for the renames and directory syncs that publish or
// retract a snapshot.
type FileSnapshots struct {
	fs  vfs.FS
	dir string

	mu      sync.Mutex
	snaps   []*fileSnap // valid committed snapshots, by increasing index
	corrupt []string    // paths of committed directories that failed validation
	seq     uint64      // numbers tmp directories
}

// fileSnap is one valid committed snapshot. Guarded by FileSnapshots.mu.
type fileSnap struct {
	meta    raftpb.SnapshotMeta
	path    string
	files   []SnapshotFile
	readers int
}

var _ SnapshotStorage = (*FileSnapshots)(nil)

// OpenFileSnapshots opens the snapshot storage in dir, creating dir if
// needed. It removes every tmp-* directory (snapshots whose writing or
// deletion a crash interrupted) and loads the committed ones. A committed
// directory whose name, manifest or files (existence and size; contents are
// checked only by VerifyFiles) are invalid is left on disk, skipped, and
// listed by Corrupt. Other names in dir are ignored. I/O errors fail the open.
func OpenFileSnapshots(fsys vfs.FS, dir string) (*FileSnapshots, error) {
	if err := mkdirAllDurable(fsys, dir); err != nil {
		return nil, fmt.Errorf("storage: open snapshots %s: %w", dir, err)
	}
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: open snapshots: %w", err)
	}
	s := &FileSnapshots{fs: fsys, dir: dir}
	removed := false
	for _, name := range names {
		p := filepath.Join(dir, name)
		switch {
		case strings.HasPrefix(name, snapTmpPrefix):
			if err := fsys.RemoveAll(p); err != nil {
				return nil, fmt.Errorf("storage: open snapshots: remove %s: %w", p, err)
			}
			removed = true
		case strings.HasPrefix(name, snapDirPrefix):
			sn, err := s.load(name)
			if errors.Is(err, ErrCorrupt) {
				s.corrupt = append(s.corrupt, p)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("storage: open snapshots: %w", err)
			}
			s.snaps = append(s.snaps, sn)
		}
	}
	if removed {
		if err := fsys.SyncDir(dir); err != nil {
			return nil, fmt.Errorf("storage: open snapshots: sync %s: %w", dir, err)
		}
	}
	// Drop duplicate indexes, which Commit never produces: the first name
	// (the lowest term) stays.
	slices.SortStableFunc(s.snaps, func(a, b *fileSnap) int { return cmp.Compare(a.meta.Index, b.meta.Index) })
	valid := s.snaps[:0]
	for _, sn := range s.snaps {
		if n := len(valid); n > 0 && valid[n-1].meta.Index == sn.meta.Index {
			s.corrupt = append(s.corrupt, sn.path)
			continue
		}
		valid = append(valid, sn)
	}
	s.snaps = valid
	return s, nil
}

// load validates the committed snapshot directory name. Validation failures
// wrap ErrCorrupt; other errors are I/O errors.
func (s *FileSnapshots) load(name string) (*fileSnap, error) {
	p := filepath.Join(s.dir, name)
	index, term, ok := parseSnapDirName(name)
	if !ok {
		return nil, fmt.Errorf("%w: %s: malformed snapshot directory name", ErrCorrupt, p)
	}
	if fi, err := s.fs.Stat(p); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s: not a directory", ErrCorrupt, p)
	}
	mpath := filepath.Join(p, snapMetaFile)
	b, err := readFile(s.fs, mpath, maxManifestSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s: missing", ErrCorrupt, mpath)
	}
	if err != nil {
		return nil, err
	}
	meta, files, err := decodeManifest(mpath, b)
	if err != nil {
		return nil, err
	}
	if meta.Index != index || meta.Term != term {
		return nil, fmt.Errorf("%w: %s: records %d/%d, directory name says %d/%d",
			ErrCorrupt, mpath, meta.Index, meta.Term, index, term)
	}
	for _, f := range files {
		fp := filepath.Join(p, filepath.FromSlash(f.Name))
		fi, err := s.fs.Stat(fp)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s: missing", ErrCorrupt, fp)
		}
		if err != nil {
			return nil, err
		}
		if fi.IsDir() || fi.Size() != f.Size {
			return nil, fmt.Errorf("%w: %s: size %d, manifest says %d", ErrCorrupt, fp, fi.Size(), f.Size)
		}
	}
	return &fileSnap{meta: meta, path: p, files: files}, nil
}

// FS returns the file system the snapshots live on, the one a state machine
// writes a SnapshotWriter's files with and reads a SnapshotReader's from.
func (s *FileSnapshots) FS() vfs.FS { return s.fs }

// Corrupt returns the paths of the committed snapshot directories that
// OpenFileSnapshots skipped because they failed validation, in name order
// (duplicates of an index last). They stay on disk for inspection; a Commit
// of a snapshot with the same name replaces one.
func (s *FileSnapshots) Corrupt() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.corrupt)
}

// Create starts a snapshot described by meta in a fresh tmp directory. It
// returns an error wrapping ErrSnapshotOutOfDate if a committed snapshot at
// or after meta.Index exists, and refuses meta.Index 0 (no snapshot).
func (s *FileSnapshots) Create(meta raftpb.SnapshotMeta) (SnapshotWriter, error) {
	if meta.Index == 0 {
		return nil, errors.New("storage: create snapshot: index 0")
	}
	s.mu.Lock()
	err := s.checkNewer(meta)
	s.seq++
	tmp := s.tmpName(meta)
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("storage: create snapshot: %w", err)
	}
	if err := s.fs.MkdirAll(tmp); err != nil {
		return nil, fmt.Errorf("storage: create snapshot: %w", err)
	}
	return &fileSnapWriter{s: s, meta: cloneMeta(meta), tmp: tmp}, nil
}

// checkNewer requires meta to follow every committed snapshot. Requires s.mu.
func (s *FileSnapshots) checkNewer(meta raftpb.SnapshotMeta) error {
	if n := len(s.snaps); n > 0 && s.snaps[n-1].meta.Index >= meta.Index {
		last := s.snaps[n-1].meta
		return fmt.Errorf("%w: snapshot %d/%d is not newer than %d/%d",
			ErrSnapshotOutOfDate, meta.Index, meta.Term, last.Index, last.Term)
	}
	return nil
}

// tmpName returns a fresh tmp directory path. Requires s.mu; bump s.seq first.
func (s *FileSnapshots) tmpName(meta raftpb.SnapshotMeta) string {
	return filepath.Join(s.dir, fmt.Sprintf("%s%d-%d-%d", snapTmpPrefix, meta.Index, meta.Term, s.seq))
}

// Latest opens the valid committed snapshot with the highest index, or
// returns ErrSnapshotTemporarilyUnavailable when there is none. The snapshot
// cannot be deleted until the reader is closed.
func (s *FileSnapshots) Latest() (SnapshotReader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.snaps) == 0 {
		return nil, ErrSnapshotTemporarilyUnavailable
	}
	sn := s.snaps[len(s.snaps)-1]
	sn.readers++
	return &fileSnapReader{s: s, sn: sn}, nil
}

// List returns the metas of the valid committed snapshots, oldest first. It
// never fails.
func (s *FileSnapshots) List() ([]raftpb.SnapshotMeta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]raftpb.SnapshotMeta, len(s.snaps))
	for i, sn := range s.snaps {
		out[i] = cloneMeta(sn.meta)
	}
	return out, nil
}

// Delete removes the committed snapshot at index: it renames the directory to
// a tmp name, syncs dir, and then removes the files. Errors: ErrSnapshotNotFound
// if no valid snapshot has that index, ErrSnapshotInUse while a reader of it
// is open (nothing is removed). If the directory was retracted but removing
// its files failed, the snapshot is gone from List and Latest, the error is
// returned, and the next OpenFileSnapshots removes the rest.
func (s *FileSnapshots) Delete(index uint64) error {
	s.mu.Lock()
	i := slices.IndexFunc(s.snaps, func(sn *fileSnap) bool { return sn.meta.Index == index })
	if i < 0 {
		s.mu.Unlock()
		return fmt.Errorf("storage: delete snapshot %d: %w", index, ErrSnapshotNotFound)
	}
	sn := s.snaps[i]
	if readers := sn.readers; readers > 0 {
		s.mu.Unlock()
		return fmt.Errorf("storage: delete snapshot %d: %w (%d open readers)", index, ErrSnapshotInUse, readers)
	}
	s.seq++
	aside := s.tmpName(sn.meta)
	if err := s.fs.Rename(sn.path, aside); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("storage: delete snapshot %d: %w", index, err)
	}
	s.snaps = slices.Delete(s.snaps, i, i+1)
	err := s.fs.SyncDir(s.dir)
	s.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("sync %s: %w", s.dir, err)
	}
	if rerr := s.fs.RemoveAll(aside); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return fmt.Errorf("storage: delete snapshot %d: %w", index, err)
	}
	return nil
}

// fileSnapWriter is a FileSnapshots snapshot being written.
type fileSnapWriter struct {
	s    *FileSnapshots
	meta raftpb.SnapshotMeta
	tmp  string

	mu   sync.Mutex
	done bool // Commit or Abort was called
}

// Dir is the tmp directory to write the files into (with FileSnapshots.FS).
func (w *fileSnapWriter) Dir() string { return w.tmp }

// Meta returns the meta the snapshot was created with.
func (w *fileSnapWriter) Meta() raftpb.SnapshotMeta { return cloneMeta(w.meta) }

func cloneMeta(m raftpb.SnapshotMeta) raftpb.SnapshotMeta {
	m.ConfState = m.ConfState.Clone()
	return m
}

// Commit syncs every file, records its size and CRC32C in the manifest,
// syncs the manifest and the directories, renames the tmp directory to its
// final name and syncs dir. A directory left at the final name by a
// corrupt snapshot is moved aside and removed. Errors wrap
// ErrSnapshotOutOfDate if a snapshot at or after this index was committed
// meanwhile. On any error the writer is finished and its files are removed
// (best effort); after a crash the snapshot is either absent or complete.
// Commit after Commit or Abort fails with an error wrapping fs.ErrClosed.
func (w *fileSnapWriter) Commit() error { return w.commitOnce(nil) }

// CommitVerified is Commit for files whose sizes and CRC32Cs the caller
// has verified as it wrote them (a snapshot copied from a peer, checked
// chunk by chunk against the source's manifest): it records those instead
// of reading every file back. The directory must hold exactly the listed
// files, at the listed sizes; otherwise nothing is committed. It implements
// VerifiedCommitter.
func (w *fileSnapWriter) CommitVerified(files []SnapshotFile) error {
	known := make(map[string]SnapshotFile, len(files))
	for _, f := range files {
		known[f.Name] = f
	}
	if len(known) != len(files) {
		return fmt.Errorf("storage: commit snapshot %d: a file is listed twice", w.meta.Index)
	}
	return w.commitOnce(known)
}

func (w *fileSnapWriter) commitOnce(known map[string]SnapshotFile) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return fmt.Errorf("storage: commit snapshot %d: %w", w.meta.Index, fs.ErrClosed)
	}
	w.done = true
	if err := w.commit(known); err != nil {
		_ = w.s.fs.RemoveAll(w.tmp) // leftovers are removed on open anyway
		return fmt.Errorf("storage: commit snapshot %d: %w", w.meta.Index, err)
	}
	return nil
}

// commit syncs and records the files: their checksums are computed, or
// taken from known when it is not nil.
func (w *fileSnapWriter) commit(known map[string]SnapshotFile) error {
	fsys := w.s.fs
	names, dirs, err := walkFiles(fsys, w.tmp)
	if err != nil {
		return err
	}
	if known != nil && len(names) != len(known) {
		return fmt.Errorf("%d files in %s, %d verified", len(names), w.tmp, len(known))
	}
	files := make([]SnapshotFile, 0, len(names))
	for _, name := range names {
		if name == snapMetaFile {
			return fmt.Errorf("file name %s is reserved", snapMetaFile)
		}
		p := filepath.Join(w.tmp, filepath.FromSlash(name))
		if known == nil {
			size, sum, err := checksumFile(fsys, p, true)
			if err != nil {
				return err
			}
			files = append(files, SnapshotFile{Name: name, Size: size, CRC32C: sum})
			continue
		}
		f, ok := known[name]
		if !ok {
			return fmt.Errorf("%s: not among the verified files", p)
		}
		if err := syncFileOfSize(fsys, p, f.Size); err != nil {
			return err
		}
		files = append(files, f)
	}
	if err := writeFileSync(fsys, filepath.Join(w.tmp, snapMetaFile), encodeManifest(w.meta, files)); err != nil {
		return err
	}
	for _, d := range append(dirs, ".") {
		p := filepath.Join(w.tmp, filepath.FromSlash(d))
		if err := fsys.SyncDir(p); err != nil {
			return fmt.Errorf("sync %s: %w", p, err)
		}
	}
	aside, err := w.s.publish(w.tmp, w.meta, files)
	if aside != "" {
		_ = fsys.RemoveAll(aside) // a replaced corrupt snapshot; else removed on open
	}
	return err
}

// publish renames the committed tmp directory to its final name and records
// the snapshot. A corrupt directory in the way is moved aside, to the
// returned path, for the caller to remove.
func (s *FileSnapshots) publish(tmp string, meta raftpb.SnapshotMeta, files []SnapshotFile) (aside string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkNewer(meta); err != nil {
		return "", err
	}
	final := filepath.Join(s.dir, snapDirName(meta.Index, meta.Term))
	if i := slices.Index(s.corrupt, final); i >= 0 {
		s.seq++
		aside = s.tmpName(meta)
		if err := s.fs.Rename(final, aside); err != nil {
			return "", fmt.Errorf("move corrupt %s aside: %w", final, err)
		}
		s.corrupt = slices.Delete(s.corrupt, i, i+1)
	}
	if err := s.fs.Rename(tmp, final); err != nil {
		return aside, err
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		// Unknown whether the rename is durable; retract it from this
		// process's view. If that fails too, the complete snapshot may show
		// up at the next open, which is harmless.
		_ = s.fs.Rename(final, tmp)
		return aside, fmt.Errorf("sync %s: %w", s.dir, err)
	}
	s.snaps = append(s.snaps, &fileSnap{meta: meta, path: final, files: files})
	return aside, nil
}

// Abort discards the snapshot and removes its files. After Commit (whether
// or not it succeeded) or a previous Abort it does nothing and returns nil,
// so that "defer w.Abort()" is safe.
func (w *fileSnapWriter) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	if err := w.s.fs.RemoveAll(w.tmp); err != nil {
		return fmt.Errorf("storage: abort snapshot %d: %w", w.meta.Index, err)
	}
	return nil
}

// fileSnapReader is an open reference to a committed snapshot.
type fileSnapReader struct {
	s      *FileSnapshots
	sn     *fileSnap // immutable except readers, guarded by s.mu
	closed bool      // guarded by s.mu
}

// Meta returns the snapshot's meta.
func (r *fileSnapReader) Meta() raftpb.SnapshotMeta { return cloneMeta(r.sn.meta) }

// Dir returns the committed snapshot's directory.
func (r *fileSnapReader) Dir() string { return r.sn.path }

// Files returns the files recorded at commit, in name order.
func (r *fileSnapReader) Files() []SnapshotFile { return slices.Clone(r.sn.files) }

// Close releases the reader. A second Close fails with fs.ErrClosed.
func (r *fileSnapReader) Close() error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.closed {
		return fmt.Errorf("storage: close snapshot reader: %w", fs.ErrClosed)
	}
	r.closed = true
	r.sn.readers--
	return nil
}

// VerifyFiles reads every file of r from fsys and checks it against the
// size and CRC32C recorded at commit, and that the directory holds no other
// file than those and the manifest. Mismatches, missing and extra files are
// reported with errors wrapping ErrCorrupt that name the file; other errors
// are I/O errors. It is safe to call concurrently with anything that does
// not modify the snapshot's directory.
func VerifyFiles(fsys vfs.FS, r SnapshotReader) error {
	dir := r.Dir()
	names, _, err := walkFiles(fsys, dir)
	if err != nil {
		return fmt.Errorf("storage: verify snapshot: %w", err)
	}
	want := r.Files()
	listed := make(map[string]bool, len(want))
	for _, f := range want {
		listed[f.Name] = true
	}
	for _, name := range names {
		if !listed[name] && name != snapMetaFile {
			return fmt.Errorf("storage: verify snapshot: %w: %s: not in the manifest",
				ErrCorrupt, filepath.Join(dir, filepath.FromSlash(name)))
		}
	}
	for _, f := range want {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		size, sum, err := checksumFile(fsys, p, false)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("storage: verify snapshot: %w: %s: missing", ErrCorrupt, p)
		case err != nil:
			return fmt.Errorf("storage: verify snapshot: %w", err)
		case size != f.Size || sum != f.CRC32C:
			return fmt.Errorf("storage: verify snapshot: %w: %s: size %d crc %#08x, manifest says size %d crc %#08x",
				ErrCorrupt, p, size, sum, f.Size, f.CRC32C)
		}
	}
	return nil
}

// VerifyFiles is VerifyFiles(s.FS(), r).
func (s *FileSnapshots) VerifyFiles(r SnapshotReader) error { return VerifyFiles(s.fs, r) }

// syncFileOfSize syncs the file at p after checking that it has size bytes.
func syncFileOfSize(fsys vfs.FS, p string, size int64) error {
	f, err := fsys.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	got, err := f.Size()
	if err != nil {
		return fmt.Errorf("size %s: %w", p, err)
	}
	if got != size {
		return fmt.Errorf("%s: size %d, verified %d", p, got, size)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	return nil
}

// checksumFile returns the size and CRC32C of the file at p, syncing it
// first if sync is set.
func checksumFile(fsys vfs.FS, p string, sync bool) (int64, uint32, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	if sync {
		if err := f.Sync(); err != nil {
			return 0, 0, fmt.Errorf("sync %s: %w", p, err)
		}
	}
	h := crc32.New(castagnoli)
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", p, err)
	}
	return n, h.Sum32(), nil
}

// walkFiles lists the files under root, recursively, as sorted
// slash-separated names relative to root, and the subdirectories likewise.
func walkFiles(fsys vfs.FS, root string) (files, dirs []string, err error) {
	var walk func(rel string) error
	walk = func(rel string) error {
		p := filepath.Join(root, filepath.FromSlash(rel))
		names, err := fsys.ReadDir(p)
		if err != nil {
			return err
		}
		for _, name := range names {
			child := path.Join(rel, name)
			fi, err := fsys.Stat(filepath.Join(p, name))
			if err != nil {
				return err
			}
			if !fi.IsDir() {
				files = append(files, child)
				continue
			}
			dirs = append(dirs, child)
			if err := walk(child); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk("."); err != nil {
		return nil, nil, err
	}
	slices.Sort(files)
	return files, dirs, nil
}

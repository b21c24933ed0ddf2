package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage/vfs"
)

var (
	// ErrCorrupt is wrapped by the errors reporting a file whose contents fail
	// validation (bad magic, version, length or checksum). The message names
	// the file.
	ErrCorrupt = errors.New("storage: corrupt file")
	// ErrHardStateRegression is wrapped by the error SetHardState returns when
	// asked to lower the term or to change the vote within a term. Either
	// would let a node vote twice in one term, so it is a bug in the caller,
	// and nothing is written.
	ErrHardStateRegression = errors.New("storage: hard state regression")
)

// castagnoli is the CRC32C table shared by meta and snapshot storage.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkHardState returns an error wrapping ErrHardStateRegression if moving
// from old to hs would lower the term or change a vote already cast in the
// term. Casting a vote (0 to a node) within a term is allowed. Commit is not
// checked.
func checkHardState(old, hs raftpb.HardState) error {
	switch {
	case hs.Term < old.Term:
		return fmt.Errorf("%w: term %d lowered to %d", ErrHardStateRegression, old.Term, hs.Term)
	case hs.Term == old.Term && old.Vote != 0 && hs.Vote != old.Vote:
		return fmt.Errorf("%w: vote in term %d changed from %d to %d",
			ErrHardStateRegression, hs.Term, old.Vote, hs.Vote)
	}
	return nil
}

// MemoryMeta is a MetaStorage held in memory, for tests and examples:
// "durable" means "stored in this value".
//
// SetHardState applies the same guard as FileMeta: lowering the term or
// changing the vote within a term fails with ErrHardStateRegression.
//
// Concurrency: every method is safe for concurrent use.
type MemoryMeta struct {
	mu sync.Mutex
	hs raftpb.HardState
}

var _ MetaStorage = (*MemoryMeta)(nil)

// NewMemoryMeta returns a MemoryMeta holding the zero HardState.
func NewMemoryMeta() *MemoryMeta { return &MemoryMeta{} }

// HardState returns the stored HardState. It never fails.
func (m *MemoryMeta) HardState() (raftpb.HardState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hs, nil
}

// SetHardState stores hs, or returns an error wrapping
// ErrHardStateRegression (storing nothing) if hs lowers the term or changes
// the vote within the term.
func (m *MemoryMeta) SetHardState(hs raftpb.HardState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := checkHardState(m.hs, hs); err != nil {
		return err
	}
	m.hs = hs
	return nil
}

// Meta file names inside a FileMeta directory.
const (
	metaFile    = "meta"
	metaTmpFile = "meta.tmp"
)

// Meta file format, little-endian:
//
//	magic   [8]byte "RKMETA1\x00"
//	version uint32  (1)
//	term    uint64
//	vote    uint64
//	commit  uint64
//	crc     uint32  CRC32C (Castagnoli) of all the preceding bytes
const (
	metaMagic   = "RKMETA1\x00"
	metaVersion = 1
	metaSize    = 8 + 4 + 3*8 + 4
)

func encodeHardState(hs raftpb.HardState) []byte {
	b := make([]byte, 0, metaSize)
	b = append(b, metaMagic...)
	b = binary.LittleEndian.AppendUint32(b, metaVersion)
	b = binary.LittleEndian.AppendUint64(b, hs.Term)
	b = binary.LittleEndian.AppendUint64(b, hs.Vote)
	b = binary.LittleEndian.AppendUint64(b, hs.Commit)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeHardState decodes a meta file read from name; errors wrap ErrCorrupt
// and name the file.
func decodeHardState(name string, b []byte) (raftpb.HardState, error) {
	if len(b) != metaSize {
		return raftpb.HardState{}, fmt.Errorf("%w: %s: size %d, want %d", ErrCorrupt, name, len(b), metaSize)
	}
	if string(b[:8]) != metaMagic {
		return raftpb.HardState{}, fmt.Errorf("%w: %s: bad magic %q", ErrCorrupt, name, b[:8])
	}
	body, sum := b[:metaSize-4], binary.LittleEndian.Uint32(b[metaSize-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return raftpb.HardState{}, fmt.Errorf("%w: %s: checksum %#08x, want %#08x", ErrCorrupt, name, got, sum)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != metaVersion {
		return raftpb.HardState{}, fmt.Errorf("%w: %s: unsupported version %d", ErrCorrupt, name, v)
	}
	return raftpb.HardState{
		Term:   binary.LittleEndian.Uint64(b[12:]),
		Vote:   binary.LittleEndian.Uint64(b[20:]),
		Commit: binary.LittleEndian.Uint64(b[28:]),
	}, nil
}

// FileMeta is a MetaStorage keeping one group's HardState in the file
// "<dir>/meta", replaced atomically on every change: the new state is written
// to "<dir>/meta.tmp" and synced, renamed over "meta", and the directory is
// synced. A crash at any point leaves either the old or the new state, and
// once SetHardState has returned nil only the new one (or a later one).
//
// Guard: SetHardState refuses (with ErrHardStateRegression, writing nothing)
// to lower the term or to change a vote already cast within a term (casting
// one, from 0, is fine). A caller doing so has a bug that would let the node
// vote twice in one term.
//
// Failure: if SetHardState fails before the rename the stored state is
// unchanged and the FileMeta stays usable. If it fails at or after the
// rename, whether the new state survives a crash is unknown, so the FileMeta
// fails every later call with an error wrapping the first one; reopen the
// directory to carry on from what is on disk.
//
// Concurrency: every method is safe for concurrent use; SetHardState calls
// are serialized.
type FileMeta struct {
	fs  vfs.FS
	dir string

	mu sync.Mutex
	hs raftpb.HardState // last state known durable
	// failed is set once a write failed at a point where the durable state
	// became unknown.
	failed error
}

var _ MetaStorage = (*FileMeta)(nil)

// OpenFileMeta opens the meta storage in dir, creating dir if needed. A
// missing "meta" file means the zero HardState; a corrupt one is refused with
// an error wrapping ErrCorrupt that names the file. A leftover "meta.tmp"
// (from a crash during SetHardState) is removed. Before returning it syncs
// dir, so that the state it reports is durable even if the previous process
// died between renaming and syncing.
func OpenFileMeta(fsys vfs.FS, dir string) (*FileMeta, error) {
	if err := mkdirAllDurable(fsys, dir); err != nil {
		return nil, fmt.Errorf("storage: open meta %s: %w", dir, err)
	}
	name := filepath.Join(dir, metaFile)
	var hs raftpb.HardState
	b, err := readFile(fsys, name, metaSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("storage: open meta: %w", err)
	default:
		if hs, err = decodeHardState(name, b); err != nil {
			return nil, fmt.Errorf("storage: open meta: %w", err)
		}
	}
	tmp := filepath.Join(dir, metaTmpFile)
	if err := fsys.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("storage: open meta: remove %s: %w", tmp, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("storage: open meta: sync %s: %w", dir, err)
	}
	return &FileMeta{fs: fsys, dir: dir, hs: hs}, nil
}

// HardState returns the last HardState stored. It fails only after a
// SetHardState failure left the durable state unknown.
func (m *FileMeta) HardState() (raftpb.HardState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failed != nil {
		return raftpb.HardState{}, m.failed
	}
	return m.hs, nil
}

// SetHardState stores hs durably; on a nil return a crash never brings back
// an older state. Storing the state already held does no I/O. It returns an
// error wrapping ErrHardStateRegression, writing nothing, if hs lowers the
// term or changes the vote within the term; other errors come from the file
// system (see the type's documentation for what they leave behind).
func (m *FileMeta) SetHardState(hs raftpb.HardState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failed != nil {
		return m.failed
	}
	if hs == m.hs {
		return nil
	}
	if err := checkHardState(m.hs, hs); err != nil {
		return err
	}
	tmp := filepath.Join(m.dir, metaTmpFile)
	if err := writeFileSync(m.fs, tmp, encodeHardState(hs)); err != nil {
		// "meta" is untouched. The tmp file is overwritten next time and
		// removed on open, so a failed removal here is harmless.
		_ = m.fs.Remove(tmp)
		return fmt.Errorf("storage: set hard state: %w", err)
	}
	name := filepath.Join(m.dir, metaFile)
	if err := m.fs.Rename(tmp, name); err != nil {
		m.failed = fmt.Errorf("storage: set hard state: rename %s: %w", tmp, err)
		return m.failed
	}
	if err := m.fs.SyncDir(m.dir); err != nil {
		m.failed = fmt.Errorf("storage: set hard state: sync %s: %w", m.dir, err)
		return m.failed
	}
	m.hs = hs
	return nil
}

// readFile reads the whole of name, refusing (with ErrCorrupt) a file larger
// than limit bytes.
func readFile(fsys vfs.FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("size %s: %w", name, err)
	}
	if size > limit {
		return nil, fmt.Errorf("%w: %s: size %d exceeds %d", ErrCorrupt, name, size, limit)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

// writeFileSync creates (or truncates) name, writes b and syncs it. The name
// itself is not made durable: the caller syncs the directory.
func writeFileSync(fsys vfs.FS, name string, b []byte) error {
	f, err := fsys.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	return nil
}

// mkdirAllDurable creates dir and any missing parents, syncing the parent of
// every directory it creates so that the new directories survive a crash.
func mkdirAllDurable(fsys vfs.FS, dir string) error {
	dir = filepath.Clean(dir)
	// missing lists the directories to create, deepest first.
	var missing []string
	for d := dir; ; {
		fi, err := fsys.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		parent := filepath.Dir(missing[i])
		if parent == missing[i] {
			continue
		}
		if err := fsys.SyncDir(parent); err != nil {
			return fmt.Errorf("sync %s: %w", parent, err)
		}
	}
	return nil
}

// Snapshot manifest encoding. The manifest is the "__meta" file of every
// FileSnapshots directory (see snapshot.go); it lives here, with the other
// on-disk metadata encoding.
//
// Manifest format, little-endian:
//
//	magic    [8]byte "RKSNAP1\x00"
//	version  uint32 (1)
//	index    uint64
//	term     uint64
//	3 times (Voters, VotersOutgoing, Learners):
//	  count  uint32, then count uint64 ids
//	nfiles   uint32, then per file:
//	  nameLen uint32, name (slash-separated, relative), size uint64, crc uint32
//	crc      uint32 CRC32C (Castagnoli) of all the preceding bytes
const (
	snapMagic       = "RKSNAP1\x00"
	snapVersion     = 1
	maxManifestSize = 64 << 20
)

func encodeManifest(meta raftpb.SnapshotMeta, files []SnapshotFile) []byte {
	le := binary.LittleEndian
	b := append([]byte(nil), snapMagic...)
	b = le.AppendUint32(b, snapVersion)
	b = le.AppendUint64(b, meta.Index)
	b = le.AppendUint64(b, meta.Term)
	for _, ids := range [][]uint64{meta.ConfState.Voters, meta.ConfState.VotersOutgoing, meta.ConfState.Learners} {
		b = le.AppendUint32(b, uint32(len(ids)))
		for _, id := range ids {
			b = le.AppendUint64(b, id)
		}
	}
	b = le.AppendUint32(b, uint32(len(files)))
	for _, f := range files {
		b = le.AppendUint32(b, uint32(len(f.Name)))
		b = append(b, f.Name...)
		b = le.AppendUint64(b, uint64(f.Size))
		b = le.AppendUint32(b, f.CRC32C)
	}
	return le.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decoder reads little-endian fields, remembering the first overrun.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) next(n uint64) []byte {
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u32() uint32 {
	if p := d.next(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.next(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

// decodeManifest decodes the manifest read from name; errors wrap ErrCorrupt
// and name the file.
func decodeManifest(name string, b []byte) (raftpb.SnapshotMeta, []SnapshotFile, error) {
	var meta raftpb.SnapshotMeta
	corrupt := func(format string, args ...any) (raftpb.SnapshotMeta, []SnapshotFile, error) {
		return meta, nil, fmt.Errorf("%w: %s: %s", ErrCorrupt, name, fmt.Sprintf(format, args...))
	}
	if len(b) < len(snapMagic)+8 || string(b[:len(snapMagic)]) != snapMagic {
		return corrupt("bad magic")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return corrupt("checksum %#08x, want %#08x", got, sum)
	}
	d := &decoder{b: body[len(snapMagic):]}
	if v := d.u32(); v != snapVersion {
		return corrupt("unsupported version %d", v)
	}
	meta.Index, meta.Term = d.u64(), d.u64()
	ids := func() []uint64 {
		n := uint64(d.u32())
		if n*8 > uint64(len(d.b)) {
			d.bad = true
			return nil
		}
		var out []uint64
		for range n {
			out = append(out, d.u64())
		}
		return out
	}
	meta.ConfState.Voters = ids()
	meta.ConfState.VotersOutgoing = ids()
	meta.ConfState.Learners = ids()
	n := uint64(d.u32())
	if n*16 > uint64(len(d.b)) { // every file takes at least 16 bytes
		return corrupt("file count %d overruns the manifest", n)
	}
	files := make([]SnapshotFile, 0, n)
	for range n {
		f := SnapshotFile{Name: string(d.next(uint64(d.u32())))}
		f.Size, f.CRC32C = int64(d.u64()), d.u32()
		if (!d.bad && !validFileName(f.Name)) || f.Size < 0 {
			return corrupt("bad file entry %q", f.Name)
		}
		files = append(files, f)
	}
	if d.bad || len(d.b) != 0 {
		return corrupt("malformed body")
	}
	return meta, files, nil
}

// validFileName reports whether name is a clean relative slash-separated path
// inside a snapshot directory, other than the manifest.
func validFileName(name string) bool {
	return name != "" && name != snapMetaFile && path.Clean(name) == name &&
		!path.IsAbs(name) && name != ".." && !strings.HasPrefix(name, "../")
}

package vfs

import (
	"bytes"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Op names a MemFS operation, as passed to an injected fault function.
type Op int

// The operations a fault function can fail.
const (
	OpCreate      Op = iota + 1 // FS.Create
	OpOpen                      // FS.Open and FS.OpenRW
	OpRead                      // File.Read and File.ReadAt
	OpWrite                     // File.Write and File.WriteAt
	OpSync                      // File.Sync
	OpTruncate                  // File.Truncate
	OpPreallocate               // File.Preallocate
	OpRemove                    // FS.Remove
	OpRemoveAll                 // FS.RemoveAll
	OpRename                    // FS.Rename
	OpMkdirAll                  // FS.MkdirAll
	OpReadDir                   // FS.ReadDir
	OpStat                      // FS.Stat
	OpSyncDir                   // FS.SyncDir
)

// String returns the operation's lower-case name, such as "sync".
func (o Op) String() string {
	names := [...]string{"invalid", "create", "open", "read", "write", "sync", "truncate",
		"preallocate", "remove", "removeall", "rename", "mkdirall", "readdir", "stat", "syncdir"}
	if o <= 0 || int(o) >= len(names) {
		return "invalid"
	}
	return names[o]
}

// Errno is an error for fault injection that wraps a syscall.Errno, so that
// errors.Is(Errno(syscall.EIO), syscall.EIO) holds. It is a plain value:
// immutable and safe for concurrent use.
type Errno syscall.Errno

// Ready-made injected errors; both are constants.
const (
	// ErrIO satisfies errors.Is(err, syscall.EIO).
	ErrIO = Errno(syscall.EIO)
	// ErrNoSpace satisfies errors.Is(err, syscall.ENOSPC). MemFS also
	// returns it (inside an *fs.PathError) when a capacity is exceeded.
	ErrNoSpace = Errno(syscall.ENOSPC)
)

// Error implements error.
func (e Errno) Error() string { return "vfs: injected fault: " + syscall.Errno(e).Error() }

// Unwrap returns the underlying syscall.Errno.
func (e Errno) Unwrap() error { return syscall.Errno(e) }

// MemFS is a strict in-memory FS for crash-consistency tests. It enforces the
// durability model of the package documentation:
//   - each file has current contents and durable contents; File.Sync copies
//     the current contents to the durable ones;
//   - each directory has a current and a durable set of entries (name →
//     file or directory); SyncDir(dir) makes dir's current entries durable.
//     So a created file whose directory was never synced vanishes at a crash
//     even if the file was synced, and a Rename or Remove not followed by
//     SyncDir of the directories involved is undone;
//   - Crash (or CrashKeepPartial) reverts everything to its durable state
//     and invalidates every open File.
//
// Simplifications, chosen to keep tests practical:
//   - MkdirAll makes each directory it creates durable at once, as if the
//     parent had been synced for that one entry (the entry replaces any
//     durable, not yet synced-away entry of the same name);
//   - Create of an existing file truncates its current contents only; the
//     durable contents change at the next Sync;
//   - if a cross-directory Rename is made durable in only one of the two
//     directories, both names survive a crash, as independent copies;
//   - a File stays usable after its name is removed, until Close or a crash;
//   - the capacity (SetCapacity) counts the current contents of the files
//     reachable by name; Preallocate reserves nothing, it only checks that
//     the capacity would allow the range to be written;
//   - Open of a directory fails with EISDIR; SyncDir of a file with ENOTDIR;
//   - names are cleaned with path.Clean and resolved from a single root, so
//     "a/b", "/a/b" and "./a//b" name the same file; "", "." and "/" name the
//     root, which always exists.
//
// Concurrency: all methods of MemFS and of its Files are safe for concurrent
// use; one mutex serialises them. The fault function set by InjectFault is
// called with that mutex held, so it is serialised too and must not call
// back into the MemFS.
type MemFS struct {
	mu       sync.Mutex
	root     *inode
	gen      uint64 // bumped by crashes; Files of older generations are dead
	fault    func(Op, string) error
	capacity int64 // < 0: unlimited
}

var _ FS = (*MemFS)(nil)

type inode struct {
	isDir   bool
	data    []byte            // file: current contents
	durable []byte            // file: contents as of the last Sync
	ents    map[string]*inode // dir: current entries; never nil
	dents   map[string]*inode // dir: durable entries; never nil
}

func newDir() *inode {
	return &inode{isDir: true, ents: map[string]*inode{}, dents: map[string]*inode{}}
}

// NewMemFS returns an empty MemFS holding only the root directory, with no
// fault function and no capacity limit.
func NewMemFS() *MemFS { return &MemFS{root: newDir(), capacity: -1} }

// InjectFault installs f, replacing any earlier one; nil removes it. Before
// each operation MemFS calls f(op, path.Clean(name)), where name is the name
// the caller passed (for File methods, the name the File was opened with; for
// Rename, the old name). If f returns a non-nil error, the operation returns
// exactly that error and has no effect: a failed write writes nothing, a
// failed Sync leaves the durable contents as they were, and so on. Calls on
// a closed or crashed File fail with os.ErrClosed before f is consulted.
//
// Concurrency: safe for concurrent use; see MemFS for how f is called.
func (m *MemFS) InjectFault(f func(op Op, name string) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fault = f
}

// SetCapacity limits the total size of the files' current contents to bytes;
// a write, Truncate or Preallocate that would exceed it fails with an error
// satisfying errors.Is(err, syscall.ENOSPC) and has no effect. A negative
// value removes the limit. Lowering the limit below the usage deletes
// nothing; it only makes growth fail.
//
// Concurrency: safe for concurrent use.
func (m *MemFS) SetCapacity(bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.capacity = bytes
}

// Crash simulates a power failure: every directory reverts to its durable
// entries, every file reachable through them to its durable contents, and
// every File opened so far becomes invalid (its methods return an error
// wrapping os.ErrClosed). The fault function and capacity are kept.
//
// Concurrency: safe for concurrent use.
func (m *MemFS) Crash() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crash(nil)
}

// CrashKeepPartial is Crash with torn writes: for each surviving file whose
// current contents differ from its durable contents, let p be the length of
// their longest common prefix; a count k is drawn from rng uniformly in
// [0, len(current)-p], and after the crash the file holds current[:p+k]
// followed by whatever durable bytes lie beyond p+k. So a random prefix of
// the unsynced tail survives, possibly ending inside a write. Files are
// visited in sorted path order, so the result is a function of the state and
// of rng. k = 0 for every file gives the result of Crash.
//
// Concurrency: safe for concurrent use; rng must not be used by others
// during the call.
func (m *MemFS) CrashKeepPartial(rng *rand.Rand) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crash(rng)
}

// DurableSize returns the size the file name would have after a Crash: name
// is resolved through durable directory entries only, and the file's
// durable contents are measured. A name that would not survive returns an
// error satisfying errors.Is(err, fs.ErrNotExist). For tests.
//
// Concurrency: safe for concurrent use.
func (m *MemFS) DurableSize(name string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ino, err := m.walk("durablesize", name, true)
	if err != nil {
		return 0, err
	}
	if ino.isDir {
		return 0, pathErr("durablesize", name, syscall.EISDIR)
	}
	return int64(len(ino.durable)), nil
}

// DurableReadDir returns, sorted, the names in dir that would survive a
// Crash (dir itself resolved through durable entries). For tests.
//
// Concurrency: safe for concurrent use.
func (m *MemFS) DurableReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ino, err := m.walk("durablereaddir", dir, true)
	if err != nil {
		return nil, err
	}
	if !ino.isDir {
		return nil, pathErr("durablereaddir", dir, syscall.ENOTDIR)
	}
	return sortedNames(ino.dents), nil
}

func (m *MemFS) crash(rng *rand.Rand) {
	m.gen++
	m.root = revive(m.root, map[*inode]bool{}, rng)
}

// revive reverts ino, and the tree below it, to the durable state.
func revive(ino *inode, seen map[*inode]bool, rng *rand.Rand) *inode {
	if seen[ino] { // durably named twice: give the second name its own copy
		c := &inode{isDir: ino.isDir, durable: slices.Clone(ino.durable), dents: maps.Clone(ino.dents)}
		ino = c
	}
	seen[ino] = true
	if ino.isDir {
		ents := make(map[string]*inode, len(ino.dents))
		for _, name := range sortedNames(ino.dents) {
			ents[name] = revive(ino.dents[name], seen, rng)
		}
		ino.ents, ino.dents = ents, maps.Clone(ents)
		return ino
	}
	if d, c := ino.durable, ino.data; rng != nil && !bytes.Equal(d, c) {
		p := 0
		for p < len(d) && p < len(c) && d[p] == c[p] {
			p++
		}
		k := p + int(rng.Int64N(int64(len(c)-p)+1))
		kept := slices.Clone(c[:k])
		if k < len(d) {
			kept = append(kept, d[k:]...)
		}
		ino.durable = kept
	}
	ino.data = slices.Clone(ino.durable)
	return ino
}

func sortedNames(ents map[string]*inode) []string {
	names := make([]string, 0, len(ents))
	for name := range ents {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// split returns the components of the cleaned name; the root has none.
func split(name string) []string {
	c := path.Clean("/" + name)
	if c == "/" {
		return nil
	}
	return strings.Split(c[1:], "/")
}

func (m *MemFS) inject(op Op, name string) error {
	if m.fault == nil {
		return nil
	}
	return m.fault(op, path.Clean(name))
}

// enter locks m and consults the fault function; on success the caller must
// unlock.
func (m *MemFS) enter(op Op, name string) error {
	m.mu.Lock()
	err := m.inject(op, name)
	if err != nil {
		m.mu.Unlock()
	}
	return err
}

// walkParts resolves comps from the root through current or durable entries.
func (m *MemFS) walkParts(op, name string, comps []string, durable bool) (*inode, error) {
	cur := m.root
	for _, c := range comps {
		if !cur.isDir {
			return nil, pathErr(op, name, syscall.ENOTDIR)
		}
		ents := cur.ents
		if durable {
			ents = cur.dents
		}
		if cur = ents[c]; cur == nil {
			return nil, pathErr(op, name, syscall.ENOENT)
		}
	}
	return cur, nil
}

func (m *MemFS) walk(op, name string, durable bool) (*inode, error) {
	return m.walkParts(op, name, split(name), durable)
}

// parent returns the directory that holds name and name's last component.
func (m *MemFS) parent(op, name string) (*inode, string, error) {
	comps := split(name)
	if len(comps) == 0 {
		return nil, "", pathErr(op, name, syscall.EINVAL)
	}
	dir, err := m.walkParts(op, name, comps[:len(comps)-1], false)
	if err != nil {
		return nil, "", err
	}
	if !dir.isDir {
		return nil, "", pathErr(op, name, syscall.ENOTDIR)
	}
	return dir, comps[len(comps)-1], nil
}

// used returns the size of the current contents of all named files.
func used(ino *inode) int64 {
	n := int64(len(ino.data))
	for _, c := range ino.ents {
		n += used(c)
	}
	return n
}

// grow checks that growing a file by delta bytes fits the capacity.
func (m *MemFS) grow(op, name string, delta int64) error {
	if m.capacity >= 0 && delta > 0 && used(m.root)+delta > m.capacity {
		return pathErr(op, name, ErrNoSpace)
	}
	return nil
}

// Create implements FS. The File reads and writes.
func (m *MemFS) Create(name string) (File, error) {
	if err := m.enter(OpCreate, name); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	dir, base, err := m.parent("open", name)
	if err != nil {
		return nil, err
	}
	ino := dir.ents[base]
	switch {
	case ino == nil:
		ino = &inode{}
		dir.ents[base] = ino
	case ino.isDir:
		return nil, pathErr("open", name, syscall.EISDIR)
	default:
		ino.data = nil
	}
	return &memFile{m: m, ino: ino, name: name, gen: m.gen}, nil
}

// Open implements FS. The File refuses writes with EBADF.
func (m *MemFS) Open(name string) (File, error) { return m.open(name, true) }

// OpenRW implements FS.
func (m *MemFS) OpenRW(name string) (File, error) { return m.open(name, false) }

func (m *MemFS) open(name string, readOnly bool) (File, error) {
	if err := m.enter(OpOpen, name); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.walk("open", name, false)
	if err != nil {
		return nil, err
	}
	if ino.isDir {
		return nil, pathErr("open", name, syscall.EISDIR)
	}
	return &memFile{m: m, ino: ino, name: name, readOnly: readOnly, gen: m.gen}, nil
}

// Remove implements FS. A non-empty directory fails with ENOTEMPTY.
func (m *MemFS) Remove(name string) error {
	if err := m.enter(OpRemove, name); err != nil {
		return err
	}
	defer m.mu.Unlock()
	dir, base, err := m.parent("remove", name)
	if err != nil {
		return err
	}
	ino := dir.ents[base]
	if ino == nil {
		return pathErr("remove", name, syscall.ENOENT)
	}
	if ino.isDir && len(ino.ents) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(dir.ents, base)
	return nil
}

// RemoveAll implements FS. Removing the root fails with EINVAL. Like Remove,
// it is durable only once the parent directory is synced.
func (m *MemFS) RemoveAll(name string) error {
	if err := m.enter(OpRemoveAll, name); err != nil {
		return err
	}
	defer m.mu.Unlock()
	dir, base, err := m.parent("removeall", name)
	if err != nil {
		if pe, ok := err.(*fs.PathError); ok && pe.Err == syscall.ENOENT {
			return nil
		}
		return err
	}
	delete(dir.ents, base)
	return nil
}

// Rename implements FS. A directory cannot replace a file (ENOTDIR), a file
// cannot replace a directory (EISDIR), a directory can replace only an empty
// directory (ENOTEMPTY), and a directory cannot move below itself (EINVAL).
func (m *MemFS) Rename(oldname, newname string) error {
	if err := m.enter(OpRename, oldname); err != nil {
		return err
	}
	defer m.mu.Unlock()
	fail := func(err error) error { return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err} }
	od, ob, err := m.parent("rename", oldname)
	if err != nil {
		return fail(err.(*fs.PathError).Err)
	}
	nd, nb, err := m.parent("rename", newname)
	if err != nil {
		return fail(err.(*fs.PathError).Err)
	}
	ino := od.ents[ob]
	if ino == nil {
		return fail(syscall.ENOENT)
	}
	if od == nd && ob == nb {
		return nil
	}
	oc, nc := split(oldname), split(newname)
	if ino.isDir && len(nc) > len(oc) && slices.Equal(nc[:len(oc)], oc) {
		return fail(syscall.EINVAL)
	}
	if t := nd.ents[nb]; t != nil {
		switch {
		case t.isDir && !ino.isDir:
			return fail(syscall.EISDIR)
		case !t.isDir && ino.isDir:
			return fail(syscall.ENOTDIR)
		case t.isDir && len(t.ents) > 0:
			return fail(syscall.ENOTEMPTY)
		}
	}
	nd.ents[nb] = ino
	delete(od.ents, ob)
	return nil
}

// MkdirAll implements FS. Directories it creates are durable at once (see
// MemFS). A component naming a file fails with ENOTDIR.
func (m *MemFS) MkdirAll(dir string) error {
	if err := m.enter(OpMkdirAll, dir); err != nil {
		return err
	}
	defer m.mu.Unlock()
	// Once a component is missing the rest are created, so an ENOTDIR can
	// only come before anything was created.
	cur := m.root
	for _, c := range split(dir) {
		next := cur.ents[c]
		if next == nil {
			next = newDir()
			cur.ents[c], cur.dents[c] = next, next
		} else if !next.isDir {
			return pathErr("mkdir", dir, syscall.ENOTDIR)
		}
		cur = next
	}
	return nil
}

// ReadDir implements FS. The result is never nil on success.
func (m *MemFS) ReadDir(dir string) ([]string, error) {
	if err := m.enter(OpReadDir, dir); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.walk("readdir", dir, false)
	if err != nil {
		return nil, err
	}
	if !ino.isDir {
		return nil, pathErr("readdir", dir, syscall.ENOTDIR)
	}
	return sortedNames(ino.ents), nil
}

// Stat implements FS. The FileInfo has a zero ModTime and a nil Sys.
func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	if err := m.enter(OpStat, name); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.walk("stat", name, false)
	if err != nil {
		return nil, err
	}
	return fileInfo{name: path.Base(path.Clean("/" + name)), size: int64(len(ino.data)), dir: ino.isDir}, nil
}

// SyncDir implements FS: dir's current entries become its durable ones.
func (m *MemFS) SyncDir(dir string) error {
	if err := m.enter(OpSyncDir, dir); err != nil {
		return err
	}
	defer m.mu.Unlock()
	ino, err := m.walk("syncdir", dir, false)
	if err != nil {
		return err
	}
	if !ino.isDir {
		return pathErr("syncdir", dir, syscall.ENOTDIR)
	}
	ino.dents = maps.Clone(ino.ents)
	return nil
}

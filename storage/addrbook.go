package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"sync"

	"github.com/raftkit/raftkit/storage/vfs"
)

// Address book file format, little-endian:
//
//	magic   [8]byte "RKADDR1\x00"
//	count   uint32, then per member, by ascending ID:
//	  id uint64, addrLen uint32, addr
//	crc     uint32 CRC32C of all the preceding bytes
const (
	addrMagic     = "RKADDR1\x00"
	addrFile      = "peers"
	addrTmpFile   = "peers.tmp"
	maxAddrLen    = MaxAddrLen
	maxAddrMember = 1 << 16
	maxAddrSize   = 8 + 4 + maxAddrMember*(8+4+maxAddrLen) + 4
)

// MaxAddrLen is the longest member address the address book (and a
// snapshot's list of addresses) holds; callers refuse longer ones up front.
const MaxAddrLen = 1024

// AddressBook is the durable map from member ID to raft address that a
// group's members learn as the configuration changes: configuration entries
// and snapshots carry the addresses of members added after the group was
// bootstrapped, and a member that restarts must still reach them after the
// entries that named them were compacted away.
//
// Addresses are only added or replaced, never forgotten: an address of a
// member that left costs a few bytes and keeps answers to it deliverable.
// The file "<dir>/peers" is replaced atomically (write "peers.tmp", sync,
// rename, sync the directory).
//
// Concurrency: every method is safe for concurrent use.
type AddressBook struct {
	fs  vfs.FS
	dir string

	mu    sync.Mutex
	addrs map[uint64]string
}

// OpenAddressBook opens the address book in dir (which must exist), empty
// when no file is there yet. A corrupt file is refused with an error
// wrapping ErrCorrupt.
func OpenAddressBook(fsys vfs.FS, dir string) (*AddressBook, error) {
	addrs, err := ReadAddresses(fsys, filepath.Join(dir, addrFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		addrs = map[uint64]string{}
	case err != nil:
		return nil, fmt.Errorf("storage: open address book: %w", err)
	}
	return &AddressBook{fs: fsys, dir: dir, addrs: addrs}, nil
}

// ReadAddresses reads a file written by WriteAddresses (or an address
// book's). A missing file is an error wrapping fs.ErrNotExist; a corrupt one
// wraps ErrCorrupt.
func ReadAddresses(fsys vfs.FS, name string) (map[uint64]string, error) {
	b, err := readFile(fsys, name, maxAddrSize)
	if err != nil {
		return nil, err
	}
	return decodeAddrs(name, b)
}

// WriteAddresses writes addrs to name and syncs the file (not its
// directory). Snapshots carry the address book in such a file.
func WriteAddresses(fsys vfs.FS, name string, addrs map[uint64]string) error {
	return writeFileSync(fsys, name, encodeAddrs(addrs))
}

// Addresses returns a copy of the book.
func (a *AddressBook) Addresses() map[uint64]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.addrs)
}

// Merge adds or replaces the given addresses and stores the book durably
// if that changed it. It reports whether it did. Empty addresses and the
// zero ID are ignored. On error the durable book is the old one or the new
// one; the in-memory book keeps the old one so that a retry writes again.
func (a *AddressBook) Merge(add map[uint64]string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	next := maps.Clone(a.addrs)
	changed := false
	for id, addr := range add {
		if id == 0 || addr == "" || len(addr) > maxAddrLen || next[id] == addr {
			continue
		}
		next[id], changed = addr, true
	}
	if !changed {
		return false, nil
	}
	if len(next) > maxAddrMember {
		return false, fmt.Errorf("storage: address book: more than %d members", maxAddrMember)
	}
	tmp := filepath.Join(a.dir, addrTmpFile)
	if err := writeFileSync(a.fs, tmp, encodeAddrs(next)); err != nil {
		_ = a.fs.Remove(tmp)
		return false, fmt.Errorf("storage: address book: %w", err)
	}
	if err := a.fs.Rename(tmp, filepath.Join(a.dir, addrFile)); err != nil {
		return false, fmt.Errorf("storage: address book: rename: %w", err)
	}
	if err := a.fs.SyncDir(a.dir); err != nil {
		return false, fmt.Errorf("storage: address book: sync %s: %w", a.dir, err)
	}
	a.addrs = next
	return true, nil
}

func encodeAddrs(addrs map[uint64]string) []byte {
	le := binary.LittleEndian
	b := append([]byte(nil), addrMagic...)
	b = le.AppendUint32(b, uint32(len(addrs)))
	for _, id := range slices.Sorted(maps.Keys(addrs)) {
		b = le.AppendUint64(b, id)
		b = le.AppendUint32(b, uint32(len(addrs[id])))
		b = append(b, addrs[id]...)
	}
	return le.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeAddrs decodes the book read from name; errors wrap ErrCorrupt.
func decodeAddrs(name string, b []byte) (map[uint64]string, error) {
	corrupt := func(what string) (map[uint64]string, error) {
		return nil, fmt.Errorf("%w: %s: %s", ErrCorrupt, name, what)
	}
	if len(b) < len(addrMagic)+8 || string(b[:len(addrMagic)]) != addrMagic {
		return corrupt("bad magic")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return corrupt("checksum mismatch")
	}
	d := decoder{b: body[len(addrMagic):]}
	n := d.u32()
	if n > maxAddrMember {
		return corrupt("too many members")
	}
	addrs := make(map[uint64]string, n)
	for range n {
		id := d.u64()
		l := d.u32()
		if l > maxAddrLen {
			return corrupt("address too long")
		}
		addr := d.next(uint64(l))
		if d.bad {
			break
		}
		if id == 0 || l == 0 {
			return corrupt("empty member")
		}
		addrs[id] = string(addr)
	}
	if d.bad || len(d.b) != 0 {
		return corrupt("bad length")
	}
	return addrs, nil
}

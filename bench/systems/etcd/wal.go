package etcd

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/raftkit/raftkit/storage/vfs"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The log file is a sequence of records, appended and never rewritten:
//
//	u32 LE  length of body
//	u8      kind (recHardState, recEntry, recSnapshot)
//	u32 LE  CRC-32C of body
//	body    marshalled raftpb.HardState, Entry or Snapshot
//
// Replay (not implemented: the benchmark never restarts a replica) would
// read records in order, a later entry superseding an earlier one with the
// same or a higher index, as raft requires when a new leader overwrites a
// follower's uncommitted tail.
const (
	recHardState byte = 1
	recEntry     byte = 2
	recSnapshot  byte = 3

	recHeader = 9

	// The file is preallocated (without changing its size) in chunks, so
	// that an fdatasync after an append does not also have to allocate
	// blocks.
	preallocChunk = 64 << 20
	// keepBuf: a write buffer that grew beyond this is not retained.
	keepBuf = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type wal struct {
	f     *os.File
	buf   []byte
	off   int64 // bytes written
	alloc int64 // bytes preallocated
}

func openWAL(path string) (*wal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	// Make the new file's directory entry durable.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return &wal{f: f}, nil
}

// save appends one Ready's state in a single write, then fdatasyncs if
// sync (Ready.MustSync: entries, term or vote changed; a commit-index-only
// HardState need not be durable).
func (w *wal) save(hs *pb.HardState, snap *pb.Snapshot, ents []*pb.Entry, sync bool) error {
	b := w.buf[:0]
	var err error
	if !raft.IsEmptyHardState(hs) {
		if b, err = appendRecord(b, recHardState, hs); err != nil {
			return err
		}
	}
	if !raft.IsEmptySnap(snap) {
		if b, err = appendRecord(b, recSnapshot, snap); err != nil {
			return err
		}
	}
	for _, e := range ents {
		if b, err = appendRecord(b, recEntry, e); err != nil {
			return err
		}
	}
	if cap(b) <= keepBuf {
		w.buf = b[:0]
	} else {
		w.buf = nil
	}
	if len(b) == 0 {
		return nil
	}
	if end := w.off + int64(len(b)); end > w.alloc {
		n := int64(preallocChunk)
		for w.alloc+n < end {
			n += preallocChunk
		}
		if err := vfs.PreallocateKeepSize(w.f, w.alloc, n); err != nil {
			return fmt.Errorf("preallocate log: %w", err)
		}
		w.alloc += n
	}
	if _, err := w.f.Write(b); err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	w.off += int64(len(b))
	if sync {
		if err := vfs.Fdatasync(w.f); err != nil {
			return fmt.Errorf("sync log: %w", err)
		}
	}
	return nil
}

func appendRecord(b []byte, kind byte, m proto.Message) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, kind, 0, 0, 0, 0)
	b, err := proto.MarshalOptions{}.MarshalAppend(b, m)
	if err != nil {
		return nil, fmt.Errorf("marshal log record: %w", err)
	}
	body := b[start+recHeader:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+5:], crc32.Checksum(body, castagnoli))
	return b, nil
}

func (w *wal) close() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	return nil
}

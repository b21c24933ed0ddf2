package logengine

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"path"
	"strings"
	"syscall"
	"testing"

	"github.com/raftkit/raftkit/storage/vfs"
)

// churn appends to group 1 and truncates it to its last keep entries, n
// times, so that GC frees segment after segment; m follows along.
func churn(t *testing.T, e *Engine, m model, n int, keep uint64) {
	t.Helper()
	for range n {
		l, _ := m.LastIndex()
		es := ents(1, l+1, 3, 1)
		ok(t, e.Group(1).Append(es))
		m.append(t, es)
		if first, _ := m.FirstIndex(); l+3 >= first+keep {
			last := l + 3
			ok(t, e.Group(1).TruncatePrefix(last-keep+1))
			ok(t, m.Compact(last-keep))
		}
	}
}

// fileSize is the size of name as the file system holds it.
func fileSize(t *testing.T, fs vfs.FS, name string) int64 {
	t.Helper()
	fi, err := fs.Stat(name)
	ok(t, err)
	return fi.Size()
}

// TestRecycleReusesDeadSegments: rolls take the files GC freed, the stale
// records of their previous life are never replayed, and the pool never
// holds more than RecycleSegments files.
func TestRecycleReusesDeadSegments(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		opts := Options{SegmentSize: 4 << 10, RecycleSegments: 2}
		e := open(t, fs, dir, opts)
		m := newModel()
		churn(t, e, m, 400, 5)
		st := e.Stats()
		if st.SegmentsRecycled < 5 {
			t.Fatalf("recycled %d segments: %+v", st.SegmentsRecycled, st)
		}
		if st.FreeSegments > 2 {
			t.Fatalf("%d free segments kept, the limit is 2", st.FreeSegments)
		}
		// The active segment is a recycled file: past its data lie the
		// old records, which is what this test is about.
		active := st.Segments[len(st.Segments)-1]
		if size := fileSize(t, fs, segmentName(dir, active.Seq)); size <= active.Size+frameSize {
			t.Fatalf("active segment %d: file of %d bytes, data %d: no stale records after the data", active.Seq, size, active.Size)
		}
		m.check(t, e.Group(1))
		ok(t, e.Close())
		names, err := fs.ReadDir(dir)
		ok(t, err)
		free := 0
		for _, n := range names {
			if strings.HasSuffix(n, ".free") {
				free++
			}
		}
		if free > 2 {
			t.Fatalf("%d free files on disk: %v", free, names)
		}
		e = open(t, fs, dir, opts)
		defer e.Close()
		m.check(t, e.Group(1))
		churn(t, e, m, 100, 5)
		m.check(t, e.Group(1))
		if e.Stats().SegmentsRecycled == 0 {
			t.Fatal("after a reopen, no roll reused the free files left on disk")
		}
	})
}

// TestRecycleCrash crashes the file system at random points of a workload
// that recycles segments, sometimes with a round in flight and its bytes
// partly on disk: every acknowledged entry must come back, and nothing
// else but the in-flight round.
func TestRecycleCrash(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 11))
		fs := vfs.NewMemFS()
		opts := Options{SegmentSize: 4 << 10, RecycleSegments: 3}
		e := open(t, fs, "/d", opts)
		m := newModel()
		recycled := int64(0)
		for step := range 30 {
			churn(t, e, m, 5+rng.IntN(40), uint64(1+rng.IntN(8)))
			recycled += e.Stats().SegmentsRecycled
			l, _ := m.LastIndex()
			inflight := ents(1, l+1, uint64(1+rng.IntN(20)), 1)
			done := make(chan error, 1)
			e.Submit([]Write{{Group: 1, Entries: inflight}}, func(err error) { done <- err })
			if rng.IntN(2) == 0 {
				fs.CrashKeepPartial(rng)
			} else {
				fs.Crash()
			}
			e.Close()
			if err := <-done; err == nil {
				m.append(t, inflight)
			}
			var err error
			e, err = Open(fs, "/d", opts)
			if err != nil {
				t.Fatalf("seed %d step %d: reopen: %v", seed, step, err)
			}
			got := lastIndex(t, e, 1)
			if want, _ := m.LastIndex(); got != want {
				if got != want+uint64(len(inflight)) {
					t.Fatalf("seed %d step %d: last index %d, want %d (or %d with the round in flight)",
						seed, step, got, want, want+uint64(len(inflight)))
				}
				m.append(t, inflight)
			}
			m.check(t, e.Group(1))
		}
		ok(t, e.Close())
		if recycled == 0 {
			t.Fatalf("seed %d: no segment was recycled", seed)
		}
	}
}

// TestRecycleRenameFault: a failed rename of a dead segment into the pool
// fails the engine, as a failed removal does.
func TestRecycleRenameFault(t *testing.T) {
	fs := vfs.NewMemFS()
	e := open(t, fs, "/d", Options{SegmentSize: 4 << 10})
	defer e.Close()
	for i := uint64(1); e.Stats().ActiveSegment < 3; i++ {
		ok(t, e.Group(1).Append(ents(1, i, 1, 1)))
	}
	fs.InjectFault(func(op vfs.Op, name string) error {
		if op == vfs.OpRename && strings.HasSuffix(name, ".log") {
			return vfs.ErrIO
		}
		return nil
	})
	ok(t, e.Group(1).Reset(1000, 1)) // durable; the GC after it fails
	if err := e.GC(); !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("GC with a failing rename: %v", err)
	}
}

// TestRecycleLimitOnReopen: free files beyond RecycleSegments are deleted
// when the engine opens, and none are kept when recycling is off.
func TestRecycleLimitOnReopen(t *testing.T) {
	fs := vfs.NewMemFS()
	e := open(t, fs, "/d", Options{SegmentSize: 4 << 10, RecycleSegments: 4})
	m := newModel()
	churn(t, e, m, 400, 1<<20)
	if n := len(e.Stats().Segments); n < 7 {
		t.Fatalf("only %d segments", n)
	}
	ok(t, e.Group(1).Reset(100000, 1))
	ok(t, e.GC())
	if n := e.Stats().FreeSegments; n != 4 {
		t.Fatalf("%d free segments, want 4", n)
	}
	ok(t, e.Close())
	for _, limit := range []int{1, -1} {
		e = open(t, fs, "/d", Options{SegmentSize: 4 << 10, RecycleSegments: limit})
		ok(t, e.Close())
		names, err := fs.ReadDir("/d")
		ok(t, err)
		free := 0
		for _, n := range names {
			if strings.HasSuffix(n, ".free") {
				free++
			}
		}
		if want := max(limit, 0); free != want {
			t.Fatalf("RecycleSegments %d: %d free files left: %v", limit, free, names)
		}
	}
}

// TestFormat1Segments: segments written by format 1 (no salt, no end
// marker) are read, and appended to when active.
func TestFormat1Segments(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := Options{SegmentSize: 4 << 10, RecycleSegments: -1}
	e := open(t, fs, "/d", opts)
	m := newModel()
	churn(t, e, m, 80, 1000)
	ok(t, e.Close())
	names, err := fs.ReadDir("/d")
	ok(t, err)
	for _, n := range names {
		if seq, isSeg := parseSegmentName(n); isSeg {
			toFormat1(t, fs, path.Join("/d", n), seq)
		}
	}
	e = open(t, fs, "/d", opts)
	m.check(t, e.Group(1))
	churn(t, e, m, 80, 1000)
	ok(t, e.Close())
	e = open(t, fs, "/d", opts)
	defer e.Close()
	m.check(t, e.Group(1))
}

// toFormat1 rewrites segment seq as format 1 would have written it: the
// old magic, and the salt taken out of every record's checksum.
func toFormat1(t *testing.T, fs vfs.FS, name string, seq uint64) {
	t.Helper()
	f, err := fs.OpenRW(name)
	ok(t, err)
	defer f.Close()
	size, err := f.Size()
	ok(t, err)
	data := make([]byte, size)
	_, err = f.ReadAt(data, 0)
	ok(t, err)
	copy(data, segMagicV1)
	binary.LittleEndian.PutUint32(data[16:], segmentCRC(data[:16]))
	salt := saltOf(seq)
	for pos := headerSize; ; {
		_, n, st, _ := readRecord(data, pos, salt)
		if st != recOK {
			break
		}
		saltRecord(data, pos, salt)
		pos += n
	}
	_, err = f.WriteAt(data, 0)
	ok(t, err)
	ok(t, f.Sync())
}

// TestRoundAfterEndMarkerIsCorruption: a zero length field in front of
// committed rounds (a lost sector, not a torn write) refuses to open
// rather than dropping the rounds after it.
func TestRoundAfterEndMarkerIsCorruption(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := Options{SegmentSize: 4 << 10, RecycleSegments: -1}
	e := open(t, fs, "/d", opts)
	for i := uint64(1); i <= 20; i++ {
		ok(t, e.Group(1).Append(ents(1, i, 1, 1)))
	}
	ok(t, e.Close())
	name := segmentName("/d", 1)
	f, err := fs.OpenRW(name)
	ok(t, err)
	ok(t, func() error { _, err := f.WriteAt(make([]byte, 4), headerSize); return err }())
	ok(t, f.Sync())
	f.Close()
	if _, err := Open(fs, "/d", opts); err == nil || !strings.Contains(err.Error(), "after the end") {
		t.Fatalf("open with a zeroed length in front of committed rounds: %v", err)
	}
}

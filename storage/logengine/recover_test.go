package logengine

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/raftkit/raftkit/storage/vfs"
)

// osOpts are the options of the tests that edit segment files on the OS
// file system: small segments, so that zero-filling them (when a test
// turns it on) is quick.
var osOpts = Options{SegmentSize: 64 << 10}

// writeRounds appends n single-entry rounds to group 1 in a fresh engine
// in dir, closes it, and returns the segment's path and the offsets of the
// rounds.
func writeRounds(t *testing.T, dir string, n int) (string, []int64) {
	seg, offs, _ := writeRoundsOpts(t, dir, n, osOpts)
	return seg, offs
}

// writeRoundsOpts is writeRounds with options; it also returns the end of
// the data (the segment file may be longer: zero-filled).
func writeRoundsOpts(t *testing.T, dir string, n int, opts Options) (string, []int64, int64) {
	t.Helper()
	e := open(t, vfs.OS{}, dir, opts)
	var offs []int64
	for i := uint64(1); i <= uint64(n); i++ {
		offs = append(offs, e.Stats().Segments[0].Size)
		ok(t, e.Group(1).Append(ents(1, i, 1, 1)))
	}
	end := e.Stats().Segments[0].Size
	ok(t, e.Close())
	return segmentName(dir, 1), offs, end
}

func mutate(t *testing.T, name string, f func(b []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(name)
	ok(t, err)
	ok(t, os.WriteFile(name, f(b), 0o644))
}

func lastIndex(t *testing.T, e *Engine, g uint64) uint64 {
	t.Helper()
	l, err := e.Group(g).LastIndex()
	ok(t, err)
	return l
}

func TestTornTail(t *testing.T) {
	cases := map[string]func(b []byte, last int64) []byte{
		"short record":  func(b []byte, last int64) []byte { return b[:len(b)-5] },
		"short frame":   func(b []byte, last int64) []byte { return b[:last+3] },
		"only round":    func(b []byte, last int64) []byte { return b[:last+roundRecSize] },
		"crc then zero": func(b []byte, last int64) []byte { b[len(b)-1] ^= 1; return append(b, make([]byte, 100)...) },
		"garbage after": func(b []byte, last int64) []byte { return append(b, "garbage that is not a record"...) },
		"zeroed record": func(b []byte, last int64) []byte {
			clear(b[last+roundRecSize:])
			return b
		},
	}
	for _, opts := range []Options{osOpts, {SegmentSize: osOpts.SegmentSize, ZeroFill: true}} {
		for name, tear := range cases {
			t.Run(fmt.Sprintf("%s/zerofill=%v", name, opts.ZeroFill), func(t *testing.T) {
				tornTail(t, name, tear, opts)
			})
		}
	}
}

// tornTail tears the data of a three-round segment with tear; in a
// zero-filled segment the zeros after the data stay (the file keeps its
// size), as a crash inside a filled segment would leave them.
func tornTail(t *testing.T, name string, tear func(b []byte, last int64) []byte, opts Options) {
	{
		{
			dir := t.TempDir()
			seg, offs, end := writeRoundsOpts(t, dir, 3, opts)
			last := offs[len(offs)-1]
			mutate(t, seg, func(b []byte) []byte {
				size := len(b)
				if opts.ZeroFill && size != int(opts.SegmentSize) {
					t.Fatalf("zero-filled segment of %d bytes, want %d", size, opts.SegmentSize)
				}
				b = tear(b[:end], last)
				if len(b) < size {
					b = append(b, make([]byte, size-len(b))...)
				}
				return b
			})
			e := open(t, vfs.OS{}, dir, opts)
			want := uint64(2)
			if name == "garbage after" {
				want = 3
			}
			if l := lastIndex(t, e, 1); l != want {
				t.Fatalf("last index %d after a torn tail, want %d", l, want)
			}
			m := newModel()
			m.append(t, ents(1, 1, want, 1))
			m.check(t, e.Group(1))
			// The engine appends after the repaired tail, and reopens.
			ok(t, e.Group(1).Append(ents(1, want+1, 2, 2)))
			m.append(t, ents(1, want+1, 2, 2))
			ok(t, e.Close())
			e = open(t, vfs.OS{}, dir, opts)
			defer e.Close()
			m.check(t, e.Group(1))
		}
	}
}

func TestCorruptionRefusesToOpen(t *testing.T) {
	t.Run("mid-file", func(t *testing.T) {
		dir := t.TempDir()
		seg, offs := writeRounds(t, dir, 4)
		// A byte inside the entries record of the second round, which
		// complete rounds follow.
		off := offs[1] + roundRecSize + frameSize + 4
		mutate(t, seg, func(b []byte) []byte { b[off] ^= 0x40; return b })
		_, err := Open(vfs.OS{}, dir, osOpts)
		want := fmt.Sprintf("offset %d", offs[1]+roundRecSize)
		if err == nil || !strings.Contains(err.Error(), seg) || !strings.Contains(err.Error(), want) {
			t.Fatalf("open of a corrupt log: %v; want the file %s and %q", err, seg, want)
		}
	})
	t.Run("zeroed length mid-file", func(t *testing.T) {
		dir := t.TempDir()
		seg, offs := writeRounds(t, dir, 4)
		mutate(t, seg, func(b []byte) []byte { clear(b[offs[1] : offs[1]+4]); return b })
		if _, err := Open(vfs.OS{}, dir, osOpts); err == nil || !strings.Contains(err.Error(), fmt.Sprint("offset ", offs[1])) {
			t.Fatalf("open with a zeroed record length mid-file: %v", err)
		}
	})
	t.Run("header", func(t *testing.T) {
		dir := t.TempDir()
		seg, _ := writeRounds(t, dir, 2)
		mutate(t, seg, func(b []byte) []byte { b[3] ^= 1; return b })
		if _, err := Open(vfs.OS{}, dir, osOpts); err == nil || !strings.Contains(err.Error(), seg) {
			t.Fatalf("open with a corrupt header: %v", err)
		}
	})
	t.Run("non-last segment", func(t *testing.T) {
		dir := t.TempDir()
		opts := Options{SegmentSize: 4 << 10}
		e := open(t, vfs.OS{}, dir, opts)
		for i := uint64(1); e.Stats().ActiveSegment < 3; i++ {
			ok(t, e.Group(1).Append(ents(1, i, 1, 1)))
		}
		size := e.Stats().Segments[0].Size
		ok(t, e.Close())
		// Tear the end of segment 1: in a non-last segment that is
		// corruption, never a torn write.
		seg := segmentName(dir, 1)
		mutate(t, seg, func(b []byte) []byte { return b[:size-3] })
		if _, err := Open(vfs.OS{}, dir, opts); err == nil || !strings.Contains(err.Error(), seg) {
			t.Fatalf("open with a torn non-last segment: %v", err)
		}
	})
}

// TestTornRoll leaves an empty and a half-written next segment, as a crash
// during a roll would: recovery deletes it and carries on.
func TestTornRoll(t *testing.T) {
	for name, content := range map[string][]byte{
		"empty":       nil,
		"half header": []byte("RKLOG0"),
		"zeros":       make([]byte, 4096),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeRounds(t, dir, 3)
			next := segmentName(dir, 2)
			ok(t, os.WriteFile(next, content, 0o644))
			e := open(t, vfs.OS{}, dir, osOpts)
			if l := lastIndex(t, e, 1); l != 3 {
				t.Fatalf("last index %d", l)
			}
			ok(t, e.Group(1).Append(ents(1, 4, 1, 1)))
			ok(t, e.Close())
			e = open(t, vfs.OS{}, dir, osOpts)
			defer e.Close()
			if l := lastIndex(t, e, 1); l != 4 {
				t.Fatalf("last index %d after reopen", l)
			}
		})
	}
}

// TestRecoverOnMemFSCrash leaves a durable torn round at the end of the
// active segment of the strict in-memory FS, crashes it and reopens.
func TestRecoverOnMemFSCrash(t *testing.T) {
	fs := vfs.NewMemFS()
	e := open(t, fs, "/d", Options{SegmentSize: 4 << 10})
	m := newModel()
	for i := uint64(1); i <= 40; i++ {
		es := ents(1, i, 1, 1)
		ok(t, e.Group(1).Append(es))
		m.append(t, es)
	}
	// An unsynced tail: write a round by hand behind the engine's back.
	name := segmentName("/d", e.Stats().ActiveSegment)
	f, err := fs.OpenRW(name)
	ok(t, err)
	size, err := f.Size()
	ok(t, err)
	b := appendRoundPlaceholder(nil)
	b, start := beginRecord(b, recEntries)
	b = appendEntriesHeader(b, entriesHeader{group: 1, first: 41, count: 1})
	b = appendEntry(b, &ents(1, 41, 1, 1)[0])
	finishRecord(b, start)
	finishRound(b)
	_, err = f.WriteAt(b[:len(b)-3], size)
	ok(t, err)
	ok(t, f.Sync()) // a torn round that reached the disk
	fs.Crash()
	e.Close()
	e = open(t, fs, "/d", Options{SegmentSize: 4 << 10})
	defer e.Close()
	m.check(t, e.Group(1))
}

func TestFormatHelpers(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 1<<14 - 1, 1 << 14, 1<<63 + 5, ^uint64(0)} {
		if got, want := uvarintLen(v), len(binary.AppendUvarint(nil, v)); got != want {
			t.Fatalf("uvarintLen(%d) = %d, want %d", v, got, want)
		}
	}
	if _, ok := parseSegmentName("00000000000000000000.log"); ok {
		t.Fatal("seq 0 accepted")
	}
	if seq, ok := parseSegmentName("00000000000000000042.log"); !ok || seq != 42 {
		t.Fatal("segment name not parsed")
	}
}

// TestRecoverMutations corrupts a multi-segment log (with truncations,
// resets and GC records) at random places: Open may refuse but must never
// panic, and whatever it accepts must be readable.
func TestRecoverMutations(t *testing.T) {
	src := vfs.NewMemFS()
	opts := Options{SegmentSize: 4 << 10, RewriteThreshold: 1450}
	e := open(t, src, "/d", opts)
	for i := uint64(1); i <= 300; i++ {
		g := i % 4
		l := lastIndex(t, e, g)
		ok(t, e.Group(g).Append(ents(g, l+1, 1+i%5, i)))
		switch {
		case g == 3 && i%7 == 0:
			ok(t, e.Group(g).TruncatePrefix(l))
		case g == 2 && i%50 == 0:
			ok(t, e.Group(g).Reset(l+3, i))
		}
	}
	ok(t, e.GC())
	if st := e.Stats(); st.RewrittenBytes == 0 || st.SegmentsRecycled == 0 || len(st.Segments) < 4 {
		t.Fatalf("the log to corrupt lacks GC records or segments: %+v", st)
	}
	ok(t, e.Close())
	names, err := src.ReadDir("/d")
	ok(t, err)
	files := map[string][]byte{}
	for _, n := range names {
		f, err := src.Open("/d/" + n)
		ok(t, err)
		size, _ := f.Size()
		b := make([]byte, size)
		_, err = f.ReadAt(b, 0)
		ok(t, err)
		f.Close()
		files[n] = b
	}
	rng := rand.New(rand.NewPCG(3, 4))
	accepted := 0
	for iter := range 400 {
		fs := vfs.NewMemFS()
		ok(t, fs.MkdirAll("/d"))
		victim := names[rng.IntN(len(names))]
		for _, n := range names {
			b := slices.Clone(files[n])
			if n == victim && len(b) > 0 {
				switch rng.IntN(3) {
				case 0:
					b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
				case 1:
					b = b[:rng.IntN(len(b))]
				default:
					at := rng.IntN(len(b))
					clear(b[at:min(len(b), at+1+rng.IntN(64))])
				}
			}
			f, err := fs.Create("/d/" + n)
			ok(t, err)
			_, err = f.WriteAt(b, 0)
			ok(t, err)
			ok(t, f.Sync())
			f.Close()
		}
		ok(t, fs.SyncDir("/d"))
		e, err := Open(fs, "/d", opts)
		if err != nil {
			continue
		}
		accepted++
		for g := uint64(0); g < 4; g++ {
			gl := e.Group(g)
			f, _ := gl.FirstIndex()
			l, _ := gl.LastIndex()
			if l >= f {
				if _, err := gl.Entries(f, l+1, 1<<40); err != nil {
					t.Fatalf("iter %d: group %d: accepted log unreadable: %v", iter, g, err)
				}
			}
		}
		ok(t, e.Group(1).Append(ents(1, lastIndex(t, e, 1)+1, 1, 1<<20)))
		ok(t, e.Close())
	}
	t.Logf("%d segments; %d of 400 corrupted logs accepted (torn tails)", len(names), accepted)
	if accepted == 0 || accepted == 400 {
		t.Fatalf("accepted %d of 400", accepted)
	}
}

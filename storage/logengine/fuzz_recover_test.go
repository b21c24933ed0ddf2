package logengine_test

import (
	"io"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage/logengine"
	"github.com/raftkit/raftkit/storage/vfs"
)

const fuzzSegment = "/d/00000000000000000001.log"

// validSegment returns the bytes of a segment written by the engine: entries
// of three groups, a suffix overwrite, a prefix truncation and a reset.
func validSegment(t testing.TB) []byte {
	fs := vfs.NewMemFS()
	if err := fs.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	e, err := logengine.Open(fs, "/d", logengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for g := uint64(1); g <= 3; g++ {
		ents := []raftpb.Entry{{Term: 1, Index: 1, Data: []byte("a")}, {Term: 1, Index: 2}, {Term: 1, Index: 3, Type: raftpb.EntryNoop}}
		if err := e.Group(g).Append(ents); err != nil {
			t.Fatal(err)
		}
	}
	must(t, e.Group(1).Append([]raftpb.Entry{{Term: 2, Index: 2, Data: []byte("b")}}))
	must(t, e.Group(2).TruncatePrefix(2))
	must(t, e.Group(3).Reset(10, 3))
	must(t, e.Close())
	f, err := fs.Open(fuzzSegment)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzRecover opens an engine on a segment of arbitrary bytes: recovery may
// refuse with an error but must never panic, and what it accepts must be
// readable.
func FuzzRecover(f *testing.F) {
	seg := validSegment(f)
	f.Add(seg)
	f.Add(seg[:len(seg)/2])
	f.Add([]byte{})
	f.Add([]byte("RKLOG001"))
	corrupt := append([]byte(nil), seg...)
	corrupt[len(corrupt)/3] ^= 0xff
	f.Add(corrupt)
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMemFS()
		must(t, fs.MkdirAll("/d"))
		file, err := fs.Create(fuzzSegment)
		must(t, err)
		_, err = file.Write(data)
		must(t, err)
		must(t, file.Sync())
		must(t, file.Close())
		must(t, fs.SyncDir("/d"))
		e, err := logengine.Open(fs, "/d", logengine.Options{})
		if err != nil {
			return
		}
		defer e.Close()
		for g := uint64(0); g <= 4; g++ {
			gl := e.Group(g)
			first, err1 := gl.FirstIndex()
			last, err2 := gl.LastIndex()
			if err1 != nil || err2 != nil {
				t.Fatalf("group %d bounds: %v %v", g, err1, err2)
			}
			if last+1 < first {
				t.Fatalf("group %d: last %d before first %d", g, last, first)
			}
			if last >= first && last-first < 1<<16 {
				if _, err := gl.Entries(first, last+1, 1<<30); err != nil {
					t.Fatalf("group %d entries [%d,%d]: %v", g, first, last, err)
				}
			}
		}
	})
}

// TestRecoverValidSegment checks the fuzz seed itself round-trips: the
// recovered state is what was written.
func TestRecoverValidSegment(t *testing.T) {
	fs := vfs.NewMemFS()
	must(t, fs.MkdirAll("/d"))
	file, err := fs.Create(fuzzSegment)
	must(t, err)
	_, err = file.Write(validSegment(t))
	must(t, err)
	must(t, file.Sync())
	must(t, file.Close())
	must(t, fs.SyncDir("/d"))
	e, err := logengine.Open(fs, "/d", logengine.Options{})
	must(t, err)
	defer e.Close()
	ents, err := e.Group(1).Entries(1, 3, 1<<20)
	must(t, err)
	if len(ents) != 2 || ents[1].Term != 2 || string(ents[1].Data) != "b" {
		t.Fatalf("group 1 recovered %v", ents)
	}
	if first, _ := e.Group(2).FirstIndex(); first != 2 {
		t.Fatalf("group 2 first index %d, want 2", first)
	}
	if term, err := e.Group(3).Term(10); err != nil || term != 3 {
		t.Fatalf("group 3 reset term %d (%v), want 3", term, err)
	}
	if last, _ := e.Group(3).LastIndex(); last != 10 {
		t.Fatalf("group 3 last index %d, want 10", last)
	}
}

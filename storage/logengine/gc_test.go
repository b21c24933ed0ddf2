package logengine

import (
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage/vfs"
)

// fill appends to filler group g until segment seq is active, then resets
// g so its entries are dead.
func fill(t *testing.T, e *Engine, g, seq uint64) {
	t.Helper()
	for e.Stats().ActiveSegment < seq {
		l := lastIndex(t, e, g)
		ok(t, e.Group(g).Append(ents(g, l+1, 4, 1)))
	}
	ok(t, e.Group(g).Reset(lastIndex(t, e, g)+1000, 1))
}

func segSeqs(e *Engine) []uint64 {
	var seqs []uint64
	for _, s := range e.Stats().Segments {
		seqs = append(seqs, s.Seq)
	}
	return seqs
}

// TestGCRewritesLaggingGroup: a group that appended a few entries long ago
// must not pin the old segments once the busy group truncates its prefix.
func TestGCRewritesLaggingGroup(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		opts := Options{SegmentSize: 8 << 10, RewriteThreshold: 2 << 10}
		e := open(t, fs, dir, opts)
		lag, busy := newModel(), newModel()
		es := ents(1, 1, 3, 1)
		ok(t, e.Group(1).Append(es))
		lag.append(t, es)
		next := uint64(1)
		for range 60 {
			es := ents(2, next, 10, 1)
			ok(t, e.Group(2).Append(es))
			busy.append(t, es)
			next += 10
			ok(t, e.Group(2).TruncatePrefix(next-5))
			ok(t, busy.Compact(next-6))
		}
		ok(t, e.GC())
		st := e.Stats()
		if st.SegmentsDeleted+int64(st.FreeSegments) == 0 || st.RewrittenBytes == 0 {
			t.Fatalf("GC deleted %d segments, kept %d and rewrote %d bytes", st.SegmentsDeleted, st.FreeSegments, st.RewrittenBytes)
		}
		if len(st.Segments) > 2 || st.Segments[0].Seq == 1 {
			t.Fatalf("segments left after GC: %+v", st.Segments)
		}
		for _, s := range st.Segments[:len(st.Segments)-1] {
			if s.LiveBytes < opts.RewriteThreshold {
				t.Fatalf("old segment %d left with %d live bytes", s.Seq, s.LiveBytes)
			}
		}
		lag.check(t, e.Group(1))
		busy.check(t, e.Group(2))
		ok(t, e.Close())
		e = open(t, fs, dir, opts)
		defer e.Close()
		lag.check(t, e.Group(1))
		busy.check(t, e.Group(2))
		// The rewritten entries are still appendable after.
		es = ents(1, 4, 2, 2)
		ok(t, e.Group(1).Append(es))
		lag.append(t, es)
		lag.check(t, e.Group(1))
	})
}

// TestGCOutOfOrderDeletion deletes a dead segment while an older one is
// pinned by another group. The deleted segment held the append that had
// truncated the older segment's entries of group 1, so replay must not
// bring them back.
func TestGCOutOfOrderDeletion(t *testing.T) {
	for _, ckptInDeleted := range []bool{true, false} {
		name := map[bool]string{true: "truncation in deleted segment", false: "truncation in later segment"}[ckptInDeleted]
		t.Run(name, func(t *testing.T) {
			fs := vfs.NewMemFS()
			opts := Options{SegmentSize: 4 << 10, RewriteThreshold: -1}
			e := open(t, fs, "/d", opts)
			ok(t, e.Group(10).Append([]raftpb.Entry{{Term: 1, Index: 1, Data: make([]byte, 1500)}})) // pins segment 1
			ok(t, e.Group(1).Append(ents(1, 1, 10, 1)))
			fill(t, e, 20, 2)
			ok(t, e.Group(1).Append(ents(1, 5, 2, 2))) // discards 7..10 of segment 1
			m := newModel()
			m.append(t, ents(1, 1, 10, 1))
			m.append(t, ents(1, 5, 2, 2))
			if ckptInDeleted {
				ok(t, e.Group(1).TruncatePrefix(7))
				ok(t, m.Compact(6))
				fill(t, e, 21, 3)
			} else {
				fill(t, e, 21, 3)
				ok(t, e.Group(1).Append(ents(1, 7, 2, 2)))
				m.append(t, ents(1, 7, 2, 2))
				ok(t, e.Group(1).TruncatePrefix(9))
				ok(t, m.Compact(8))
			}
			ok(t, e.GC())
			seqs := segSeqs(e)
			if seqs[0] != 1 || seqs[1] == 2 {
				t.Fatalf("segments after GC: %v; want 1 kept and 2 deleted", seqs)
			}
			m.check(t, e.Group(1))
			ok(t, e.Close())
			e = open(t, fs, "/d", opts)
			defer e.Close()
			m.check(t, e.Group(1))
		})
	}
}

// TestGCKeepsResetAcrossDeletion: the reset record of an idle group lives in
// a segment GC deletes; a checkpoint must carry it.
func TestGCKeepsResetAcrossDeletion(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := Options{SegmentSize: 4 << 10}
	e := open(t, fs, "/d", opts)
	ok(t, e.Group(1).Append(ents(1, 1, 5, 1)))
	ok(t, e.Group(1).Reset(500, 4))
	for seq := uint64(2); seq <= 5; seq++ {
		fill(t, e, 20, seq)
		ok(t, e.GC())
	}
	if seqs := segSeqs(e); seqs[0] == 1 {
		t.Fatalf("segment 1 not deleted: %v", seqs)
	}
	check := func(e *Engine) {
		t.Helper()
		if f, _ := e.Group(1).FirstIndex(); f != 501 {
			t.Fatalf("first index %d", f)
		}
		if term, err := e.Group(1).Term(500); err != nil || term != 4 {
			t.Fatalf("Term(500) = %d, %v", term, err)
		}
	}
	check(e)
	ok(t, e.Close())
	e = open(t, fs, "/d", opts)
	defer e.Close()
	check(e)
}

// TestSegmentRoll writes far more than one tiny segment holds and reads it
// all back, before and after reopening.
func TestSegmentRoll(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		opts := Options{SegmentSize: 4 << 10}
		e := open(t, fs, dir, opts)
		models := []model{newModel(), newModel()}
		for i := uint64(1); i <= 200; i++ {
			g := i % 2
			l, _ := models[g].LastIndex()
			es := ents(g, l+1, 1+i%3, 1)
			ok(t, e.Group(g).Append(es))
			models[g].append(t, es)
		}
		// One round larger than a segment gets a segment of its own.
		big := []raftpb.Entry{{Term: 1, Index: lastIndex(t, e, 0) + 1, Data: make([]byte, 10<<10)}}
		ok(t, e.Group(0).Append(big))
		models[0].append(t, big)
		st := e.Stats()
		if len(st.Segments) < 5 || st.SegmentsCreated < 4 {
			t.Fatalf("no rolls: %+v", st)
		}
		for _, s := range st.Segments[:len(st.Segments)-2] {
			if s.Size > opts.SegmentSize {
				t.Fatalf("segment %d holds %d bytes", s.Seq, s.Size)
			}
		}
		for g, m := range models {
			m.check(t, e.Group(uint64(g)))
		}
		ok(t, e.Close())
		e = open(t, fs, dir, opts)
		defer e.Close()
		for g, m := range models {
			m.check(t, e.Group(uint64(g)))
		}
	})
}

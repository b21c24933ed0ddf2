package logengine

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
	"github.com/raftkit/raftkit/storage/vfs"
)

// TestCrashAtEveryPoint kills the engine at a random file-system operation
// (the operation fails, as if the process died there), crashes the strict
// in-memory FS (sometimes keeping a torn prefix of unsynced data), reopens,
// and checks that every group is exactly as before or exactly as after the
// one write in flight: rounds are atomic, acknowledged writes survive, and
// nothing an acknowledged append truncated comes back. Tiny segments and a
// low rewrite threshold keep rolls, deletions and rewrites frequent, so
// crash points land inside them too.
func TestCrashAtEveryPoint(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	if n, err := strconv.Atoi(os.Getenv("LOGENGINE_CRASH_SEEDS")); err == nil {
		seeds = n // for long local runs
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { crashPoints(t, seed) })
	}
}

func crashPoints(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 5))
	fs := vfs.NewMemFS()
	opts := Options{SegmentSize: 4 << 10, RewriteThreshold: 1 << 10}
	var countdown atomic.Int64
	countdown.Store(-1)
	fs.InjectFault(func(op vfs.Op, name string) error {
		// The preparer runs concurrently, so counting its operations would
		// make the crash point depend on scheduling; a failure there only
		// makes the roll create the segment in place (TestPrepareFailure).
		// The roll's rename of its file is the writer's, and counts.
		if op != vfs.OpRename && strings.HasSuffix(name, "/"+prepName) {
			return nil
		}
		if countdown.Add(-1) == 0 {
			return vfs.ErrIO
		}
		return nil
	})
	e := open(t, fs, "/d", opts)
	const groups = 4
	models := map[uint64]*storage.MemoryStorage{}
	for g := uint64(1); g <= groups; g++ {
		models[g] = storage.NewMemoryStorage()
	}
	term := uint64(1)
	crashes := 0
	countdown.Store(1 + rng.Int64N(200))
	for step := range 400 {
		g := 1 + uint64(rng.IntN(groups))
		before := models[g]
		after := before.Clone()
		first, _ := before.FirstIndex()
		last, _ := before.LastIndex()
		var err error
		switch op := rng.IntN(100); {
		case op < 60:
			from := last + 1
			if last >= first && rng.IntN(4) == 0 {
				from = first + uint64(rng.IntN(int(last-first+1)))
				term++
			}
			es := ents(g, from, uint64(1+rng.IntN(12)), term)
			ok(t, after.Append(es))
			err = e.Group(g).Append(es)
		case op < 80:
			if last < first {
				continue
			}
			idx := first + 1 + uint64(rng.IntN(int(last-first+1)))
			ok(t, after.Compact(idx-1))
			err = e.Group(g).TruncatePrefix(idx)
		case op < 85:
			idx := last + uint64(rng.IntN(3))
			ok(t, after.ApplySnapshot(raftpb.SnapshotMeta{Index: idx, Term: term}))
			err = e.Group(g).Reset(idx, term)
		default:
			after = before
			err = e.GC()
		}
		if err == nil {
			models[g] = after
			continue
		}
		// The process died in that write: crash and recover.
		crashes++
		if rng.IntN(2) == 0 {
			fs.CrashKeepPartial(rng)
		} else {
			fs.Crash()
		}
		e.Close()
		countdown.Store(-1)
		e, err = Open(fs, "/d", opts)
		if err != nil {
			t.Fatalf("seed %d step %d: reopen: %v", seed, step, err)
		}
		for id, m := range models {
			cands := []*storage.MemoryStorage{m}
			if id == g {
				cands = append(cands, after)
			}
			if i := matchAny(e.Group(id), cands); i < 0 {
				t.Fatalf("seed %d step %d: group %d matches neither the state before nor after the write in flight", seed, step, id)
			} else {
				models[id] = cands[i]
			}
		}
		countdown.Store(1 + rng.Int64N(200))
	}
	e.Close()
	if crashes < 3 {
		t.Fatalf("seed %d: only %d crashes", seed, crashes)
	}
}

// matchAny returns the index of the candidate gl equals exactly (bounds,
// terms, entries), or -1.
func matchAny(gl *GroupLog, cands []*storage.MemoryStorage) int {
	for i, m := range cands {
		if same(gl, m) {
			return i
		}
	}
	return -1
}

func same(gl *GroupLog, m *storage.MemoryStorage) bool {
	f1, _ := gl.FirstIndex()
	l1, _ := gl.LastIndex()
	f2, _ := m.FirstIndex()
	l2, _ := m.LastIndex()
	if f1 != f2 || l1 != l2 {
		return false
	}
	t1, err1 := gl.Term(f1 - 1)
	t2, _ := m.Term(f2 - 1)
	if err1 != nil || t1 != t2 {
		return false
	}
	if l1 < f1 {
		return true
	}
	a, err := gl.Entries(f1, l1+1, 1<<40)
	b, _ := m.Entries(f2, l2+1, 1<<40)
	if err != nil || len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameEntry(a[i], b[i]) {
			return false
		}
	}
	return true
}

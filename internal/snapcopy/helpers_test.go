package snapcopy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"path"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
	"github.com/raftkit/raftkit/storage/vfs"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/memnet"
)

const testGroup = 7

// testSource serves the snapshots of one FileSnapshots as testGroup's.
type testSource struct{ snaps *storage.FileSnapshots }

func (s testSource) Latest(group uint64) (storage.SnapshotReader, vfs.FS, error) {
	if group != testGroup {
		return nil, nil, errors.New("unknown group")
	}
	r, err := s.snaps.Latest()
	return r, s.snaps.FS(), err
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// commitSnapshot commits a snapshot at (index, term) holding files.
func commitSnapshot(t testing.TB, snaps *storage.FileSnapshots, index, term uint64, files map[string][]byte) {
	t.Helper()
	w, err := snaps.Create(raftpb.SnapshotMeta{Index: index, Term: term})
	if err != nil {
		t.Fatal(err)
	}
	fsys := snaps.FS()
	for name, data := range files {
		p := path.Join(w.Dir(), name)
		if err := fsys.MkdirAll(path.Dir(p)); err != nil {
			t.Fatal(err)
		}
		f, err := fsys.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// randomBytes returns n bytes from a source seeded with seed.
func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	s[0] = byte(seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// testFiles is a snapshot's worth of files for chunk size cs: empty, one
// and cs-1 bytes, exactly cs and cs+1, several chunks, in subdirectories.
func testFiles(cs int) map[string][]byte {
	return map[string][]byte{
		"empty":              nil,
		"one":                randomBytes(1, 1),
		"short":              randomBytes(2, cs-1),
		"exact":              randomBytes(3, cs),
		"exact-plus-one":     randomBytes(4, cs+1),
		"dir/sub/multi":      randomBytes(5, 3*cs+cs/2),
		"dir/sub/empty-too":  nil,
		"dir/four-chunks":    randomBytes(6, 4*cs),
		"other/x..not-a-dot": randomBytes(7, 10),
	}
}

func totalSize(files map[string][]byte) (n int64) {
	for _, b := range files {
		n += int64(len(b))
	}
	return n
}

// env is a source host on a memnet network and a destination storage.
type env struct {
	t     testing.TB
	net   *memnet.Network
	ep    *memnet.Endpoint
	src   *storage.MemorySnapshots
	srv   *Server
	dst   *storage.FileSnapshots
	clock *fakeClock
}

const srcAddr = "source"

type nopHandler struct{}

func (nopHandler) HandleRaft(uint64, *raftpb.Message) error { return nil }

// newEnv starts a server on a fake clock for a fresh MemorySnapshots.
func newEnv(t testing.TB, opts ServerOptions) *env {
	t.Helper()
	e := &env{t: t, net: memnet.New(1), src: storage.NewMemorySnapshots(), clock: newFakeClock()}
	if opts.Now == nil {
		opts.Now = e.clock.Now
	}
	e.srv = NewServer(testSource{e.src.FileSnapshots}, opts)
	ep, err := e.net.Listen(srcAddr, nopHandler{})
	if err != nil {
		t.Fatal(err)
	}
	e.ep = ep
	ep.RegisterService(Service, e.srv.Handle)
	dst, err := storage.OpenFileSnapshots(vfs.NewMemFS(), "/dst")
	if err != nil {
		t.Fatal(err)
	}
	e.dst = dst
	t.Cleanup(func() {
		e.net.Close()
		if err := e.srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// copyTo copies (index, term) through c into a new writer of e.dst and
// returns the writer, still to commit or abort.
func (e *env) copyTo(ctx context.Context, c Caller, index, term uint64, opts CopyOptions) (storage.SnapshotWriter, CopyStats, error) {
	e.t.Helper()
	w, err := e.dst.Create(raftpb.SnapshotMeta{Index: index, Term: term})
	if err != nil {
		e.t.Fatal(err)
	}
	st, err := Copy(ctx, c, srcAddr, testGroup, index, term, e.dst.FS(), w.Dir(), opts)
	return w, st, err
}

// checkCopied commits w and checks that its files are exactly want.
func (e *env) checkCopied(w storage.SnapshotWriter, want map[string][]byte) {
	e.t.Helper()
	if err := w.Commit(); err != nil {
		e.t.Fatal(err)
	}
	r, err := e.dst.Latest()
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Close()
	checkFiles(e.t, e.dst.FS(), r, want)
}

// checkFiles checks that r holds exactly the files want, byte for byte.
func checkFiles(t testing.TB, fsys vfs.FS, r storage.SnapshotReader, want map[string][]byte) {
	t.Helper()
	if err := storage.VerifyFiles(fsys, r); err != nil {
		t.Fatal(err)
	}
	var got, names []string
	for _, f := range r.Files() {
		got = append(got, f.Name)
		data := readFile(t, fsys, path.Join(r.Dir(), f.Name))
		if !bytes.Equal(data, want[f.Name]) {
			t.Errorf("%s: %d bytes differ from the %d of the source", f.Name, len(data), len(want[f.Name]))
		}
	}
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	if !equalStrings(got, names) {
		t.Errorf("copied files %q, want %q", got, names)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func readFile(t testing.TB, fsys vfs.FS, p string) []byte {
	t.Helper()
	f, err := fsys.Open(p)
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

// callerFunc adapts a function to Caller.
type callerFunc func(ctx context.Context, addr, service string, group uint64, req []byte) ([]byte, error)

func (f callerFunc) Call(ctx context.Context, addr, service string, group uint64, req []byte) ([]byte, error) {
	return f(ctx, addr, service, group, req)
}

// isChunk reports whether req is a chunk request, and its file and offset.
func isChunk(req []byte) (name string, off uint64, ok bool) {
	r, err := decodeRequest(req)
	return r.name, r.offset, err == nil && r.kind == kindChunk
}

// wireCode returns the code of a *transport.RemoteError or *wireError in
// err's chain, or -1.
func wireCode(err error) int {
	var re *transport.RemoteError
	var we *wireError
	switch {
	case errors.As(err, &re):
		return int(re.Code)
	case errors.As(err, &we):
		return int(we.code)
	}
	return -1
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func raftMeta(index, term uint64) raftpb.SnapshotMeta {
	return raftpb.SnapshotMeta{Index: index, Term: term}
}

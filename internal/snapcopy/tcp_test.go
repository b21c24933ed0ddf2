package snapcopy

import (
	"errors"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/storage"
	"github.com/raftkit/raftkit/storage/vfs"
	"github.com/raftkit/raftkit/transport/tcp"
)

// tcpHost is a snapshot storage on vfs.OS served over loopback TCP.
type tcpHost struct {
	snaps *storage.FileSnapshots
	srv   *Server
	tr    *tcp.Transport
}

func newTCPHost(t testing.TB, opts ServerOptions) *tcpHost {
	t.Helper()
	snaps, err := storage.OpenFileSnapshots(vfs.OS{}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := &tcpHost{snaps: snaps, srv: NewServer(testSource{snaps}, opts)}
	h.tr, err = tcp.New(tcp.Options{Addr: "127.0.0.1:0"}, nopHandler{})
	if err != nil {
		t.Fatal(err)
	}
	h.tr.RegisterService(Service, h.srv.Handle)
	t.Cleanup(func() {
		h.tr.Close()
		if err := h.srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return h
}

func newTCPClient(t testing.TB) *tcp.Client {
	c := tcp.NewClient(tcp.ClientOptions{})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCopyOverTCP(t *testing.T) {
	testutil.CheckLeaks(t)
	src := newTCPHost(t, ServerOptions{})
	files := testFiles(defaultChunkSize)
	commitSnapshot(t, src.snaps, 10, 2, files)
	dst, err := storage.OpenFileSnapshots(vfs.OS{}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := newTCPClient(t)

	w, err := dst.Create(raftMeta(10, 2))
	if err != nil {
		t.Fatal(err)
	}
	st, err := Copy(ctxTimeout(t, 60*time.Second), c, src.tr.Addr(), testGroup, 10, 2, dst.FS(), w.Dir(), CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes != totalSize(files) || st.Files != len(files) {
		t.Errorf("stats %+v", st)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	r, err := dst.Latest()
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dst.FS(), r, files)
	r.Close()

	// ErrSnapshotGone survives TCP.
	w, err = dst.Create(raftMeta(11, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	_, err = Copy(ctxTimeout(t, 60*time.Second), c, src.tr.Addr(), testGroup, 10, 1, dst.FS(), w.Dir(), CopyOptions{})
	if !errors.Is(err, ErrSnapshotGone) {
		t.Fatalf("copy of a snapshot the source lacks: %v, want ErrSnapshotGone", err)
	}
}

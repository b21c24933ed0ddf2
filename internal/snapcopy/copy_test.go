package snapcopy

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/storage"
	"github.com/raftkit/raftkit/transport"
)

const testChunk = 4096

var smallChunks = CopyOptions{ChunkSize: testChunk, Window: 3, RetryBase: time.Millisecond, RetryMax: 4 * time.Millisecond}

func chunksOf(files map[string][]byte, cs int) (n int) {
	for _, b := range files {
		n += (len(b) + cs - 1) / cs
	}
	return n
}

func TestCopyMultiFileSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts CopyOptions
		cs   int
	}{
		{"small chunks", smallChunks, testChunk},
		{"defaults", CopyOptions{}, defaultChunkSize},
		{"window 1", CopyOptions{ChunkSize: testChunk, Window: 1}, testChunk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			e := newEnv(t, ServerOptions{})
			files := testFiles(tc.cs)
			commitSnapshot(t, e.src.FileSnapshots, 10, 2, files)
			w, st, err := e.copyTo(ctxTimeout(t, 30*time.Second), e.net, 10, 2, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			e.checkCopied(w, files)
			want := CopyStats{Files: len(files), Bytes: totalSize(files), Chunks: chunksOf(files, tc.cs)}
			verified := st.Verified
			st.Verified = nil
			if !reflect.DeepEqual(st, want) {
				t.Errorf("stats %+v, want %+v", st, want)
			}
			src, err := e.src.Latest()
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if !slices.Equal(verified, src.Files()) {
				t.Errorf("verified %+v, want the source's manifest %+v", verified, src.Files())
			}
		})
	}
}

func TestCopyConcurrentCopiesShareASession(t *testing.T) {
	e := newEnv(t, ServerOptions{})
	files := testFiles(testChunk)
	commitSnapshot(t, e.src.FileSnapshots, 10, 2, files)
	var wg sync.WaitGroup
	writers := make([]storage.SnapshotWriter, 3)
	dirs := make([]string, 3)
	for i := range writers {
		w, err := e.dst.Create(raftMeta(10+uint64(i), 2))
		if err != nil {
			t.Fatal(err)
		}
		writers[i], dirs[i] = w, w.Dir()
		wg.Go(func() {
			if _, err := Copy(ctxTimeout(t, 30*time.Second), e.net, srcAddr, testGroup, 10, 2, e.dst.FS(), dirs[i], smallChunks); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, w := range writers {
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	r, err := e.dst.Latest()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkFiles(t, e.dst.FS(), r, files)
	if n := len(e.srv.sessions); n != 1 {
		t.Errorf("%d sessions for one snapshot, want 1", n)
	}
}

func TestCopyGoneWhenTheSourceMovedOn(t *testing.T) {
	e := newEnv(t, ServerOptions{SessionIdle: time.Minute})
	files := testFiles(testChunk)
	commitSnapshot(t, e.src.FileSnapshots, 10, 2, files)

	t.Run("at the manifest", func(t *testing.T) {
		w, _, err := e.copyTo(ctxTimeout(t, 10*time.Second), e.net, 9, 2, smallChunks)
		w.Abort()
		if !errors.Is(err, ErrSnapshotGone) {
			t.Fatalf("copy of an older snapshot: %v, want ErrSnapshotGone", err)
		}
		w, _, err = e.copyTo(ctxTimeout(t, 10*time.Second), e.net, 10, 1, smallChunks)
		w.Abort()
		if !errors.Is(err, ErrSnapshotGone) {
			t.Fatalf("copy of another term's snapshot: %v, want ErrSnapshotGone", err)
		}
	})

	t.Run("mid-copy", func(t *testing.T) {
		// The copy stalls after a few chunks, long enough for its session
		// to expire while the source commits a newer snapshot.
		var calls atomic.Int32
		stalled, resume := make(chan struct{}), make(chan struct{})
		c := callerFunc(func(ctx context.Context, addr, svc string, g uint64, req []byte) ([]byte, error) {
			if _, _, ok := isChunk(req); ok && calls.Add(1) == 4 {
				close(stalled)
				<-resume
			}
			return e.net.Call(ctx, addr, svc, g, req)
		})
		w, err := e.dst.Create(raftMeta(10, 2))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		done := make(chan error, 1)
		go func() {
			_, err := Copy(ctxTimeout(t, 30*time.Second), c, srcAddr, testGroup, 10, 2, e.dst.FS(), w.Dir(),
				CopyOptions{ChunkSize: testChunk, Window: 1})
			done <- err
		}()
		<-stalled
		commitSnapshot(t, e.src.FileSnapshots, 20, 2, map[string][]byte{"new": []byte("newer")})
		if err := e.src.Delete(10); !errors.Is(err, storage.ErrSnapshotInUse) {
			t.Fatalf("delete of the snapshot being copied: %v, want ErrSnapshotInUse", err)
		}
		e.clock.Advance(2 * time.Minute)
		close(resume)
		if err := <-done; !errors.Is(err, ErrSnapshotGone) {
			t.Fatalf("copy: %v, want ErrSnapshotGone", err)
		}
		if err := e.src.Delete(10); err != nil {
			t.Fatalf("delete after the expired session: %v", err)
		}
	})

	t.Run("no snapshot", func(t *testing.T) {
		e := newEnv(t, ServerOptions{})
		w, _, err := e.copyTo(ctxTimeout(t, 10*time.Second), e.net, 9, 2, smallChunks)
		w.Abort()
		if !errors.Is(err, ErrSnapshotGone) {
			t.Fatalf("copy from an empty source: %v, want ErrSnapshotGone", err)
		}
	})
}

func TestCopyPinnedSessionOutlivesANewerSnapshot(t *testing.T) {
	e := newEnv(t, ServerOptions{})
	files := testFiles(testChunk)
	commitSnapshot(t, e.src.FileSnapshots, 10, 2, files)
	var once sync.Once
	c := callerFunc(func(ctx context.Context, addr, svc string, g uint64, req []byte) ([]byte, error) {
		resp, err := e.net.Call(ctx, addr, svc, g, req)
		if _, _, ok := isChunk(req); ok {
			once.Do(func() { commitSnapshot(t, e.src.FileSnapshots, 20, 3, map[string][]byte{"n": nil}) })
		}
		return resp, err
	})
	w, _, err := e.copyTo(ctxTimeout(t, 30*time.Second), c, 10, 2, smallChunks)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	r, err := e.dst.Latest()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkFiles(t, e.dst.FS(), r, files)
}

// flakyCaller fails every nth call: before it reaches the server for odd
// failures, after (the response is lost) for even ones. It records the
// chunks whose responses were delivered.
type flakyCaller struct {
	next  Caller
	every int32

	calls, fails atomic.Int32
	mu           sync.Mutex
	delivered    map[string]int // "name@offset" → deliveries
}

func (f *flakyCaller) Call(ctx context.Context, addr, svc string, g uint64, req []byte) ([]byte, error) {
	if f.calls.Add(1)%f.every == 0 {
		if f.fails.Add(1)%2 == 1 {
			return nil, fmt.Errorf("%w: injected", transport.ErrUnreachable)
		}
		_, _ = f.next.Call(ctx, addr, svc, g, req)
		return nil, fmt.Errorf("%w: injected", transport.ErrConnectionLost)
	}
	resp, err := f.next.Call(ctx, addr, svc, g, req)
	if name, off, ok := isChunk(req); ok && err == nil {
		f.mu.Lock()
		f.delivered[fmt.Sprintf("%s@%d", name, off)]++
		f.mu.Unlock()
	}
	return resp, err
}

func TestCopyResumesAfterFailedCalls(t *testing.T) {
	testutil.CheckLeaks(t)
	e := newEnv(t, ServerOptions{})
	files := testFiles(testChunk)
	commitSnapshot(t, e.src.FileSnapshots, 10, 2, files)
	for _, every := range []int32{1000, 2, 3} { // 1000: the manifest call only succeeds at once
		c := &flakyCaller{next: e.net, every: every, delivered: map[string]int{}}
		if every == 1000 {
			c.calls.Store(every - 1) // fail the first call, the manifest
		}
		w, st, err := e.copyTo(ctxTimeout(t, 30*time.Second), c, 10, 2, smallChunks)
		if err != nil {
			t.Fatal(err)
		}
		e.checkCopied(w, files)
		if st.Retries == 0 || st.Retries != int(c.fails.Load()) {
			t.Errorf("every %d: %d retries, %d injected failures", every, st.Retries, c.fails.Load())
		}
		if st.RefetchedFiles != 0 || st.CorruptChunks != 0 || st.Bytes != totalSize(files) {
			t.Errorf("every %d: stats %+v: data fetched again", every, st)
		}
		for chunk, n := range c.delivered {
			if n != 1 {
				t.Errorf("every %d: chunk %s delivered %d times", every, chunk, n)
			}
		}
		if len(c.delivered) != chunksOf(files, testChunk) {
			t.Errorf("every %d: %d chunks delivered, want %d", every, len(c.delivered), chunksOf(files, testChunk))
		}
		e.dst.Delete(10)
	}
}

// corruptingCaller damages chunk responses chosen by pick: it flips a bit
// of the data and, if consistent, recomputes the chunk's CRC32C so that
// only the whole-file check can notice.
type corruptingCaller struct {
	next       Caller
	pick       func(name string, off uint64, n int32) bool
	consistent bool
	chunks     atomic.Int32
}

func (c *corruptingCaller) Call(ctx context.Context, addr, svc string, g uint64, req []byte) ([]byte, error) {
	resp, err := c.next.Call(ctx, addr, svc, g, req)
	name, off, ok := isChunk(req)
	if err != nil || !ok || len(resp) <= chunkHeaderSize || !c.pick(name, off, c.chunks.Add(1)) {
		return resp, err
	}
	resp[len(resp)/2+2] ^= 0x10
	if c.consistent {
		crc := crc32.Checksum(resp[chunkHeaderSize:], castagnoli)
		resp[1], resp[2], resp[3], resp[4] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	}
	return resp, nil
}

func TestCopyRefetchesCorruptChunks(t *testing.T) {
	e := newEnv(t, ServerOptions{})
	files := testFiles(testChunk)
	commitSnapshot(t, e.src.FileSnapshots, 10, 2, files)
	c := &corruptingCaller{next: e.net, pick: func(_ string, _ uint64, n int32) bool { return n%4 == 1 }}
	w, st, err := e.copyTo(ctxTimeout(t, 30*time.Second), c, 10, 2, smallChunks)
	if err != nil {
		t.Fatal(err)
	}
	e.checkCopied(w, files)
	if st.CorruptChunks == 0 || st.RefetchedFiles != 0 || st.Chunks != chunksOf(files, testChunk) {
		t.Errorf("stats %+v: want corrupt chunks, no refetched file, every chunk once", st)
	}

	// A chunk corrupt every time fails the copy.
	e.dst.Delete(10)
	c = &corruptingCaller{next: e.net, pick: func(name string, _ uint64, _ int32) bool { return name == "exact" }}
	w, st, err = e.copyTo(ctxTimeout(t, 30*time.Second), c, 10, 2, smallChunks)
	w.Abort()
	if err == nil || errors.Is(err, ErrSnapshotGone) || st.CorruptChunks < maxChunkTries {
		t.Fatalf("copy with a chunk always corrupt: %v, stats %+v", err, st)
	}
}

func TestCopyRefetchesAFileFailingItsChecksum(t *testing.T) {
	e := newEnv(t, ServerOptions{})
	files := testFiles(testChunk)
	commitSnapshot(t, e.src.FileSnapshots, 10, 2, files)
	var once atomic.Bool
	c := &corruptingCaller{next: e.net, consistent: true, pick: func(name string, off uint64, _ int32) bool {
		return name == "dir/sub/multi" && off == 2*testChunk && once.CompareAndSwap(false, true)
	}}
	w, st, err := e.copyTo(ctxTimeout(t, 30*time.Second), c, 10, 2, smallChunks)
	if err != nil {
		t.Fatal(err)
	}
	e.checkCopied(w, files)
	multi := int64(len(files["dir/sub/multi"]))
	if st.RefetchedFiles != 1 || st.CorruptChunks != 0 || st.Bytes != totalSize(files)+multi {
		t.Errorf("stats %+v: want the one file fetched twice", st)
	}

	// A source whose file never matches its manifest fails the copy.
	e.dst.Delete(10)
	c = &corruptingCaller{next: e.net, consistent: true, pick: func(name string, _ uint64, _ int32) bool { return name == "one" }}
	w, st, err = e.copyTo(ctxTimeout(t, 30*time.Second), c, 10, 2, smallChunks)
	w.Abort()
	if err == nil || errors.Is(err, ErrSnapshotGone) || st.RefetchedFiles != maxFileFetches-1 {
		t.Fatalf("copy of a file never matching: %v, stats %+v", err, st)
	}
}

func TestCopyCancel(t *testing.T) {
	testutil.CheckLeaks(t)
	e := newEnv(t, ServerOptions{})
	commitSnapshot(t, e.src.FileSnapshots, 10, 2, testFiles(testChunk))
	for _, tc := range []struct {
		name string
		c    func(started func()) Caller
	}{
		{"in a call", func(started func()) Caller {
			return callerFunc(func(ctx context.Context, addr, svc string, g uint64, req []byte) ([]byte, error) {
				if _, _, ok := isChunk(req); ok {
					started()
					<-ctx.Done() // a server that never answers
					return nil, ctx.Err()
				}
				return e.net.Call(ctx, addr, svc, g, req)
			})
		}},
		{"in a backoff", func(started func()) Caller {
			return callerFunc(func(context.Context, string, string, uint64, []byte) ([]byte, error) {
				started()
				return nil, transport.ErrUnreachable
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			started := make(chan struct{})
			var once sync.Once
			c := tc.c(func() { once.Do(func() { close(started) }) })
			w, err := e.dst.Create(raftMeta(10, 2))
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			done := make(chan error, 1)
			go func() {
				_, err := Copy(ctx, c, srcAddr, testGroup, 10, 2, e.dst.FS(), w.Dir(),
					CopyOptions{ChunkSize: testChunk, RetryBase: time.Hour})
				done <- err
			}()
			<-started
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("cancelled copy: %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("cancelled copy did not return")
			}
		})
	}
}

func TestCopyRejectsBadManifestsAndOptions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []storage.SnapshotFile
	}{
		{"escape", []storage.SnapshotFile{{Name: "../x", Size: 1}}},
		{"absolute", []storage.SnapshotFile{{Name: "/x", Size: 1}}},
		{"dot", []storage.SnapshotFile{{Name: ".", Size: 1}}},
		{"unclean", []storage.SnapshotFile{{Name: "a/../b", Size: 1}}},
		{"twice", []storage.SnapshotFile{{Name: "a", Size: 1}, {Name: "a", Size: 1}}},
		{"file and dir", []storage.SnapshotFile{{Name: "a", Size: 1}, {Name: "a/b", Size: 1}}},
		{"negative size", []storage.SnapshotFile{{Name: "a", Size: -1}}},
		{"empty with a crc", []storage.SnapshotFile{{Name: "a", CRC32C: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, ServerOptions{})
			c := callerFunc(func(context.Context, string, string, uint64, []byte) ([]byte, error) {
				return appendManifest(nil, tc.files), nil
			})
			w, _, err := e.copyTo(ctxTimeout(t, 10*time.Second), c, 10, 2, smallChunks)
			if err == nil {
				t.Fatal("copy with a bad manifest succeeded")
			}
			names, _ := e.dst.FS().ReadDir(w.Dir())
			if len(names) != 0 {
				t.Errorf("files written: %q", names)
			}
			if names, _ := e.dst.FS().ReadDir("/dst"); len(names) != 1 {
				t.Errorf("names beside the writer's directory: %q", names)
			}
		})
	}
	for _, o := range []CopyOptions{{ChunkSize: -1}, {ChunkSize: maxChunkSize + 1}, {Window: -1}, {Window: maxWindow + 1}, {RetryBase: -1}} {
		if _, err := Copy(context.Background(), nil, "x", 1, 1, 1, nil, "/", o); err == nil {
			t.Errorf("Copy with options %+v succeeded", o)
		}
	}
}

func TestCopyFailsOnAShortSourceFile(t *testing.T) {
	e := newEnv(t, ServerOptions{})
	files := testFiles(testChunk)
	commitSnapshot(t, e.src.FileSnapshots, 10, 2, files)
	r, err := e.src.Latest()
	if err != nil {
		t.Fatal(err)
	}
	f, err := e.src.FS().OpenRW(r.Dir() + "/dir/four-chunks")
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(testChunk); err != nil {
		t.Fatal(err)
	}
	f.Close()
	w, st, err := e.copyTo(ctxTimeout(t, 10*time.Second), e.net, 10, 2, smallChunks)
	w.Abort()
	if err == nil || st.Retries != 0 {
		t.Fatalf("copy of a truncated source file: %v, stats %+v; want a failure without retries", err, st)
	}
}

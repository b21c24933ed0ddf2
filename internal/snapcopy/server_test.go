package snapcopy

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
	"github.com/raftkit/raftkit/storage"
)

func chunkReq(index, term uint64, name string, off uint64, n uint32) []byte {
	return appendChunkRequest(nil, index, term, name, int64(off), int(n))
}

func TestHandleRejectsMalformedRequests(t *testing.T) {
	e := newEnv(t, ServerOptions{})
	commitSnapshot(t, e.src.FileSnapshots, 10, 2, map[string][]byte{"f": randomBytes(1, 100), "d/g": nil})
	valid := chunkReq(10, 2, "f", 0, 100)
	for _, tc := range []struct {
		name string
		req  []byte
	}{
		{"empty", nil},
		{"unknown kind", []byte{9, 0, 0}},
		{"truncated manifest", appendManifestRequest(nil, 10, 2)[:16]},
		{"manifest with trailing bytes", append(appendManifestRequest(nil, 10, 2), 0)},
		{"truncated chunk", valid[:len(valid)-1]},
		{"chunk with trailing bytes", append(valid, 'x')},
		{"dot-dot", chunkReq(10, 2, "../f", 0, 1)},
		{"dot-dot alone", chunkReq(10, 2, "..", 0, 1)},
		{"inner dot-dot", chunkReq(10, 2, "d/../f", 0, 1)},
		{"absolute", chunkReq(10, 2, "/f", 0, 1)},
		{"empty name", chunkReq(10, 2, "", 0, 1)},
		{"dot", chunkReq(10, 2, ".", 0, 1)},
		{"NUL", chunkReq(10, 2, "f\x00", 0, 1)},
		{"unknown file", chunkReq(10, 2, "nope", 0, 1)},
		{"a directory", chunkReq(10, 2, "d", 0, 1)},
		{"the manifest file", chunkReq(10, 2, "__meta", 0, 1)},
		{"offset beyond", chunkReq(10, 2, "f", 101, 0)},
		{"length beyond", chunkReq(10, 2, "f", 1, 100)},
		{"overflowing range", chunkReq(10, 2, "f", math.MaxUint64, 2)},
		{"huge offset", chunkReq(10, 2, "f", math.MaxInt64+1, 0)},
		{"chunk over the limit", chunkReq(10, 2, "f", 0, maxChunkSize+1)},
		{"huge name length", append(valid[:len(valid)-2], 0xff, 0xff, 0xff, 0xff, 0x0f)},
		{"non-minimal name length", append(append(valid[:len(valid)-2:len(valid)-2], 0x81, 0x00), 'f')},
		{"empty file beyond", chunkReq(10, 2, "d/g", 0, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.srv.Handle(context.Background(), testGroup, tc.req)
			if err == nil || wireCode(err) != int(codeInvalid) {
				t.Fatalf("Handle = %d bytes, %v; want an invalid-request error", len(resp), err)
			}
		})
	}
	// The code crosses the wire, and valid requests still work.
	_, err := e.net.Call(context.Background(), srcAddr, Service, testGroup, chunkReq(10, 2, "../f", 0, 1))
	if wireCode(err) != int(codeInvalid) {
		t.Fatalf("remote invalid request: %v, want code %d", err, codeInvalid)
	}
	resp, err := e.srv.Handle(context.Background(), testGroup, valid)
	if data, _, derr := decodeChunk(resp, 100); err != nil || derr != nil || len(data) != 100 {
		t.Fatalf("valid chunk request: %v, %v", err, derr)
	}
	if _, err := e.srv.Handle(context.Background(), 99, appendManifestRequest(nil, 10, 2)); err == nil {
		t.Fatal("request for a group the source lacks succeeded")
	}
}

func TestServerThrottle(t *testing.T) {
	const rate = 1 << 20
	e := newEnv(t, ServerOptions{MaxBytesPerSecond: rate})
	commitSnapshot(t, e.src.FileSnapshots, 10, 2, map[string][]byte{"f": randomBytes(1, 1<<20)})
	var slept time.Duration
	e.srv.sleep = func(_ context.Context, d time.Duration) error {
		slept += d
		e.clock.Advance(d)
		return nil
	}
	const chunk, n = 64 << 10, 48
	for i := range n {
		if _, err := e.srv.Handle(context.Background(), testGroup, chunkReq(10, 2, "f", uint64(i*chunk%(1<<20)), chunk)); err != nil {
			t.Fatal(err)
		}
	}
	// The bucket starts full: what goes beyond the burst waits at the rate.
	burst := float64(rate) * burstTime.Seconds()
	want := time.Duration((n*chunk - burst) / rate * float64(time.Second))
	if d := slept - want; d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("slept %v for %d bytes at %d B/s, want %v", slept, n*chunk, rate, want)
	}
	// Time passing refills the bucket up to the burst only.
	slept = 0
	e.clock.Advance(time.Hour)
	if _, err := e.srv.Handle(context.Background(), testGroup, chunkReq(10, 2, "f", 0, chunk)); err != nil || slept != 0 {
		t.Fatalf("chunk within the burst: %v, slept %v", err, slept)
	}
	if _, err := e.srv.Handle(context.Background(), testGroup, chunkReq(10, 2, "f", 0, uint32(burst))); err != nil || slept == 0 {
		t.Fatalf("chunk beyond the refilled burst: %v, slept %v", err, slept)
	}
	// Manifests are not throttled.
	slept = 0
	if _, err := e.srv.Handle(context.Background(), testGroup, appendManifestRequest(nil, 10, 2)); err != nil || slept != 0 {
		t.Fatalf("manifest: %v, slept %v", err, slept)
	}
}

func TestBucketBound(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBucket(1000, now)
	// Over any run, bytes released ≤ burst + rate·elapsed.
	var waited time.Duration
	for i := range 100 {
		waited += b.reserve(now.Add(waited), 37+i)
	}
	released := 0
	for i := range 100 {
		released += 37 + i
	}
	if limit := 100 + 1000*waited.Seconds(); float64(released) > limit+1e-6 {
		t.Fatalf("released %d bytes in %v, limit %v", released, waited, limit)
	}
	b.refund(1 << 30)
	if b.tokens != b.burst {
		t.Fatalf("refund overfilled the bucket: %v > %v", b.tokens, b.burst)
	}
}

func TestThrottleWaitEndsWithCtxOrClose(t *testing.T) {
	testutil.CheckLeaks(t)
	e := newEnv(t, ServerOptions{MaxBytesPerSecond: 1, Now: time.Now}) // real timers: a wait of ~days
	commitSnapshot(t, e.src.FileSnapshots, 10, 2, map[string][]byte{"f": randomBytes(1, 1<<16)})
	req := chunkReq(10, 2, "f", 0, 1<<16)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := e.srv.Handle(ctx, testGroup, req); done <- err }()
	testutil.WaitFor(t, 10*time.Second, "a throttled request", func() bool { return e.srv.bucket.debt() > 0 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("throttled request after cancel: %v", err)
	}
	if d := e.srv.bucket.debt(); d > 0 {
		t.Fatalf("debt %v after the cancelled wait, want it refunded", d)
	}

	go func() { _, err := e.srv.Handle(context.Background(), testGroup, req); done <- err }()
	testutil.WaitFor(t, 10*time.Second, "a throttled request", func() bool { return e.srv.bucket.debt() > 0 })
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; wireCode(err) != int(codeUnavailable) {
		t.Fatalf("throttled request at Close: %v", err)
	}
}

func TestCloseReleasesReaders(t *testing.T) {
	testutil.CheckLeaks(t)
	e := newEnv(t, ServerOptions{})
	files := testFiles(testChunk)
	commitSnapshot(t, e.src.FileSnapshots, 10, 2, files)
	w, _, err := e.copyTo(ctxTimeout(t, 10*time.Second), e.net, 10, 2, smallChunks)
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if err := e.src.Delete(10); !errors.Is(err, storage.ErrSnapshotInUse) {
		t.Fatalf("delete of a snapshot a session pins: %v, want ErrSnapshotInUse", err)
	}
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := e.src.Delete(10); err != nil {
		t.Fatalf("delete after Close: %v", err)
	}
	if names, _ := e.src.FS().ReadDir("/snapshots"); len(names) != 0 {
		t.Fatalf("left in the snapshot storage: %q", names)
	}
	_, err = e.srv.Handle(context.Background(), testGroup, appendManifestRequest(nil, 10, 2))
	if wireCode(err) != int(codeUnavailable) {
		t.Fatalf("request after Close: %v", err)
	}
}

func TestIdleSessionsExpire(t *testing.T) {
	t.Run("lazily", func(t *testing.T) {
		e := newEnv(t, ServerOptions{SessionIdle: time.Minute})
		commitSnapshot(t, e.src.FileSnapshots, 10, 2, testFiles(testChunk))
		w, _, err := e.copyTo(ctxTimeout(t, 10*time.Second), e.net, 10, 2, smallChunks)
		if err != nil {
			t.Fatal(err)
		}
		w.Abort()
		e.clock.Advance(59 * time.Second)
		e.srv.Handle(context.Background(), testGroup, nil) // any request looks
		if err := e.src.Delete(10); !errors.Is(err, storage.ErrSnapshotInUse) {
			t.Fatalf("delete before the session expired: %v, want ErrSnapshotInUse", err)
		}
		e.clock.Advance(time.Second)
		e.srv.Handle(context.Background(), testGroup, nil)
		if err := e.src.Delete(10); err != nil {
			t.Fatalf("delete after the session expired: %v", err)
		}
	})
	t.Run("by the janitor", func(t *testing.T) {
		testutil.CheckLeaks(t)
		e := newEnv(t, ServerOptions{SessionIdle: 5 * time.Millisecond, Now: time.Now})
		commitSnapshot(t, e.src.FileSnapshots, 10, 2, testFiles(testChunk))
		if _, err := e.srv.Handle(context.Background(), testGroup, appendManifestRequest(nil, 10, 2)); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 10*time.Second, "the janitor to close the session", func() bool {
			return e.src.Delete(10) == nil
		})
		testutil.WaitFor(t, 10*time.Second, "the janitor to exit", func() bool {
			e.srv.mu.Lock()
			defer e.srv.mu.Unlock()
			return !e.srv.janitor
		})
	})
}

func TestChunkRequestsReopenSessions(t *testing.T) {
	// A server restart loses the sessions; chunk requests reopen them.
	e := newEnv(t, ServerOptions{})
	files := testFiles(testChunk)
	commitSnapshot(t, e.src.FileSnapshots, 10, 2, files)
	var once sync.Once
	c := callerFunc(func(ctx context.Context, addr, svc string, g uint64, req []byte) ([]byte, error) {
		if _, off, ok := isChunk(req); ok && off > 0 {
			once.Do(func() {
				old := e.srv
				e.srv = NewServer(testSource{e.src.FileSnapshots}, ServerOptions{Now: e.clock.Now})
				e.ep.RegisterService(Service, e.srv.Handle)
				if err := old.Close(); err != nil {
					t.Error(err)
				}
			})
		}
		return e.net.Call(ctx, addr, svc, g, req)
	})
	w, st, err := e.copyTo(ctxTimeout(t, 30*time.Second), c, 10, 2, CopyOptions{ChunkSize: testChunk, Window: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.checkCopied(w, files)
	if st.Bytes != totalSize(files) {
		t.Errorf("stats %+v: bytes fetched again", st)
	}
}

// debt returns how many bytes waiting reservations owe (for tests).
func (b *bucket) debt() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(-b.tokens, 0)
}

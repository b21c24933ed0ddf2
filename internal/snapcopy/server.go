package snapcopy

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"path"
	"sync"
	"time"

	"github.com/raftkit/raftkit/storage"
	"github.com/raftkit/raftkit/storage/vfs"
)

// Service is the transport service name the Server is registered under.
const Service = "raftkit.snapshot"

// Source opens a group's committed snapshots for serving. The runtime
// implements it.
type Source interface {
	// Latest returns a reader of the group's newest committed snapshot and
	// the FS its files are on, or an error
	// (storage.ErrSnapshotTemporarilyUnavailable when there is none).
	// Called concurrently, for any groups.
	Latest(group uint64) (storage.SnapshotReader, vfs.FS, error)
}

// defaultSessionIdle is ServerOptions.SessionIdle's default.
const defaultSessionIdle = 30 * time.Second

// ServerOptions configure a Server. Zero values mean the defaults.
type ServerOptions struct {
	// MaxBytesPerSecond throttles the chunk bytes served, summed over every
	// copy and group this server serves (one token bucket per server).
	// 0: unlimited.
	MaxBytesPerSecond int64
	// SessionIdle: a pinned snapshot reader with no request for this long
	// is closed. Default 30s.
	SessionIdle time.Duration
	Logger      *slog.Logger     // nil: discard
	Now         func() time.Time // nil: time.Now (for tests)
}

// Server serves the files of the snapshots a Source holds to Copy callers
// on other hosts.
//
// A session pins the reader of one snapshot, keyed by (group, index,
// term), from the first request for it until it has been idle for
// SessionIdle, and keeps its files open. Idle sessions are closed lazily
// by the requests that follow and by a janitor goroutine that runs only
// while sessions exist; Close stops it.
type Server struct {
	src    Source
	log    *slog.Logger
	now    func() time.Time
	idle   time.Duration
	bucket *bucket // nil: unlimited
	// sleep waits d for a throttled chunk; tests replace it to drive a
	// fake clock. It fails with ctx's error or errServerClosed.
	sleep func(ctx context.Context, d time.Duration) error

	done chan struct{}  // closed by Close
	wg   sync.WaitGroup // running Handles and the janitor

	mu       sync.Mutex
	closed   bool
	janitor  bool // a janitor goroutine runs
	sessions map[sessionKey]*session
}

type sessionKey struct{ group, index, term uint64 }

// session is a pinned snapshot. Its files and reader are immutable until
// it is closed, which happens only with no request using it (refs == 0)
// after it left Server.sessions.
type session struct {
	key   sessionKey
	r     storage.SnapshotReader
	fs    vfs.FS
	list  []storage.SnapshotFile
	files map[string]*servedFile

	// Guarded by Server.mu.
	refs     int       // requests using the session
	lastUsed time.Time // when the last of them ended
}

// servedFile is a file of a session, opened by its first chunk request.
type servedFile struct {
	info storage.SnapshotFile
	path string

	mu sync.Mutex
	f  vfs.File
}

// NewServer returns a Server of src's snapshots. It starts no goroutine.
func NewServer(src Source, opts ServerOptions) *Server {
	s := &Server{src: src, log: opts.Logger, now: opts.Now, idle: opts.SessionIdle,
		done: make(chan struct{}), sessions: make(map[sessionKey]*session)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.idle <= 0 {
		s.idle = defaultSessionIdle
	}
	if opts.MaxBytesPerSecond > 0 {
		s.bucket = newBucket(opts.MaxBytesPerSecond, s.now())
	}
	s.sleep = s.sleepTimer
	return s
}

// Handle is the transport.ServiceHandler to register under Service: it
// answers a manifest or chunk request for group. Errors: invalid requests
// (malformed, an unknown file, a range beyond it) carry code 201; a
// snapshot that is neither pinned nor the latest gives an error matching
// ErrSnapshotGone (code 200); after Close, code 202; ctx's error while a
// throttled chunk waits; the Source's and the file system's errors as they
// are.
//
// Safe for concurrent use; it blocks only on throttling (until ctx ends or
// Close) and on file reads.
func (s *Server) Handle(ctx context.Context, group uint64, req []byte) ([]byte, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errServerClosed
	}
	s.wg.Add(1) // under mu with closed unset: before Close's Wait
	expired := s.expireLocked(s.now())
	s.mu.Unlock()
	defer s.wg.Done()
	s.closeSessions(expired)

	r, err := decodeRequest(req)
	if err != nil {
		return nil, err
	}
	sess, err := s.acquire(sessionKey{group, r.index, r.term})
	if err != nil {
		return nil, err
	}
	defer s.release(sess)
	if r.kind == kindManifest {
		return appendManifest(nil, sess.list), nil
	}
	return s.serveChunk(ctx, sess, r)
}

// acquire returns the session of key, opening it if the snapshot is the
// source's latest, with a reference the caller must release.
func (s *Server) acquire(key sessionKey) (*session, error) {
	s.mu.Lock()
	sess := s.sessions[key]
	if sess != nil {
		sess.refs++
	}
	s.mu.Unlock()
	if sess != nil {
		return sess, nil
	}

	// Open outside the lock; a concurrent open of the same key loses below.
	r, fsys, err := s.src.Latest(key.group)
	if errors.Is(err, storage.ErrSnapshotTemporarilyUnavailable) {
		return nil, goneError("group %d has no snapshot", key.group)
	}
	if err != nil {
		return nil, fmt.Errorf("snapcopy: opening the latest snapshot of group %d: %w", key.group, err)
	}
	if m := r.Meta(); m.Index != key.index || m.Term != key.term {
		_ = r.Close()
		return nil, goneError("group %d: snapshot %d/%d is not the latest (%d/%d)",
			key.group, key.index, key.term, m.Index, m.Term)
	}
	sess = newSession(key, r, fsys)
	s.mu.Lock()
	if other := s.sessions[key]; other != nil {
		other.refs++
		s.mu.Unlock()
		s.closeSessions([]*session{sess})
		return other, nil
	}
	sess.refs = 1
	s.sessions[key] = sess
	if !s.janitor {
		s.janitor = true
		s.wg.Add(1) // Handle holds a count, so not before a Wait with none
		go s.runJanitor()
	}
	s.mu.Unlock()
	s.log.Debug("snapshot session opened", "group", key.group, "index", key.index, "term", key.term)
	return sess, nil
}

func newSession(key sessionKey, r storage.SnapshotReader, fsys vfs.FS) *session {
	sess := &session{key: key, r: r, fs: fsys, list: r.Files(), files: map[string]*servedFile{}}
	for _, f := range sess.list {
		sess.files[f.Name] = &servedFile{info: f, path: path.Join(r.Dir(), f.Name)}
	}
	return sess
}

// release drops a reference taken by acquire.
func (s *Server) release(sess *session) {
	now := s.now()
	s.mu.Lock()
	sess.refs--
	sess.lastUsed = now
	s.mu.Unlock()
}

// expireLocked removes the sessions unused for SessionIdle from the map
// and returns them for the caller to close outside the lock. Requires s.mu.
func (s *Server) expireLocked(now time.Time) []*session {
	var out []*session
	for k, sess := range s.sessions {
		if sess.refs == 0 && now.Sub(sess.lastUsed) >= s.idle {
			delete(s.sessions, k)
			out = append(out, sess)
		}
	}
	return out
}

// closeSessions closes sessions nobody uses, logging failures.
func (s *Server) closeSessions(list []*session) {
	for _, sess := range list {
		k := sess.key
		if err := sess.close(); err != nil {
			s.log.Warn("closing a snapshot session", "group", k.group, "index", k.index, "err", err)
		} else {
			s.log.Debug("snapshot session closed", "group", k.group, "index", k.index, "term", k.term)
		}
	}
}

// close closes the session's files and reader; nobody may use it.
func (sess *session) close() error {
	var errs []error
	for _, f := range sess.files {
		if f.f != nil {
			errs = append(errs, f.f.Close())
		}
	}
	errs = append(errs, sess.r.Close())
	return errors.Join(errs...)
}

// runJanitor closes idle sessions while any exist; it exits when none is
// left (acquire starts it again) or at Close.
func (s *Server) runJanitor() {
	defer s.wg.Done()
	t := time.NewTimer(s.idle / 2)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		s.mu.Lock()
		expired := s.expireLocked(s.now())
		empty := len(s.sessions) == 0
		if empty {
			s.janitor = false
		}
		s.mu.Unlock()
		s.closeSessions(expired)
		if empty {
			return
		}
		t.Reset(s.idle / 2)
	}
}

// serveChunk answers a chunk request: [kind][crc32c][data].
func (s *Server) serveChunk(ctx context.Context, sess *session, r request) ([]byte, error) {
	sf := sess.files[r.name]
	if sf == nil {
		return nil, invalidError("snapshot %d/%d of group %d has no file %q", r.index, r.term, sess.key.group, r.name)
	}
	size := uint64(sf.info.Size)
	if r.offset > size || uint64(r.length) > size-r.offset {
		return nil, invalidError("%d bytes at %d are beyond the end of %q (%d bytes)", r.length, r.offset, r.name, size)
	}
	if err := s.throttle(ctx, int(r.length)); err != nil {
		return nil, err
	}
	f, err := sf.open(sess.fs)
	if err != nil {
		return nil, err
	}
	resp := make([]byte, chunkHeaderSize+int(r.length))
	resp[0] = kindChunk
	data := resp[chunkHeaderSize:]
	if n, err := f.ReadAt(data, int64(r.offset)); n < len(data) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF // the file is shorter than its manifest says
		}
		return nil, fmt.Errorf("snapcopy: reading %s at %d: %w", sf.path, r.offset, err)
	}
	crc := crc32.Checksum(data, castagnoli)
	resp[1], resp[2], resp[3], resp[4] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	return resp, nil
}

// open returns the file, opening it on first use.
func (sf *servedFile) open(fsys vfs.FS) (vfs.File, error) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if sf.f == nil {
		f, err := fsys.Open(sf.path)
		if err != nil {
			return nil, fmt.Errorf("snapcopy: %w", err)
		}
		sf.f = f
	}
	return sf.f, nil
}

// throttle waits until the server's bucket lets n more bytes go.
func (s *Server) throttle(ctx context.Context, n int) error {
	if s.bucket == nil {
		return nil
	}
	d := s.bucket.reserve(s.now(), n)
	if d <= 0 {
		return nil
	}
	if err := s.sleep(ctx, d); err != nil {
		s.bucket.refund(n)
		return err
	}
	return nil
}

func (s *Server) sleepTimer(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return errServerClosed
	}
}

// Close closes every pinned reader and its files and stops the janitor;
// later requests fail with code 202. It waits for the requests in progress,
// ending their throttle waits at once, and returns the errors of closing
// the files and readers. Safe for concurrent use and to call more than
// once (later calls return nil at once).
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		list = append(list, sess)
	}
	clear(s.sessions)
	s.mu.Unlock()
	var errs []error
	for _, sess := range list {
		errs = append(errs, sess.close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("snapcopy: closing the server: %w", err)
	}
	return nil
}

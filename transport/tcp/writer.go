package tcp

import (
	"context"
	"io"
	"net"
	"sync"
	"time"
)

// maxSpare bounds the buffer a queue keeps for reuse between batches: a
// burst (a snapshot-sized append) should not pin its memory forever.
const maxSpare = 4 << 20

// batch is a queue of encoded frames. It is not synchronised: its owner
// guards it. Two buffers alternate, so that encoders append to one while the
// writer writes the other, and steady traffic allocates nothing.
type batch struct {
	buf    []byte
	frames int
	spare  []byte
}

func (b *batch) add(appendFrame func([]byte) []byte) {
	b.buf = appendFrame(b.buf)
	b.frames++
}

// take hands the queued frames to the writer and starts a new queue. An
// empty queue keeps its buffer: the writer drops what an empty take returns
// without recycling it, and swapping there would lose a grown buffer on
// every drain and make the next batch grow again from nothing.
func (b *batch) take() ([]byte, int) {
	if b.frames == 0 {
		return nil, 0
	}
	buf, n := b.buf, b.frames
	b.buf, b.frames, b.spare = b.spare[:0], 0, nil
	return buf, n
}

// recycle returns a written buffer for reuse.
func (b *batch) recycle(buf []byte) {
	if cap(buf) <= maxSpare && cap(buf) > cap(b.spare) {
		b.spare = buf[:0]
	}
}

// drop discards the queue and returns how many frames it held.
func (b *batch) drop() int {
	n := b.frames
	if cap(b.buf) > maxSpare {
		b.buf = nil
	}
	b.buf, b.frames = b.buf[:0], 0
	return n
}

// prepend puts one frame in front of the queue; it copies the queue, so it
// is for rare frames (the Hello of a new connection).
func (b *batch) prepend(f []byte) {
	nb := make([]byte, 0, len(f)+len(b.buf))
	nb = append(append(nb, f...), b.buf...)
	b.recycle(b.buf)
	b.buf = nb
	b.frames++
}

// writeBatch writes one batch with one Write call under a fresh deadline.
func writeBatch(c net.Conn, timeout time.Duration, buf []byte, frames int, st *counters) error {
	if err := c.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := c.Write(buf); err != nil {
		return err
	}
	if st != nil {
		st.writes.Add(1)
		st.framesOut.Add(uint64(frames))
		st.bytesOut.Add(uint64(len(buf)))
	}
	return nil
}

// signal wakes the goroutine waiting on ch without blocking; ch has room
// for one token, so wake-ups coalesce.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// closeOnDone closes c when ctx is done. The closing runs on a goroutine
// counted in wg, so a Close that waits on wg also waits for it. Call the
// returned stop once c is closed otherwise; it is idempotent only in effect
// on wg, so call it once.
func closeOnDone(ctx context.Context, wg *sync.WaitGroup, c io.Closer) (stop func()) {
	wg.Add(1)
	stopClose := context.AfterFunc(ctx, func() {
		defer wg.Done()
		c.Close()
	})
	return func() {
		if stopClose() {
			wg.Done()
		}
	}
}

// connWriter batches the frames of one established connection: callers
// enqueue, its run loop writes everything queued with one Write. Inbound
// connections use it for service responses, clients for requests.
type connWriter struct {
	conn    net.Conn
	timeout time.Duration
	stats   *counters // nil: not counted
	wake    chan struct{}

	mu      sync.Mutex
	q       batch
	stopped bool
}

func newConnWriter(c net.Conn, timeout time.Duration, st *counters) *connWriter {
	return &connWriter{conn: c, timeout: timeout, stats: st, wake: make(chan struct{}, 1)}
}

// enqueue appends one frame. It reports false once the writer has stopped,
// when the frame would never be written.
//
// Safe for concurrent use.
func (w *connWriter) enqueue(appendFrame func([]byte) []byte) bool {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return false
	}
	w.q.add(appendFrame)
	w.mu.Unlock()
	signal(w.wake)
	return true
}

// run writes batches until ctx is done or a write fails, and returns why.
// Frames queued when it returns are discarded.
func (w *connWriter) run(ctx context.Context) error {
	defer func() {
		w.mu.Lock()
		w.stopped = true
		w.q.drop()
		w.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.wake:
		}
		for {
			w.mu.Lock()
			buf, n := w.q.take()
			w.mu.Unlock()
			if n == 0 {
				break
			}
			if err := writeBatch(w.conn, w.timeout, buf, n, w.stats); err != nil {
				return err
			}
			w.mu.Lock()
			w.q.recycle(buf)
			w.mu.Unlock()
		}
	}
}

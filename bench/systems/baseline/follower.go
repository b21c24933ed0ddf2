package baseline

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/raftkit/raftkit/bench/systems"
)

// frame is one batch as a follower received it.
type frame struct {
	seq uint64
	buf *buffer
}

// follower is replica 1 or 2: it serves one leader connection at a time,
// appending the batches it receives to its log and acknowledging them.
type follower struct {
	ln       net.Listener
	log      *logFile
	maxBatch int
	wg       sync.WaitGroup
	once     sync.Once
	cerr     error

	mu      sync.Mutex
	conn    net.Conn
	closed  bool
	durable int64  // logical bytes durable (tests compare files up to it)
	seq     uint64 // highest seq durable on the current connection
	rounds  int64  // disk rounds (one write + one fdatasync)
}

func startFollower(cfg systems.Config, id int) (*follower, error) {
	maxBatch, size := limits(cfg)
	log, err := openLog(cfg.Dirs[id], size)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addrs[id])
	if err != nil {
		log.close()
		return nil, err
	}
	f := &follower{ln: ln, log: log, maxBatch: maxBatch}
	f.wg.Add(1)
	go f.acceptLoop()
	return f, nil
}

// Propose implements systems.Node: followers never lead.
func (f *follower) Propose(context.Context, int, []byte) error { return systems.ErrNotLeader }

// IsLeader implements systems.Node.
func (f *follower) IsLeader(int) bool { return false }

// acceptLoop serves connections one after another. Each new connection is a
// new leader incarnation starting at seq 1, so the log starts over.
func (f *follower) acceptLoop() {
	defer f.wg.Done()
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return // closed (Close), or the listener is unusable anyway
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			conn.Close()
			return
		}
		f.conn = conn
		f.mu.Unlock()
		f.serve(conn)
		f.mu.Lock()
		f.conn = nil
		f.mu.Unlock()
	}
}

// serve reads frames in order and hands them to a disk goroutine, so that
// receiving the next batches overlaps the fdatasync of the previous ones.
func (f *follower) serve(conn net.Conn) {
	defer conn.Close()
	f.log.reset()
	f.mu.Lock()
	f.durable, f.seq = 0, 0
	f.mu.Unlock()
	q := newQueue[frame]()
	stop := make(chan struct{})
	var disk sync.WaitGroup
	disk.Go(func() { f.diskLoop(conn, q, stop) })
	defer func() {
		close(stop)
		conn.Close() // unblocks an ack write
		disk.Wait()
		for _, fr := range q.close() {
			putBuffer(fr.buf)
		}
	}()

	r := bufio.NewReaderSize(conn, 256<<10)
	var hdr [frameHeader]byte
	for want := uint64(1); ; want++ {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		seq := binary.LittleEndian.Uint64(hdr[0:8])
		n := int(binary.LittleEndian.Uint32(hdr[8:12]))
		if seq != want || n > f.maxBatch {
			return // not our protocol, or a gap: drop the connection
		}
		buf := getBuffer()
		if cap(buf.b) < n {
			buf.b = make([]byte, n)
		}
		buf.b = buf.b[:n]
		if _, err := io.ReadFull(r, buf.b); err != nil {
			putBuffer(buf)
			return
		}
		q.push(frame{seq: seq, buf: buf})
	}
}

// diskLoop makes received batches durable in order: each round takes every
// frame received since the last one and costs one write and one fdatasync,
// then one 8-byte ack of the highest seq, written directly (no writer
// goroutine: the ack is one small write per round and nothing else shares
// that direction of the connection).
func (f *follower) diskLoop(conn net.Conn, q *queue[frame], stop <-chan struct{}) {
	var spare []frame
	var bufs [][]byte
	var ack [ackSize]byte
	for {
		select {
		case <-stop:
			return
		default:
		}
		fs := q.take(spare)
		if len(fs) == 0 {
			spare = fs
			select {
			case <-q.wake:
			case <-stop:
				return
			}
			continue
		}
		bufs = bufs[:0]
		for _, fr := range fs {
			bufs = append(bufs, fr.buf.b)
		}
		err := f.log.appendRound(bufs)
		clear(bufs)
		last := fs[len(fs)-1].seq
		for _, fr := range fs {
			putBuffer(fr.buf)
		}
		spare = fs
		if err != nil {
			// Never acknowledge what may not be durable, and never retry:
			// dropping the connection takes this follower out.
			conn.Close()
			f.mu.Lock()
			f.cerr = fmt.Errorf("baseline: follower log: %w", err)
			f.mu.Unlock()
			return
		}
		f.mu.Lock()
		f.durable, f.seq = f.log.written, last
		f.rounds++
		f.mu.Unlock()
		binary.LittleEndian.PutUint64(ack[:], last)
		if _, err := conn.Write(ack[:]); err != nil {
			return
		}
	}
}

// Close implements systems.Node: it closes the listener and the current
// connection, waits for every goroutine and closes the log file. It returns
// the first disk error the follower met, if any.
func (f *follower) Close() error {
	f.once.Do(func() {
		f.mu.Lock()
		f.closed = true
		f.ln.Close()
		if f.conn != nil {
			f.conn.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
		err := f.log.close()
		f.mu.Lock()
		if f.cerr == nil {
			f.cerr = err
		}
		f.mu.Unlock()
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cerr
}

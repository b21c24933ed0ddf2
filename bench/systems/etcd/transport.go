package etcd

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Wire format: each frame is a 4-byte little-endian length followed by that
// many bytes of a marshalled raftpb.Message. Connections are one-way: a
// replica dials each peer once (re-dialling after a failure) and only
// writes to that connection; it reads from the connections peers dial to it.

const (
	// peerQueue is how many marshalled messages may wait for a peer's
	// writer (etcd's own transport uses the same depth); when it is full
	// the message is dropped and the peer reported unreachable, so the
	// Ready loop never blocks on the network.
	peerQueue = 4096
	// maxBatch bounds the messages one writer flush carries.
	maxBatch = 512
	// maxFrame rejects corrupt lengths.
	maxFrame = 256 << 20
	ioBuf    = 64 << 10
)

type outMsg struct {
	b    []byte // length prefix + marshalled message
	snap bool   // a MsgSnap: report its fate to raft
}

type peer struct {
	id   uint64
	addr string
	q    chan outMsg

	mu     sync.Mutex
	conn   net.Conn // the live outbound connection, if any
	closed bool
}

// setConn installs c as the outbound connection; false if the peer was shut
// down meanwhile.
func (p *peer) setConn(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conn = c
	return true
}

func (p *peer) dropConn(c net.Conn) {
	p.mu.Lock()
	if p.conn == c {
		p.conn = nil
	}
	p.mu.Unlock()
	c.Close()
}

// shutdown closes the outbound connection, unblocking a writer stuck in it.
func (p *peer) shutdown() {
	p.mu.Lock()
	p.closed = true
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
	p.mu.Unlock()
}

// send marshals m (in the Ready loop, as raft's docs require) and queues it
// for its peer's writer.
func (n *node) send(m *pb.Message) {
	to := m.GetTo()
	if to == 0 || to > uint64(len(n.peers)) || n.peers[to-1] == nil {
		return
	}
	if n.partitioned.Load() {
		return
	}
	p := n.peers[to-1]
	size := proto.Size(m)
	b := make([]byte, 4, 4+size)
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, m)
	if err != nil {
		return // cannot happen for a well-formed message; raft retries anyway
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)-4))
	snap := m.GetType() == pb.MsgSnap
	select {
	case p.q <- outMsg{b: b, snap: snap}:
	default:
		n.rn.ReportUnreachable(to)
		if snap {
			n.rn.ReportSnapshot(to, raft.SnapshotFailure)
		}
	}
}

// writeLoop owns p's outbound connection: it takes every queued message,
// writes them through one bufio.Writer and flushes once. On failure it
// reports the peer unreachable, drops the batch and dials again on the next
// message.
func (n *node) writeLoop(p *peer) {
	defer n.wg.Done()
	var (
		conn  net.Conn
		bw    *bufio.Writer
		batch = make([]outMsg, 0, maxBatch)
	)
	defer func() {
		if conn != nil {
			p.dropConn(conn)
		}
	}()
	for {
		select {
		case <-n.done:
			return
		case m := <-p.q:
			batch = append(batch[:0], m)
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case m := <-p.q:
				batch = append(batch, m)
			default:
				break drain
			}
		}

		if conn == nil {
			c, err := n.dialer.DialContext(n.ctx, "tcp", p.addr)
			if err != nil {
				n.sendFailed(p, batch)
				continue
			}
			if !p.setConn(c) {
				c.Close()
				return
			}
			conn = c
			if bw == nil {
				bw = bufio.NewWriterSize(c, ioBuf)
			} else {
				bw.Reset(c)
			}
		}
		var err error
		for _, m := range batch {
			if _, err = bw.Write(m.b); err != nil {
				break
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			p.dropConn(conn)
			conn = nil
			n.sendFailed(p, batch)
			continue
		}
		for i, m := range batch {
			if m.snap {
				n.rn.ReportSnapshot(p.id, raft.SnapshotFinish)
			}
			batch[i] = outMsg{}
		}
	}
}

func (n *node) sendFailed(p *peer, batch []outMsg) {
	select {
	case <-n.done:
		return // closing: raft is stopped
	default:
	}
	n.rn.ReportUnreachable(p.id)
	for i, m := range batch {
		if m.snap {
			n.rn.ReportSnapshot(p.id, raft.SnapshotFailure)
		}
		batch[i] = outMsg{}
	}
}

func (n *node) acceptLoop() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			select {
			case <-n.done:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			// Probably out of file descriptors: back off, as net/http does.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		n.connMu.Lock()
		if n.connsClosed {
			n.connMu.Unlock()
			c.Close()
			return
		}
		n.inbound[c] = struct{}{}
		n.wg.Add(1)
		n.connMu.Unlock()
		go n.readLoop(c)
	}
}

// readLoop feeds the messages arriving on one inbound connection to raft.
func (n *node) readLoop(c net.Conn) {
	defer n.wg.Done()
	defer func() {
		n.connMu.Lock()
		delete(n.inbound, c)
		n.connMu.Unlock()
		c.Close()
	}()
	br := bufio.NewReaderSize(c, ioBuf)
	var (
		hdr [4]byte
		buf []byte
	)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		size := binary.LittleEndian.Uint32(hdr[:])
		if size > maxFrame {
			return
		}
		if uint32(cap(buf)) < size {
			buf = make([]byte, size)
		}
		b := buf[:size]
		if _, err := io.ReadFull(br, b); err != nil {
			return
		}
		// Unmarshal copies what it keeps, so buf is reused.
		m := &pb.Message{}
		if err := proto.Unmarshal(b, m); err != nil {
			return
		}
		if n.partitioned.Load() {
			continue
		}
		if err := n.rn.Step(n.ctx, m); err != nil {
			return // stopped
		}
	}
}

// Package etcd runs etcd's raft library (go.etcd.io/raft/v3) for the
// benchmark harness, driven the way an experienced user of that library
// would drive it for throughput: one raft.Node per replica with a Ready loop
// of our own, an append-only log file fdatasync'ed once per Ready, a
// loopback TCP transport with one batching writer per peer, and a no-op
// state machine.
//
// The library is only a consensus core: storage, transport and the state
// machine are the application's. This package supplies the minimum a real
// deployment needs and nothing the benchmark does not exercise:
//
//   - Storage: the entries and HardState of each Ready are appended to
//     cfg.Dirs[id]/raft.log in one write followed by one fdatasync (when
//     Ready.MustSync), then appended to a raft.MemoryStorage, which is what
//     raft reads from. Restart from that file is not implemented (the
//     benchmark always starts fresh): StartNode wipes the directory, so a
//     replica must not be restarted into a cluster that is still running
//     (raft panics when a known member comes back with an empty log).
//   - The Ready loop is the documented one (persist; send; apply; Advance)
//     with the two overlaps the docs and etcd's own server use: messages
//     that do not acknowledge this Ready's state go out before its fsync,
//     and committed entries are applied before it (see handleReady).
//   - Transport: replica i listens on cfg.Addrs[i]; frames are a 4-byte
//     little-endian length followed by a marshalled raftpb.Message.
//   - Proposals carry an 8-byte request ID in front of the payload so that
//     the proposer can recognise its entry when it is applied.
//
// Only one raft group per replica is supported (Groups > 1 returns
// systems.ErrUnsupported): hosting many groups on etcd raft means writing a
// multi-raft layer (as CockroachDB did), which is beyond a driver.
package etcd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftkit/raftkit/bench/systems"
)

// System is etcd raft.
type System struct{}

// Name implements systems.System.
func (System) Name() string { return "etcd" }

const (
	// idLen is the size of the request ID each proposal carries in front of
	// its payload: every entry is 8 bytes larger than the payload, on disk
	// and on the wire.
	idLen = 8

	maxSizePerMsg   = 1 << 20 // MaxSizePerMsg: 1 MiB of entries per MsgApp
	maxInflightMsgs = 256     // MaxInflightMsgs: pipelined MsgApps per follower
	// maxUncommitted bounds the payload bytes the leader holds uncommitted;
	// generous so that it never throttles the benchmark.
	maxUncommitted = 1 << 30

	// The MemoryStorage keeps every entry in memory until compacted: every
	// snapshotEvery applied entries we take an (empty: the state machine is
	// a no-op) snapshot and drop all but the last catchUpEntries entries, so
	// that a slightly lagging follower still catches up from the log rather
	// than by snapshot. Without this a long run grows without bound.
	snapshotEvery  = 10000 // when Config.SnapshotEntries is 0
	catchUpEntries = 5000
)

// Errors a Propose returns besides systems.ErrNotLeader and ctx errors.
var (
	// errLeadershipLost fails the proposals outstanding when this replica
	// stops leading (or its term changes): the entry may or may not commit
	// under the next leader, so the outcome is unknown, but waiting would
	// hang, and the harness should retry on the new leader.
	errLeadershipLost = fmt.Errorf("etcd: leadership changed before the entry was applied (outcome unknown): %w", systems.ErrNotLeader)
	// errDropped: raft refused the proposal. With proposal forwarding
	// disabled and a generous uncommitted-size limit this happens only when
	// the replica is no longer leader (or transferring leadership).
	errDropped = fmt.Errorf("etcd: proposal dropped by raft: %w", systems.ErrNotLeader)
	errClosed  = errors.New("etcd: replica closed")
)

type node struct {
	id      uint64 // raft ID: replica index + 1
	rn      raft.Node
	storage *raft.MemoryStorage
	wal     *wal

	// leader mirrors the last SoftState from Ready (RaftState == Leader).
	leader atomic.Bool
	// Proposal IDs are idBase | counter: the replica's raft ID in the top
	// byte keeps them unique across replicas, so an entry proposed by an
	// earlier leader never wakes a waiter of a later one.
	idBase uint64
	nextID atomic.Uint64

	mu      sync.Mutex
	waiters map[uint64]waiter // by proposal ID, until applied or failed
	closed  bool              // no more waiters; under mu

	// Owned by the Ready loop.
	term, vote uint64
	applied    uint64
	snapIndex  uint64
	// snapshotEvery is Config.SnapshotEntries, or the const default when
	// that is 0 (the in-memory log must be compacted anyway).
	snapshotEvery uint64
	confState     *pb.ConfState
	late          []*pb.Message

	// Transport.
	ln          net.Listener
	peers       []*peer // by raft ID - 1; nil for this replica
	dialer      net.Dialer
	connMu      sync.Mutex
	inbound     map[net.Conn]struct{}
	connsClosed bool

	// partitioned drops all of this replica's traffic (tests only).
	partitioned atomic.Bool

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	done      chan struct{} // closed by Close
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// StartNode implements systems.System.
func (System) StartNode(cfg systems.Config, id int) (systems.Node, error) {
	if cfg.Groups > 1 {
		return nil, fmt.Errorf("etcd: %d groups: %w", cfg.Groups, systems.ErrUnsupported)
	}
	if id < 0 || id >= len(cfg.Addrs) || id >= len(cfg.Dirs) {
		return nil, fmt.Errorf("etcd: replica %d out of range (%d addrs, %d dirs)", id, len(cfg.Addrs), len(cfg.Dirs))
	}
	// One tick is the heartbeat interval; the election timeout is a whole
	// number of ticks (raft randomizes it in [ElectionTick, 2*ElectionTick)).
	tick := cfg.HeartbeatInterval
	if tick <= 0 {
		return nil, fmt.Errorf("etcd: heartbeat interval %v must be positive", tick)
	}
	electionTick := int(cfg.ElectionTimeout / tick)
	if electionTick < 2 {
		return nil, fmt.Errorf("etcd: election timeout %v must be at least twice the heartbeat interval %v", cfg.ElectionTimeout, tick)
	}

	dir := cfg.Dirs[id]
	if err := wipeDir(dir); err != nil {
		return nil, err
	}
	w, err := openWAL(filepath.Join(dir, "raft.log"))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addrs[id])
	if err != nil {
		w.close()
		return nil, fmt.Errorf("etcd: listen: %w", err)
	}

	every := uint64(snapshotEvery)
	if cfg.SnapshotEntries > 0 {
		every = uint64(cfg.SnapshotEntries)
	}
	n := &node{
		id:            uint64(id + 1),
		storage:       raft.NewMemoryStorage(),
		wal:           w,
		idBase:        uint64(id+1) << 56,
		snapshotEvery: every,
		waiters:       make(map[uint64]waiter),
		ln:            ln,
		inbound:       make(map[net.Conn]struct{}),
		done:          make(chan struct{}),
		dialer:        net.Dialer{Timeout: time.Second},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())

	peers := make([]raft.Peer, len(cfg.Addrs))
	n.peers = make([]*peer, len(cfg.Addrs))
	for i, a := range cfg.Addrs {
		peers[i] = raft.Peer{ID: uint64(i + 1)}
		if i != id {
			n.peers[i] = &peer{id: uint64(i + 1), addr: a, q: make(chan outMsg, peerQueue)}
		}
	}
	n.rn = raft.StartNode(&raft.Config{
		ID:                        n.id,
		ElectionTick:              electionTick,
		HeartbeatTick:             1,
		Storage:                   n.storage,
		MaxSizePerMsg:             maxSizePerMsg,
		MaxInflightMsgs:           maxInflightMsgs,
		MaxUncommittedEntriesSize: maxUncommitted,
		CheckQuorum:               true,
		PreVote:                   true,
		// Proposals are only made on the leader (others get ErrNotLeader at
		// once); one racing with a step-down is dropped rather than
		// forwarded, so that its waiter fails fast.
		DisableProposalForwarding: true,
		Logger:                    newLogger(n.id),
	}, peers)

	n.wg.Add(3)
	go n.runReady()
	go n.runTicker(tick)
	go n.acceptLoop()
	for _, p := range n.peers {
		if p != nil {
			n.wg.Add(1)
			go n.writeLoop(p)
		}
	}
	return n, nil
}

// wipeDir makes dir exist and be empty: the benchmark always starts a
// replica fresh.
func wipeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("etcd: wiping %s: %w", dir, err)
		}
	}
	return nil
}

func (n *node) runTicker(d time.Duration) {
	defer n.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
			n.rn.Tick()
		}
	}
}

// runReady is the Ready loop.
func (n *node) runReady() {
	defer n.wg.Done()
	for {
		select {
		case <-n.done:
			return
		case rd := <-n.rn.Ready():
			if err := n.handleReady(rd); err != nil {
				// The log file failed: this replica cannot go on safely.
				// Stop taking part (the others elect a new leader) and fail
				// whoever waits here; Close still cleans up.
				log.Printf("etcd: replica %d: %v; replica stopped", n.id, err)
				n.leader.Store(false)
				n.failAll(err)
				return
			}
		}
	}
}

// mustWait reports whether m may only be sent once this Ready's state is
// durable: acknowledgements of appended entries and votes (these are the
// messages raft itself holds back until the append completes in its
// async-storage-writes mode).
func mustWait(t pb.MessageType) bool {
	return t == pb.MsgAppResp || t == pb.MsgVoteResp || t == pb.MsgPreVoteResp
}

// handleReady processes one Ready as the raft package documents (persist
// HardState, Entries and Snapshot; send Messages; apply CommittedEntries;
// Advance), overlapping the steps where the docs allow it.
func (n *node) handleReady(rd raft.Ready) error {
	lost := false // fail outstanding proposals after applying this Ready
	if rd.SoftState != nil {
		lead := rd.SoftState.RaftState == raft.StateLeader
		n.leader.Store(lead)
		lost = !lead
	}
	termVoteChanged := false
	if hs := rd.HardState; hs != nil {
		if hs.GetTerm() != n.term {
			lost = true
		}
		termVoteChanged = hs.GetTerm() != n.term || hs.GetVote() != n.vote
		n.term, n.vote = hs.GetTerm(), hs.GetVote()
	}

	// Messages may go out while entries of the same Ready are being
	// persisted (raft's docs, step 2; the leader writes its log in parallel
	// with its followers, Raft thesis 10.2.1), except those that vouch for
	// this Ready's state (mustWait), and none at all when the term or vote
	// changes, which must be durable first. Marshalling happens here in the
	// loop, as the docs ask; the peer writers only copy bytes to sockets.
	late := n.late[:0]
	for _, m := range rd.Messages {
		if termVoteChanged || mustWait(m.GetType()) {
			late = append(late, m)
		} else {
			n.send(m)
		}
	}

	// 3. Apply, ahead of this Ready's fsync. Raft's docs allow the steps to
	// run in parallel (all but step 2), and etcd's server applies while its
	// WAL syncs: a committed entry is already durable on a majority (acks
	// are only sent, and the leader only counts its own, after the
	// append's fsync), so waking its proposer need not wait for this
	// replica's write. The state machine is a no-op: applying an entry
	// wakes its proposer; applying a snapshot restores nothing.
	if !raft.IsEmptySnap(rd.Snapshot) {
		md := rd.Snapshot.GetMetadata()
		n.confState = md.GetConfState()
		n.applied = md.GetIndex()
	}
	n.apply(rd.CommittedEntries)
	if lost {
		n.failAll(errLeadershipLost)
	}

	// 1. Persist: one write, one fdatasync; then make the state visible
	// to raft through the MemoryStorage.
	if err := n.wal.save(rd.HardState, rd.Snapshot, rd.Entries, rd.MustSync); err != nil {
		return err
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.storage.ApplySnapshot(rd.Snapshot); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
			return fmt.Errorf("apply snapshot: %w", err)
		}
		n.snapIndex = rd.Snapshot.GetMetadata().GetIndex()
	}
	if rd.HardState != nil {
		if err := n.storage.SetHardState(rd.HardState); err != nil {
			return fmt.Errorf("set hard state: %w", err)
		}
	}
	if err := n.storage.Append(rd.Entries); err != nil {
		return fmt.Errorf("append to memory storage: %w", err)
	}

	// 2. Send what had to wait for the fsync.
	for i, m := range late {
		n.send(m)
		late[i] = nil
	}
	n.late = late[:0]

	// Compact only now: applied entries may have been in this Ready's
	// Entries, which the MemoryStorage has only just received.
	n.maybeCompact()

	// 4. Ready for the next batch.
	n.rn.Advance()
	return nil
}

// apply "applies" committed entries: wakes the proposers waiting for them
// and hands configuration changes (the bootstrap ones) back to raft.
func (n *node) apply(ents []*pb.Entry) {
	if len(ents) == 0 {
		return
	}
	locked := false
	for _, e := range ents {
		switch e.GetType() {
		case pb.EntryNormal:
			d := e.GetData()
			if len(d) < idLen { // a new leader's empty entry
				continue
			}
			id := binary.LittleEndian.Uint64(d)
			if id&^(1<<56-1) != n.idBase { // proposed elsewhere: nobody waits here
				continue
			}
			if !locked {
				n.mu.Lock()
				locked = true
			}
			if w, ok := n.waiters[id]; ok {
				delete(n.waiters, id)
				w.done <- nil
			}
		case pb.EntryConfChange, pb.EntryConfChangeV2:
			if locked {
				n.mu.Unlock()
				locked = false
			}
			var cc pb.ConfChangeI
			if e.GetType() == pb.EntryConfChange {
				c := &pb.ConfChange{}
				if err := proto.Unmarshal(e.GetData(), c); err != nil {
					log.Printf("etcd: replica %d: bad conf change at %d: %v", n.id, e.GetIndex(), err)
					continue
				}
				cc = c
			} else {
				c := &pb.ConfChangeV2{}
				if err := proto.Unmarshal(e.GetData(), c); err != nil {
					log.Printf("etcd: replica %d: bad conf change at %d: %v", n.id, e.GetIndex(), err)
					continue
				}
				cc = c
			}
			n.confState = n.rn.ApplyConfChange(cc)
		}
	}
	if locked {
		n.mu.Unlock()
	}
	n.applied = ents[len(ents)-1].GetIndex()
}

// maybeCompact bounds the MemoryStorage (see snapshotEvery).
func (n *node) maybeCompact() {
	if n.applied < n.snapIndex+n.snapshotEvery || n.confState == nil {
		return
	}
	if _, err := n.storage.CreateSnapshot(n.applied, n.confState, nil); err != nil {
		return
	}
	n.snapIndex = n.applied
	if n.applied > catchUpEntries {
		// ErrCompacted (already compacted that far) is harmless.
		_ = n.storage.Compact(n.applied - catchUpEntries)
	}
}

// failAll fails every outstanding proposal with err.
func (n *node) failAll(err error) {
	n.mu.Lock()
	for id, w := range n.waiters {
		delete(n.waiters, id)
		w.done <- err
		w.cancel()
	}
	n.mu.Unlock()
}

// waiter is a Propose waiting for its entry to be applied.
type waiter struct {
	done   chan error         // receives nil once applied, or the failure
	cancel context.CancelFunc // releases the Propose from raft's Propose
}

func (n *node) forget(id uint64) {
	n.mu.Lock()
	delete(n.waiters, id)
	n.mu.Unlock()
}

// Propose implements systems.Node.
func (n *node) Propose(ctx context.Context, g int, payload []byte) error {
	if g != 0 {
		return fmt.Errorf("etcd: group %d: %w", g, systems.ErrUnsupported)
	}
	if !n.leader.Load() {
		return systems.ErrNotLeader
	}
	// The entry is the request ID followed by the payload (a copy: raft
	// keeps the slice, the harness reuses its buffer). The ID costs 8 bytes
	// per entry.
	id := n.idBase | n.nextID.Add(1)&(1<<56-1)
	data := make([]byte, idLen+len(payload))
	binary.LittleEndian.PutUint64(data, id)
	copy(data[idLen:], payload)

	// raft's Propose blocks while raft knows no leader, so one that races
	// with a step-down could sit there until ctx ends: failAll cancels
	// pctx to release it.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := waiter{done: make(chan error, 1), cancel: cancel}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return errClosed
	}
	n.waiters[id] = w
	n.mu.Unlock()
	// The Ready loop clears leader before it fails the waiters: if the
	// step-down came before the registration, this sees it.
	if !n.leader.Load() {
		n.forget(id)
		return systems.ErrNotLeader
	}

	if err := n.rn.Propose(pctx, data); err != nil {
		n.forget(id)
		switch {
		case errors.Is(err, raft.ErrProposalDropped):
			return errDropped
		case errors.Is(err, raft.ErrStopped):
			return errClosed
		case ctx.Err() != nil:
			return ctx.Err()
		}
		select {
		case err := <-w.done: // failAll's reason for cancelling pctx
			return err
		default:
			return err
		}
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		n.forget(id)
		return ctx.Err()
	}
}

// IsLeader implements systems.Node.
func (n *node) IsLeader(g int) bool { return g == 0 && n.leader.Load() }

// Close implements systems.Node.
func (n *node) Close() error {
	n.closeOnce.Do(func() {
		n.leader.Store(false)
		close(n.done)
		n.cancel()
		n.rn.Stop()
		n.ln.Close()
		for _, p := range n.peers {
			if p != nil {
				p.shutdown()
			}
		}
		n.connMu.Lock()
		n.connsClosed = true
		for c := range n.inbound {
			c.Close()
		}
		n.connMu.Unlock()
		n.wg.Wait()

		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		n.failAll(errClosed)
		n.closeErr = n.wal.close()
	})
	return n.closeErr
}

// logger drops raft's debug and info chatter (elections, leader changes)
// and prints warnings and errors.
type logger struct{ prefix string }

func newLogger(id uint64) raft.Logger { return logger{prefix: fmt.Sprintf("etcd raft %d: ", id)} }

func (logger) Debug(...any)          {}
func (logger) Debugf(string, ...any) {}
func (logger) Info(...any)           {}
func (logger) Infof(string, ...any)  {}
func (l logger) Warning(v ...any)    { log.Print(l.prefix + fmt.Sprint(v...)) }
func (l logger) Warningf(f string, v ...any) {
	log.Print(l.prefix + fmt.Sprintf(f, v...))
}
func (l logger) Error(v ...any) { log.Print(l.prefix + fmt.Sprint(v...)) }
func (l logger) Errorf(f string, v ...any) {
	log.Print(l.prefix + fmt.Sprintf(f, v...))
}
func (l logger) Fatal(v ...any) { log.Fatal(l.prefix + fmt.Sprint(v...)) }
func (l logger) Fatalf(f string, v ...any) {
	log.Fatal(l.prefix + fmt.Sprintf(f, v...))
}
func (l logger) Panic(v ...any) { panic(l.prefix + fmt.Sprint(v...)) }
func (l logger) Panicf(f string, v ...any) {
	panic(l.prefix + fmt.Sprintf(f, v...))
}

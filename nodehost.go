package raftkit

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkit/raftkit/internal/adminrpc"
	"github.com/raftkit/raftkit/internal/core"
	"github.com/raftkit/raftkit/internal/logmanager"
	"github.com/raftkit/raftkit/internal/snapcopy"
	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
	"github.com/raftkit/raftkit/storage/logengine"
	"github.com/raftkit/raftkit/transport"
)

// NodeHost runs many raft groups in one process: one transport, one log
// engine (one group-commit fsync stream for every group), one ticker, and a
// fixed number of worker goroutines however many groups it hosts.
//
// Concurrency: every exported method is safe for concurrent use.
type NodeHost struct {
	opts      HostOptions
	log       *slog.Logger
	engine    *logengine.Engine
	trans     transport.Transport
	raftPool  *pool
	applyPool *pool
	seed      uint64

	mu       sync.RWMutex
	nodes    map[uint64]*Node
	starting map[uint64]bool // groups whose StartNode is opening storage
	closed   bool

	clock    *hostClock
	stopTick chan struct{}
	tickDone chan struct{}

	dropped     atomic.Uint64 // messages for groups or members not served here
	lastDropLog atomic.Int64  // unix nanos of the last warning about them

	snap       hostSnapshots
	snapCaller SnapshotCaller
	copyOpts   snapcopy.CopyOptions
}

// NewNodeHost opens the host's log engine under opts.DataDir, starts its
// transport and workers, and returns it ready for StartNode.
func NewNodeHost(opts HostOptions) (*NodeHost, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	h := &NodeHost{
		opts: opts, log: opts.Logger, nodes: map[uint64]*Node{}, starting: map[uint64]bool{}, seed: opts.Seed,
		stopTick: make(chan struct{}), tickDone: make(chan struct{}), clock: newHostClock(opts.TickInterval, opts.Now),
	}
	if h.seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		h.seed = binary.LittleEndian.Uint64(b[:])
	}
	observeFsyncs(&opts)
	h.opts = opts
	eng, err := logengine.Open(opts.FS, path.Join(opts.DataDir, "log"), opts.LogEngine)
	if err != nil {
		return nil, &Error{Code: CodeStorage, Msg: "opening the log engine", Err: err}
	}
	h.engine = eng
	newTransport := opts.NewTransport
	if newTransport == nil {
		newTransport = func(th transport.Handler) (transport.Transport, error) {
			return newTCPTransport(opts, th)
		}
	}
	if h.trans, err = newTransport(hostHandler{h}); err != nil {
		_ = eng.Close()
		return nil, fmt.Errorf("raftkit: starting the transport: %w", err)
	}
	h.raftPool = newPool(opts.RaftWorkers)
	h.applyPool = newPool(opts.ApplyWorkers)
	// Transports without services (tests' fakes) simply have no status
	// service; the error says nothing more.
	_ = h.RegisterService(StatusService, h.serveStatus)
	_ = h.RegisterService(adminrpc.Service, adminrpc.NewHandler(h.findAdmin))
	h.startSnapshots()
	h.registerHostMetrics()
	go h.ticker()
	h.log.Info("node host started", "addr", h.trans.Addr(), "data", opts.DataDir)
	return h, nil
}

// Addr is the raft address this host listens on.
func (h *NodeHost) Addr() string { return h.trans.Addr() }

// StartNode starts this host's member of a group, recovering its log and
// hard state from the data directory if it ran here before.
func (h *NodeHost) StartNode(opts NodeOptions) (*Node, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	n := &Node{
		host: h, group: opts.GroupID, id: opts.NodeID, opts: opts,
		log:     h.log.With("group", opts.GroupID, "node", opts.NodeID),
		met:     newGroupMetrics(h.opts.Metrics, opts.GroupID, opts.NodeID),
		stopped: make(chan struct{}),
	}
	var cs raftpb.ConfState
	for _, p := range opts.Peers {
		cs.Voters = append(cs.Voters, p.ID)
	}
	for _, p := range opts.Learners {
		cs.Learners = append(cs.Learners, p.ID)
	}
	// Read contexts start at a random point: the leader matches forwarded
	// reads and answers by (member, context), and a member restarted in
	// the same term must not meet contexts its previous run left there.
	var rb [8]byte
	_, _ = rand.Read(rb[:])
	n.reads.next = binary.LittleEndian.Uint64(rb[:]) >> 1
	n.fsm = &fsmCaller{n: n, sm: opts.StateMachine}
	n.snapper, _ = opts.StateMachine.(Snapshotter)
	n.view.Store(&nodeView{})
	// Reserve the group before touching its storage: a second StartNode of
	// a running group must not open (and tidy) the files the first uses.
	if err := h.reserve(n.group); err != nil {
		return nil, err
	}
	if err := h.openCore(n, cs); err != nil {
		h.mu.Lock()
		delete(h.starting, n.group)
		h.mu.Unlock()
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.starting, n.group)
	if h.closed {
		return nil, &Error{Code: CodeShuttingDown, Msg: "node host closed"}
	}
	h.nodes[n.group] = n
	// The apply loop starts from the configuration at the start of the
	// log (the snapshot's, or the bootstrap one) and follows the
	// configuration entries it applies from there.
	last := n.w.snap.last
	if last.Index > 0 {
		cs = last.ConfState
	}
	n.fsm.conf = cs.Clone()
	n.confW.set(cs, last.Index)
	if last.Index > 0 {
		n.fsm.enqueue(applyItem{kind: applySnapshotLoad, snap: last})
	}
	n.fsm.enqueue(applyItem{kind: applyConfiguration, conf: n.configuration(cs)})
	conf := n.w.rn.Status().Config
	n.log.Info("node started", "voters", conf.Voters, "learners", conf.Learners, "outgoing", conf.VotersOutgoing,
		"join", opts.Join, "last_index", n.w.rn.Status().LastIndex)
	return n, nil
}

// reserve claims group for a StartNode in progress.
func (h *NodeHost) reserve(group uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return &Error{Code: CodeShuttingDown, Msg: "node host closed"}
	}
	if _, ok := h.nodes[group]; ok || h.starting[group] {
		return &Error{Code: CodeInvalidArgument, Msg: fmt.Sprintf("group %d already runs on this host", group)}
	}
	h.starting[group] = true
	return nil
}

// openCore builds the group's storage view and raft core.
func (h *NodeHost) openCore(n *Node, cs raftpb.ConfState) error {
	o := &n.opts
	groupDir := path.Join(h.opts.DataDir, "groups", fmt.Sprint(o.GroupID))
	meta, err := storage.OpenFileMeta(h.opts.FS, groupDir)
	if err != nil {
		return &Error{Code: CodeStorage, Msg: "opening meta storage", Err: err}
	}
	if err := n.openAddrs(groupDir); err != nil {
		return err
	}
	lm, err := logmanager.New(h.engine, o.GroupID, meta, cs, o.LogCacheBytes)
	if err != nil {
		return &Error{Code: CodeStorage, Msg: "opening the group's log", Err: err}
	}
	snap, err := h.openSnapshots(n, lm)
	if err != nil {
		return err
	}
	if err := n.mergeOptionAddrs(); err != nil {
		return err
	}
	rn, err := core.New(core.Config{
		ID: o.NodeID, ElectionTick: o.ElectionTicks, HeartbeatTick: o.HeartbeatTicks, Storage: lm,
		Rand:            mrand.New(mrand.NewPCG(h.seed, o.GroupID^o.NodeID<<32)),
		MaxInflightMsgs: o.MaxInflightMsgs, MaxBatchEntries: o.MaxBatchEntries, MaxBatchBytes: o.MaxBatchBytes,
		MaxApplyBytes: o.MaxApplyBatchBytes, MaxUncommittedBytes: o.MaxUncommittedBytes,
		// The core stops handing out committed entries once the apply
		// queue's budget is in flight, on followers as on the leader.
		MaxApplyingBytes: o.MaxApplyQueueBytes,
		// The state machine starts from the latest snapshot, if any.
		Applied:        snap.Index,
		DisablePreVote: o.DisablePreVote, DisableCheckQuorum: o.DisableCheckQuorum,
		LeaseTicks: max(int(float64(o.ElectionTicks)*o.LeaseRatio), 1),
		Logger:     h.log.With("group", o.GroupID), // the core adds "node" itself
	})
	if err != nil {
		return &Error{Code: CodeInvalidArgument, Msg: "starting the raft core", Err: err}
	}
	n.w.rn, n.w.lm = rn, lm
	n.w.snap.last, n.w.applied = snap, snap.Index
	n.w.lastTerm = rn.Term()
	n.view.Store(&nodeView{term: rn.Term()})
	return nil
}

// Node returns the member of group hosted here, or nil.
func (h *NodeHost) Node(group uint64) *Node {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.nodes[group]
}

// Nodes returns the members hosted here, in no particular order.
func (h *NodeHost) Nodes() []*Node {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*Node, 0, len(h.nodes))
	for _, n := range h.nodes {
		out = append(out, n)
	}
	return out
}

// RegisterService serves an application request type on the raft port
// (see transport.ServiceHandler). It fails if the transport has no
// services.
func (h *NodeHost) RegisterService(name string, handler transport.ServiceHandler) error {
	r, ok := h.trans.(interface {
		RegisterService(string, transport.ServiceHandler)
	})
	if !ok {
		return &Error{Code: CodeInvalidArgument, Msg: "the transport does not serve application requests"}
	}
	r.RegisterService(name, handler)
	return nil
}

// serveStatus answers StatusService.
func (h *NodeHost) serveStatus(_ context.Context, group uint64, _ []byte) ([]byte, error) {
	n := h.Node(group)
	if n == nil {
		return nil, &Error{Code: CodeUnknownGroup, Msg: fmt.Sprintf("group %d is not served here", group)}
	}
	return json.Marshal(n.Status().JSON())
}

func (h *NodeHost) removeNode(n *Node) {
	h.mu.Lock()
	if h.nodes[n.group] == n {
		delete(h.nodes, n.group)
	}
	h.mu.Unlock()
}

// ticker drives every group's logical clock.
func (h *NodeHost) ticker() {
	defer close(h.tickDone)
	t := time.NewTicker(h.opts.TickInterval)
	defer t.Stop()
	var nodes []*Node
	for {
		select {
		case <-h.stopTick:
			return
		case <-t.C:
		}
		now := h.clock.now()
		k := h.clock.advance(now)
		if k == 0 {
			continue
		}
		h.mu.RLock()
		nodes = nodes[:0]
		for _, n := range h.nodes {
			nodes = append(nodes, n)
		}
		h.mu.RUnlock()
		for _, n := range nodes {
			n.tick(k)
		}
		clear(nodes)
		h.clock.handedOut(now)
	}
}

// Close shuts every node down, then stops the transport, the workers and
// the log engine. Safe to call more than once.
func (h *NodeHost) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	nodes := make([]*Node, 0, len(h.nodes))
	for _, n := range h.nodes {
		nodes = append(nodes, n)
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, n := range nodes {
		if err := n.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("group %d: %w", n.group, err))
		}
	}
	close(h.stopTick)
	<-h.tickDone
	errs = append(errs, h.closeSnapshots(), h.trans.Close())
	h.raftPool.close()
	h.applyPool.close()
	errs = append(errs, h.engine.Close())
	h.forgetHostMetrics()
	h.log.Info("node host closed", "addr", h.trans.Addr())
	return errors.Join(errs...)
}

// hostHandler receives the transport's raft messages.
type hostHandler struct{ h *NodeHost }

// HandleRaft routes a message to its group. Only a message no host could
// ever accept (group 0) is an error, which makes the transport drop the
// connection: the connection carries every group, so a message for a group
// not (or no longer, or not yet) served here, or for another member, is
// dropped and counted instead of cutting off the healthy groups behind it.
func (hh hostHandler) HandleRaft(group uint64, m *raftpb.Message) error {
	h := hh.h
	if group == 0 {
		return &Error{Code: CodeInvalidArgument, Msg: "raft message for group 0"}
	}
	h.mu.RLock()
	n := h.nodes[group]
	h.mu.RUnlock()
	if n == nil {
		h.misrouted("group not served here", group, m)
		return nil
	}
	if m.To != n.id {
		h.misrouted("message for another member", group, m)
		return nil
	}
	n.deliver(m)
	return nil
}

// misrouted counts a dropped message and logs at most one warning a second,
// so that a misconfigured peer cannot flood the log.
func (h *NodeHost) misrouted(why string, group uint64, m *raftpb.Message) {
	h.dropped.Add(1)
	now := time.Now().UnixNano()
	last := h.lastDropLog.Load()
	if now-last < int64(time.Second) || !h.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	h.log.Warn("dropping raft message: "+why, "group", group, "from", m.From, "to", m.To,
		"type", m.Type, "dropped_total", h.dropped.Load())
}

// LogStats returns the shared log engine's counters (bytes written,
// fsyncs, group-commit rounds, entries, segments). Safe for concurrent use.
func (h *NodeHost) LogStats() logengine.Stats { return h.engine.Stats() }

// DroppedMessages counts raft messages dropped because this host serves no
// such group or member. Safe for concurrent use.
func (h *NodeHost) DroppedMessages() uint64 { return h.dropped.Load() }

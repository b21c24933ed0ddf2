package raftkit

// This file is the host's side of snapshots: the service that serves the
// files of its groups' snapshots to installing followers, and the client
// its followers fetch with.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"
	"time"

	"github.com/raftkit/raftkit/internal/logmanager"
	"github.com/raftkit/raftkit/internal/snapcopy"
	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
	"github.com/raftkit/raftkit/storage/vfs"
	"github.com/raftkit/raftkit/transport/tcp"
)

// hostSnapshots is what a NodeHost keeps for snapshot transfer.
type hostSnapshots struct {
	ctx    context.Context // cancelled by Close: ends every fetch
	cancel context.CancelFunc
	server *snapcopy.Server
	closer io.Closer // the TCP client made here, if any

	mu       sync.Mutex
	activity map[uint64]time.Time // group → last chunk or manifest served
}

// startSnapshots registers the snapshot service and sets up the caller.
func (h *NodeHost) startSnapshots() {
	o := &h.opts
	hs := &h.snap
	hs.ctx, hs.cancel = context.WithCancel(context.Background())
	hs.activity = map[uint64]time.Time{}
	hs.server = snapcopy.NewServer(hostSnapSource{h}, snapcopy.ServerOptions{
		MaxBytesPerSecond: o.SnapshotMaxBytesPerSecond, Logger: h.log.With("component", "snapshot-server"),
	})
	h.copyOpts = snapcopy.CopyOptions{ChunkSize: o.SnapshotChunkBytes, Logger: h.log.With("component", "snapshot-copy")}
	h.snapCaller = o.SnapshotCaller
	if h.snapCaller == nil {
		c := tcp.NewClient(tcp.ClientOptions{TLS: o.TLS, DialContext: o.DialContext, Logger: h.log.With("component", "snapshot-client")})
		h.snapCaller, hs.closer = c, c
	}
	// Transports without services (tests' fakes) cannot serve snapshots;
	// followers of such hosts fail to fetch and say so.
	_ = h.RegisterService(snapcopy.Service, func(ctx context.Context, group uint64, req []byte) ([]byte, error) {
		hs.mu.Lock()
		hs.activity[group] = time.Now()
		hs.mu.Unlock()
		return hs.server.Handle(ctx, group, req)
	})
}

// snapActivity is when the group's snapshot files were last served.
func (h *NodeHost) snapActivity(group uint64) time.Time {
	h.snap.mu.Lock()
	defer h.snap.mu.Unlock()
	return h.snap.activity[group]
}

// closeSnapshots ends the fetches in progress and releases the service's
// pinned snapshots and the client. The nodes, shut down first, waited for
// their snapshot goroutines.
func (h *NodeHost) closeSnapshots() error {
	h.snap.cancel()
	err := h.snap.server.Close()
	if h.snap.closer != nil {
		err = errors.Join(err, h.snap.closer.Close())
	}
	return err
}

// hostSnapSource finds the snapshots of the groups a host serves.
type hostSnapSource struct{ h *NodeHost }

// Latest implements snapcopy.Source.
func (s hostSnapSource) Latest(group uint64) (storage.SnapshotReader, vfs.FS, error) {
	n := s.h.Node(group)
	if n == nil {
		return nil, nil, &Error{Code: CodeUnknownGroup, Msg: fmt.Sprintf("group %d is not served here", group)}
	}
	r, err := n.snaps.Latest()
	if err != nil {
		return nil, nil, err
	}
	return r, n.snaps.FS(), nil
}

// openSnapshots opens the group's snapshot storage and, if it holds a
// snapshot, makes the log agree with it; it returns the latest snapshot's
// meta (Index 0: none), which the state machine loads before anything else.
func (h *NodeHost) openSnapshots(n *Node, lm *logmanager.LogManager) (raftpb.SnapshotMeta, error) {
	dir := path.Join(h.opts.DataDir, "groups", fmt.Sprint(n.group), "snapshots")
	snaps, err := storage.OpenFileSnapshots(h.opts.FS, dir)
	if err != nil {
		return raftpb.SnapshotMeta{}, &Error{Code: CodeStorage, Msg: "opening snapshot storage", Err: err}
	}
	n.snaps = snaps
	for _, c := range snaps.Corrupt() {
		n.log.Warn("skipping a corrupt snapshot", "dir", c)
	}
	r, err := snaps.Latest()
	if errors.Is(err, storage.ErrSnapshotTemporarilyUnavailable) {
		return raftpb.SnapshotMeta{}, checkCovered(lm, 0)
	}
	if err != nil {
		return raftpb.SnapshotMeta{}, &Error{Code: CodeStorage, Msg: "opening the latest snapshot", Err: err}
	}
	meta := r.Meta()
	err = n.learnSnapshotAddrs(r.Dir())
	_ = r.Close()
	if err != nil {
		return raftpb.SnapshotMeta{}, &Error{Code: CodeStorage, Msg: "opening the latest snapshot", Err: err}
	}
	if n.snapper == nil {
		return raftpb.SnapshotMeta{}, &Error{Code: CodeInvalidArgument,
			Msg: fmt.Sprintf("the group has snapshot %d but its state machine does not implement Snapshotter", meta.Index)}
	}
	if err := checkCovered(lm, meta.Index); err != nil {
		return raftpb.SnapshotMeta{}, err
	}
	if err := lm.ReconcileWithSnapshot(meta); err != nil {
		return raftpb.SnapshotMeta{}, &Error{Code: CodeStorage, Msg: "reconciling the log with the latest snapshot", Err: err}
	}
	n.log.Info("recovering from snapshot", "index", meta.Index, "term", meta.Term)
	return meta, nil
}

// goSnapshot runs f, a fetch, on a goroutine of its own. The node does not
// finish stopping while one runs (see finishStop); f must end with
// reportSnapshotWork. (A save is counted when it is queued to the apply
// loop, in maybeSnapshot.)
func (n *Node) goSnapshot(f func()) {
	n.snapBusy.Add(1)
	go f()
}

// reportSnapshotWork hands a finished save or fetch to the raft worker.
func (n *Node) reportSnapshotWork(add func(in *inbox)) {
	n.mu.Lock()
	add(&n.in)
	n.mu.Unlock()
	n.snapBusy.Add(-1)
	n.host.raftPool.schedule(n)
}

// checkCovered refuses to start a group whose log was compacted past its
// latest valid snapshot (at index; 0: none), as when that snapshot is
// missing or corrupt: the entries in between exist nowhere here, and
// starting would apply the log to a state that lacks them.
func checkCovered(lm *logmanager.LogManager, index uint64) error {
	first, err := lm.FirstIndex()
	if err != nil {
		return &Error{Code: CodeStorage, Msg: "reading the log's first index", Err: err}
	}
	if first > index+1 {
		return &Error{Code: CodeStorage, Msg: fmt.Sprintf(
			"the log starts at %d but the latest valid snapshot covers only up to %d", first, index)}
	}
	return nil
}

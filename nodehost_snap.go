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
	// bg counts the snapshot goroutines (saves and fetches), which Close
	// waits for so that none outlives the host.
	bg sync.WaitGroup

	mu       sync.Mutex
	activity map[uint64]time.Time // group → last chunk or manifest served
}

// startSnapshots registers the snapshot service and sets up the caller.
func (h *NodeHost) startSnapshots() {
	o := &h.opts
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.activity = map[uint64]time.Time{}
	h.server = snapcopy.NewServer(hostSnapSource{h}, snapcopy.ServerOptions{
		MaxBytesPerSecond: o.SnapshotMaxBytesPerSecond, Logger: h.log.With("component", "snapshot-server"),
	})
	h.copyOpts = snapcopy.CopyOptions{ChunkSize: o.SnapshotChunkBytes, Logger: h.log.With("component", "snapshot-copy")}
	h.snapCaller = o.SnapshotCaller
	if h.snapCaller == nil {
		c := tcp.NewClient(tcp.ClientOptions{TLS: o.TLS, Logger: h.log.With("component", "snapshot-client")})
		h.snapCaller, h.closer = c, c
	}
	// Transports without services (tests' fakes) cannot serve snapshots;
	// followers of such hosts fail to fetch and say so.
	_ = h.RegisterService(snapcopy.Service, func(ctx context.Context, group uint64, req []byte) ([]byte, error) {
		h.hostSnapshots.mu.Lock()
		h.hostSnapshots.activity[group] = time.Now()
		h.hostSnapshots.mu.Unlock()
		return h.server.Handle(ctx, group, req)
	})
}

// snapActivity is when the group's snapshot files were last served.
func (h *NodeHost) snapActivity(group uint64) time.Time {
	h.hostSnapshots.mu.Lock()
	defer h.hostSnapshots.mu.Unlock()
	return h.hostSnapshots.activity[group]
}

// closeSnapshots ends the fetches in progress and releases the service's
// pinned snapshots and the client.
func (h *NodeHost) closeSnapshots() error {
	h.cancel()
	h.bg.Wait()
	err := h.server.Close()
	if h.closer != nil {
		err = errors.Join(err, h.closer.Close())
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
		return raftpb.SnapshotMeta{}, nil
	}
	if err != nil {
		return raftpb.SnapshotMeta{}, &Error{Code: CodeStorage, Msg: "opening the latest snapshot", Err: err}
	}
	meta := r.Meta()
	_ = r.Close()
	if n.snapper == nil {
		return raftpb.SnapshotMeta{}, &Error{Code: CodeInvalidArgument,
			Msg: fmt.Sprintf("the group has snapshot %d but its state machine does not implement Snapshotter", meta.Index)}
	}
	if err := lm.ReconcileWithSnapshot(meta); err != nil {
		return raftpb.SnapshotMeta{}, &Error{Code: CodeStorage, Msg: "reconciling the log with the latest snapshot", Err: err}
	}
	n.log.Info("recovering from snapshot", "index", meta.Index, "term", meta.Term)
	return meta, nil
}

// goSnapshot runs f on a goroutine of its own that Close waits for.
func (h *NodeHost) goSnapshot(f func()) {
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		f()
	}()
}

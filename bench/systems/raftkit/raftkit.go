// Package raftkit runs raftkit replicas for the benchmark harness: one
// NodeHost per replica (its TCP transport on the replica's address, its log
// engine in the replica's directory) hosting every group of the cluster,
// each with a no-op state machine.
package raftkit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/raftkit/raftkit"
	"github.com/raftkit/raftkit/bench/systems"
)

// System is raftkit.
type System struct{}

// Name implements systems.System.
func (System) Name() string { return "raftkit" }

type noop struct{ raftkit.BaseStateMachine }

func (noop) Apply(it *raftkit.Iterator) error {
	for it.Next() {
	}
	return nil
}

// SaveSnapshot captures the no-op state machine's state: nothing. It makes
// the groups snapshot, and so compact their logs, on the host's triggers
// (Config.SnapshotEntries), as a deployment does.
func (noop) SaveSnapshot() (raftkit.SnapshotSaveFunc, error) {
	return func(*raftkit.SnapshotWriter) error { return nil }, nil
}

// LoadSnapshot implements raftkit.Snapshotter: there is no state to load.
func (noop) LoadSnapshot(*raftkit.SnapshotReader) error { return nil }

type node struct {
	host  *raftkit.NodeHost
	nodes []*raftkit.Node
}

// StartNode implements systems.System.
func (System) StartNode(cfg systems.Config, id int) (systems.Node, error) {
	// The election timeout is ElectionTicks ticks; the heartbeat one tick.
	tick := cfg.HeartbeatInterval
	ticks := int(cfg.ElectionTimeout / tick)
	host, err := raftkit.NewNodeHost(raftkit.HostOptions{
		DataDir: cfg.Dirs[id], Addr: cfg.Addrs[id], TickInterval: tick,
	})
	if err != nil {
		return nil, err
	}
	n := &node{host: host}
	var peers []raftkit.Peer
	for i, a := range cfg.Addrs {
		peers = append(peers, raftkit.Peer{ID: uint64(i + 1), Addr: a})
	}
	for g := range cfg.Groups {
		rn, err := host.StartNode(raftkit.NodeOptions{
			GroupID: uint64(g + 1), NodeID: uint64(id + 1), Peers: peers, StateMachine: noop{},
			ElectionTicks: ticks, HeartbeatTicks: 1,
			SnapshotEntries: snapshotEntries(cfg), SnapshotBytes: -1, SnapshotMarginEntries: 1000,
		})
		if err != nil {
			host.Close()
			return nil, fmt.Errorf("raftkit: group %d: %w", g+1, err)
		}
		n.nodes = append(n.nodes, rn)
	}
	return n, nil
}

// snapshotEntries maps Config.SnapshotEntries (0: none) to raftkit's
// trigger (negative: off).
func snapshotEntries(cfg systems.Config) int64 {
	if cfg.SnapshotEntries <= 0 {
		return -1
	}
	return int64(cfg.SnapshotEntries)
}

func (n *node) Propose(ctx context.Context, g int, payload []byte) error {
	// raftkit keeps a task's data until it is applied; the harness reuses
	// its buffer, so the entry gets a copy.
	data := append([]byte(nil), payload...)
	for {
		fut, err := n.nodes[g].Apply(raftkit.Task{Data: data})
		if errors.Is(err, raftkit.ErrBusy) {
			// A budget is full: wait briefly for it to drain, as a client
			// would, rather than failing the operation.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Microsecond):
				continue
			}
		}
		if errors.Is(err, raftkit.ErrNotLeader) {
			return systems.ErrNotLeader
		}
		if err != nil {
			return err
		}
		_, err = fut.Wait(ctx)
		return err
	}
}

func (n *node) IsLeader(g int) bool { return n.nodes[g].IsLeader() }

func (n *node) Close() error { return n.host.Close() }

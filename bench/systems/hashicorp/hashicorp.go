// Package hashicorp runs github.com/hashicorp/raft replicas for the
// benchmark harness: one raft.Raft per replica with a raft-boltdb/v2 log
// and stable store (fsync on) and a file snapshot store in the replica's
// directory, the plain TCP transport on the replica's address, and a no-op
// FSM.
//
// hashicorp/raft hosts a single group per Raft instance and has no
// multiplexed transport, so StartNode returns systems.ErrUnsupported when
// cfg.Groups > 1.
//
// Mapping of systems.Config onto raft.Config:
//
//   - HeartbeatTimeout = ElectionTimeout = cfg.ElectionTimeout. hashicorp
//     randomizes both between the value and twice it, which matches the
//     shared "base timeout, randomized up to 2x" meaning. HeartbeatTimeout is
//     the follower's timeout without contact from a leader; ElectionTimeout
//     is the candidate's.
//   - cfg.HeartbeatInterval has no knob: the leader sends heartbeats every
//     HeartbeatTimeout/10 (randomized), fixed inside the library.
//   - LeaderLeaseTimeout = cfg.ElectionTimeout/2 (it must not exceed
//     HeartbeatTimeout): a leader that cannot reach a quorum for that long
//     steps down.
//   - cfg.MaxPayload is not needed: the transport and bolt size themselves.
package hashicorp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/raftkit/raftkit/bench/systems"
)

// System is hashicorp/raft.
type System struct{}

// Name implements systems.System.
func (System) Name() string { return "hashicorp" }

// fsm is a state machine that discards every entry.
type fsm struct{}

func (fsm) Apply(*raft.Log) any { return nil }

func (fsm) Snapshot() (raft.FSMSnapshot, error) { return snapshot{}, nil }

func (fsm) Restore(rc io.ReadCloser) error { return rc.Close() }

type snapshot struct{}

func (snapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }

func (snapshot) Release() {}

type node struct {
	r     *raft.Raft
	trans *raft.NetworkTransport
	store *raftboltdb.BoltStore
}

// silent is handed to every hashicorp component that logs.
var silent = hclog.New(&hclog.LoggerOptions{
	Name: "raft", Output: io.Discard, Level: hclog.Off,
})

const (
	// applyTimeout bounds how long Apply may wait to enqueue an entry when
	// the caller's context has no deadline.
	applyTimeout = 10 * time.Second
	// transportTimeout is the transport's I/O deadline (the library's
	// examples and Consul use 10s).
	transportTimeout = 10 * time.Second
	// maxPool is the number of idle connections kept per peer for
	// non-pipelined RPCs (votes, heartbeats, the first append); replication
	// itself runs over one pipelined connection per follower.
	maxPool = 3
)

// StartNode implements systems.System.
func (System) StartNode(cfg systems.Config, id int) (systems.Node, error) {
	if cfg.Groups > 1 {
		return nil, systems.ErrUnsupported
	}
	if id < 0 || id >= len(cfg.Addrs) || id >= len(cfg.Dirs) {
		return nil, fmt.Errorf("hashicorp: replica %d out of range", id)
	}
	dir := cfg.Dirs[id]

	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(fmt.Sprint(id))
	conf.Logger = silent
	conf.HeartbeatTimeout = cfg.ElectionTimeout
	conf.ElectionTimeout = cfg.ElectionTimeout
	conf.LeaderLeaseTimeout = cfg.ElectionTimeout / 2
	// CommitTimeout is how long a leader with nothing new to send waits
	// before an AppendEntries that only carries the commit index. The
	// default 50ms would delay followers' apply by up to that; 5ms is what
	// latency-sensitive users set. It does not delay the leader's apply
	// (which is what Propose waits for).
	conf.CommitTimeout = 5 * time.Millisecond
	// Throughput tuning a production user would do:
	//   - MaxAppendEntries 512 (default 64, max 1024): the leader groups up
	//     to this many queued Applies into one log write (one fsync) and one
	//     AppendEntries per follower.
	//   - BatchApplyCh: buffer the apply channel to MaxAppendEntries so
	//     callers enqueue without a rendezvous with the leader loop while it
	//     is busy writing the previous batch; this is what makes the group
	//     commit above fill up. (Its documented cost, an Apply timeout that
	//     only bounds enqueueing, is irrelevant here.)
	//   - NoLegacyTelemetry: skip emitting each metric twice.
	conf.MaxAppendEntries = 512
	conf.BatchApplyCh = true
	conf.NoLegacyTelemetry = true
	// Snapshots every Config.SnapshotEntries entries, keeping 1,000: the
	// threshold is checked every 100-200ms (SnapshotInterval, jittered up
	// to twice it), so a snapshot is due soon after it is reached. With 0
	// they are effectively off: the threshold is never reached and the
	// check is hourly.
	conf.SnapshotThreshold = 1 << 40
	conf.SnapshotInterval = time.Hour
	if cfg.SnapshotEntries > 0 {
		conf.SnapshotThreshold = uint64(cfg.SnapshotEntries)
		conf.SnapshotInterval = 100 * time.Millisecond
		conf.TrailingLogs = 1000
	}
	// Pre-vote (on by default) and the rest of DefaultConfig are kept.

	// One bolt file is both the log store and the stable store, fsync on
	// every commit (NoSync false). No LogCache in front: the leader's
	// in-flight entries are already in memory and the 3-node cluster never
	// replays far behind.
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:   filepath.Join(dir, "raft.db"),
		NoSync: false,
	})
	if err != nil {
		return nil, fmt.Errorf("hashicorp: bolt store: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 1, silent)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("hashicorp: snapshot store: %w", err)
	}
	// The bind address doubles as the advertised one (loopback host:port).
	trans, err := raft.NewTCPTransportWithLogger(cfg.Addrs[id], nil, maxPool, transportTimeout, silent)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("hashicorp: transport: %w", err)
	}

	// Every replica bootstraps with the same configuration; the library
	// treats that as one bootstrap. On a restart with existing state it
	// returns ErrCantBootstrap, which is expected.
	var servers []raft.Server
	for i, a := range cfg.Addrs {
		servers = append(servers, raft.Server{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(fmt.Sprint(i)),
			Address:  raft.ServerAddress(a),
		})
	}
	err = raft.BootstrapCluster(conf, store, store, snaps, trans, raft.Configuration{Servers: servers})
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		trans.Close()
		store.Close()
		return nil, fmt.Errorf("hashicorp: bootstrap: %w", err)
	}

	r, err := raft.NewRaft(conf, fsm{}, store, store, snaps, trans)
	if err != nil {
		trans.Close()
		store.Close()
		return nil, fmt.Errorf("hashicorp: %w", err)
	}
	return &node{r: r, trans: trans, store: store}, nil
}

// Propose implements systems.Node.
func (n *node) Propose(ctx context.Context, g int, payload []byte) error {
	if g != 0 {
		return fmt.Errorf("hashicorp: group %d: %w", g, systems.ErrUnsupported)
	}
	// Fast path: a follower would answer ErrNotLeader too, but only after a
	// round trip through its main loop.
	if n.r.State() != raft.Leader {
		return systems.ErrNotLeader
	}
	timeout := applyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
		if timeout <= 0 {
			return context.DeadlineExceeded
		}
	}
	// The log entry keeps its Data until it is written and replicated; the
	// harness reuses its buffer, so the entry gets a copy.
	data := append([]byte(nil), payload...)
	// Error waits until the entry is committed and applied to the local
	// FSM (or fails). The future has no context hook; it always resolves
	// (leadership loss and shutdown fail it), so it is waited on directly.
	err := n.r.Apply(data, timeout).Error()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader),
		errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return systems.ErrNotLeader
	}
	return err
}

// IsLeader implements systems.Node.
func (n *node) IsLeader(g int) bool { return g == 0 && n.r.State() == raft.Leader }

// Close implements systems.Node. Shutdown does not close the transport or
// the stores, so they are closed after it.
func (n *node) Close() error {
	err := n.r.Shutdown().Error()
	if e := n.trans.Close(); err == nil {
		err = e
	}
	if e := n.store.Close(); err == nil {
		err = e
	}
	return err
}

// Package dragonboat runs dragonboat v4 replicas for the benchmark harness:
// one NodeHost per replica (its TCP transport on the replica's address, its
// default log DB — sharded pebble, every write batch synced — in the
// replica's directory) hosting every shard of the cluster, each with a no-op
// in-memory state machine.
//
// Mapping of the shared Config:
//
//   - RTTMillisecond is HeartbeatInterval, HeartbeatRTT is 1 and ElectionRTT
//     is ElectionTimeout/HeartbeatInterval (dragonboat randomizes the election
//     timeout in [ElectionRTT, 2*ElectionRTT)). dragonboat rejects
//     ElectionRTT <= 2, so ElectionTimeout must be more than twice
//     HeartbeatInterval.
//   - Shard g+1 of the cluster is group g; replica id is ReplicaID id+1.
//   - CheckQuorum and PreVote are on; automatic snapshots every
//     Config.SnapshotEntries entries (0: off), keeping 1,000 entries
//     (CompactionOverhead).
//
// A replica only needs Addrs[id]; no derived ports. Several NodeHosts may run
// in one process as long as each has its own directory and address (the
// harness gives them that). A restarted replica must keep its address:
// dragonboat records the address of a NodeHost in its directory and in the
// shards' bootstrap records.
package dragonboat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	db "github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/logger"
	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/raftkit/raftkit/bench/systems"
)

// System is dragonboat.
type System struct{}

// Name implements systems.System.
func (System) Name() string { return "dragonboat" }

// defaultProposeTimeout bounds a Propose whose context has no deadline:
// dragonboat's SyncPropose requires one.
const defaultProposeTimeout = time.Minute

// quietLoggers silences dragonboat's package loggers (they log every start,
// election and stop at INFO) so that runs are not noisy; errors still show,
// except the transport's.
var quietLoggers = sync.OnceFunc(func() {
	for _, name := range []string{
		"dragonboat", "config", "raft", "raftpb", "rsm", "logdb", "LogDB",
		"pebblekv", "tan", "transport", "server", "settings", "registry",
		"gossip", "tools",
	} {
		logger.GetLogger(name).SetLevel(logger.ERROR)
	}
	// The transport logs an ERROR for every connection a stopping peer
	// resets, which happens on each Close of a cluster.
	logger.GetLogger("transport").SetLevel(logger.CRITICAL)
})

// noop is the no-op state machine: it applies entries and keeps nothing.
type noop struct{}

func (noop) Update(sm.Entry) (sm.Result, error) { return sm.Result{}, nil }
func (noop) Lookup(any) (any, error)            { return nil, nil }
func (noop) Close() error                       { return nil }
func (noop) SaveSnapshot(io.Writer, sm.ISnapshotFileCollection, <-chan struct{}) error {
	return nil
}
func (noop) RecoverFromSnapshot(io.Reader, []sm.SnapshotFile, <-chan struct{}) error {
	return nil
}

type node struct {
	nh        *db.NodeHost
	replicaID uint64
	groups    int
	closeOnce sync.Once
}

// StartNode implements systems.System.
func (System) StartNode(cfg systems.Config, id int) (systems.Node, error) {
	quietLoggers()
	rtt := cfg.HeartbeatInterval.Milliseconds()
	if rtt <= 0 {
		return nil, fmt.Errorf("dragonboat: heartbeat interval %v is under 1ms", cfg.HeartbeatInterval)
	}
	electionRTT := uint64(cfg.ElectionTimeout / cfg.HeartbeatInterval)
	if electionRTT <= 2 {
		// dragonboat's config validation rejects ElectionRTT <= 2*HeartbeatRTT.
		return nil, fmt.Errorf("dragonboat: election timeout %v must exceed twice the heartbeat interval %v: %w",
			cfg.ElectionTimeout, cfg.HeartbeatInterval, systems.ErrUnsupported)
	}
	dir := cfg.Dirs[id]
	nh, err := db.NewNodeHost(config.NodeHostConfig{
		NodeHostDir:    filepath.Join(dir, "nodehost"),
		WALDir:         filepath.Join(dir, "wal"),
		RTTMillisecond: uint64(rtt),
		RaftAddress:    cfg.Addrs[id],
	})
	if err != nil {
		return nil, fmt.Errorf("dragonboat: %w", err)
	}
	members := make(map[uint64]db.Target, len(cfg.Addrs))
	for i, a := range cfg.Addrs {
		members[uint64(i+1)] = a
	}
	n := &node{nh: nh, replicaID: uint64(id + 1), groups: cfg.Groups}
	create := func(uint64, uint64) sm.IStateMachine { return noop{} }
	for g := range cfg.Groups {
		err := nh.StartReplica(members, false, create, config.Config{
			ShardID:            uint64(g + 1),
			ReplicaID:          n.replicaID,
			ElectionRTT:        electionRTT,
			HeartbeatRTT:       1,
			CheckQuorum:        true,
			PreVote:            true,
			SnapshotEntries:    uint64(max(cfg.SnapshotEntries, 0)),
			CompactionOverhead: 1000,
			// MaxInMemLogSize, compression: defaults.
		})
		if err != nil {
			nh.Close()
			return nil, fmt.Errorf("dragonboat: shard %d: %w", g+1, err)
		}
	}
	return n, nil
}

// leads reports whether this replica believes it leads shard.
func (n *node) leads(shard uint64) bool {
	leader, _, valid, err := n.nh.GetLeaderID(shard)
	return err == nil && valid && leader == n.replicaID
}

func (n *node) Propose(ctx context.Context, g int, payload []byte) error {
	shard := uint64(g + 1)
	if !n.leads(shard) {
		return systems.ErrNotLeader
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultProposeTimeout)
		defer cancel()
	}
	// No copy of payload is needed: Propose encodes it into a new buffer
	// (a header byte plus the bytes) before it returns.
	session := n.nh.GetNoOPSession(shard)
	for {
		_, err := n.nh.SyncPropose(ctx, session, payload)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, db.ErrSystemBusy):
			// The shard's proposal queue is full: wait briefly for it to
			// drain, as a client would, rather than failing the operation.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Microsecond):
				continue
			}
		case errors.Is(err, db.ErrShardNotReady):
			// Dropped by raft, not appended: the leader is unknown or
			// changing (a follower would forward, so this is how losing
			// leadership shows).
			return systems.ErrNotLeader
		case errors.Is(err, db.ErrInvalidDeadline), errors.Is(err, db.ErrTimeoutTooSmall):
			// Less than one RTT of the context's deadline was left.
			return context.DeadlineExceeded
		case errors.Is(err, db.ErrTimeout), errors.Is(err, db.ErrCanceled):
			// The context's deadline or cancellation, or dragonboat's own
			// request timeout (set from that deadline). An entry appended by
			// a leader that then lost office is never reported dropped; it
			// ends here too.
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			if !n.leads(shard) {
				return systems.ErrNotLeader
			}
			return fmt.Errorf("dragonboat: %w", err)
		default:
			return fmt.Errorf("dragonboat: %w", err)
		}
	}
}

func (n *node) IsLeader(g int) bool { return n.leads(uint64(g + 1)) }

func (n *node) Close() error {
	// NodeHost.Close panics when called twice.
	n.closeOnce.Do(n.nh.Close)
	return nil
}

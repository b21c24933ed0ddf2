// Package systems defines what the benchmark harness needs of each system
// it measures (raftkit, its peers, and the bare-limit baseline), so that
// every one runs the same workload the same way. Each system lives in a
// subpackage and registers nothing globally: the harness lists them.
package systems

import (
	"context"
	"errors"
	"time"
)

// Config describes one cluster of three durable replicas on this machine.
// A plain value; every replica of a cluster gets the same Config.
type Config struct {
	// Dirs holds each replica's data directory (one per replica, existing
	// and empty on a fresh start; reused when a replica restarts).
	Dirs []string
	// Addrs are the replicas' loopback addresses for replication traffic,
	// host:port with free ports picked by the harness. Replica i listens on
	// Addrs[i]; a system that needs more ports picks free ones itself.
	Addrs []string
	// Groups is the number of raft groups (shards) to run on the three
	// replicas; 1 in most cells, 16 in the multi-group cell. A system that
	// cannot host several groups returns ErrUnsupported from StartNode when
	// Groups > 1.
	Groups int
	// ElectionTimeout is the base election timeout (randomized up to twice
	// it where the system does so); HeartbeatInterval the leader's
	// heartbeat period. The same for every system in a run.
	ElectionTimeout   time.Duration
	HeartbeatInterval time.Duration
	// MaxPayload is the largest payload a Propose will carry (lets systems
	// size buffers); payloads in a run are all the same size.
	MaxPayload int
	// SnapshotEntries is how often, in applied entries, each group takes
	// a snapshot of its (no-op) state machine and compacts its log behind
	// it, keeping the system's catch-up margin (1,000 entries where the
	// system lets us choose), as a deployment does; 0 takes none where
	// the system allows that.
	SnapshotEntries int
}

// Errors a Node returns.
var (
	// ErrNotLeader: this replica does not lead the group; the harness
	// retries on another replica.
	ErrNotLeader = errors.New("not leader")
	// ErrUnsupported: the system cannot run this configuration.
	ErrUnsupported = errors.New("unsupported configuration")
)

// Node is one running replica: a member of every group of the cluster.
//
// Concurrency: every method is safe for concurrent use; the load generator
// calls Propose from many goroutines at once.
type Node interface {
	// Propose replicates payload as one log entry of group g (0-based)
	// and returns once the entry is committed and applied to this
	// replica's no-op state machine, with fsync on (the entry is durable
	// on a majority). It returns ErrNotLeader at once if this replica does
	// not lead group g. payload must not be retained after return.
	Propose(ctx context.Context, g int, payload []byte) error
	// IsLeader reports whether this replica believes it leads group g.
	IsLeader(g int) bool
	// Close stops the replica and releases its ports and files (data stays
	// on disk).
	Close() error
}

// System starts replicas of one implementation.
type System interface {
	// Name is the short name used in tables and flags ("raftkit",
	// "hashicorp", "etcd", "dragonboat", "baseline").
	Name() string
	// StartNode starts replica id (0, 1 or 2) of the cluster cfg and
	// returns without waiting for an election. Replicas of one cluster may
	// run in one process or in three.
	StartNode(cfg Config, id int) (Node, error)
}

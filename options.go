package raftkit

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/raftkit/raftkit/metrics"
	"github.com/raftkit/raftkit/storage/logengine"
	"github.com/raftkit/raftkit/storage/vfs"
	"github.com/raftkit/raftkit/transport"
	"github.com/raftkit/raftkit/transport/tcp"
)

// HostOptions configures a NodeHost. Zero values select the documented
// defaults. A plain value: NewNodeHost copies it.
type HostOptions struct {
	// DataDir holds the host's log engine (DataDir/log) and each group's
	// meta storage (DataDir/groups/<id>/). Required.
	DataDir string
	// FS is the file system under DataDir; default the operating system's.
	// Tests pass a *vfs.MemFS.
	FS vfs.FS
	// Addr is the raft address to listen on, host:port; it is also this
	// host's identity in Peer lists. Required unless NewTransport is set.
	Addr string
	// ListenAddr, when set, is where the raft port listens while Addr stays
	// the address peers dial and this host's identity: for a host reached
	// through a proxy, NAT or port forward. Default Addr.
	ListenAddr string
	// DialContext, when set, opens this host's outbound connections (raft
	// and snapshot fetches), for instance from a chosen source address.
	// Nil: a net.Dialer.
	DialContext tcp.DialFunc
	// TLS, when set, secures the raft port (see tcp.LoadMutualTLS).
	TLS *tls.Config
	// NewTransport, when set, replaces the TCP transport (tests use an
	// in-process network). It receives the host's handler.
	NewTransport func(h transport.Handler) (transport.Transport, error)
	// TickInterval is the length of one logical clock tick. Default 100ms.
	TickInterval time.Duration
	// RaftWorkers run the groups' raft cores (step, ready, send); default
	// GOMAXPROCS. ApplyWorkers run the state machines; default GOMAXPROCS.
	// A group runs on at most one worker of each pool at a time.
	RaftWorkers  int
	ApplyWorkers int
	// LogEngine tunes the shared log engine.
	LogEngine logengine.Options
	// SnapshotCaller fetches snapshot files from peer hosts when a follower
	// installs its leader's snapshot; nil: a TCP client of its own (with
	// TLS), separate from the raft connections so that large chunks never
	// delay appends or heartbeats. Tests on an in-process network pass it.
	SnapshotCaller SnapshotCaller
	// SnapshotMaxBytesPerSecond throttles the snapshot bytes this host
	// serves to installing followers, over all its groups; 0: unlimited.
	SnapshotMaxBytesPerSecond int64
	// SnapshotChunkBytes is the size of one fetched chunk; default 1 MiB.
	SnapshotChunkBytes int
	// Seed seeds the per-group random sources for election timeouts; zero
	// takes one from the operating system. No global random source is used.
	Seed uint64
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock the host counts ticks by (and checks that its
	// ticker is not behind before trusting a lease); default time.Now.
	// The ticker still fires every TickInterval of real time; tests shift
	// Now to stage a pause.
	Now func() time.Time
	// Metrics receives the host's and its groups' measurements (see
	// package metrics; metrics/prom reports to Prometheus). Nil discards.
	Metrics metrics.Sink
}

// SnapshotCaller calls a service on a peer host; tcp.Client and
// memnet.Network implement it (it is snapcopy.Caller). Call must be safe
// for concurrent use and return soon after ctx ends.
type SnapshotCaller interface {
	Call(ctx context.Context, addr, service string, group uint64, req []byte) ([]byte, error)
}

func (o *HostOptions) normalize() error {
	if o.DataDir == "" {
		return &Error{Code: CodeInvalidArgument, Msg: "HostOptions.DataDir is required"}
	}
	if o.Addr == "" && o.NewTransport == nil {
		return &Error{Code: CodeInvalidArgument, Msg: "HostOptions.Addr is required"}
	}
	if o.FS == nil {
		o.FS = vfs.OS{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = metrics.Discard()
	}
	if o.SnapshotChunkBytes < 0 || o.SnapshotMaxBytesPerSecond < 0 {
		return &Error{Code: CodeInvalidArgument, Msg: "HostOptions: SnapshotChunkBytes and SnapshotMaxBytesPerSecond must not be negative"}
	}
	if o.TickInterval == 0 {
		o.TickInterval = 100 * time.Millisecond
	}
	if o.TickInterval < time.Millisecond {
		return &Error{Code: CodeInvalidArgument, Msg: fmt.Sprintf("TickInterval %v below 1ms", o.TickInterval)}
	}
	if o.RaftWorkers <= 0 {
		o.RaftWorkers = runtime.GOMAXPROCS(0)
	}
	if o.ApplyWorkers <= 0 {
		o.ApplyWorkers = runtime.GOMAXPROCS(0)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LogEngine.Logger == nil {
		o.LogEngine.Logger = o.Logger.With("component", "logengine")
	}
	return nil
}

// Peer is one voting or learning member of a group: its node ID in the
// group and the raft address of the host that runs it.
type Peer struct {
	ID   uint64
	Addr string
}

// NodeOptions configures one raft group member on a NodeHost. A plain
// value: StartNode copies it.
type NodeOptions struct {
	// GroupID identifies the raft group on every host; non-zero. See
	// GroupIDFromName.
	GroupID uint64
	// NodeID is this member's ID in Peers; non-zero.
	NodeID uint64
	// Peers are the group's initial voters; Learners its initial
	// non-voting members. Every member must start with the same lists:
	// they are the configuration at the start of the log, before any
	// membership change recorded in it.
	Peers    []Peer
	Learners []Peer
	// Join starts a member that is not (yet) in the configuration: NodeID
	// need not be among Peers. It never campaigns; it waits for the
	// leader to add it (AddPeer, AddLearners) and then receives the log or
	// a snapshot. Peers are still the group's initial voters.
	Join bool
	// StateMachine receives committed entries and lifecycle callbacks.
	StateMachine StateMachine

	// ElectionTicks is the election timeout in ticks (randomized in
	// [T, 2T)); default 10. HeartbeatTicks is the leader's heartbeat
	// interval; default 1.
	ElectionTicks  int
	HeartbeatTicks int
	// DisablePreVote and DisableCheckQuorum turn those protections off;
	// both are on by default.
	DisablePreVote     bool
	DisableCheckQuorum bool

	// MaxInflightMsgs bounds the pipelined AppendEntries per follower;
	// default 256. MaxBatchEntries and MaxBatchBytes bound one of them;
	// defaults 1024 and 512 KiB.
	MaxInflightMsgs int
	MaxBatchEntries int
	MaxBatchBytes   uint64
	// MaxUncommittedBytes bounds the in-memory log a leader accepts beyond
	// its commit index; Apply fails with ErrBusy past it. Default 64 MiB.
	MaxUncommittedBytes uint64
	// MaxPendingBytes bounds the tasks queued by Apply and not yet
	// proposed; default 16 MiB.
	MaxPendingBytes uint64
	// MaxApplyQueueBytes bounds the committed entries queued to the state
	// machine; Apply fails with ErrBusy past it. Default 64 MiB.
	MaxApplyQueueBytes uint64
	// MaxApplyBatchBytes bounds one Iterator batch; default 4 MiB.
	MaxApplyBatchBytes uint64
	// Snapshots (for a StateMachine that implements Snapshotter): one is
	// taken when SnapshotInterval has passed since the last (default 1h),
	// or SnapshotEntries entries (default 100,000) or SnapshotBytes of
	// entry payload (default 64 MiB) were applied since; a negative value
	// turns that trigger off. Node.Snapshot takes one on demand. After a
	// snapshot the log before it is compacted except for the last
	// SnapshotMarginEntries entries (default 1,000), which followers a
	// little behind can still fetch as entries rather than by installing
	// the snapshot.
	SnapshotInterval      time.Duration
	SnapshotEntries       int64
	SnapshotBytes         int64
	SnapshotMarginEntries uint64
	// LogCacheBytes bounds the memory of the in-memory tail of the log kept
	// for replication (entry data plus a per-entry overhead); default 4 MiB,
	// which holds tens of thousands of recent small entries.
	LogCacheBytes uint64

	// A voter being added first catches up as a learner until its log is
	// within CatchupMarginEntries of the leader's (default 1,000), for at
	// most CatchupTimeout (default 30 s, and never beyond the call's
	// context), so that it never counts in a quorum while it cannot yet
	// vote usefully or acknowledge new entries.
	CatchupMarginEntries uint64
	CatchupTimeout       time.Duration
	// LeaseRatio is the leader lease of ReadLease reads as a fraction of
	// the election timeout; default 0.9, within (0, 1). The margin
	// 1-LeaseRatio is what clock-rate drift between members may eat.
	LeaseRatio float64
}

func (o *NodeOptions) normalize() error {
	bad := func(format string, args ...any) error {
		return &Error{Code: CodeInvalidArgument, Msg: fmt.Sprintf(format, args...)}
	}
	if o.GroupID == 0 || o.NodeID == 0 {
		return bad("NodeOptions: GroupID and NodeID must be non-zero (got %d, %d)", o.GroupID, o.NodeID)
	}
	if o.StateMachine == nil {
		return bad("NodeOptions.StateMachine is required")
	}
	seen := map[uint64]bool{}
	self := false
	for _, p := range append(append([]Peer(nil), o.Peers...), o.Learners...) {
		if p.ID == 0 || p.Addr == "" {
			return bad("group %d: peer %+v needs a non-zero ID and an address", o.GroupID, p)
		}
		if seen[p.ID] {
			return bad("group %d: peer ID %d listed twice", o.GroupID, p.ID)
		}
		seen[p.ID] = true
		self = self || p.ID == o.NodeID
	}
	if len(o.Peers) == 0 {
		return bad("group %d: Peers must name the group's initial voters", o.GroupID)
	}
	if !self && !o.Join {
		return bad("group %d: NodeID %d must be among the %d peers (or set Join to start outside the configuration)",
			o.GroupID, o.NodeID, len(o.Peers))
	}
	if o.LeaseRatio < 0 || o.LeaseRatio >= 1 {
		return bad("NodeOptions.LeaseRatio %v must be in (0, 1)", o.LeaseRatio)
	}
	if o.LeaseRatio == 0 {
		o.LeaseRatio = 0.9
	}
	setDefault(&o.CatchupMarginEntries, 1000)
	setDefault(&o.CatchupTimeout, 30*time.Second)
	setDefault(&o.ElectionTicks, 10)
	setDefault(&o.HeartbeatTicks, 1)
	setDefault(&o.MaxUncommittedBytes, 64<<20)
	setDefault(&o.MaxPendingBytes, 16<<20)
	setDefault(&o.MaxApplyQueueBytes, 64<<20)
	setDefault(&o.MaxApplyBatchBytes, 4<<20)
	setDefault(&o.LogCacheBytes, 4<<20)
	setDefault(&o.SnapshotEntries, 100_000)
	setDefault(&o.SnapshotBytes, 64<<20)
	setDefault(&o.SnapshotMarginEntries, 1000)
	if o.SnapshotInterval == 0 {
		o.SnapshotInterval = time.Hour
	}
	if o.HeartbeatTicks >= o.ElectionTicks {
		return bad("HeartbeatTicks %d must be below ElectionTicks %d", o.HeartbeatTicks, o.ElectionTicks)
	}
	return nil
}

func setDefault[T ~int | ~int64 | ~uint64](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// GroupIDFromName maps a group name (such as "counter") to a GroupID with
// 64-bit FNV-1a, so that hosts agree on the ID of a named group without a
// registry. It never returns 0.
func GroupIDFromName(name string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	if h == 0 {
		h = 1
	}
	return h
}

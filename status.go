package raftkit

import "github.com/raftkit/raftkit/internal/core"

// Role is the part a node plays in its group.
type Role uint8

// The roles, in the core's order.
const (
	RoleFollower Role = iota
	RolePreCandidate
	RoleCandidate
	RoleLeader
	RoleLearner
)

func (r Role) String() string { return core.Role(r).String() }

// State is a node's lifecycle state.
type State uint8

const (
	// StateRunning: the node takes part in its group.
	StateRunning State = iota
	// StateError: the state machine or storage failed; the node has left
	// the protocol and accepts no tasks until restarted.
	StateError
	// StateShutdown: Shutdown completed.
	StateShutdown
)

func (s State) String() string {
	switch s {
	case StateRunning:
		return "running"
	case StateError:
		return "error"
	case StateShutdown:
		return "shutdown"
	}
	return "unknown"
}

// Status is a node's state for introspection; a plain value owned by the
// caller.
type Status struct {
	GroupID, NodeID uint64
	State           State
	// Err is why the node is in StateError.
	Err        error
	Role       Role
	Term, Vote uint64
	Leader     uint64
	LeaderAddr string
	// CommitIndex is the highest index known committed; AppliedIndex the
	// highest the state machine has applied; LastIndex the last log index.
	CommitIndex, AppliedIndex, LastIndex uint64
	// Voters and Learners are the configuration this node has appended
	// (configuration changes take effect when logged, before they
	// commit); OutgoingVoters is set while the group is in a joint
	// configuration: decisions then need a majority of both voter sets.
	Voters, Learners, OutgoingVoters []uint64
	// Followers is set on the leader: one entry per other member.
	Followers []FollowerStatus
	// PendingTasks were accepted by Apply and await their outcome;
	// ApplyQueueBytes wait for the state machine; LogCacheBytes is the
	// in-memory tail of the log.
	PendingTasks    int
	ApplyQueueBytes uint64
	LogCacheBytes   uint64
	// FirstIndex is the first entry the log still holds; the entries
	// before it were compacted into the snapshot at SnapshotIndex (0:
	// none). InstallingSnapshot is the index of the leader's snapshot this
	// follower is fetching, 0 if none.
	FirstIndex         uint64
	SnapshotIndex      uint64
	SnapshotTerm       uint64
	InstallingSnapshot uint64
}

// FollowerStatus is the leader's view of one member's replication.
type FollowerStatus struct {
	ID    uint64
	Addr  string
	Match uint64
	Next  uint64
	// State is Probe, Replicate or Snapshot.
	State string
	// Inflight is the number of AppendEntries outstanding, InflightBytes
	// their payload.
	Inflight      int
	InflightBytes uint64
	RecentActive  bool
	IsLearner     bool
}

// StatusService is the application service every NodeHost serves on its
// raft port: the request is empty, the frame's group selects the node, and
// the response is that node's Status as JSON (see StatusJSON).
const StatusService = "raftkit.status"

// StatusJSON is Status in the JSON shape StatusService returns: roles and
// states as words, the error as text.
type StatusJSON struct {
	GroupID         uint64           `json:"group_id"`
	NodeID          uint64           `json:"node_id"`
	State           string           `json:"state"`
	Err             string           `json:"error,omitempty"`
	Role            string           `json:"role"`
	Term            uint64           `json:"term"`
	Vote            uint64           `json:"vote"`
	Leader          uint64           `json:"leader"`
	LeaderAddr      string           `json:"leader_addr,omitempty"`
	CommitIndex     uint64           `json:"commit_index"`
	AppliedIndex    uint64           `json:"applied_index"`
	LastIndex       uint64           `json:"last_index"`
	Voters          []uint64         `json:"voters"`
	Learners        []uint64         `json:"learners,omitempty"`
	OutgoingVoters  []uint64         `json:"outgoing_voters,omitempty"`
	Followers       []FollowerStatus `json:"followers,omitempty"`
	PendingTasks    int              `json:"pending_tasks"`
	ApplyQueueBytes uint64           `json:"apply_queue_bytes"`
	LogCacheBytes   uint64           `json:"log_cache_bytes"`
	FirstIndex      uint64           `json:"first_index"`
	SnapshotIndex   uint64           `json:"snapshot_index"`
	SnapshotTerm    uint64           `json:"snapshot_term"`
	Installing      uint64           `json:"installing_snapshot,omitempty"`
}

// JSON converts s to its JSON shape.
func (s Status) JSON() StatusJSON {
	j := StatusJSON{
		GroupID: s.GroupID, NodeID: s.NodeID, State: s.State.String(), Role: s.Role.String(),
		Term: s.Term, Vote: s.Vote, Leader: s.Leader, LeaderAddr: s.LeaderAddr,
		CommitIndex: s.CommitIndex, AppliedIndex: s.AppliedIndex, LastIndex: s.LastIndex,
		Voters: s.Voters, Learners: s.Learners, OutgoingVoters: s.OutgoingVoters, Followers: s.Followers,
		PendingTasks: s.PendingTasks, ApplyQueueBytes: s.ApplyQueueBytes, LogCacheBytes: s.LogCacheBytes,
		FirstIndex: s.FirstIndex, SnapshotIndex: s.SnapshotIndex, SnapshotTerm: s.SnapshotTerm,
		Installing: s.InstallingSnapshot,
	}
	if s.Err != nil {
		j.Err = s.Err.Error()
	}
	return j
}

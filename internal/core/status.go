package core

import (
	"fmt"

	"github.com/raftkit/raftkit/raftpb"
)

// Role is the part a node plays in its group.
type Role uint8

const (
	// RoleFollower follows a leader and may start an election.
	RoleFollower Role = iota
	// RolePreCandidate asks for pre-votes without changing its term.
	RolePreCandidate
	// RoleCandidate has bumped its term and asks for votes.
	RoleCandidate
	// RoleLeader replicates its log to the group.
	RoleLeader
	// RoleLearner receives the log but never votes nor campaigns.
	RoleLearner

	numRoles
)

var roleNames = [...]string{"Follower", "PreCandidate", "Candidate", "Leader", "Learner"}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// FollowerStatus is the leader's view of one peer's replication.
type FollowerStatus struct {
	ID           uint64
	Match        uint64
	Next         uint64
	State        string
	Inflight     int
	InflightSize uint64
	RecentActive bool
	IsLearner    bool
}

// Status is a snapshot of a core's state for introspection.
type Status struct {
	ID        uint64
	Role      Role
	Lead      uint64
	HardState raftpb.HardState
	Applied   uint64
	LastIndex uint64
	Config    raftpb.ConfState
	// Progress is set on the leader only, one entry per peer including itself.
	Progress []FollowerStatus
}

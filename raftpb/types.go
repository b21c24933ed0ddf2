package raftpb

import (
	"fmt"
	"slices"
)

// None is the ID that names no node: no vote, no leader.
const None uint64 = 0

// EntryType says how the state machine layer treats an entry.
type EntryType uint8

const (
	// EntryNormal carries user data for the state machine.
	EntryNormal EntryType = iota
	// EntryNoop is appended by a new leader at the start of its term so that
	// entries of earlier terms can commit. The state machine never sees it.
	EntryNoop
	// EntryConfChange carries a configuration change (joint consensus).
	EntryConfChange
)

func (t EntryType) String() string {
	switch t {
	case EntryNormal:
		return "Normal"
	case EntryNoop:
		return "Noop"
	case EntryConfChange:
		return "ConfChange"
	}
	return fmt.Sprintf("EntryType(%d)", uint8(t))
}

// Entry is one record of the replicated log.
type Entry struct {
	Term  uint64
	Index uint64
	Type  EntryType
	Data  []byte
}

// entryOverhead approximates the fixed cost of an entry in memory and on the
// wire, so that budgets on empty entries still make progress bounded.
const entryOverhead = 24

// Size is the number of bytes an entry counts against batch and inflight
// budgets: its payload plus a fixed header.
func (e *Entry) Size() uint64 { return uint64(len(e.Data)) + entryOverhead }

func (e Entry) String() string {
	return fmt.Sprintf("%d/%d %s %q", e.Term, e.Index, e.Type, e.Data)
}

// EntriesSize sums Size over ents.
func EntriesSize(ents []Entry) uint64 {
	var n uint64
	for i := range ents {
		n += ents[i].Size()
	}
	return n
}

// HardState is the part of a node's state that must be durable before the node
// sends any message that depends on it: the current term, the vote cast in it,
// and the commit index (the last only as a restart hint; it is never required
// for safety).
type HardState struct {
	Term   uint64
	Vote   uint64
	Commit uint64
}

// IsEmpty reports whether hs is the zero HardState.
func (hs HardState) IsEmpty() bool { return hs == HardState{} }

// ConfState is a cluster configuration. When VotersOutgoing is non-empty the
// configuration is joint: decisions need a majority of Voters and, separately,
// a majority of VotersOutgoing. Learners receive the log but never vote.
// Invariant: Learners is disjoint from Voters and VotersOutgoing.
type ConfState struct {
	Voters         []uint64
	VotersOutgoing []uint64
	Learners       []uint64
}

// IsJoint reports whether cs is a joint configuration.
func (cs ConfState) IsJoint() bool { return len(cs.VotersOutgoing) > 0 }

// Equal reports whether two configurations have the same members in each role,
// regardless of order.
func (cs ConfState) Equal(o ConfState) bool {
	return sameSet(cs.Voters, o.Voters) && sameSet(cs.VotersOutgoing, o.VotersOutgoing) &&
		sameSet(cs.Learners, o.Learners)
}

// Clone returns a deep copy of cs.
func (cs ConfState) Clone() ConfState {
	return ConfState{
		Voters:         slices.Clone(cs.Voters),
		VotersOutgoing: slices.Clone(cs.VotersOutgoing),
		Learners:       slices.Clone(cs.Learners),
	}
}

func sameSet(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// SnapshotMeta describes a snapshot: the last log position it covers and the
// configuration in force at that position. The snapshot's data itself lives in
// snapshot storage and travels separately.
type SnapshotMeta struct {
	Index     uint64
	Term      uint64
	ConfState ConfState
}

// IsEmpty reports whether the meta describes no snapshot.
func (m SnapshotMeta) IsEmpty() bool { return m.Index == 0 }

// Clone returns a copy of m that shares no memory with it.
func (m SnapshotMeta) Clone() SnapshotMeta {
	m.ConfState = m.ConfState.Clone()
	return m
}

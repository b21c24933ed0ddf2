package confchange

import (
	"errors"
	"fmt"
	"slices"

	"github.com/raftkit/raftkit/raftpb"
)

// ErrInvalid is wrapped by every error of this package. It is never
// modified and safe to use from any goroutine.
var ErrInvalid = errors.New("confchange: invalid configuration change")

// Validate checks that cs is a configuration a group can be in: at least one
// voter, no zero ID, no ID twice in one list, and learners distinct from the
// voters of both halves.
func Validate(cs raftpb.ConfState) error {
	if len(cs.Voters) == 0 {
		return fmt.Errorf("%w: no voters", ErrInvalid)
	}
	for _, l := range [][]uint64{cs.Voters, cs.VotersOutgoing, cs.Learners} {
		if err := checkIDs(l); err != nil {
			return err
		}
	}
	for _, id := range cs.Learners {
		if slices.Contains(cs.Voters, id) || slices.Contains(cs.VotersOutgoing, id) {
			return fmt.Errorf("%w: %d is both voter and learner", ErrInvalid, id)
		}
	}
	return nil
}

// checkIDs refuses zero and repeated IDs. Configurations have a handful of
// members, so the quadratic scan beats a map.
func checkIDs(ids []uint64) error {
	for i, id := range ids {
		if id == raftpb.None {
			return fmt.Errorf("%w: member ID 0", ErrInvalid)
		}
		if slices.Contains(ids[:i], id) {
			return fmt.Errorf("%w: member %d listed twice", ErrInvalid, id)
		}
	}
	return nil
}

// Plan returns the change that takes the non-joint configuration cur to the
// target with the given voters and learners: ConfChangeSimple when the voter
// set stays the same, ConfChangeEnterJoint otherwise. It refuses a target
// that is not a valid configuration, that demotes a current voter straight
// to learner (remove it, then add it back as a learner), or that changes
// nothing, and a cur that is joint.
func Plan(cur raftpb.ConfState, voters, learners []uint64) (raftpb.ConfChangeKind, error) {
	if cur.IsJoint() {
		return 0, fmt.Errorf("%w: the configuration is joint", ErrInvalid)
	}
	target := raftpb.ConfState{Voters: voters, Learners: learners}
	if err := Validate(target); err != nil {
		return 0, err
	}
	for _, id := range learners {
		if slices.Contains(cur.Voters, id) {
			return 0, fmt.Errorf("%w: voter %d cannot become a learner directly; remove it first", ErrInvalid, id)
		}
	}
	switch {
	case !sameSet(voters, cur.Voters):
		return raftpb.ConfChangeEnterJoint, nil
	case !sameSet(learners, cur.Learners):
		return raftpb.ConfChangeSimple, nil
	}
	return 0, fmt.Errorf("%w: the target equals the current configuration", ErrInvalid)
}

// Apply returns the configuration that results from cc taking effect on
// prev, with every list sorted and owned by the caller:
//
//   - Simple: exactly cc's voters and learners, from any prev (the unsafe
//     reset may follow a joint configuration).
//   - EnterJoint: cc's voters incoming, prev's voters outgoing, cc's
//     learners; prev must not be joint and must have voters.
//   - LeaveJoint: prev without its outgoing half; prev must be joint.
//
// An error means cc cannot follow prev; the core then leaves the
// configuration as it was, so every node that reads the same log reaches
// the same configuration either way.
func Apply(prev raftpb.ConfState, cc *raftpb.ConfChange) (raftpb.ConfState, error) {
	var next raftpb.ConfState
	switch cc.Kind {
	case raftpb.ConfChangeSimple:
		next = raftpb.ConfState{Voters: cc.Voters, Learners: cc.Learners}
	case raftpb.ConfChangeEnterJoint:
		if prev.IsJoint() {
			return prev, fmt.Errorf("%w: entering a joint configuration from the joint %v", ErrInvalid, prev)
		}
		if len(prev.Voters) == 0 {
			return prev, fmt.Errorf("%w: entering a joint configuration from one without voters", ErrInvalid)
		}
		next = raftpb.ConfState{Voters: cc.Voters, VotersOutgoing: prev.Voters, Learners: cc.Learners}
	case raftpb.ConfChangeLeaveJoint:
		if !prev.IsJoint() {
			return prev, fmt.Errorf("%w: leaving a joint configuration from the non-joint %v", ErrInvalid, prev)
		}
		next = raftpb.ConfState{Voters: prev.Voters, Learners: prev.Learners}
	default:
		return prev, fmt.Errorf("%w: unknown kind %s", ErrInvalid, cc.Kind)
	}
	if err := Validate(next); err != nil {
		return prev, err
	}
	return sorted(next), nil
}

// sorted returns a deep copy of cs with every list sorted and empty lists
// nil, so that equal configurations compare equal field by field.
func sorted(cs raftpb.ConfState) raftpb.ConfState {
	sortedCopy := func(l []uint64) []uint64 {
		if len(l) == 0 {
			return nil
		}
		c := slices.Clone(l)
		slices.Sort(c)
		return c
	}
	return raftpb.ConfState{
		Voters:         sortedCopy(cs.Voters),
		VotersOutgoing: sortedCopy(cs.VotersOutgoing),
		Learners:       sortedCopy(cs.Learners),
	}
}

func sameSet(a, b []uint64) bool {
	return raftpb.ConfState{Voters: a}.Equal(raftpb.ConfState{Voters: b})
}

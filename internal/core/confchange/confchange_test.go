package confchange

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
)

func cs(voters, outgoing, learners []uint64) raftpb.ConfState {
	return raftpb.ConfState{Voters: voters, VotersOutgoing: outgoing, Learners: learners}
}

func ids(v ...uint64) []uint64 { return v }

func TestPlan(t *testing.T) {
	cur := cs(ids(1, 2, 3), nil, ids(4))
	tests := []struct {
		name             string
		cur              raftpb.ConfState
		voters, learners []uint64
		want             raftpb.ConfChangeKind
		err              string // fragment; "" for success
	}{
		{"add voter", cur, ids(1, 2, 3, 5), ids(4), raftpb.ConfChangeEnterJoint, ""},
		{"remove voter", cur, ids(1, 2), ids(4), raftpb.ConfChangeEnterJoint, ""},
		{"replace every voter", cur, ids(5, 6, 7), nil, raftpb.ConfChangeEnterJoint, ""},
		{"promote learner", cur, ids(1, 2, 3, 4), nil, raftpb.ConfChangeEnterJoint, ""},
		{"add learner", cur, ids(3, 2, 1), ids(4, 5), raftpb.ConfChangeSimple, ""},
		{"remove learner", cur, ids(1, 2, 3), nil, raftpb.ConfChangeSimple, ""},
		{"nothing changes", cur, ids(3, 1, 2), ids(4), 0, "equals the current"},
		{"no voters", cur, nil, ids(4), 0, "no voters"},
		{"zero voter", cur, ids(1, 0), nil, 0, "member ID 0"},
		{"zero learner", cur, ids(1, 2, 3), ids(0), 0, "member ID 0"},
		{"voter twice", cur, ids(1, 2, 2), nil, 0, "listed twice"},
		{"voter and learner", cur, ids(1, 2, 5), ids(5), 0, "both voter and learner"},
		{"demote voter", cur, ids(1, 2), ids(3, 4), 0, "cannot become a learner directly"},
		{"joint", cs(ids(1, 2), ids(1, 2, 3), nil), ids(1), nil, 0, "joint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Plan(tc.cur, tc.voters, tc.learners)
			if tc.err != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Plan = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	simple := func(v, l []uint64) *raftpb.ConfChange {
		return &raftpb.ConfChange{Kind: raftpb.ConfChangeSimple, Voters: v, Learners: l}
	}
	enter := func(v, l []uint64) *raftpb.ConfChange {
		return &raftpb.ConfChange{Kind: raftpb.ConfChangeEnterJoint, Voters: v, Learners: l}
	}
	leave := &raftpb.ConfChange{Kind: raftpb.ConfChangeLeaveJoint}
	tests := []struct {
		name string
		prev raftpb.ConfState
		cc   *raftpb.ConfChange
		want raftpb.ConfState
		err  bool
	}{
		{"simple", cs(ids(1, 2, 3), nil, nil), simple(ids(3, 1, 2), ids(5, 4)), cs(ids(1, 2, 3), nil, ids(4, 5)), false},
		{"simple after joint (reset)", cs(ids(1), ids(1, 2), nil), simple(ids(2), nil), cs(ids(2), nil, nil), false},
		{"simple from nothing", raftpb.ConfState{}, simple(ids(1), nil), cs(ids(1), nil, nil), false},
		{"enter", cs(ids(1, 2, 3), nil, ids(4)), enter(ids(4, 2, 3), nil), cs(ids(2, 3, 4), ids(1, 2, 3), nil), false},
		{"leave", cs(ids(2, 3, 4), ids(1, 2, 3), ids(5)), leave, cs(ids(2, 3, 4), nil, ids(5)), false},
		{"enter from joint", cs(ids(1), ids(1, 2), nil), enter(ids(3), nil), cs(ids(1), ids(1, 2), nil), true},
		{"enter from nothing", raftpb.ConfState{}, enter(ids(3), nil), raftpb.ConfState{}, true},
		{"leave when not joint", cs(ids(1, 2), nil, nil), leave, cs(ids(1, 2), nil, nil), true},
		{"simple without voters", cs(ids(1), nil, nil), simple(nil, ids(2)), cs(ids(1), nil, nil), true},
		{"learner is an outgoing voter", cs(ids(1, 2), nil, nil), enter(ids(1), ids(2)), cs(ids(1, 2), nil, nil), true},
		{"unknown kind", cs(ids(1), nil, nil), &raftpb.ConfChange{Kind: 7, Voters: ids(2)}, cs(ids(1), nil, nil), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Apply(tc.prev, tc.cc)
			if (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("err = %v, want error: %v", err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Apply = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestApplyDoesNotAlias: the result owns its lists, so the caller may keep
// it while the entry's decoded change is reused.
func TestApplyDoesNotAlias(t *testing.T) {
	cc := &raftpb.ConfChange{Kind: raftpb.ConfChangeSimple, Voters: ids(1, 2), Learners: ids(3)}
	got, err := Apply(raftpb.ConfState{}, cc)
	if err != nil {
		t.Fatal(err)
	}
	cc.Voters[0], cc.Learners[0] = 9, 9
	if got.Voters[0] != 1 || got.Learners[0] != 3 {
		t.Fatalf("Apply's result aliases the change: %+v", got)
	}
}

// TestPlanThenApply walks a group through add, promote and remove and checks
// that each planned change applies to the target.
func TestPlanThenApply(t *testing.T) {
	cur := cs(ids(1, 2, 3), nil, nil)
	for _, step := range []struct{ voters, learners []uint64 }{
		{ids(1, 2, 3), ids(4)},
		{ids(1, 2, 3, 4), nil},
		{ids(2, 3, 4), nil},
		{ids(2, 3, 4), ids(5)},
	} {
		kind, err := Plan(cur, step.voters, step.learners)
		if err != nil {
			t.Fatalf("Plan(%v, %v): %v", cur, step, err)
		}
		cur, err = Apply(cur, &raftpb.ConfChange{Kind: kind, Voters: step.voters, Learners: step.learners})
		if err != nil {
			t.Fatal(err)
		}
		if kind == raftpb.ConfChangeEnterJoint {
			if cur, err = Apply(cur, &raftpb.ConfChange{Kind: raftpb.ConfChangeLeaveJoint}); err != nil {
				t.Fatal(err)
			}
		}
		if want := cs(step.voters, nil, step.learners); !cur.Equal(want) {
			t.Fatalf("reached %+v, want %+v", cur, want)
		}
	}
}

package tracker

import (
	"slices"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
)

// TestApplyConfRetaining: peers that leave keep their Progress, are listed
// and marked non-voting until dropped; a later plain ApplyConf or
// DropRetained forgets them, and one that comes back is a member again.
func TestApplyConfRetaining(t *testing.T) {
	tr := NewProgressTracker(4, 0)
	if err := tr.ApplyConf(raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}, 10); err != nil {
		t.Fatal(err)
	}
	tr.Progress[3].Match = 7
	old := tr.IDs()
	if err := tr.ApplyConfRetaining(raftpb.ConfState{Voters: []uint64{1, 2}}, 11); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(old, []uint64{1, 2, 3, 4}) {
		t.Fatalf("the previous IDs slice was rewritten: %v", old)
	}
	if got := tr.IDs(); !slices.Equal(got, []uint64{1, 2, 3, 4}) {
		t.Fatalf("IDs %v, want the retained peers listed", got)
	}
	for _, id := range []uint64{3, 4} {
		if !tr.IsRetained(id) || !tr.Progress[id].IsLearner || tr.IsVoter(id) {
			t.Fatalf("peer %d: retained %v learner %v voter %v", id, tr.IsRetained(id), tr.Progress[id].IsLearner, tr.IsVoter(id))
		}
	}
	if tr.Progress[3].Match != 7 {
		t.Fatal("a retained peer lost its progress")
	}
	tr.Progress[1].Match, tr.Progress[2].Match = 9, 9
	if c := tr.Committed(); c != 9 {
		t.Fatalf("committed %d, want 9: retained peers count in no quorum", c)
	}
	if cs := tr.ConfState(); !cs.Equal(raftpb.ConfState{Voters: []uint64{1, 2}}) {
		t.Fatalf("ConfState %+v lists retained peers", cs)
	}

	// 3 comes back as a voter; 4 stays retained.
	if err := tr.ApplyConfRetaining(raftpb.ConfState{Voters: []uint64{1, 2, 3}}, 12); err != nil {
		t.Fatal(err)
	}
	if tr.IsRetained(3) || tr.Progress[3].IsLearner || !tr.IsRetained(4) {
		t.Fatal("a returning peer is still retained, or a retained one was forgotten")
	}
	tr.DropRetained()
	if got := tr.IDs(); !slices.Equal(got, []uint64{1, 2, 3}) || tr.Progress[4] != nil || tr.IsRetained(4) {
		t.Fatalf("after DropRetained: IDs %v, progress of 4 %v", got, tr.Progress[4])
	}

	if err := tr.ApplyConfRetaining(raftpb.ConfState{Voters: []uint64{1}}, 13); err != nil {
		t.Fatal(err)
	}
	if err := tr.ApplyConf(raftpb.ConfState{Voters: []uint64{1}}, 13); err != nil {
		t.Fatal(err)
	}
	if got := tr.IDs(); !slices.Equal(got, []uint64{1}) || len(tr.Progress) != 1 {
		t.Fatalf("ApplyConf kept retained peers: IDs %v", got)
	}
}

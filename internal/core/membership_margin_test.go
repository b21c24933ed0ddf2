package core

import (
	"math/rand/v2"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// marginStorage has a snapshot at snapIndex with configuration snapConf,
// while its log still holds the entries from 1 (the runtime keeps
// SnapshotMarginEntries behind a snapshot).
type marginStorage struct {
	*storage.MemoryStorage
	snapConf  raftpb.ConfState
	snapIndex uint64
}

func (s marginStorage) InitialState() (raftpb.HardState, raftpb.ConfState, error) {
	hs, _, err := s.MemoryStorage.InitialState()
	hs.Commit = max(hs.Commit, s.snapIndex)
	return hs, s.snapConf.Clone(), err
}

func ccEntry(i uint64, cc raftpb.ConfChange) raftpb.Entry {
	return raftpb.Entry{Index: i, Term: 1, Type: raftpb.EntryConfChange, Data: cc.MarshalAppend(nil)}
}

func (s marginStorage) Snapshot() (raftpb.SnapshotMeta, error) {
	return raftpb.SnapshotMeta{Index: s.snapIndex, Term: 1, ConfState: s.snapConf.Clone()}, nil
}

// A restart starts from the snapshot's configuration and replays only the
// configuration entries after it, though the log still holds earlier ones:
// replaying a joint transition the snapshot includes gave another
// configuration than the peers' (and a joint one marked bootstrapped, which
// a leader never leaves). Found by review.
func TestConfigurationAfterRestartWithCompactionMargin(t *testing.T) {
	c0 := confState(ids(1, 2, 3), nil)
	enter1 := raftpb.ConfChange{Kind: raftpb.ConfChangeEnterJoint, Voters: ids(1, 2, 3, 4)}
	leave := raftpb.ConfChange{Kind: raftpb.ConfChangeLeaveJoint}
	enter2 := raftpb.ConfChange{Kind: raftpb.ConfChangeEnterJoint, Voters: ids(1, 2, 4)}
	for _, tc := range []struct {
		name     string
		ents     []raftpb.Entry
		snapConf raftpb.ConfState
	}{
		{"snapshot mid-joint, earlier change in margin", []raftpb.Entry{
			{Index: 1, Term: 1}, ccEntry(2, enter1), ccEntry(3, leave), ccEntry(4, enter2)},
			jointConf(ids(1, 2, 4), ids(1, 2, 3, 4), nil)},
		{"snapshot mid-joint, log from 1", []raftpb.Entry{
			{Index: 1, Term: 1}, ccEntry(2, enter1), {Index: 3, Term: 1}},
			jointConf(ids(1, 2, 3, 4), ids(1, 2, 3), nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := storage.NewMemoryStorageWithConf(c0)
			if err := st.Append(tc.ents); err != nil {
				t.Fatal(err)
			}
			last := tc.ents[len(tc.ents)-1].Index
			st.SetHardState(raftpb.HardState{Term: 1, Commit: last})
			ms := marginStorage{st, tc.snapConf, last}
			r, err := New(Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: ms, Applied: last, Rand: rand.New(rand.NewPCG(1, 2))})
			if err != nil {
				t.Fatal(err)
			}
			got := r.Status().Config
			if !got.Equal(tc.snapConf) {
				t.Errorf("configuration %+v after restart, the snapshot's is %+v", got, tc.snapConf)
			}
			if r.conf.bootstrapped && got.IsJoint() {
				t.Errorf("joint conf from a snapshot marked bootstrapped: the leader will never leave it")
			}
		})
	}
}

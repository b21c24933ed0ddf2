package core

import (
	"slices"
	"testing"

	"github.com/raftkit/raftkit/internal/core/tracker"
	"github.com/raftkit/raftkit/raftpb"
)

// TestSnapshotToFollowerBehindCompaction: a follower isolated while the
// leader compacts away the entries it lacks gets the snapshot after the
// heal, installs it, and then receives the entries that follow.
func TestSnapshotToFollowerBehindCompaction(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.campaign(1)
	l := nw.node(1)
	nw.isolate(3)
	nw.proposeN(1, "a", 10)
	nw.stabilize()
	if got := entryIndexes(nw.nodes[1].applied); len(got) != 11 || got[10] != 11 {
		t.Fatalf("leader applied %v, want 1..11", got)
	}
	if err := nw.nodes[1].st.Compact(11); err != nil {
		t.Fatal(err)
	}
	nw.heal()

	// The next append reveals that node 3 is behind; what it needs is gone.
	if _, _, err := l.Propose([]byte("b")); err != nil {
		t.Fatal(err)
	}
	isSnap := func(m raftpb.Message) bool { return m.Type == raftpb.MsgSnap }
	snaps := nw.stabilizeHold(isSnap)
	if len(snaps) != 1 || snaps[0].To != 3 || snaps[0].Snapshot.Index != 11 || snaps[0].Snapshot.Term != 1 ||
		!snaps[0].Snapshot.ConfState.Equal(majority3) {
		t.Fatalf("sent %v, want one snapshot at 1/11 with voters 1 2 3 to node 3", snaps)
	}
	pr := l.trk.Progress[3]
	if pr.State != tracker.StateSnapshot || pr.PendingSnapshot != 11 {
		t.Fatalf("leader's progress for 3: %v, want Snapshot pending 11", pr)
	}
	// Nothing else goes to node 3 while the snapshot is in flight, not even
	// after a heartbeat answer.
	mark := len(nw.trace)
	if _, _, err := l.Propose([]byte("c")); err != nil {
		t.Fatal(err)
	}
	l.Tick()
	if got := nw.stabilizeHold(isSnap); len(got) != 0 {
		t.Fatalf("sent %v while the snapshot is in flight", got)
	}
	if got := filterMsgs(nw.trace[mark:], raftpb.MsgApp, 1, 3); len(got) != 0 {
		t.Fatalf("sent %v to a follower in StateSnapshot", got)
	}
	if got := filterMsgs(nw.trace[mark:], raftpb.MsgHeartbeatResp, 3, 1); len(got) != 1 {
		t.Fatalf("want one heartbeat answer from 3, got %v", got)
	}

	nw.deliver(snaps[0])
	f := nw.node(3)
	rd := nw.takeReady(3)
	if rd.Snapshot == nil || rd.Snapshot.Index != 11 || rd.Snapshot.Term != 1 {
		t.Fatalf("follower Ready snapshot %v, want 1/11", rd.Snapshot)
	}
	if len(rd.Entries) != 0 || len(rd.CommittedEntries) != 0 || rd.HardState.Commit != 11 {
		t.Fatalf("follower Ready: entries %v committed %v hs %+v", rd.Entries, rd.CommittedEntries, rd.HardState)
	}
	if len(rd.Messages) != 0 || len(rd.MessagesAfterPersist) != 1 ||
		rd.MessagesAfterPersist[0].Type != raftpb.MsgAppResp || rd.MessagesAfterPersist[0].Index != 11 ||
		rd.MessagesAfterPersist[0].Reject {
		t.Fatalf("follower must acknowledge 11 once the snapshot is durable: now=%v after=%v",
			rd.Messages, rd.MessagesAfterPersist)
	}
	nw.persistReady(3, rd)
	if fi := f.log.firstIndex(); fi != 12 {
		t.Fatalf("follower first index %d, want 12", fi)
	}
	nw.stabilize()
	if pr.State != tracker.StateReplicate || pr.Match != 13 || pr.Next != 14 {
		t.Fatalf("leader's progress for 3: %v, want Replicate match=13 next=14", pr)
	}
	want := []string{"1/12:b", "1/13:c"}
	for _, id := range []uint64{1, 3} {
		if got := nw.logOf(id); !slices.Equal(got, want) {
			t.Fatalf("node %d log %v, want %v", id, got, want)
		}
	}
	if c := f.log.committed; c != 13 {
		t.Fatalf("follower committed %d, want 13", c)
	}
	if got := nw.nodes[3].applied; len(got) != 2 || string(got[0].Data) != "b" || string(got[1].Data) != "c" {
		t.Fatalf("follower applied %v after the snapshot, want b and c", got)
	}
}

// TestStaleSnapshotNotInstalled: a snapshot that adds nothing to the
// follower's log is not installed; the follower answers with its commit
// index (advanced to the snapshot index when it holds that entry).
func TestStaleSnapshotNotInstalled(t *testing.T) {
	// setup: three nodes with entries 1..6 committed everywhere, and 7..8
	// on node 3 uncommitted as far as node 3 knows.
	setup := func(t *testing.T) *network {
		nw := newNetwork(t, 3)
		nw.campaign(1)
		nw.proposeN(1, "a", 5)
		nw.stabilize()
		nw.isolate(2)
		nw.drop = func(m raftpb.Message) bool {
			return m.To == 3 && m.Type == raftpb.MsgApp && len(m.Entries) == 0
		}
		nw.proposeN(1, "b", 2)
		nw.stabilize()
		nw.drop = nil
		if f := nw.node(3); f.log.committed != 6 || f.log.lastIndex() != 8 {
			t.Fatalf("node 3 committed %d last %d, want 6 and 8", f.log.committed, f.log.lastIndex())
		}
		return nw
	}
	for _, tc := range []struct {
		name       string
		compact    uint64 // node 3 compacts its own log up to here first
		snap       raftpb.SnapshotMeta
		wantCommit uint64
		wantApply  []uint64
	}{
		{"below commit", 0, raftpb.SnapshotMeta{Index: 4, Term: 1, ConfState: majority3}, 6, nil},
		{"at commit", 0, raftpb.SnapshotMeta{Index: 6, Term: 1, ConfState: majority3}, 6, nil},
		{"below own compaction", 5, raftpb.SnapshotMeta{Index: 4, Term: 1, ConfState: majority3}, 6, nil},
		{"entry already held", 0, raftpb.SnapshotMeta{Index: 8, Term: 1, ConfState: majority3}, 8, []uint64{7, 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nw := setup(t)
			f := nw.node(3)
			firstBefore := uint64(1)
			if tc.compact > 0 {
				if err := nw.nodes[3].st.Compact(tc.compact); err != nil {
					t.Fatal(err)
				}
				firstBefore = tc.compact + 1
			}
			before := nw.logOf(3)
			snap := tc.snap
			if err := f.Step(raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 3, Term: 1, Snapshot: &snap}); err != nil {
				t.Fatal(err)
			}
			rd := nw.takeReady(3)
			if rd.Snapshot != nil {
				t.Fatalf("stale snapshot %v installed", rd.Snapshot)
			}
			if len(rd.MessagesAfterPersist) != 1 || rd.MessagesAfterPersist[0].Type != raftpb.MsgAppResp ||
				rd.MessagesAfterPersist[0].Reject || rd.MessagesAfterPersist[0].Index != tc.wantCommit {
				t.Fatalf("answer %v, want an acknowledgement of %d", rd.MessagesAfterPersist, tc.wantCommit)
			}
			if got := entryIndexes(rd.CommittedEntries); !slices.Equal(got, tc.wantApply) {
				t.Fatalf("handed out %v to apply, want %v", got, tc.wantApply)
			}
			nw.persistReady(3, rd)
			if got := nw.logOf(3); !slices.Equal(got, before) {
				t.Fatalf("log changed from %v to %v", before, got)
			}
			if fi := f.log.firstIndex(); fi != firstBefore {
				t.Fatalf("first index %d, want %d", fi, firstBefore)
			}
			if c := f.log.committed; c != tc.wantCommit {
				t.Fatalf("committed %d, want %d", c, tc.wantCommit)
			}
		})
	}
}

// TestSnapshotAfterHeartbeat: a follower cut off since the election (its
// progress probing) is sent the snapshot as soon as it answers a heartbeat
// after the heal, without any new proposal.
func TestSnapshotAfterHeartbeat(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.isolate(3)
	nw.campaign(1)
	nw.requireRole(1, RoleLeader, 1)
	nw.proposeN(1, "a", 5)
	nw.stabilize()
	if err := nw.nodes[1].st.Compact(4); err != nil {
		t.Fatal(err)
	}
	nw.heal()
	mark := len(nw.trace)
	nw.tick(1, 1)
	snaps := filterMsgs(nw.trace[mark:], raftpb.MsgSnap, 1, 3)
	if len(snaps) != 1 || snaps[0].Snapshot.Index != 4 {
		t.Fatalf("sent %v, want one snapshot at index 4", snaps)
	}
	if pr := nw.node(1).trk.Progress[3]; pr.State != tracker.StateReplicate || pr.Match != 6 {
		t.Fatalf("leader's progress for 3: %v, want Replicate match=6", pr)
	}
	nw.requireRole(3, RoleFollower, 1)
	if got, want := nw.logOf(3), []string{"1/5:a3", "1/6:a4"}; !slices.Equal(got, want) {
		t.Fatalf("node 3 log %v, want %v", got, want)
	}
	if c := nw.node(3).log.committed; c != 6 {
		t.Fatalf("node 3 committed %d, want 6", c)
	}
}

// TestSnapshotReportedFailedIsResent: when the runtime reports that sending
// the snapshot failed, the leader probes again on the next heartbeat answer
// and, the entries still being compacted, sends the snapshot again.
func TestSnapshotReportedFailedIsResent(t *testing.T) {
	nw, l, isSnap := snapshotHeldForNode3(t)
	pr := l.trk.Progress[3]
	if pr.State != tracker.StateSnapshot {
		t.Fatalf("progress %v, want Snapshot", pr)
	}
	l.ReportSnapshot(3, false)
	if pr.State != tracker.StateProbe || !pr.ProbeSent || pr.Match != 0 {
		t.Fatalf("after a failed snapshot: %v probeSent=%v, want Probe waiting for a heartbeat answer", pr, pr.ProbeSent)
	}
	l.Tick()
	again := nw.stabilizeHold(isSnap)
	if len(again) != 1 || again[0].Snapshot.Index != 4 {
		t.Fatalf("held %v, want the snapshot again", again)
	}
	nw.deliverHold(holdNone, again...)
	if pr.State != tracker.StateReplicate || pr.Match != 6 {
		t.Fatalf("progress %v, want Replicate match=6", pr)
	}
	nw.requireRole(3, RoleFollower, 1)
}

// TestSnapStatusRejectIsResent: a follower's MsgSnapStatus rejection (its
// runtime could not fetch the files) acts as a failed report: the leader
// probes again and resends the snapshot; a non-rejecting status changes
// nothing.
func TestSnapStatusRejectIsResent(t *testing.T) {
	nw, l, isSnap := snapshotHeldForNode3(t)
	pr := l.trk.Progress[3]
	status := raftpb.Message{Type: raftpb.MsgSnapStatus, From: 3, To: 1, Term: l.Term()}
	if err := l.Step(status); err != nil || pr.State != tracker.StateSnapshot {
		t.Fatalf("a non-rejecting status: %v, progress %v; want no change", err, pr)
	}
	status.Reject = true
	if err := l.Step(status); err != nil || pr.State != tracker.StateProbe {
		t.Fatalf("a rejection: %v, progress %v; want Probe", err, pr)
	}
	l.Tick()
	if again := nw.stabilizeHold(isSnap); len(again) != 1 {
		t.Fatalf("held %v, want the snapshot again", again)
	}
}

// snapshotHeldForNode3 compacts the leader (node 1) past node 3, which
// missed entries 1-5 while isolated, heals, and holds back the snapshot
// the leader then sends; isSnap matches it.
func snapshotHeldForNode3(t *testing.T) (nw *network, l *Raft, isSnap func(raftpb.Message) bool) {
	t.Helper()
	nw = newNetwork(t, 3)
	nw.isolate(3)
	nw.campaign(1)
	nw.proposeN(1, "a", 5)
	nw.stabilize()
	if err := nw.nodes[1].st.Compact(4); err != nil {
		t.Fatal(err)
	}
	nw.heal()
	l = nw.node(1)
	isSnap = func(m raftpb.Message) bool { return m.Type == raftpb.MsgSnap }
	l.Tick()
	if got := nw.stabilizeHold(isSnap); len(got) != 1 {
		t.Fatalf("held %v, want one snapshot", got)
	}
	return nw, l, isSnap
}

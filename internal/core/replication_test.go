package core

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/raftkit/raftkit/internal/core/tracker"
	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// figure7Leader is the leader's log of figure 7 of the Raft paper (terms of
// indexes 1..10).
var figure7Leader = []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6}

// TestLogRepairConflictHint elects the leader of figure 7 (and larger
// variants) over one follower whose log diverges, and checks that the
// follower ends with the leader's log after at most one rejection per term
// the follower holds that the leader does not, plus one when its log is
// shorter than the leader's first probe. The rejection counts are exact: any
// change of the hint arithmetic has to be looked at.
func TestLogRepairConflictHint(t *testing.T) {
	big := termsOf(1, 3, 4, 120) // 123 entries: 3 of term 1 then 120 of term 4
	for _, tc := range []struct {
		name     string
		leader   []uint64
		follower []uint64
		// bound is the number of diverging terms, plus one if the follower's
		// log is shorter than the leader's.
		bound, want int
	}{
		{"a: missing one entry", figure7Leader, []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6}, 1, 1},
		{"b: missing many entries", figure7Leader, []uint64{1, 1, 1, 4}, 1, 1},
		{"c: one extra entry", figure7Leader, []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}, 0, 0},
		{"d: extra entries of a higher term", figure7Leader, []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, 1, 0},
		{"e: shorter, with a term the leader has", figure7Leader, []uint64{1, 1, 1, 4, 4, 4, 4}, 2, 2},
		{"f: terms the leader lacks", figure7Leader, []uint64{1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 2, 2},
		{"100 entries in 2 terms, shorter", big, termsOf(1, 3, 2, 50, 3, 50), 3, 3},
		{"130 entries in 2 terms, longer", big, termsOf(1, 3, 2, 50, 3, 80), 2, 2},
		{"200 entries in 1 term, longer", big, termsOf(1, 3, 3, 200), 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want > tc.bound {
				t.Fatalf("bad case: want %d > bound %d", tc.want, tc.bound)
			}
			// Node 3 holds the leader's log too, so the leader wins even
			// against a follower whose log is more up to date (case d).
			term := max(slices.Max(tc.leader), slices.Max(tc.follower))
			nw := newNetworkWithLogs(t, raftpb.ConfState{Voters: []uint64{1, 2, 3}},
				map[uint64][]uint64{1: tc.leader, 2: tc.follower, 3: tc.leader}, term, 3)
			nw.campaign(1)
			nw.requireRole(1, RoleLeader, term+1)
			nw.requireSameLogs(1)
			if got := nw.rejections(2); got != tc.want {
				t.Fatalf("follower sent %d rejections, want %d (bound %d)\n%s", got, tc.want, tc.bound, traceOf(nw, 2))
			}
			if got := nw.rejections(3); got != 0 {
				t.Fatalf("in-sync node 3 sent %d rejections", got)
			}
			last := uint64(len(tc.leader)) + 1
			for _, id := range nw.ids {
				if c := nw.node(id).log.committed; c != last {
					t.Fatalf("node %d committed %d, want %d", id, c, last)
				}
			}
		})
	}
}

// traceOf renders the delivered MsgApp / MsgAppResp exchanged with id.
func traceOf(nw *network, id uint64) string {
	var b strings.Builder
	for _, m := range nw.trace {
		if (m.Type == raftpb.MsgApp || m.Type == raftpb.MsgAppResp) && (m.From == id || m.To == id) {
			fmt.Fprintln(&b, m)
		}
	}
	return b.String()
}

// TestFollowerRejectHint checks the conflict hint a follower sends back.
func TestFollowerRejectHint(t *testing.T) {
	for _, tc := range []struct {
		name        string
		log         []uint64
		commit      uint64
		index, term uint64 // the leader's probe: previous entry
		ents        []raftpb.Entry
		want        raftpb.Message // Reject, Index, LogTerm, RejectHint
	}{
		{
			name: "log shorter than the probe", log: []uint64{1, 1, 1, 4}, commit: 3,
			index: 10, term: 6,
			want: raftpb.Message{Reject: true, Index: 10, LogTerm: 0, RejectHint: 5},
		},
		{
			name: "conflicting entry: term and first index of that term", log: []uint64{1, 1, 1, 4, 4, 4, 4}, commit: 3,
			index: 7, term: 5,
			want: raftpb.Message{Reject: true, Index: 7, LogTerm: 4, RejectHint: 4},
		},
		{
			name: "terms the leader lacks", log: figure7F(), commit: 3,
			index: 10, term: 6,
			want: raftpb.Message{Reject: true, Index: 10, LogTerm: 3, RejectHint: 7},
		},
		{
			name: "extra entries of a higher term", log: []uint64{1, 1, 1, 4, 4, 5, 5, 7, 7, 7}, commit: 3,
			index: 8, term: 6,
			want: raftpb.Message{Reject: true, Index: 8, LogTerm: 7, RejectHint: 8},
		},
		{
			name: "hint never below commit+1", log: []uint64{1, 1, 1, 1, 1, 1}, commit: 4,
			index: 6, term: 2,
			want: raftpb.Message{Reject: true, Index: 6, LogTerm: 1, RejectHint: 5},
		},
		{
			name: "probe below commit is acknowledged up to commit", log: []uint64{1, 1, 1, 1, 1}, commit: 4,
			index: 2, term: 1,
			want: raftpb.Message{Index: 4},
		},
		{
			name: "matching probe truncates extra entries of a higher term", log: []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},
			commit: 3, index: 10, term: 6, ents: []raftpb.Entry{{Index: 11, Term: 8}},
			want: raftpb.Message{Index: 11},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRaftWithLog(t, 2, tc.log, 7, tc.commit)
			r.Ready() // hand out the committed prefix
			err := r.Step(raftpb.Message{
				Type: raftpb.MsgApp, From: 1, To: 2, Term: 8,
				Index: tc.index, LogTerm: tc.term, Entries: tc.ents, Commit: tc.commit,
			})
			if err != nil {
				t.Fatal(err)
			}
			rd := r.Ready()
			if len(rd.Messages) != 0 || len(rd.MessagesAfterPersist) != 1 {
				t.Fatalf("want one response after persistence, got now=%v after=%v", rd.Messages, rd.MessagesAfterPersist)
			}
			got := rd.MessagesAfterPersist[0]
			want := tc.want
			want.Type, want.From, want.To, want.Term = raftpb.MsgAppResp, 2, 1, 8
			if got.Type != want.Type || got.From != want.From || got.To != want.To || got.Term != want.Term ||
				got.Reject != want.Reject || got.Index != want.Index || got.LogTerm != want.LogTerm ||
				got.RejectHint != want.RejectHint {
				t.Fatalf("response %v, want %v", got, want)
			}
			if len(tc.ents) > 0 {
				if r.log.lastIndex() != tc.ents[len(tc.ents)-1].Index || r.log.lastTerm() != 8 {
					t.Fatalf("log not truncated: last %d/%d", r.log.lastTerm(), r.log.lastIndex())
				}
			}
		})
	}
}

func figure7F() []uint64 { return []uint64{1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3} }

// newRaftWithLog returns a core (member of voters 1, 2, 3) whose durable log
// has the given terms, with a hard state in term and commit.
func newRaftWithLog(t *testing.T, id uint64, terms []uint64, term, commit uint64) *Raft {
	t.Helper()
	st := storage.NewMemoryStorageWithConf(raftpb.ConfState{Voters: []uint64{1, 2, 3}})
	ents := make([]raftpb.Entry, len(terms))
	for i, tm := range terms {
		ents[i] = raftpb.Entry{Index: uint64(i + 1), Term: tm}
	}
	if err := st.Append(ents); err != nil {
		t.Fatal(err)
	}
	st.SetHardState(raftpb.HardState{Term: term, Commit: commit})
	return newTestRaft(t, id, st)
}

// TestLeaderNextIndexFromHint checks how the leader turns a conflict hint
// into the next index to probe.
func TestLeaderNextIndexFromHint(t *testing.T) {
	for _, tc := range []struct {
		name    string
		compact uint64 // compact the leader's log up to here first
		m       raftpb.Message
		want    uint64
	}{
		{name: "follower log shorter than the probe", m: raftpb.Message{Index: 10, LogTerm: 0, RejectHint: 5}, want: 5},
		{name: "leader has the conflict term: resume after its last entry of it", m: raftpb.Message{Index: 7, LogTerm: 4, RejectHint: 4}, want: 6},
		{name: "leader has the conflict term, follower's run is longer", m: raftpb.Message{Index: 10, LogTerm: 4, RejectHint: 4}, want: 6},
		{name: "leader has the conflict term at the probe", m: raftpb.Message{Index: 10, LogTerm: 6, RejectHint: 8}, want: 11},
		{name: "follower has entries of terms the leader lacks", m: raftpb.Message{Index: 10, LogTerm: 3, RejectHint: 7}, want: 7},
		{name: "follower has extra entries of a higher term", m: raftpb.Message{Index: 8, LogTerm: 7, RejectHint: 8}, want: 8},
		{name: "conflict term straddles the compaction point", compact: 5, m: raftpb.Message{Index: 7, LogTerm: 4, RejectHint: 4}, want: 6},
		{name: "probe below the compaction point", compact: 5, m: raftpb.Message{Index: 3, LogTerm: 1, RejectHint: 2}, want: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := storage.NewMemoryStorageWithConf(raftpb.ConfState{Voters: []uint64{1, 2, 3}})
			ents := make([]raftpb.Entry, len(figure7Leader))
			for i, tm := range figure7Leader {
				ents[i] = raftpb.Entry{Index: uint64(i + 1), Term: tm}
			}
			if err := st.Append(ents); err != nil {
				t.Fatal(err)
			}
			st.SetHardState(raftpb.HardState{Term: 8, Commit: 10})
			if tc.compact > 0 {
				if err := st.Compact(tc.compact); err != nil {
					t.Fatal(err)
				}
			}
			r := newTestRaft(t, 1, st)
			m := tc.m
			m.Type, m.From, m.To, m.Term, m.Reject = raftpb.MsgAppResp, 2, 1, 8, true
			if got := r.nextIndexFromHint(&m); got != tc.want {
				t.Fatalf("nextIndexFromHint(%v) = %d, want %d", m, got, tc.want)
			}
		})
	}
}

// TestLogRepairAfterDivergentLeaders grows divergent logs the way a real
// cluster does, through partitions and crashes over several terms, then
// heals and checks that every log converges with few rejections.
//
//	term 1: node 1 replicates 50 entries to node 2 only;
//	term 2: node 2 is elected by 3, 4, 5 but its appends are lost; cut off,
//	        it appends 50 more entries alone (101 divergent entries, 2 terms);
//	term 3: node 3 is elected by 3, 4, 5 and commits 120 entries;
//	term 4: node 3 crashes and restarts, node 4 takes over with the long log,
//	        so its first probes land far beyond the divergence.
func TestLogRepairAfterDivergentLeaders(t *testing.T) {
	nw := newNetwork(t, 5)
	nw.campaign(1)
	nw.requireRole(1, RoleLeader, 1)

	nw.partition([]uint64{1, 2}, []uint64{3, 4, 5})
	nw.proposeN(1, "a", 50)
	nw.stabilize()
	if c := nw.node(1).log.committed; c != 1 {
		t.Fatalf("term-1 entries committed to %d without a quorum", c)
	}

	nw.heal()
	nw.isolate(1)
	nw.expireLease(3, 4, 5)
	nw.drop = func(m raftpb.Message) bool { return m.From == 2 && m.Type == raftpb.MsgApp }
	nw.campaign(2)
	nw.requireRole(2, RoleLeader, 2)
	nw.drop = nil
	nw.isolate(2)
	nw.proposeN(2, "b", 50)
	nw.stabilize()

	nw.campaign(3)
	nw.requireRole(3, RoleLeader, 3)
	nw.proposeN(3, "c", 120)
	nw.stabilize()

	nw.restart(3)
	nw.expireLease(5)
	nw.campaign(4)
	nw.requireRole(4, RoleLeader, 4)
	if got, want := nw.node(4).log.committed, uint64(123); got != want {
		t.Fatalf("node 4 committed %d, want %d", got, want)
	}
	if n := len(nw.logOf(1)); n != 51 {
		t.Fatalf("node 1 log has %d entries, want 51", n)
	}
	if n := len(nw.logOf(2)); n != 102 {
		t.Fatalf("node 2 log has %d entries, want 102", n)
	}

	nw.heal()
	before := len(nw.trace)
	nw.tick(4, 1) // one heartbeat round brings nodes 1 and 2 into term 4
	nw.requireSameLogs(4)
	for _, id := range nw.ids {
		role := RoleFollower
		if id == 4 {
			role = RoleLeader
		}
		nw.requireRole(id, role, 4)
		if c := nw.node(id).log.committed; c != 123 {
			t.Fatalf("node %d committed %d, want 123", id, c)
		}
		for _, e := range nw.nodes[id].applied {
			if len(e.Data) > 0 && e.Data[0] != 'c' {
				t.Fatalf("node %d applied an entry that was never committed: %v", id, e)
			}
		}
	}
	// Node 1: log too short, then one term (1) to skip. Node 2: log too
	// short, then two terms (2 and 1) to skip. Never one step per entry.
	for id, want := range map[uint64]int{1: 2, 2: 3, 3: 0, 5: 0} {
		var rej []string
		for _, m := range nw.trace[before:] {
			if m.Type == raftpb.MsgAppResp && m.Reject && m.From == id {
				rej = append(rej, m.String())
			}
		}
		if len(rej) != want {
			t.Fatalf("node %d: %d rejections, want %d:\n%s", id, len(rej), want, strings.Join(rej, "\n"))
		}
	}
}

// TestFigure8 reconstructs figure 8 of the Raft paper (§5.4.2) with five
// nodes; crashes are isolation followed by a restart from durable state.
// MaxBatchEntries is 1 so that the term-3 leader can put the old entry on a
// follower without its own no-op riding along in the same message.
func TestFigure8(t *testing.T) {
	one := func(c *Config) { c.MaxBatchEntries = 1 }
	hasTerm := func(ents []raftpb.Entry, term uint64) bool {
		return slices.ContainsFunc(ents, func(e raftpb.Entry) bool { return e.Term == term })
	}
	// setup runs (a) to (c) of the figure, with the paper's terms 2, 3, 4
	// being 1, 2, 3 here, and returns the network with node 1 leading term
	// 3. If commitNoop is false, no term-3 entry reaches any follower.
	setup := func(t *testing.T, commitNoop bool) *network {
		nw := newNetwork(t, 5, one)
		nw.campaign(1)
		nw.requireRole(1, RoleLeader, 1)
		// (a) node 1 replicates x (1/2) to node 2 only.
		nw.partition([]uint64{1, 2}, []uint64{3, 4, 5})
		nw.propose(1, "x")
		// (b) node 1 crashes; node 5 is elected in term 2 by 3, 4 and itself
		// and appends its no-op (2/2), which reaches nobody before it crashes.
		nw.isolate(1)
		nw.expireLease(3, 4)
		nw.drop = func(m raftpb.Message) bool { return m.From == 5 && m.Type == raftpb.MsgApp }
		nw.campaign(5)
		nw.requireRole(5, RoleLeader, 2)
		nw.drop = nil
		if got := nw.logOf(5); !slices.Equal(got, []string{"1/1:", "2/2:"}) {
			t.Fatalf("node 5 log %v", got)
		}
		// (c) node 5 crashes; node 1 restarts and is elected in term 3 by
		// 3 and 4 (node 2 is down); it replicates x to them.
		nw.heal()
		nw.isolate(5)
		nw.isolate(2)
		nw.restart(1, one)
		if !commitNoop {
			nw.drop = func(m raftpb.Message) bool {
				return m.Type == raftpb.MsgApp && m.From == 1 && hasTerm(m.Entries, 3) &&
					nw.node(m.To).log.matchTerm(m.Index, m.LogTerm)
			}
		}
		nw.campaignUntilLeader(1)
		nw.requireRole(1, RoleLeader, 3)
		return nw
	}
	requireNeverApplied := func(t *testing.T, nw *network, data string) {
		t.Helper()
		for _, id := range nw.ids {
			for _, e := range nw.nodes[id].applied {
				if string(e.Data) == data {
					t.Fatalf("node %d applied %v", id, e)
				}
			}
		}
	}

	t.Run("old-term entry on a majority is not committed and is overwritten", func(t *testing.T) {
		nw := setup(t, false)
		l := nw.node(1)
		for _, id := range []uint64{1, 2, 3, 4} {
			if got := nw.logOf(id)[1]; got != "1/2:x" {
				t.Fatalf("node %d holds %s at index 2, want x", id, got)
			}
		}
		for id, want := range map[uint64]uint64{1: 3, 3: 2, 4: 2} {
			if got := l.trk.Progress[id].Match; got != want {
				t.Fatalf("leader's match for %d is %d, want %d", id, got, want)
			}
		}
		// The leader knows x is on a quorum, yet it must not commit it by
		// counting replicas: it is not of the leader's term.
		if q := l.trk.Committed(); q != 2 {
			t.Fatalf("quorum index %d, want 2", q)
		}
		nw.tick(1, 3)
		if c := l.log.committed; c != 1 {
			t.Fatalf("leader committed %d: an entry of an earlier term was committed by counting replicas", c)
		}
		requireNeverApplied(t, nw, "x")

		// (d) node 1 crashes; node 5 restarts and is elected in term 4 by
		// 2, 3 and 4 (its last term 2 beats their last term 1), and
		// overwrites x everywhere.
		nw.drop = nil
		nw.heal()
		nw.isolate(1)
		nw.restart(5, one)
		nw.expireLease(2, 3, 4)
		nw.campaignUntilLeader(5)
		nw.requireRole(5, RoleLeader, 4)
		want := []string{"1/1:", "2/2:", "4/3:"}
		for _, id := range []uint64{2, 3, 4, 5} {
			if got := nw.logOf(id); !slices.Equal(got, want) {
				t.Fatalf("node %d log %v, want %v", id, got, want)
			}
			if c := nw.node(id).log.committed; c != 3 {
				t.Fatalf("node %d committed %d, want 3", id, c)
			}
		}
		nw.heal()
		nw.tick(5, 1)
		nw.requireSameLogs(5)
		requireNeverApplied(t, nw, "x")
		for _, id := range nw.ids {
			if got := entryIndexes(nw.nodes[id].applied); !slices.Equal(got, []uint64{1, 2, 3}) {
				t.Fatalf("node %d applied %v, want indexes 1 2 3", id, nw.nodes[id].applied)
			}
		}
	})

	t.Run("entry of the current term on a majority commits the older one", func(t *testing.T) {
		// (e) the term-3 no-op reaches 3 and 4 before node 1 crashes: x is
		// committed with it and node 5 can no longer win.
		nw := setup(t, true)
		for _, id := range []uint64{1, 3, 4} {
			if c := nw.node(id).log.committed; c != 3 {
				t.Fatalf("node %d committed %d, want 3", id, c)
			}
			if a := nw.nodes[id].applied; len(a) != 3 || string(a[1].Data) != "x" {
				t.Fatalf("node %d applied %v, want x at index 2", id, a)
			}
		}
		nw.heal()
		nw.isolate(1)
		nw.restart(5, one)
		nw.expireLease(2, 3, 4)
		for range 3 {
			nw.campaign(5)
			if nw.node(5).Role() == RoleLeader {
				t.Fatalf("node 5 won term %d without x", nw.node(5).Term())
			}
		}
		nw.expireLease(2, 3, 4, 5)
		nw.heal()
		nw.campaignUntilLeader(3)
		nw.tick(3, 1)
		nw.requireSameLogs(3)
		for _, id := range nw.ids {
			if got := nw.logOf(id)[1]; got != "1/2:x" {
				t.Fatalf("node %d holds %s at index 2, want x", id, got)
			}
		}
	})
}

// TestInflightWindowCount: with MaxInflightMsgs = 4 a leader pipelines
// exactly four appends to a follower whose acknowledgements are withheld,
// stalls while proposals continue, and resumes as acknowledgements free the
// window.
func TestInflightWindowCount(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.MaxInflightMsgs = 4 })
	nw.campaign(1)
	l := nw.node(1)
	pr := l.trk.Progress[2]
	requireProgress(t, pr, tracker.StateReplicate, 1, 2, 0)

	holdAcks := func(m raftpb.Message) bool { return m.From == 2 && m.Type == raftpb.MsgAppResp }
	mark := len(nw.trace)
	var acks []raftpb.Message
	for i := range 6 {
		if _, _, err := l.Propose(fmt.Appendf(nil, "e%d", i)); err != nil {
			t.Fatal(err)
		}
		acks = append(acks, nw.stabilizeHold(holdAcks)...)
	}
	apps := withEntries(filterMsgs(nw.trace[mark:], raftpb.MsgApp, 1, 2))
	if got := entryCounts(apps); !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Fatalf("appends to the slow follower carry %v entries, want four single-entry appends", got)
	}
	requireProgress(t, pr, tracker.StateReplicate, 1, 6, 4)
	if c := l.log.committed; c != 7 {
		t.Fatalf("committed %d, want 7 (leader and node 3)", c)
	}
	// Each of the first three appends is followed by an empty append telling
	// node 2 the new commit index (node 3 acknowledged); those take no slot.
	var ackIdx []uint64
	for _, m := range acks {
		ackIdx = append(ackIdx, m.Index)
	}
	if !slices.Equal(ackIdx, []uint64{2, 2, 3, 3, 4, 4, 5}) {
		t.Fatalf("held acks for %v, want [2 2 3 3 4 4 5]", ackIdx)
	}

	// One acknowledgement frees one slot: the two pending entries go at once.
	mark = len(nw.trace)
	more := nw.deliverHold(holdAcks, acks[0])
	apps = withEntries(filterMsgs(nw.trace[mark:], raftpb.MsgApp, 1, 2))
	if len(apps) != 1 || !slices.Equal(entryIndexes(apps[0].Entries), []uint64{6, 7}) {
		t.Fatalf("after one ack sent %v, want one append of entries 6 and 7", apps)
	}
	requireProgress(t, pr, tracker.StateReplicate, 2, 8, 4)

	// The rest drain the window.
	nw.deliverHold(holdAcks, append(acks[1:], more...)...)
	requireProgress(t, pr, tracker.StateReplicate, 7, 8, 0)
	nw.requireSameLogs(1)
}

func requireProgress(t *testing.T, pr *tracker.Progress, state tracker.StateType, match, next uint64, inflight int) {
	t.Helper()
	if pr.State != state || pr.Match != match || pr.Next != next || pr.Inflights.Count() != inflight {
		t.Fatalf("progress %s match=%d next=%d inflight=%d, want %s match=%d next=%d inflight=%d",
			pr.State, pr.Match, pr.Next, pr.Inflights.Count(), state, match, next, inflight)
	}
}

// TestInflightWindowBytes: MaxInflightBytes bounds the payload in flight; an
// empty window still admits one message however large.
func TestInflightWindowBytes(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.MaxInflightBytes = 200 })
	nw.campaign(1)
	l := nw.node(1)
	pr := l.trk.Progress[2]
	holdAcks := func(m raftpb.Message) bool { return m.From == 2 && m.Type == raftpb.MsgAppResp }
	propose := func(size int) []raftpb.Message {
		t.Helper()
		if _, _, err := l.Propose(payloads(1, size)[0]); err != nil {
			t.Fatal(err)
		}
		return nw.stabilizeHold(holdAcks)
	}
	// Each entry counts 76 bytes of payload + 24 of overhead = 100.
	var acks []raftpb.Message
	mark := len(nw.trace)
	for range 3 {
		acks = append(acks, propose(76)...)
	}
	if got := entryCounts(withEntries(filterMsgs(nw.trace[mark:], raftpb.MsgApp, 1, 2))); !slices.Equal(got, []int{1, 1}) {
		t.Fatalf("appends carry %v entries, want two single-entry appends (200 bytes in flight)", got)
	}
	requireProgress(t, pr, tracker.StateReplicate, 1, 4, 2)
	if b := pr.Inflights.Bytes(); b != 200 {
		t.Fatalf("%d bytes in flight, want 200", b)
	}
	acks = append(acks[1:], nw.deliverHold(holdAcks, acks[0])...)
	requireProgress(t, pr, tracker.StateReplicate, 2, 5, 2)
	nw.deliverHold(holdAcks, acks...)
	requireProgress(t, pr, tracker.StateReplicate, 4, 5, 0)

	// An entry larger than the budget goes alone into an empty window.
	mark = len(nw.trace)
	acks = propose(1000)
	acks = append(acks, propose(10)...)
	apps := withEntries(filterMsgs(nw.trace[mark:], raftpb.MsgApp, 1, 2))
	if len(apps) != 1 || len(apps[0].Entries) != 1 || len(apps[0].Entries[0].Data) != 1000 {
		t.Fatalf("sent %v, want only the 1000-byte entry", apps)
	}
	requireProgress(t, pr, tracker.StateReplicate, 4, 6, 1)
	nw.deliverHold(holdNone, acks...)
	requireProgress(t, pr, tracker.StateReplicate, 6, 7, 0)
	nw.requireSameLogs(1)
}

// TestInflightRejectionResetsToProbe: a lost append makes the follower reject
// the next one; the rejection drops the window and returns the follower to
// probing from the hint, and stale messages of the old window change nothing.
func TestInflightRejectionResetsToProbe(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.MaxInflightMsgs = 4 })
	nw.campaign(1)
	l := nw.node(1)
	pr := l.trk.Progress[2]
	hold2 := func(m raftpb.Message) bool { return m.To == 2 || m.From == 2 }
	var held []raftpb.Message
	for i := range 4 {
		if _, _, err := l.Propose(fmt.Appendf(nil, "e%d", i)); err != nil {
			t.Fatal(err)
		}
		held = append(held, nw.stabilizeHold(hold2)...)
	}
	// Besides the four appends, empty appends carried the commit index
	// (node 3 acknowledged); all of it is lost unless delivered below.
	apps := withEntries(held)
	if got := entryCounts(apps); len(held) != 7 || !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Fatalf("held %v, want 4 single-entry appends and 3 empty ones", held)
	}
	requireProgress(t, pr, tracker.StateReplicate, 1, 6, 4)

	// apps[0] (entry 2) is lost; apps[1] reveals the gap.
	rej := nw.deliverHold(hold2, apps[1])
	if len(rej) != 1 || !rej[0].Reject || rej[0].Index != 2 || rej[0].LogTerm != 0 || rej[0].RejectHint != 2 {
		t.Fatalf("follower answered %v, want a rejection of index 2 with hint 2", rej)
	}
	probe := nw.deliverHold(hold2, rej[0])
	requireProgress(t, pr, tracker.StateProbe, 1, 2, 0)
	if !pr.ProbeSent {
		t.Fatal("probe not marked sent")
	}
	if len(probe) != 1 || probe[0].Index != 1 || !slices.Equal(entryIndexes(probe[0].Entries), []uint64{2, 3, 4, 5}) {
		t.Fatalf("sent %v, want one probe after 1 carrying entries 2..5", probe)
	}
	// Proposals while probing wait for the probe's answer.
	if _, _, err := l.Propose([]byte("f")); err != nil {
		t.Fatal(err)
	}
	if got := nw.stabilizeHold(hold2); len(got) != 0 {
		t.Fatalf("sent %v while a probe is outstanding", got)
	}
	ack := nw.deliverHold(hold2, probe[0])
	rest := nw.deliverHold(hold2, ack...)
	requireProgress(t, pr, tracker.StateReplicate, 5, 7, 1)
	// The stale appends of the old window arrive late; they match and their
	// acknowledgements are old news.
	rest = append(rest, nw.deliverHold(hold2, apps[2], apps[3])...)
	nw.deliverHold(holdNone, rest...)
	requireProgress(t, pr, tracker.StateReplicate, 6, 7, 0)
	nw.requireSameLogs(1)
}

// TestInflightReportUnreachable: ReportUnreachable drops the window and
// returns a replicating follower to probing from Match+1.
func TestInflightReportUnreachable(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.MaxInflightMsgs = 4 })
	nw.campaign(1)
	l := nw.node(1)
	pr := l.trk.Progress[2]
	holdApps := func(m raftpb.Message) bool { return m.To == 2 && m.Type == raftpb.MsgApp }
	for i := range 3 {
		if _, _, err := l.Propose(fmt.Appendf(nil, "e%d", i)); err != nil {
			t.Fatal(err)
		}
		nw.stabilizeHold(holdApps) // lost
	}
	requireProgress(t, pr, tracker.StateReplicate, 1, 5, 3)
	l.ReportUnreachable(2)
	requireProgress(t, pr, tracker.StateProbe, 1, 2, 0)
	if pr.ProbeSent {
		t.Fatal("ProbeSent after ReportUnreachable")
	}
	// Reporting a probing peer again changes nothing.
	l.ReportUnreachable(2)
	requireProgress(t, pr, tracker.StateProbe, 1, 2, 0)
	// The next heartbeat answer triggers a probe from Match+1.
	l.Tick()
	probe := nw.stabilizeHold(holdApps)
	if len(probe) != 1 || probe[0].Index != 1 || !slices.Equal(entryIndexes(probe[0].Entries), []uint64{2, 3, 4}) {
		t.Fatalf("sent %v, want one probe after 1 carrying entries 2..4", probe)
	}
	nw.deliverHold(holdApps, probe...)
	requireProgress(t, pr, tracker.StateReplicate, 4, 5, 0)
	// On a follower ReportUnreachable is a no-op.
	nw.node(2).ReportUnreachable(1)
	nw.node(2).ReportUnreachable(3)
}

// TestInflightHeartbeatFreesOneSlot: a heartbeat answer while the window is
// full frees exactly one slot (the oldest), so a pipeline whose messages were
// lost cannot stall forever. (An empty append that reveals a gap may go out
// too; it takes no slot, so only appends carrying entries are checked.)
func TestInflightHeartbeatFreesOneSlot(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.MaxInflightMsgs = 4 })
	nw.campaign(1)
	l := nw.node(1)
	pr := l.trk.Progress[2]
	holdApps := func(m raftpb.Message) bool { return m.To == 2 && m.Type == raftpb.MsgApp }
	for i := range 4 {
		if _, _, err := l.Propose(fmt.Appendf(nil, "e%d", i)); err != nil {
			t.Fatal(err)
		}
		nw.stabilizeHold(holdApps)
	}
	requireProgress(t, pr, tracker.StateReplicate, 1, 6, 4)

	l.Tick()
	if got := withEntries(nw.stabilizeHold(holdApps)); len(got) != 0 {
		t.Fatalf("sent %v with no new entry to send", got)
	}
	requireProgress(t, pr, tracker.StateReplicate, 1, 6, 3)
	// A window that is not full keeps its messages on a heartbeat answer.
	l.Tick()
	if got := withEntries(nw.stabilizeHold(holdApps)); len(got) != 0 {
		t.Fatalf("sent %v with no new entry to send", got)
	}
	requireProgress(t, pr, tracker.StateReplicate, 1, 6, 3)

	// The free slot takes the next proposal; the one after that waits.
	if _, _, err := l.Propose([]byte("f")); err != nil {
		t.Fatal(err)
	}
	got := withEntries(nw.stabilizeHold(holdApps))
	if len(got) != 1 || !slices.Equal(entryIndexes(got[0].Entries), []uint64{6}) {
		t.Fatalf("sent %v, want one append of entry 6", got)
	}
	if _, _, err := l.Propose([]byte("g")); err != nil {
		t.Fatal(err)
	}
	if got := withEntries(nw.stabilizeHold(holdApps)); len(got) != 0 {
		t.Fatalf("sent %v into a full window", got)
	}
	requireProgress(t, pr, tracker.StateReplicate, 1, 7, 4)
	// A heartbeat answer frees one slot, which entry 7 takes at once.
	l.Tick()
	got = withEntries(nw.stabilizeHold(holdApps))
	if len(got) != 1 || got[0].Index != 6 || !slices.Equal(entryIndexes(got[0].Entries), []uint64{7}) {
		t.Fatalf("sent %v, want one append of entry 7 after 6", got)
	}
	requireProgress(t, pr, tracker.StateReplicate, 1, 8, 4)
}

// TestAppendBatchLimits: MaxBatchEntries and MaxBatchBytes bound each
// MsgApp, from the unstable tail and from storage alike; a single entry
// larger than MaxBatchBytes goes alone.
func TestAppendBatchLimits(t *testing.T) {
	t.Run("3000 entries proposed at once", func(t *testing.T) {
		nw := newNetwork(t, 3)
		nw.campaign(1)
		nw.proposeN(1, "v", 3000)
		rd := nw.takeReady(1)
		for _, to := range []uint64{2, 3} {
			apps := filterMsgs(rd.Messages, raftpb.MsgApp, 1, to)
			if got := entryCounts(apps); !slices.Equal(got, []int{1024, 1024, 952}) {
				t.Fatalf("appends to %d carry %v entries, want [1024 1024 952]", to, got)
			}
			requireContiguous(t, apps, 1)
		}
		nw.persistReady(1, rd)
		nw.stabilize()
		nw.requireSameLogs(1)
		for _, m := range nw.trace {
			if m.Type == raftpb.MsgApp && len(m.Entries) > DefaultMaxBatchEntries {
				t.Fatalf("%v carries more than %d entries", m, DefaultMaxBatchEntries)
			}
		}
	})
	t.Run("catch-up from storage", func(t *testing.T) {
		nw := newNetwork(t, 3)
		nw.campaign(1)
		nw.isolate(3)
		nw.proposeN(1, "v", 3000)
		nw.stabilize()
		nw.heal()
		nw.node(1).ReportUnreachable(3)
		mark := len(nw.trace)
		nw.tick(1, 1)
		apps := withEntries(filterMsgs(nw.trace[mark:], raftpb.MsgApp, 1, 3))
		if got := entryCounts(apps); !slices.Equal(got, []int{1024, 1024, 952}) {
			t.Fatalf("catch-up appends carry %v entries, want [1024 1024 952]", got)
		}
		requireContiguous(t, apps, 1)
		nw.requireSameLogs(1)
	})
	t.Run("byte bound", func(t *testing.T) {
		nw := newNetwork(t, 3)
		nw.campaign(1)
		const kib = 1 << 10
		data := slices.Concat(payloads(13, 100*kib), payloads(1, 1024*kib), payloads(2, 100*kib))
		if _, _, err := nw.node(1).Propose(data...); err != nil {
			t.Fatal(err)
		}
		rd := nw.takeReady(1)
		apps := filterMsgs(rd.Messages, raftpb.MsgApp, 1, 2)
		// 5 x (100 KiB + 24) fits in 512 KiB, 6 do not; 3 cannot take the
		// 1 MiB entry, which goes alone; then the last 2.
		if got := entryCounts(apps); !slices.Equal(got, []int{5, 5, 3, 1, 2}) {
			t.Fatalf("appends carry %v entries, want [5 5 3 1 2]", got)
		}
		requireContiguous(t, apps, 1)
		for _, m := range apps {
			if sz := raftpb.EntriesSize(m.Entries); sz > DefaultMaxBatchBytes && len(m.Entries) > 1 {
				t.Fatalf("append of %d entries carries %d bytes > %d", len(m.Entries), sz, DefaultMaxBatchBytes)
			}
		}
		nw.persistReady(1, rd)
		nw.stabilize()
		nw.requireSameLogs(1)
	})
}

// requireContiguous checks that apps carry consecutive entries starting
// after index prev, each message following the previous one.
func requireContiguous(t *testing.T, apps []raftpb.Message, prev uint64) {
	t.Helper()
	for _, m := range apps {
		if m.Index != prev {
			t.Fatalf("append after %d, want after %d", m.Index, prev)
		}
		prev += uint64(len(m.Entries))
	}
}

// TestLeaderAppendsBeforeDurable: the leader's MsgApps go out before its own
// append is durable, its own copy counts towards commit only after Advance,
// and followers acknowledge only after persisting.
func TestLeaderAppendsBeforeDurable(t *testing.T) {
	setup := func(t *testing.T) (*network, Ready, []raftpb.Message) {
		nw := newNetwork(t, 3)
		nw.campaign(1)
		l := nw.node(1)
		if _, _, err := l.Propose([]byte("a")); err != nil {
			t.Fatal(err)
		}
		rd := nw.takeReady(1)
		if !slices.Equal(entryIndexes(rd.Entries), []uint64{2}) {
			t.Fatalf("leader Ready entries %v, want [2]", rd.Entries)
		}
		apps := filterMsgs(rd.Messages, raftpb.MsgApp, 1, 0)
		if len(apps) != 2 || len(filterMsgs(rd.MessagesAfterPersist, raftpb.MsgApp, 1, 0)) != 0 {
			t.Fatalf("MsgApps must not wait for the leader's write: now=%v after=%v", rd.Messages, rd.MessagesAfterPersist)
		}
		for _, m := range apps {
			if !slices.Equal(entryIndexes(m.Entries), []uint64{2}) {
				t.Fatalf("%v does not carry entry 2", m)
			}
		}
		rd.Messages = nil // delivered by hand below
		return nw, rd, apps
	}
	// ack delivers app to its follower, checks that the acknowledgement
	// waits for the follower's write, and returns it.
	ack := func(t *testing.T, nw *network, app raftpb.Message) raftpb.Message {
		t.Helper()
		nw.deliver(app)
		frd := nw.takeReady(app.To)
		if !slices.Equal(entryIndexes(frd.Entries), []uint64{2}) || len(frd.Messages) != 0 ||
			len(frd.MessagesAfterPersist) != 1 || frd.MessagesAfterPersist[0].Type != raftpb.MsgAppResp ||
			frd.MessagesAfterPersist[0].Index != 2 {
			t.Fatalf("follower %d Ready: entries %v now=%v after=%v; want entry 2 acknowledged after persistence",
				app.To, frd.Entries, frd.Messages, frd.MessagesAfterPersist)
		}
		nw.persistReady(app.To, frd)
		resp := nw.pending[len(nw.pending)-1]
		nw.pending = nil
		return resp
	}

	t.Run("one follower and the leader's own write", func(t *testing.T) {
		nw, rd, apps := setup(t)
		l := nw.node(1)
		nw.deliver(ack(t, nw, apps[0]))
		if c := l.log.committed; c != 1 {
			t.Fatalf("committed %d with one follower ack and the leader's copy not durable", c)
		}
		nw.persistReady(1, rd)
		if c := l.log.committed; c != 2 {
			t.Fatalf("committed %d after the leader's write, want 2", c)
		}
		rd2 := nw.takeReady(1)
		if rd2.HardState.Commit != 2 || !slices.Equal(entryIndexes(rd2.CommittedEntries), []uint64{2}) {
			t.Fatalf("Ready after commit: hs %+v committed %v", rd2.HardState, rd2.CommittedEntries)
		}
	})
	t.Run("two followers before the leader's write", func(t *testing.T) {
		nw, rd, apps := setup(t)
		l := nw.node(1)
		a2, a3 := ack(t, nw, apps[0]), ack(t, nw, apps[1])
		nw.deliver(a2)
		if c := l.log.committed; c != 1 {
			t.Fatalf("committed %d with one follower ack", c)
		}
		nw.deliver(a3)
		if c := l.log.committed; c != 2 {
			t.Fatalf("committed %d with both followers' durable copies, want 2", c)
		}
		// Committed, but the leader's own copy is not durable: nothing to
		// apply yet.
		rd2 := nw.takeReady(1)
		if rd2.HardState.Commit != 2 || len(rd2.CommittedEntries) != 0 {
			t.Fatalf("Ready before the leader's write: hs %+v committed %v", rd2.HardState, rd2.CommittedEntries)
		}
		nw.persistReady(1, rd)
		nw.persistReady(1, rd2)
		rd3 := nw.takeReady(1)
		if !slices.Equal(entryIndexes(rd3.CommittedEntries), []uint64{2}) {
			t.Fatalf("Ready after the leader's write: committed %v, want [2]", rd3.CommittedEntries)
		}
	})
}

// TestCommittedEntriesBatchedAndDurable: committed entries are handed out in
// order, in batches bounded by MaxApplyBytes (a larger single entry goes
// alone), and never beyond what is durable locally.
func TestCommittedEntriesBatchedAndDurable(t *testing.T) {
	const maxApply = 1000
	nw := newNetwork(t, 3, func(c *Config) { c.MaxApplyBytes = maxApply })
	nw.campaign(1)
	// 30 entries of 124 bytes, one of 2024, five of 124.
	data := slices.Concat(payloads(30, 100), payloads(1, 2000), payloads(5, 100))
	if _, _, err := nw.node(1).Propose(data...); err != nil {
		t.Fatal(err)
	}
	batches := map[uint64][][]raftpb.Entry{}
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("did not stabilize")
		}
		for _, id := range nw.ids {
			for nw.node(id).HasReady() {
				rd := nw.node(id).Ready()
				durable, _ := nw.nodes[id].st.LastIndex()
				if k := len(rd.CommittedEntries); k > 0 {
					if last := rd.CommittedEntries[k-1].Index; last > durable {
						t.Fatalf("node %d handed out entry %d to apply, durable only to %d", id, last, durable)
					}
					batches[id] = append(batches[id], rd.CommittedEntries)
				}
				nw.persistReady(id, rd)
			}
		}
		if nw.deliverAll() == 0 {
			break
		}
	}
	for _, id := range nw.ids {
		var sizes []int
		next := uint64(2) // the election no-op was applied during the campaign
		for _, b := range batches[id] {
			if sz := raftpb.EntriesSize(b); sz > maxApply && len(b) > 1 {
				t.Fatalf("node %d: batch of %d entries has %d bytes", id, len(b), sz)
			}
			for _, e := range b {
				if e.Index != next {
					t.Fatalf("node %d: applied %d, want %d", id, e.Index, next)
				}
				next++
			}
			sizes = append(sizes, len(b))
		}
		// 8 x 124 bytes per batch, 6 before the large entry, the large
		// entry alone, the last 5.
		if want := []int{8, 8, 8, 6, 1, 5}; !slices.Equal(sizes, want) {
			t.Fatalf("node %d: batch sizes %v, want %v", id, sizes, want)
		}
	}

	t.Run("follower learns commit with the entries", func(t *testing.T) {
		nw := newNetwork(t, 3)
		nw.campaign(1)
		nw.isolate(3)
		nw.proposeN(1, "a", 10)
		nw.stabilize()
		nw.heal()
		nw.node(1).ReportUnreachable(3)
		nw.node(1).Tick()
		held := nw.stabilizeHold(func(m raftpb.Message) bool { return m.To == 3 && m.Type == raftpb.MsgApp })
		if len(held) != 1 || held[0].Commit != 11 || len(held[0].Entries) != 10 {
			t.Fatalf("held %v, want one append of 10 entries with commit 11", held)
		}
		nw.deliver(held[0])
		rd := nw.takeReady(3)
		if rd.HardState.Commit != 11 || len(rd.Entries) != 10 || len(rd.CommittedEntries) != 0 {
			t.Fatalf("Ready: hs %+v, %d entries, committed %v; want commit 11, 10 entries, nothing to apply before they are durable",
				rd.HardState, len(rd.Entries), rd.CommittedEntries)
		}
		nw.persistReady(3, rd)
		rd = nw.takeReady(3)
		if got := entryIndexes(rd.CommittedEntries); len(got) != 10 || got[0] != 2 || got[9] != 11 {
			t.Fatalf("Ready after persistence: committed %v, want 2..11", got)
		}
	})
}

// TestLostAppendsResentAfterHeal: a follower in StateReplicate whose appends
// were lost (a partition, no transport error reported) must catch up once
// the partition heals, through the leader's heartbeats, without waiting for
// a new proposal. This is Raft's liveness after heal; see also the
// Inflights.FreeFirstOne doc comment ("freeing one lets the next send reveal
// the gap").
func TestLostAppendsResentAfterHeal(t *testing.T) {
	for _, tc := range []struct {
		name      string
		inflight  int
		proposals int
	}{
		{"window not full", 256, 1},
		{"window full", 4, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nw := newNetwork(t, 3, func(c *Config) { c.MaxInflightMsgs = tc.inflight })
			nw.campaign(1)
			nw.isolate(3)
			for i := range tc.proposals {
				nw.propose(1, fmt.Sprintf("a%d", i))
			}
			nw.heal()
			mark := len(nw.trace)
			nw.tick(1, tc.proposals+4) // several heartbeat rounds
			if got, want := nw.logOf(3), nw.logOf(1); !slices.Equal(got, want) {
				t.Fatalf("follower 3 never caught up after heal:\n got %v\nwant %v\n"+
					"leader's progress for 3: %v; after heal %d heartbeat answers from 3 reached the leader, "+
					"which sent %d MsgApp to 3\nall appends exchanged with 3:\n%s",
					got, want, nw.node(1).trk.Progress[3],
					len(filterMsgs(nw.trace[mark:], raftpb.MsgHeartbeatResp, 3, 1)),
					len(filterMsgs(nw.trace[mark:], raftpb.MsgApp, 1, 3)), traceOf(nw, 3))
			}
		})
	}
}

package core

import (
	"fmt"
	"slices"
	"strings"
	"testing"

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
			nw.expireLease(2, 3) // restarted nodes honour a lease they may have promised
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
	nw.expireLease(3, 5)
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

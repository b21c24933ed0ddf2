package core

import (
	"fmt"
	"slices"
	"testing"

	"github.com/raftkit/raftkit/internal/core/tracker"
	"github.com/raftkit/raftkit/raftpb"
)

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

package core

import (
	"fmt"
	"slices"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
)

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

// TestMaxApplyingBytesBoundsHandedOut: with MaxApplyingBytes set, the core
// hands out committed entries only while the payload not yet reported
// applied is under the bound, and resumes as AppliedTo releases batches.
func TestMaxApplyingBytesBoundsHandedOut(t *testing.T) {
	// Each entry below is 25 bytes (1 byte of data + 24): two fit.
	nw := newNetwork(t, 1, func(c *Config) { c.MaxApplyingBytes = 50 })
	nw.campaign(1)
	l := nw.node(1)
	for i := range 5 {
		if _, _, err := l.Propose([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	rd := l.Ready()
	if err := nw.nodes[1].st.Append(rd.Entries); err != nil {
		t.Fatal(err)
	}
	l.Advance(rd)
	if c := l.log.committed; c != 6 {
		t.Fatalf("committed %d, want 6", c)
	}
	take := func() []uint64 {
		rd := l.Ready()
		l.Advance(rd)
		return entryIndexes(rd.CommittedEntries)
	}
	if got := take(); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("handed out %v, want [2 3]", got)
	}
	if got := take(); len(got) != 0 || l.HasReady() {
		t.Fatalf("handed out %v beyond the bound before AppliedTo", got)
	}
	l.AppliedTo(2)
	if got := take(); len(got) != 0 {
		t.Fatalf("handed out %v while the batch [2 3] is still applying", got)
	}
	l.AppliedTo(3)
	if got := take(); !slices.Equal(got, []uint64{4, 5}) {
		t.Fatalf("after AppliedTo(3) handed out %v, want [4 5]", got)
	}
	l.AppliedTo(5)
	if got := take(); !slices.Equal(got, []uint64{6}) {
		t.Fatalf("after AppliedTo(5) handed out %v, want [6]", got)
	}
	if l.log.applyingBytes != 25 || len(l.log.applyMarks) != 1 {
		t.Fatalf("applying %d bytes in %d marks, want 25 in 1", l.log.applyingBytes, len(l.log.applyMarks))
	}
}

// TestAcksCoalesced: a follower that steps several appends before its Ready
// sends the leader one cumulative acknowledgement, not one per append; a
// rejection is never merged away.
func TestAcksCoalesced(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.campaign(1)
	l := nw.node(1)
	var apps []raftpb.Message
	for i := range 3 {
		if _, _, err := l.Propose([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		rd := nw.takeReady(1)
		apps = append(apps, filterMsgs(rd.Messages, raftpb.MsgApp, 1, 2)...)
		nw.persistReady(1, withoutMessages(rd))
	}
	nw.pending = nil
	if len(apps) != 3 {
		t.Fatalf("%d appends to node 2, want 3", len(apps))
	}
	f := nw.node(2)
	for _, m := range apps {
		if err := f.Step(m); err != nil {
			t.Fatal(err)
		}
	}
	rd := f.Ready()
	acks := filterMsgs(rd.MessagesAfterPersist, raftpb.MsgAppResp, 2, 1)
	if len(acks) != 1 || acks[0].Index != apps[2].Index+uint64(len(apps[2].Entries)) || acks[0].Reject {
		t.Fatalf("acks %v, want one covering index %d", acks, apps[2].Index+1)
	}
	// A stale append (below what is acknowledged) is rejected or answered
	// separately; a rejection survives next to an ack.
	f.Step(raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Term: l.Term(), Index: 99, LogTerm: 9})
	f.Step(apps[2])
	rd2 := f.Ready()
	if got := filterMsgs(rd2.MessagesAfterPersist, raftpb.MsgAppResp, 2, 1); len(got) != 2 || !got[0].Reject {
		t.Fatalf("after a rejection: %v, want the rejection and an ack", got)
	}
}

// withoutMessages strips the messages a test delivers by hand from a Ready before it
// is persisted.
func withoutMessages(rd Ready) Ready {
	rd.Messages = nil
	return rd
}

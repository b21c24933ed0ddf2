package core

import (
	"fmt"
	"slices"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// Helpers shared by the replication, check-quorum, snapshot and transfer
// tests. They extend the scripted network of network_test.go with finer
// control over delivery (holding messages back, delivering them one by one),
// crash-restarts and networks built from hand-written logs.

// stabilizeHold is stabilize, except that messages for which hold reports
// true are set aside instead of being delivered. The held messages are
// returned in the order they were sent; nothing else is left pending.
func (nw *network) stabilizeHold(hold func(m raftpb.Message) bool) []raftpb.Message {
	nw.t.Helper()
	var held []raftpb.Message
	for i := 0; ; i++ {
		if i > 10000 {
			nw.t.Fatalf("network did not stabilize")
		}
		nw.flushReadies()
		msgs := nw.pending
		nw.pending = nil
		delivered := 0
		for _, m := range msgs {
			if hold(m) {
				held = append(held, m)
				continue
			}
			nw.deliver(m)
			delivered++
		}
		if delivered == 0 {
			return held
		}
	}
}

// deliverHold delivers msgs in order, then runs the network like
// stabilizeHold and returns what it held.
func (nw *network) deliverHold(hold func(m raftpb.Message) bool, msgs ...raftpb.Message) []raftpb.Message {
	nw.t.Helper()
	for _, m := range msgs {
		nw.deliver(m)
	}
	return nw.stabilizeHold(hold)
}

// persistReady makes a Ready taken from node id durable, queues its
// messages, advances the core and applies its committed entries, in the
// order core.Ready prescribes.
func (nw *network) persistReady(id uint64, rd Ready) {
	nw.t.Helper()
	n := nw.nodes[id]
	nw.pending = append(nw.pending, rd.Messages...)
	if rd.Snapshot != nil {
		if err := n.st.ApplySnapshot(*rd.Snapshot); err != nil {
			nw.t.Fatalf("node %d: apply snapshot: %v", id, err)
		}
		n.applied = nil
	}
	if len(rd.Entries) > 0 {
		if err := n.st.Append(rd.Entries); err != nil {
			nw.t.Fatalf("node %d: append: %v", id, err)
		}
	}
	if !rd.HardState.IsEmpty() {
		n.st.SetHardState(rd.HardState)
	}
	nw.pending = append(nw.pending, rd.MessagesAfterPersist...)
	n.r.Advance(rd)
	if k := len(rd.CommittedEntries); k > 0 {
		if !nw.lean {
			n.applied = append(n.applied, rd.CommittedEntries...)
		}
		n.r.AppliedTo(rd.CommittedEntries[k-1].Index)
	}
}

// expireLease makes each node behave as if a full election timeout had
// passed without hearing a leader, so that it grants (pre-)votes again. It
// does so without ticking, so no node campaigns on its own.
func (nw *network) expireLease(ids ...uint64) {
	for _, id := range ids {
		r := nw.node(id)
		r.electionElapsed = r.cfg.ElectionTick
	}
}

// restart simulates a crash and restart of node id: the core is rebuilt
// from its durable storage and everything volatile is lost. Messages already
// queued from or to the node are left alone.
func (nw *network) restart(id uint64, opts ...configOpt) {
	nw.t.Helper()
	n := nw.nodes[id]
	first, _ := n.st.FirstIndex()
	applied := first - 1
	if k := len(n.applied); k > 0 {
		applied = max(applied, n.applied[k-1].Index)
	}
	opts = append(slices.Clip(opts), func(c *Config) { c.Applied = applied })
	n.r = newTestRaft(nw.t, id, n.st, opts...)
}

// campaignUntilLeader campaigns at id until it leads, allowing a couple of
// rounds in which it merely learns a higher term from a rejection.
func (nw *network) campaignUntilLeader(id uint64) {
	nw.t.Helper()
	for range 3 {
		nw.campaign(id)
		if nw.node(id).Role() == RoleLeader {
			return
		}
	}
	nw.t.Fatalf("node %d did not win an election: %s in term %d", id, nw.node(id).Role(), nw.node(id).Term())
}

// rejections counts the delivered MsgAppResp rejections sent by from.
func (nw *network) rejections(from uint64) int {
	n := 0
	for _, m := range nw.trace {
		if m.Type == raftpb.MsgAppResp && m.Reject && m.From == from {
			n++
		}
	}
	return n
}

// delivered returns the delivered messages of type t from -> to (0 matches
// any node).
func (nw *network) delivered(t raftpb.MessageType, from, to uint64) []raftpb.Message {
	return filterMsgs(nw.trace, t, from, to)
}

func filterMsgs(msgs []raftpb.Message, t raftpb.MessageType, from, to uint64) []raftpb.Message {
	var out []raftpb.Message
	for _, m := range msgs {
		if m.Type == t && (from == 0 || m.From == from) && (to == 0 || m.To == to) {
			out = append(out, m)
		}
	}
	return out
}

// withEntries keeps the messages that carry at least one entry.
func withEntries(msgs []raftpb.Message) []raftpb.Message {
	var out []raftpb.Message
	for _, m := range msgs {
		if len(m.Entries) > 0 {
			out = append(out, m)
		}
	}
	return out
}

// entryCounts returns len(m.Entries) for each message.
func entryCounts(msgs []raftpb.Message) []int {
	out := make([]int, len(msgs))
	for i, m := range msgs {
		out[i] = len(m.Entries)
	}
	return out
}

// entryIndexes returns the indexes of ents.
func entryIndexes(ents []raftpb.Entry) []uint64 {
	out := make([]uint64, len(ents))
	for i, e := range ents {
		out[i] = e.Index
	}
	return out
}

// payloads returns n payloads of size bytes each, distinct by prefix.
func payloads(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		b := make([]byte, size)
		copy(b, fmt.Sprintf("p%d-", i))
		out[i] = b
	}
	return out
}

// proposeN proposes n entries "<prefix>0", "<prefix>1", ... at id in one
// call, without stabilizing.
func (nw *network) proposeN(id uint64, prefix string, n int) {
	nw.t.Helper()
	data := make([][]byte, n)
	for i := range data {
		data[i] = fmt.Appendf(nil, "%s%d", prefix, i)
	}
	if _, _, err := nw.node(id).Propose(data...); err != nil {
		nw.t.Fatalf("propose at %d: %v", id, err)
	}
}

// newNetworkWithLogs builds one node per member of cs whose durable log holds
// entries with the given terms (index i+1 has terms[id][i]), a hard state in
// term with the given commit index, and configuration cs. Entry payloads
// name their origin so that logOf tells divergent entries apart.
func newNetworkWithLogs(t testing.TB, cs raftpb.ConfState, terms map[uint64][]uint64, term, commit uint64, opts ...configOpt) *network {
	t.Helper()
	nw := &network{t: t, nodes: map[uint64]*testNode{}, cut: map[[2]uint64]bool{}}
	members := slices.Concat(cs.Voters, cs.VotersOutgoing, cs.Learners)
	slices.Sort(members)
	members = slices.Compact(members)
	for _, id := range members {
		st := storage.NewMemoryStorageWithConf(cs)
		ents := make([]raftpb.Entry, len(terms[id]))
		for i, tm := range terms[id] {
			ents[i] = raftpb.Entry{Index: uint64(i + 1), Term: tm, Data: fmt.Appendf(nil, "t%d", tm)}
		}
		if err := st.Append(ents); err != nil {
			t.Fatalf("node %d: %v", id, err)
		}
		st.SetHardState(raftpb.HardState{Term: term, Commit: min(commit, uint64(len(ents)))})
		nw.nodes[id] = &testNode{r: newTestRaft(t, id, st, opts...), st: st}
		nw.ids = append(nw.ids, id)
	}
	return nw
}

// termsOf builds a term list from (term, count) runs.
func termsOf(runs ...uint64) []uint64 {
	var out []uint64
	for i := 0; i+1 < len(runs); i += 2 {
		for range runs[i+1] {
			out = append(out, runs[i])
		}
	}
	return out
}

// requireSameLogs fails unless every node's log equals node ref's.
func (nw *network) requireSameLogs(ref uint64) {
	nw.t.Helper()
	want := nw.logOf(ref)
	for _, id := range nw.ids {
		if got := nw.logOf(id); !slices.Equal(got, want) {
			nw.t.Fatalf("node %d log differs from node %d:\n got %v\nwant %v", id, ref, got, want)
		}
	}
}

// takeReady takes a Ready from node id, failing if there is none.
func (nw *network) takeReady(id uint64) Ready {
	nw.t.Helper()
	r := nw.node(id)
	if !r.HasReady() {
		nw.t.Fatalf("node %d has no Ready", id)
	}
	return r.Ready()
}

// holdNone holds nothing: deliverHold(holdNone, ...) delivers and stabilizes.
func holdNone(raftpb.Message) bool { return false }

package core

import (
	"slices"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// Helpers of the membership tests.

func ids(v ...uint64) []uint64 { return v }

func confState(voters, learners []uint64) raftpb.ConfState {
	return raftpb.ConfState{Voters: voters, Learners: learners}
}

func jointConf(incoming, outgoing, learners []uint64) raftpb.ConfState {
	return raftpb.ConfState{Voters: incoming, VotersOutgoing: outgoing, Learners: learners}
}

// newMemberNet builds one node per member of cs and one per extra ID, every
// one bootstrapped with cs: a node to be added starts from the group's
// initial configuration, outside it, and waits to be added.
func newMemberNet(t testing.TB, cs raftpb.ConfState, extra []uint64, opts ...configOpt) *network {
	t.Helper()
	nw := newNetworkConf(t, cs, opts...)
	for _, id := range extra {
		st := storage.NewMemoryStorageWithConf(cs)
		nw.nodes[id] = &testNode{r: newTestRaft(t, id, st, opts...), st: st}
		nw.ids = append(nw.ids, id)
	}
	slices.Sort(nw.ids)
	return nw
}

// proposeConf proposes the target configuration at id, failing the test on
// refusal, and returns the index of the entry.
func (nw *network) proposeConf(id uint64, voters, learners []uint64) uint64 {
	nw.t.Helper()
	idx, err := nw.node(id).ProposeConfChange(raftpb.ConfChange{Voters: voters, Learners: learners})
	if err != nil {
		nw.t.Fatalf("ProposeConfChange(%v, %v) at %d: %v", voters, learners, id, err)
	}
	return idx
}

// requireConf fails unless node id's configuration is want.
func (nw *network) requireConf(id uint64, want raftpb.ConfState) {
	nw.t.Helper()
	if got := nw.node(id).Status().Config; !got.Equal(want) {
		nw.t.Fatalf("node %d configuration %+v, want %+v", id, got, want)
	}
}

// appliedConfKinds decodes the configuration entries node id has applied.
func (nw *network) appliedConfKinds(id uint64) []raftpb.ConfChangeKind {
	nw.t.Helper()
	var kinds []raftpb.ConfChangeKind
	for _, e := range nw.nodes[id].applied {
		if e.Type == raftpb.EntryConfChange {
			kinds = append(kinds, nw.decodeConf(e).Kind)
		}
	}
	return kinds
}

func (nw *network) decodeConf(e raftpb.Entry) raftpb.ConfChange {
	nw.t.Helper()
	var cc raftpb.ConfChange
	if err := cc.Unmarshal(e.Data); err != nil {
		nw.t.Fatalf("entry %d: %v", e.Index, err)
	}
	return cc
}

// entryAt returns entry i of node id's log.
func (nw *network) entryAt(id, i uint64) raftpb.Entry {
	nw.t.Helper()
	ents, err := nw.node(id).log.slice(i, i+1, 1<<30)
	if err != nil || len(ents) != 1 {
		nw.t.Fatalf("node %d entry %d: %v", id, i, err)
	}
	return ents[0]
}

// campaigned reports whether node id sent a (pre-)vote request among msgs.
func campaigned(msgs []raftpb.Message, id uint64) bool {
	return len(filterMsgs(msgs, raftpb.MsgPreVote, id, 0))+len(filterMsgs(msgs, raftpb.MsgVote, id, 0)) > 0
}

// holdType holds the messages of type t.
func holdType(t raftpb.MessageType) func(raftpb.Message) bool {
	return func(m raftpb.Message) bool { return m.Type == t }
}

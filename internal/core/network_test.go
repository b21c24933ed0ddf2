package core

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// testNode is one member of a test network: a core, its durable storage, and
// what its state machine has applied.
type testNode struct {
	r       *Raft
	st      *storage.MemoryStorage
	applied []raftpb.Entry
}

// network is a synchronous in-memory harness for the core: every Ready is
// persisted at once and messages are delivered in FIFO order unless a link
// is cut or a filter drops them. It is for scripted protocol scenarios; the
// randomized simulator with faults and a virtual clock lives in rafttest.
type network struct {
	t     testing.TB
	nodes map[uint64]*testNode
	ids   []uint64
	cut   map[[2]uint64]bool
	// drop, when set, decides per message whether it is lost.
	drop func(m raftpb.Message) bool
	// pending holds messages sent but not yet delivered.
	pending []raftpb.Message
	// trace records every delivered message, for assertions on traffic.
	trace []raftpb.Message
	// lean turns off the trace and the applied-entry record (benchmarks).
	lean bool
}

type configOpt func(*Config)

// newNetwork builds n voters with IDs 1..n.
func newNetwork(t testing.TB, n int, opts ...configOpt) *network {
	var voters []uint64
	for i := 1; i <= n; i++ {
		voters = append(voters, uint64(i))
	}
	return newNetworkConf(t, raftpb.ConfState{Voters: voters}, opts...)
}

// newNetworkConf builds one node per member of cs (voters, outgoing voters
// and learners), all starting from an empty log with configuration cs.
func newNetworkConf(t testing.TB, cs raftpb.ConfState, opts ...configOpt) *network {
	nw := &network{t: t, nodes: map[uint64]*testNode{}, cut: map[[2]uint64]bool{}}
	members := slices.Concat(cs.Voters, cs.VotersOutgoing, cs.Learners)
	slices.Sort(members)
	members = slices.Compact(members)
	for _, id := range members {
		st := storage.NewMemoryStorageWithConf(cs)
		nw.nodes[id] = &testNode{r: newTestRaft(t, id, st, opts...), st: st}
		nw.ids = append(nw.ids, id)
	}
	return nw
}

func newTestRaft(t testing.TB, id uint64, st *storage.MemoryStorage, opts ...configOpt) *Raft {
	cfg := Config{
		ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: st,
		Rand: rand.New(rand.NewPCG(id, 42)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%d): %v", id, err)
	}
	return r
}

func (nw *network) node(id uint64) *Raft { return nw.nodes[id].r }

// persist takes one Ready from node id and hands it to persistReady.
func (nw *network) persist(id uint64) { nw.persistReady(id, nw.node(id).Ready()) }

// flushReadies persists every pending Ready of every node.
func (nw *network) flushReadies() {
	for _, id := range nw.ids {
		for nw.nodes[id].r.HasReady() {
			nw.persist(id)
		}
	}
}

// deliverAll delivers the currently pending messages once; messages they
// trigger stay pending.
func (nw *network) deliverAll() int {
	msgs := nw.pending
	nw.pending = nil
	for _, m := range msgs {
		nw.deliver(m)
	}
	return len(msgs)
}

func (nw *network) deliver(m raftpb.Message) {
	if nw.cut[[2]uint64{m.From, m.To}] || (nw.drop != nil && nw.drop(m)) {
		return
	}
	n, ok := nw.nodes[m.To]
	if !ok {
		return
	}
	if !nw.lean {
		nw.trace = append(nw.trace, m)
	}
	if err := n.r.Step(m); err != nil {
		nw.t.Fatalf("step %v: %v", m, err)
	}
}

// stabilize runs Readys and deliveries until the network is quiet.
func (nw *network) stabilize() {
	for i := 0; ; i++ {
		if i > 10000 {
			nw.t.Fatalf("network did not stabilize")
		}
		nw.flushReadies()
		if nw.deliverAll() == 0 {
			return
		}
	}
}

// tick advances node id's clock by n ticks, stabilizing after each.
func (nw *network) tick(id uint64, n int) {
	for range n {
		nw.node(id).Tick()
		nw.stabilize()
	}
}

// tickAll ticks every node n times, stabilizing after each round.
func (nw *network) tickAll(n int) {
	for range n {
		for _, id := range nw.ids {
			nw.node(id).Tick()
		}
		nw.stabilize()
	}
}

// campaign makes node id start an election and runs it to the end.
func (nw *network) campaign(id uint64) {
	if err := nw.node(id).Campaign(); err != nil {
		nw.t.Fatalf("campaign %d: %v", id, err)
	}
	nw.stabilize()
}

func (nw *network) isolate(id uint64) {
	for _, o := range nw.ids {
		if o != id {
			nw.cut[[2]uint64{id, o}] = true
			nw.cut[[2]uint64{o, id}] = true
		}
	}
}

// partition cuts every link between the two groups.
func (nw *network) partition(a, b []uint64) {
	for _, x := range a {
		for _, y := range b {
			nw.cut[[2]uint64{x, y}] = true
			nw.cut[[2]uint64{y, x}] = true
		}
	}
}

func (nw *network) heal() { clear(nw.cut) }

// leader returns the unique node in RoleLeader with the highest term, or 0.
func (nw *network) leader() uint64 {
	var lead, term uint64
	for _, id := range nw.ids {
		if r := nw.node(id); r.Role() == RoleLeader && r.Term() >= term {
			lead, term = id, r.Term()
		}
	}
	return lead
}

func (nw *network) propose(id uint64, data string) {
	if _, _, err := nw.node(id).Propose([]byte(data)); err != nil {
		nw.t.Fatalf("propose at %d: %v", id, err)
	}
	nw.stabilize()
}

// logOf returns node id's whole log (durable and unstable) as "term/index"
// strings for comparison.
func (nw *network) logOf(id uint64) []string {
	l := nw.node(id).log
	var out []string
	for i := l.firstIndex(); i <= l.lastIndex(); i++ {
		ents, err := l.slice(i, i+1, 1<<30)
		if err != nil {
			nw.t.Fatalf("node %d log read %d: %v", id, i, err)
		}
		out = append(out, fmt.Sprintf("%d/%d:%s", ents[0].Term, ents[0].Index, ents[0].Data))
	}
	return out
}

// requireRole fails unless node id plays role in term.
func (nw *network) requireRole(id uint64, role Role, term uint64) {
	nw.t.Helper()
	r := nw.node(id)
	if r.Role() != role || r.Term() != term {
		nw.t.Fatalf("node %d: %s in term %d, want %s in term %d", id, r.Role(), r.Term(), role, term)
	}
}

// count returns how many traced messages of type t were delivered.
func (nw *network) count(t raftpb.MessageType) int {
	n := 0
	for _, m := range nw.trace {
		if m.Type == t {
			n++
		}
	}
	return n
}

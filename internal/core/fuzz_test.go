package core

import (
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
)

// Fuzzing Step: whatever arrives from the wire, a node must not crash. A
// message may be rejected with an error or ignored, but Step (and the Ready,
// Advance and Tick calls around it) must never panic, and the log's
// invariants must hold after every call:
//
//	applied <= applying <= committed <= lastIndex()
//	unstable.offset <= unstable.offsetInProgress <= offset+len(entries)
//	unstable.entries[i].Index == offset+i
//	every index below unstable.offset is in storage (no pending snapshot)
//	the term of the last entry can be read
//	term and commit index never decrease
//
// FuzzStep builds a three-node network in which node 1 leads and has
// committed a few entries, then decodes the fuzz input into a script of
// operations (see fuzzDecoder) and runs it. The Test functions at the end are
// the minimized failures it found.

// fuzzOpKind is one kind of scripted operation.
type fuzzOpKind uint8

const (
	// fzStep steps msg into node.
	fzStep fuzzOpKind = iota
	// fzTick ticks node n times.
	fzTick
	// fzReady takes a Ready from node (if it has one), persists it at once
	// and applies its committed entries, but holds its Advance back.
	fzReady
	// fzAdvance advances every Ready node holds back, in the order taken.
	fzAdvance
	// fzDeliver steps every pending message of the network into its
	// addressee once; errors are ignored (a node corrupted by earlier input
	// may send anything), panics are not.
	fzDeliver
	// fzPropose proposes n entries at node, ignoring ErrProposalDropped.
	fzPropose
	// fzTransferLead asks node to hand leadership to peer, ignoring errors.
	fzTransferLead
	// fzUnreachable reports peer unreachable at node.
	fzUnreachable
	// fzSnapStatus reports at node how sending a snapshot to peer ended
	// (ok: n != 0).
	fzSnapStatus
	// fzCompact compacts node's storage up to the index it has applied, as
	// a runtime does after taking a snapshot of its state machine.
	fzCompact
	// fzRead asks node for a read index (lease: n&1), ignoring refusals.
	fzRead
	// fzConfChange proposes msg's conf (in msg.Snapshot) at node as a
	// configuration change, ignoring refusals.
	fzConfChange
)

// fuzzOp is one scripted operation.
type fuzzOp struct {
	kind fuzzOpKind
	node uint64
	peer uint64
	n    int
	msg  raftpb.Message
}

func (op fuzzOp) String() string {
	switch op.kind {
	case fzStep:
		return fmt.Sprintf("step into %d: %s", op.node, fuzzMsgString(op.msg))
	case fzTick:
		return fmt.Sprintf("tick %d x%d", op.node, op.n)
	case fzReady:
		return fmt.Sprintf("ready+persist %d", op.node)
	case fzAdvance:
		return fmt.Sprintf("advance %d", op.node)
	case fzDeliver:
		return "deliver pending"
	case fzPropose:
		return fmt.Sprintf("propose %d x%d", op.node, op.n)
	case fzTransferLead:
		return fmt.Sprintf("transfer leadership %d -> %d", op.node, op.peer)
	case fzUnreachable:
		return fmt.Sprintf("report at %d: %d unreachable", op.node, op.peer)
	case fzSnapStatus:
		return fmt.Sprintf("report at %d: snapshot to %d ok=%v", op.node, op.peer, op.n != 0)
	case fzCompact:
		return fmt.Sprintf("compact %d", op.node)
	case fzRead:
		return fmt.Sprintf("read index at %d ctx=%d lease=%v", op.node, op.n+1, op.n&1 != 0)
	case fzConfChange:
		return fmt.Sprintf("conf change at %d to %+v", op.node, op.msg.Snapshot.ConfState)
	}
	return fmt.Sprintf("op(%d)", op.kind)
}

// fuzzMsgString prints every field of m, unlike Message.String.
func fuzzMsgString(m raftpb.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{Type:%s From:%d To:%d Term:%d LogTerm:%d Index:%d Commit:%d Reject:%v RejectHint:%d Transfer:%v",
		m.Type, m.From, m.To, m.Term, m.LogTerm, m.Index, m.Commit, m.Reject, m.RejectHint, m.Transfer)
	if len(m.Entries) > 0 {
		b.WriteString(" Entries:[")
		for i, e := range m.Entries {
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%d/%d/%s", e.Term, e.Index, e.Type)
		}
		b.WriteString("]")
	}
	if m.Snapshot != nil {
		fmt.Fprintf(&b, " Snapshot:{Index:%d Term:%d Conf:%+v}", m.Snapshot.Index, m.Snapshot.Term, m.Snapshot.ConfState)
	}
	b.WriteString("}")
	return b.String()
}

// fuzzHarness runs scripted operations against a network and checks, after
// each one, that nothing panicked and the invariants hold.
type fuzzHarness struct {
	nw *network
	// held is, per node, the Readys taken and persisted but not yet advanced.
	held map[uint64][]Ready
	// ops is the script run so far, for failure reports.
	ops []fuzzOp
	// term and committed are, per node, the values after the previous
	// operation: neither may ever decrease.
	term, committed map[uint64]uint64
}

// newFuzzHarness builds three voters, elects node 1 and commits three
// proposals everywhere.
func newFuzzHarness(t testing.TB) *fuzzHarness {
	nw := newNetwork(t, 3)
	nw.campaign(1)
	if nw.leader() != 1 {
		t.Fatalf("node 1 did not win the election")
	}
	for _, d := range []string{"a", "b", "c"} {
		nw.propose(1, d)
	}
	nw.stabilize()
	nw.trace = nil
	nw.lean = true
	for _, id := range nw.ids {
		if c := nw.node(id).log.committed; c != 4 {
			t.Fatalf("setup: node %d committed %d, want 4", id, c)
		}
	}
	h := &fuzzHarness{nw: nw, held: map[uint64][]Ready{}, term: map[uint64]uint64{}, committed: map[uint64]uint64{}}
	for _, id := range nw.ids {
		h.term[id], h.committed[id] = nw.node(id).term, nw.node(id).log.committed
	}
	return h
}

// fuzzFailure is a panic or broken invariant found while running a script.
type fuzzFailure struct {
	op    int
	what  string
	stack string
}

// signature names the failure independently of the numbers involved: the
// message with digits dropped, "[huge]" if it mentions a number near
// MaxUint64 (an overflow), and for a panic the function that panicked.
func (f *fuzzFailure) signature() string {
	sig := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, f.what)
	for _, w := range strings.FieldsFunc(f.what, func(r rune) bool { return r < '0' || r > '9' }) {
		if n, err := strconv.ParseUint(w, 10, 64); err != nil || n >= 1<<62 {
			sig += " [huge]"
			break
		}
	}
	lines := strings.Split(f.stack, "\n")
	for i, l := range lines {
		// The panicking function follows panic's own frame (two lines).
		if strings.HasPrefix(l, "panic(") && i+2 < len(lines) {
			fn := lines[i+2]
			if j := strings.LastIndex(fn, "("); j > 0 {
				fn = fn[:j]
			}
			sig += " @ " + fn
			break
		}
	}
	return sig
}

// run performs op and reports a panic or a broken invariant. Errors returned
// by Step are fine: rejecting bad input is the point.
func (h *fuzzHarness) run(op fuzzOp) (fail *fuzzFailure) {
	h.ops = append(h.ops, op)
	defer func() {
		if p := recover(); p != nil {
			fail = &fuzzFailure{op: len(h.ops) - 1, what: fmt.Sprintf("panic: %v", p), stack: string(debug.Stack())}
		}
	}()
	if err := h.do(op); err != nil {
		return &fuzzFailure{op: len(h.ops) - 1, what: err.Error()}
	}
	for _, id := range h.nw.ids {
		r := h.nw.node(id)
		err := fuzzCheckInvariants(r)
		if err == nil && r.term < h.term[id] {
			err = fmt.Errorf("term went back from %d to %d", h.term[id], r.term)
		}
		if err == nil && r.log.committed < h.committed[id] {
			err = fmt.Errorf("commit index went back from %d to %d", h.committed[id], r.log.committed)
		}
		if err != nil {
			return &fuzzFailure{op: len(h.ops) - 1, what: fmt.Sprintf("node %d: %v", id, err)}
		}
		h.term[id], h.committed[id] = r.term, r.log.committed
	}
	return nil
}

func (h *fuzzHarness) do(op fuzzOp) error {
	nw := h.nw
	n, ok := nw.nodes[op.node]
	if !ok && op.kind != fzDeliver {
		return nil
	}
	switch op.kind {
	case fzStep:
		_ = n.r.Step(op.msg)
	case fzTick:
		for range op.n {
			n.r.Tick()
		}
	case fzReady:
		if !n.r.HasReady() {
			return nil
		}
		rd := n.r.Ready()
		if err := h.persist(n, rd); err != nil {
			return fmt.Errorf("node %d: persisting Ready: %w", op.node, err)
		}
		h.held[op.node] = append(h.held[op.node], rd)
	case fzAdvance:
		for _, rd := range h.held[op.node] {
			n.r.Advance(rd)
		}
		h.held[op.node] = nil
	case fzDeliver:
		msgs := nw.pending
		nw.pending = nil
		for _, m := range msgs {
			if to, ok := nw.nodes[m.To]; ok {
				_ = to.r.Step(m)
			}
		}
	case fzPropose:
		data := make([][]byte, op.n)
		for i := range data {
			data[i] = []byte{byte('p' + i)}
		}
		_, _, err := n.r.Propose(data...)
		if err != nil && !errors.Is(err, ErrProposalDropped) {
			return fmt.Errorf("propose: %w", err)
		}
	case fzTransferLead:
		_ = n.r.TransferLeadership(op.peer)
	case fzUnreachable:
		n.r.ReportUnreachable(op.peer)
	case fzSnapStatus:
		n.r.ReportSnapshot(op.peer, op.n != 0)
	case fzCompact:
		_ = n.st.Compact(n.r.log.applied) // ErrCompacted: nothing new applied
	case fzRead:
		_ = n.r.ReadIndex(uint64(op.n)+1, op.n&1 != 0)
	case fzConfChange:
		cs := op.msg.Snapshot.ConfState
		_, _ = n.r.ProposeConfChange(raftpb.ConfChange{Voters: cs.Voters, Learners: cs.Learners})
	}
	return nil
}

// persist makes rd durable in n's storage, applies its committed entries
// and queues its messages, as a runtime would before calling Advance.
func (h *fuzzHarness) persist(n *testNode, rd Ready) error {
	if rd.Snapshot != nil {
		if err := n.st.ApplySnapshot(*rd.Snapshot); err != nil {
			return err
		}
	}
	if err := n.st.Append(rd.Entries); err != nil {
		return err
	}
	if !rd.HardState.IsEmpty() {
		n.st.SetHardState(rd.HardState)
	}
	h.nw.pending = append(h.nw.pending, rd.Messages...)
	h.nw.pending = append(h.nw.pending, rd.MessagesAfterPersist...)
	if k := len(rd.CommittedEntries); k > 0 {
		n.r.AppliedTo(rd.CommittedEntries[k-1].Index)
	}
	return nil
}

// fuzzCheckInvariants checks the documented invariants of r's log.
func fuzzCheckInvariants(r *Raft) error {
	l := r.log
	last := l.lastIndex()
	if !(l.applied <= l.applying && l.applying <= l.committed && l.committed <= last) {
		return fmt.Errorf("log invariant broken: applied %d, applying %d, committed %d, last %d",
			l.applied, l.applying, l.committed, last)
	}
	u := &l.unstable
	if !(u.offset <= u.offsetInProgress && u.offsetInProgress <= u.offset+uint64(len(u.entries))) {
		return fmt.Errorf("unstable invariant broken: offset %d, offsetInProgress %d, %d entries",
			u.offset, u.offsetInProgress, len(u.entries))
	}
	for i, e := range u.entries {
		if e.Index != u.offset+uint64(i) {
			return fmt.Errorf("unstable invariant broken: entries[%d] has index %d, offset %d", i, e.Index, u.offset)
		}
	}
	// Every index below offset is durable in storage (or covered by the
	// pending snapshot): the core acknowledges those entries and counts them
	// towards commit.
	if u.snapshot == nil {
		if stored, err := l.storage.LastIndex(); err == nil && u.offset-1 > stored {
			return fmt.Errorf("unstable invariant broken: offset %d but storage holds entries only up to %d", u.offset, stored)
		}
	}
	// The last entry's term is read by every vote and append; a log that
	// cannot answer it is broken (this panics in the guard if so).
	l.lastTerm()
	return nil
}

func (h *fuzzHarness) report(t testing.TB, f *fuzzFailure) {
	t.Helper()
	var b strings.Builder
	for i, op := range h.ops {
		mark := "  "
		if i == f.op {
			mark = "=>"
		}
		fmt.Fprintf(&b, "%s %3d %s\n", mark, i, op)
	}
	t.Fatalf("%s\nsignature: %s\nafter script:\n%s%s", f.what, f.signature(), b.String(), f.stack)
}

// runFuzzScript runs ops from the fuzz setup and fails on the first panic or
// broken invariant.
func runFuzzScript(t *testing.T, ops []fuzzOp) {
	t.Helper()
	h := newFuzzHarness(t)
	for _, op := range ops {
		if f := h.run(op); f != nil {
			h.report(t, f)
		}
	}
}

// fuzzDecoder turns fuzz input into operations. The encoding is a flat byte
// stream; reading past its end yields zeros, so every input decodes. Numbers
// are encoded relative to the target node's current state (see num) so that
// most mutations stay near the interesting values, while any value remains
// reachable.
//
// One operation is an op byte followed by its arguments:
//
//	op%8 in 0..3: step a message into node 1+(op>>3)%3; message follows
//	op%8 == 4:    tick node 1+(op>>3)%3, count byte: 1+count%16 ticks
//	op%8 == 5:    at node 1+((op>>3)&3)%3, by (op>>5)&3: 0, 1: Ready+persist
//	              and Advance it (and any held Readys before it); 2: Ready+
//	              persist, Advance held back; 3: Advance the held Readys
//	op%8 == 6:    if op>>6 == 3, compact the storage of node 1+((op>>3)&3)%3
//	              up to its applied index; else deliver the pending messages once
//	op%8 == 7:    at node 1+(op>>6)%3, by sub=(op>>3)&7: 0..3: propose
//	              1+sub%3 entries; 4, 5: TransferLeadership to peer byte%5;
//	              6: ReportUnreachable(byte%5); 7: ReportSnapshot(b%5, b>>7)
//
// A message is:
//
//	type byte:   < 0xF0: type%NumMessageTypes; else the raw (invalid) type
//	flags byte:  bit0 Reject, bit1 Transfer, bit2 toggles whether Snapshot is
//	             set (default: only for MsgSnap), bit3 arbitrary To (else the
//	             target), bits 4-5 number of entries, bit6 arbitrary entry
//	             indexes (else consecutive after Index)
//	from byte:   < 0xE0: one of the two other members; 0xE0..0xEF: the
//	             value-0xE0 (0, self, non-members); else a uvarint follows
//	[To num]     if bit3
//	Term num (base: target's term), Index num (base: last index),
//	LogTerm num (base: last term), Commit num (base: commit index),
//	RejectHint num (base: last index)
//	per entry:   [Index num (base: consecutive index)] if bit6,
//	             Term num (base: message term), type byte (raw), data length
//	             byte (%4) and that many data bytes
//	snapshot:    Index num (base: commit index), Term num (base: term),
//	             conf byte (see conf)
type fuzzDecoder struct {
	data []byte
	pos  int
}

func (d *fuzzDecoder) done() bool { return d.pos >= len(d.data) }

func (d *fuzzDecoder) byte() byte {
	if d.pos >= len(d.data) {
		return 0
	}
	b := d.data[d.pos]
	d.pos++
	return b
}

func (d *fuzzDecoder) uvarint() uint64 {
	var x uint64
	for shift := 0; shift < 64; shift += 7 {
		b := d.byte()
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			break
		}
	}
	return x
}

// num decodes a number relative to base:
//
//	0x00..0x7F: base + (k%8 - 3), saturating at 0
//	0x80..0xBF: the absolute value k-0x80 (0..63)
//	0xC0..0xEF: a uvarint follows
//	0xF0..0xFF: MaxUint64 - (k-0xF0)
func (d *fuzzDecoder) num(base uint64) uint64 {
	k := d.byte()
	switch {
	case k < 0x80:
		delta := int(k%8) - 3
		if delta < 0 {
			return base - min(base, uint64(-delta))
		}
		return base + uint64(delta)
	case k < 0xC0:
		return uint64(k - 0x80)
	case k < 0xF0:
		return d.uvarint()
	default:
		return math.MaxUint64 - uint64(k-0xF0)
	}
}

// fzOthers returns the members of 1..3 other than self.
func fzOthers(self uint64) []uint64 {
	var out []uint64
	for id := uint64(1); id <= 3; id++ {
		if id != self {
			out = append(out, id)
		}
	}
	return out
}

// conf decodes a snapshot configuration for a group of nodes 1..3.
func (d *fuzzDecoder) conf(self uint64) raftpb.ConfState {
	switch k := d.byte(); k % 8 {
	case 0:
		return raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	case 1:
		return raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}
	case 2:
		return raftpb.ConfState{}
	case 3: // self removed
		return raftpb.ConfState{Voters: fzOthers(self)}
	case 4: // self demoted to learner
		return raftpb.ConfState{Voters: fzOthers(self), Learners: []uint64{self}}
	case 5:
		return raftpb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{1, 2}}
	case 6:
		return raftpb.ConfState{Voters: []uint64{self}}
	default: // arbitrary small lists
		var cs raftpb.ConfState
		for _, l := range []*[]uint64{&cs.Voters, &cs.VotersOutgoing, &cs.Learners} {
			for range d.byte() % 4 {
				*l = append(*l, uint64(d.byte()%6))
			}
		}
		return cs
	}
}

// next decodes the next operations against the network's current state:
// usually one, two for a Ready that is advanced at once.
func (d *fuzzDecoder) next(nw *network) []fuzzOp {
	op := d.byte()
	node := 1 + uint64(op>>3)%3
	switch op % 8 {
	case 4:
		return []fuzzOp{{kind: fzTick, node: node, n: 1 + int(d.byte()%16)}}
	case 5:
		node = 1 + uint64(op>>3&3)%3
		switch op >> 5 & 3 {
		case 2:
			return []fuzzOp{{kind: fzReady, node: node}}
		case 3:
			return []fuzzOp{{kind: fzAdvance, node: node}}
		}
		return []fuzzOp{{kind: fzReady, node: node}, {kind: fzAdvance, node: node}}
	case 6:
		if op>>6 == 3 {
			return []fuzzOp{{kind: fzCompact, node: 1 + uint64(op>>3&3)%3}}
		}
		return []fuzzOp{{kind: fzDeliver}}
	case 7:
		node = 1 + uint64(op>>6)%3
		switch sub := op >> 3 & 7; {
		case sub < 4:
			return []fuzzOp{{kind: fzPropose, node: node, n: 1 + int(sub)%3}}
		case sub == 4:
			return []fuzzOp{{kind: fzTransferLead, node: node, peer: uint64(d.byte() % 5)}}
		case sub == 5:
			if b := d.byte(); b&1 == 0 {
				return []fuzzOp{{kind: fzRead, node: node, n: int(b >> 1)}}
			}
			cs := d.conf(node)
			return []fuzzOp{{kind: fzConfChange, node: node, msg: raftpb.Message{Snapshot: &raftpb.SnapshotMeta{ConfState: cs}}}}
		case sub == 6:
			return []fuzzOp{{kind: fzUnreachable, node: node, peer: uint64(d.byte() % 5)}}
		default:
			b := d.byte()
			return []fuzzOp{{kind: fzSnapStatus, node: node, peer: uint64(b % 5), n: int(b >> 7)}}
		}
	}
	return []fuzzOp{{kind: fzStep, node: node, msg: d.msg(nw.node(node))}}
}

// fuzzLastPos returns r's last index and term for use as decoding bases, or
// zeros if r's log is too broken to tell (the invariant check reports that).
func fuzzLastPos(r *Raft) (last, term uint64) {
	defer func() {
		if recover() != nil {
			last, term = 0, 0
		}
	}()
	last = r.log.lastIndex()
	return last, r.log.termOrZero(last)
}

// msg decodes a message addressed (usually) to r.
func (d *fuzzDecoder) msg(r *Raft) raftpb.Message {
	var m raftpb.Message
	if tb := d.byte(); tb < 0xF0 {
		m.Type = raftpb.MessageType(tb % byte(raftpb.NumMessageTypes))
	} else {
		m.Type = raftpb.MessageType(tb)
	}
	fl := d.byte()
	m.Reject = fl&1 != 0
	m.Transfer = fl&2 != 0
	withSnap := (m.Type == raftpb.MsgSnap) != (fl&4 != 0)
	if fl&0x80 != 0 {
		m.Context = d.uvarint()
	}
	nEnts := int(fl>>4) & 3
	arbitraryIdx := fl&0x40 != 0

	switch fb := d.byte(); {
	case fb < 0xE0:
		m.From = 1 + (r.id+uint64(fb%2))%3 // the other two of 1..3
	case fb < 0xF0:
		m.From = uint64(fb - 0xE0)
	default:
		m.From = d.uvarint()
	}
	m.To = r.id
	if fl&8 != 0 {
		m.To = d.num(r.id)
	}
	last, lastTerm := fuzzLastPos(r)
	m.Term = d.num(r.term)
	m.Index = d.num(last)
	m.LogTerm = d.num(lastTerm)
	m.Commit = d.num(r.log.committed)
	m.RejectHint = d.num(last)
	for i := range nEnts {
		e := raftpb.Entry{Index: m.Index + uint64(i) + 1}
		if arbitraryIdx {
			e.Index = d.num(e.Index)
		}
		e.Term = d.num(m.Term)
		e.Type = raftpb.EntryType(d.byte())
		if e.Type == raftpb.EntryConfChange && d.byte()&1 == 0 {
			// A well-formed change, so that appends exercise the
			// configuration machinery and not only its decoder.
			cs := d.conf(r.id)
			cc := raftpb.ConfChange{Kind: raftpb.ConfChangeKind(d.byte() % 3), Voters: cs.Voters, Learners: cs.Learners}
			e.Data = cc.MarshalAppend(nil)
		} else {
			for range d.byte() % 4 {
				e.Data = append(e.Data, d.byte())
			}
		}
		m.Entries = append(m.Entries, e)
	}
	if withSnap {
		m.Snapshot = &raftpb.SnapshotMeta{
			Index:     d.num(r.log.committed),
			Term:      d.num(r.term),
			ConfState: d.conf(r.id),
		}
	}
	return m
}

// maxFuzzOps bounds one input's script so that executions stay fast.
const maxFuzzOps = 64

// FuzzStep checks that no sequence of messages, ticks, Readys and Advances
// makes a node panic or break its log invariants.
func FuzzStep(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newFuzzHarness(t)
		d := &fuzzDecoder{data: data}
		for len(h.ops) < maxFuzzOps && !d.done() {
			for _, op := range d.next(h.nw) {
				if f := h.run(op); f != nil {
					h.report(t, f)
				}
			}
		}
	})
}

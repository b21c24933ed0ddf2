package rafttest

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/raftkit/raftkit/internal/core"
	"github.com/raftkit/raftkit/raftpb"
)

// traceKind names what a trace record reports.
type traceKind uint8

const (
	trTick traceKind = iota
	trDeliver
	trLost // a message dropped at delivery: link cut or destination down
	trSend
	trSendDropped
	trSendDup
	trPersist
	trRole
	trCommit
	trPropose
	trProposeDropped
	trCrash
	trRestart
	trPartition
	trCut
	trHeal
	trDropRate
	trDupRate
	trDelay
	trFsync
	trTransfer
	trCampaign
	trUnreachable
	trPhase
	trSnapTake      // a: index, b: term, c: save time
	trSnapSaved     // a: index, b: term
	trCompact       // a: new first index, b: snapshot index
	trSnapSwitch    // a, b: snapshot index and term; note: install or restart
	trFetchStart    // a, b: snapshot index and term, c: sender; f: seconds
	trFetched       // a, b: snapshot index and term, c: sender
	trFetchAbort    // a, b: snapshot index and term of the MsgSnap
	trFetchFail     // a, b: snapshot index and term, c: sender
	trSnapStall     // a: the follower
	trRead          // a: read context, b: 1 for a lease read, c: index known committed; note: refusal
	trReadState     // a: read context, b: read index
	trConfChange    // a: index of the entry; b, c: target voters and learners (idMask)
	trConfCommitted // a: index of the entry; b, c, node: voters, outgoing voters, learners (idMask)
)

// traceRec is one line of the trace, kept as plain values: a run records
// hundreds of thousands of them and formats only the few it prints.
type traceRec struct {
	at      time.Duration
	kind    traceKind
	node    uint64
	a, b, c uint64 // kind-specific numbers
	f       float64
	hs      raftpb.HardState // trPersist
	nents   int              // len(msg.Entries) once the ring dropped them
	msg     raftpb.Message   // trDeliver, trLost, trSend*: Entries kept only for their count
	note    string           // constant strings only; never built per event
}

// msgString formats the record's message with its true entry count.
func (r *traceRec) msgString() string {
	s := r.msg.String()
	if r.msg.Entries == nil && r.nents > 0 {
		s = strings.Replace(s, " ents=0", " ents="+strconv.Itoa(r.nents), 1)
	}
	return s
}

func (r *traceRec) String() string {
	var s string
	switch r.kind {
	case trTick:
		s = fmt.Sprintf("n%d tick", r.node)
	case trDeliver:
		s = "deliver " + r.msgString()
	case trLost:
		s = fmt.Sprintf("lost (%s) %s", r.note, r.msgString())
	case trSend:
		s = "send " + r.msgString()
	case trSendDropped:
		s = fmt.Sprintf("drop (%s) %s", r.note, r.msgString())
	case trSendDup:
		s = "duplicate " + r.msgString()
	case trPersist:
		s = fmt.Sprintf("n%d persisted ents=%d last=%d hs={t%d v%d c%d}", r.node, r.a, r.b,
			r.hs.Term, r.hs.Vote, r.hs.Commit)
	case trRole:
		s = fmt.Sprintf("n%d becomes %s in term %d (leader n%d)", r.node, core.Role(r.a), r.b, r.c)
	case trCommit:
		s = fmt.Sprintf("n%d commit %d -> %d", r.node, r.a, r.b)
	case trPropose:
		s = fmt.Sprintf("n%d proposed %d entries at %d term %d", r.node, r.c, r.a, r.b)
	case trProposeDropped:
		s = fmt.Sprintf("n%d dropped a proposal (%s)", r.node, r.note)
	case trCrash:
		s = fmt.Sprintf("n%d CRASH (%d in-flight Readys lost)", r.node, r.a)
	case trRestart:
		s = fmt.Sprintf("n%d RESTART (durable last=%d term=%d, snapshot %d loaded)", r.node, r.a, r.b, r.c)
	case trPartition:
		s = fmt.Sprintf("PARTITION %s", r.note)
	case trCut:
		s = fmt.Sprintf("CUT n%d -> n%d", r.a, r.b)
	case trHeal:
		s = "HEAL all links"
	case trDropRate:
		s = fmt.Sprintf("drop rate %.2f", r.f)
	case trDupRate:
		s = fmt.Sprintf("duplicate rate %.2f", r.f)
	case trDelay:
		s = fmt.Sprintf("network delay [%v, %v]", time.Duration(r.a), time.Duration(r.b))
	case trFsync:
		who := "all nodes"
		if r.node != 0 {
			who = fmt.Sprintf("n%d", r.node)
		}
		s = fmt.Sprintf("disk latency of %s [%v, %v]", who, time.Duration(r.a), time.Duration(r.b))
	case trTransfer:
		s = fmt.Sprintf("n%d TRANSFER leadership to n%d", r.node, r.a)
	case trUnreachable:
		s = fmt.Sprintf("n%d told n%d is unreachable", r.node, r.a)
	case trCampaign:
		s = fmt.Sprintf("n%d CAMPAIGN", r.node)
	case trPhase:
		s = r.note
	case trSnapTake:
		s = fmt.Sprintf("n%d takes snapshot %d/%d (saving for %v)", r.node, r.b, r.a, time.Duration(r.c))
	case trSnapSaved:
		s = fmt.Sprintf("n%d snapshot %d/%d durable", r.node, r.b, r.a)
	case trCompact:
		s = fmt.Sprintf("n%d compacts its log to start at %d (snapshot at %d)", r.node, r.a, r.b)
	case trSnapSwitch:
		s = fmt.Sprintf("n%d log reset to snapshot %d/%d (%s)", r.node, r.b, r.a, r.note)
	case trFetchStart:
		s = fmt.Sprintf("n%d fetching snapshot %d/%d from n%d (%.3fs)", r.node, r.b, r.a, r.c, r.f)
	case trFetched:
		s = fmt.Sprintf("n%d fetched snapshot %d/%d from n%d", r.node, r.b, r.a, r.c)
	case trFetchAbort:
		s = fmt.Sprintf("n%d aborts the fetch of snapshot %d (term %d): %s", r.node, r.a, r.b, r.note)
	case trFetchFail:
		s = fmt.Sprintf("n%d failed to fetch snapshot %d/%d from n%d: %s", r.node, r.b, r.a, r.c, r.note)
	case trSnapStall:
		s = fmt.Sprintf("n%d reports its snapshot to n%d failed (stalled)", r.node, r.a)
	case trRead:
		mode := "safe"
		if r.b == 1 {
			mode = "lease"
		}
		s = fmt.Sprintf("n%d read #%d (%s) with %d known committed", r.node, r.a, mode, r.c)
		if r.note != "" {
			s += " refused: " + r.note
		}
	case trReadState:
		s = fmt.Sprintf("n%d read #%d released at index %d", r.node, r.a, r.b)
	case trConfChange:
		s = fmt.Sprintf("n%d CONF CHANGE to voters %s learners %s proposed at %d", r.node, maskIDs(r.b),
			maskIDs(r.c), r.a)
	case trConfCommitted:
		s = fmt.Sprintf("configuration at %d committed: voters %s outgoing %s learners %s", r.a, maskIDs(r.b),
			maskIDs(r.c), maskIDs(r.node))
	default:
		s = fmt.Sprintf("trace kind %d", r.kind)
	}
	return fmt.Sprintf("%12.6fs %s", r.at.Seconds(), s)
}

// tracer keeps the last records in a ring and, when verbose is set, streams
// every record formatted.
type tracer struct {
	ring    []traceRec
	next    int
	full    bool
	verbose func(string)
}

func newTracer(n int, verbose func(string)) tracer {
	return tracer{ring: make([]traceRec, n), verbose: verbose}
}

// add records r. Messages keep their header only; the ring must not pin
// entry slices.
func (t *tracer) add(r traceRec) {
	if t.verbose != nil {
		t.verbose(r.String())
	}
	if len(t.ring) == 0 {
		return
	}
	r.nents, r.msg.Entries = len(r.msg.Entries), nil
	t.ring[t.next] = r
	t.next++
	if t.next == len(t.ring) {
		t.next, t.full = 0, true
	}
}

// wants reports whether records that only the verbose stream shows (sends)
// should be built at all.
func (t *tracer) wants() bool { return t.verbose != nil }

// tail formats the ring, oldest first.
func (t *tracer) tail() []string {
	var out []string
	if t.full {
		for i := t.next; i < len(t.ring); i++ {
			out = append(out, t.ring[i].String())
		}
	}
	for i := 0; i < t.next; i++ {
		out = append(out, t.ring[i].String())
	}
	return out
}

// Violation is the error a run returns when an invariant breaks or the
// cluster fails its liveness check. It carries everything needed to replay
// the run: the same Options (notably Seed) reproduce it exactly.
type Violation struct {
	// Seed is the run's seed.
	Seed uint64
	// At is the virtual time of the violation.
	At time.Duration
	// Node is the node whose action exposed the violation (0: none).
	Node uint64
	// Invariant names the broken property, e.g. "election safety".
	Invariant string
	// Detail explains what was observed.
	Detail string
	// Trace is the formatted tail of the event trace, oldest first.
	Trace []string
	// Replay is the command that replays the run with a full trace.
	Replay string
}

// Error formats the violation with its trace tail and the replay command.
func (v *Violation) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rafttest: seed %d at %.6fs: %s violated", v.Seed, v.At.Seconds(), v.Invariant)
	if v.Node != 0 {
		fmt.Fprintf(&b, " (n%d)", v.Node)
	}
	fmt.Fprintf(&b, ": %s\n", v.Detail)
	if len(v.Trace) > 0 {
		fmt.Fprintf(&b, "last %d events:\n", len(v.Trace))
		for _, l := range v.Trace {
			b.WriteString("    ")
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	replay := v.Replay
	if replay == "" {
		replay = ReplayCommand(v.Seed)
	}
	fmt.Fprintf(&b, "replay: %s", replay)
	return b.String()
}

// ReplayCommand is the shell command that replays seed with a full trace.
func ReplayCommand(seed uint64) string {
	return fmt.Sprintf("go test ./rafttest -run 'TestRandomizedSafety' -rafttest.seed=%d -v", seed)
}

package rafttest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/raftkit/raftkit/internal/core"
	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// Options configures a simulated cluster. Zero fields take the documented
// defaults. Two clusters built from equal Options behave identically.
type Options struct {
	// Seed drives every random choice of the run.
	Seed uint64
	// Nodes is the cluster size. NewCluster defaults it to 3; Run picks 3, 5
	// or 7 from the seed when it is zero.
	Nodes int
	// Voters and Learners shape the initial configuration: voters 1..Voters
	// (default all Nodes), then Learners learners; the other nodes start
	// outside it, bootstrapped with it, and wait to be added.
	Voters, Learners int
	// MembershipChanges makes Run propose random membership changes among
	// the Nodes IDs (add, remove and promote voters, add and remove
	// learners). With VaryCoreConfig, Run draws it, and for a pool of 5 the
	// initial configuration, from the seed.
	MembershipChanges bool
	// Duration is the faulty period of Run; default 200 s of virtual time.
	// NewCluster ignores it.
	Duration time.Duration
	// LivenessTimeout bounds, after the faulty period of Run, the virtual
	// time in which a healed cluster must elect a leader and apply a fresh
	// proposal on every node; default 30 s.
	LivenessTimeout time.Duration

	// TickInterval is the virtual time between two ticks of a node; default
	// 100 ms. Every node ticks at its own random phase.
	TickInterval time.Duration
	// ElectionTick and HeartbeatTick configure the cores; defaults 10 and 1.
	ElectionTick  int
	HeartbeatTick int
	// DisablePreVote and DisableCheckQuorum are passed to the cores.
	DisablePreVote     bool
	DisableCheckQuorum bool
	// The limits below are passed to the cores (zero: the core's defaults).
	// Small values exercise probing, pipelining limits, multi-Ready apply
	// and proposal back-pressure.
	MaxInflightMsgs     int
	MaxInflightBytes    uint64
	MaxBatchEntries     int
	MaxBatchBytes       uint64
	MaxApplyBytes       uint64
	MaxUncommittedBytes uint64
	// VaryCoreConfig lets Run draw ElectionTick, PreVote, CheckQuorum, the
	// limits above and FaultInterval from the seed instead of taking them
	// from these Options.
	VaryCoreConfig bool

	// FaultInterval is the mean virtual time between two random faults in
	// Run; default 2 s.
	FaultInterval time.Duration

	// SnapshotEvery is K: a node takes a snapshot of its state machine once
	// it has applied K entries past its last snapshot, and compacts its log
	// once the snapshot is durable. Zero: never (and no snapshot is ever
	// installed). With VaryCoreConfig, Run draws it from the seed, zero in
	// some seeds.
	SnapshotEvery uint64
	// CompactMargin is M: compaction keeps the M entries up to the
	// snapshot's index, for followers a little behind.
	CompactMargin uint64
	// SnapshotByteTime is the virtual time it takes to fetch one byte of a
	// snapshot (saving takes a quarter of it); default 2 µs. A snapshot at
	// index i is 64+16·min(i, 2048) bytes.
	SnapshotByteTime time.Duration

	// MinDelay and MaxDelay bound the network delay of one message; defaults
	// 1 ms and 20 ms. Independent delays reorder messages.
	MinDelay, MaxDelay time.Duration
	// DropRate and DupRate are the initial probabilities that a message is
	// lost or delivered twice.
	DropRate, DupRate float64
	// MinFsync and MaxFsync bound the simulated time a Ready takes to become
	// durable; defaults 1 ms and 5 ms.
	MinFsync, MaxFsync time.Duration

	// TraceLen is how many trace records a Violation reports; default 50.
	TraceLen int
	// Trace, when non-nil, receives every trace record formatted, including
	// message sends. It slows a run down considerably.
	Trace func(string)

	// bug makes the simulated runtime break the Ready protocol or lose
	// durable state on purpose; tests use it to show the checker notices.
	bug runtimeBug
}

const defaultDuration = 200 * time.Second

func (o *Options) setDefaults() {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Voters == 0 {
		o.Voters = o.Nodes - o.Learners
	}
	if o.Duration == 0 {
		o.Duration = defaultDuration
	}
	if o.FaultInterval == 0 {
		o.FaultInterval = 2 * time.Second
	}
	if o.LivenessTimeout == 0 {
		o.LivenessTimeout = 30 * time.Second
	}
	if o.TickInterval == 0 {
		o.TickInterval = 100 * time.Millisecond
	}
	if o.ElectionTick == 0 {
		o.ElectionTick = 10
	}
	if o.HeartbeatTick == 0 {
		o.HeartbeatTick = 1
	}
	if o.MinDelay == 0 && o.MaxDelay == 0 {
		o.MinDelay, o.MaxDelay = time.Millisecond, 20*time.Millisecond
	}
	if o.MinFsync == 0 && o.MaxFsync == 0 {
		o.MinFsync, o.MaxFsync = time.Millisecond, 5*time.Millisecond
	}
	if o.TraceLen == 0 {
		o.TraceLen = 50
	}
	if o.SnapshotByteTime == 0 {
		o.SnapshotByteTime = 2 * time.Microsecond
	}
}

// Stats counts what happened during a run.
type Stats struct {
	Events             uint64 // events processed
	Readys             uint64 // Readys taken from cores
	Persists           uint64 // Readys made durable
	MessagesSent       uint64 // messages the cores sent
	MessagesDelivered  uint64 // messages handed to a core's Step
	MessagesDropped    uint64 // lost to drop rate, cut links or down nodes
	MessagesDuplicated uint64 // extra copies delivered
	Elections          int    // terms in which some node became leader
	MaxTerm            uint64 // highest term in which a leader was seen
	Committed          uint64 // highest index known committed
	Proposals          int    // proposals accepted by a core
	ProposalsDropped   int    // proposals refused by a core
	Crashes            int    // nodes crashed
	Restarts           int    // nodes restarted
	Faults             int    // partitions, cuts, heals, rate and latency changes, transfers, campaigns

	Snapshots      int // snapshots saved (durable)
	SnapshotsLost  int // saves a crash cut short
	Compactions    int // log compactions behind a durable snapshot
	Fetches        int // fetches of a leader's snapshot started
	FetchesAborted int // fetches superseded by a newer snapshot or term
	FetchesFailed  int // fetches that failed (sender gone or unreachable)
	Installs       int // snapshots installed (log switched, state loaded)
	SnapshotLoads  int // restarts that loaded a snapshot
	// Crashes that hit a node while it saved a snapshot, fetched one,
	// had fetched one and not installed it yet, and had installed one and
	// not yet advanced its core past it.
	CrashesSaving, CrashesFetching, CrashesFetched, CrashesInstalled int

	Reads          int // reads accepted by a core (ReadIndex)
	ReadsRefused   int // reads a core refused (no leader known, transfer)
	ReadsReleased  int // reads answered (first answer only)
	ReadsImmediate int // reads answered within the ReadIndex call (lease, one voter)

	ConfChanges        int // membership changes accepted by a leader
	ConfChangesRefused int // membership changes a core refused (busy, not leader, ...)
	ConfsCommitted     int // configuration entries committed (LeaveJoint included)
	LeaderRemovals     int // accepted changes that remove the leader proposing them
	Promotions         int // accepted changes that make a learner a voter
}

// ErrTimeout is returned (wrapped, with the seed) by Cluster.RunUntil when
// the condition does not hold within the limit.
var ErrTimeout = errors.New("rafttest: condition not reached in time")

// Cluster is a simulated Raft group: Options.Nodes cores with IDs 1..N, a
// virtual clock, a faulty network and per-node durable MemoryStorage, all
// driven from one goroutine by one seed.
//
// Concurrency: a Cluster is not safe for concurrent use; run independent
// clusters in parallel instead.
type Cluster struct {
	opts  Options
	rng   *rand.Rand
	now   time.Duration
	q     eventQueue
	nodes []*node // nodes[i] has ID i+1
	conf  raftpb.ConfState
	net   network
	chk   checker
	trace tracer
	stats Stats
	err   error
	chaos *chaos // nil unless driven by Run
	reads readTracker
	// confs is the configuration along the committed log, from index 0
	// (the bootstrap one) on, by index (membership.go).
	confs []confPoint
}

// NewCluster builds a cluster of fresh nodes, all bootstrapped with the
// initial configuration (Options.Voters and Options.Learners; by default the
// voters 1..N), all up, with no fault. Time starts at zero; nothing runs until
// RunFor or RunUntil.
func NewCluster(opts Options) (*Cluster, error) {
	opts.setDefaults()
	if opts.Nodes < 1 || opts.Nodes > 64 {
		return nil, fmt.Errorf("rafttest: %d nodes, want 1..64", opts.Nodes)
	}
	if opts.Voters < 1 || opts.Learners < 0 || opts.Voters+opts.Learners > opts.Nodes {
		return nil, fmt.Errorf("rafttest: %d voters and %d learners among %d nodes", opts.Voters, opts.Learners, opts.Nodes)
	}
	if opts.MinDelay > opts.MaxDelay || opts.MinFsync > opts.MaxFsync {
		return nil, errors.New("rafttest: min delay above max delay")
	}
	c := &Cluster{
		opts:  opts,
		rng:   rand.New(rand.NewPCG(opts.Seed, 0x9e3779b97f4a7c15)),
		trace: newTracer(opts.TraceLen, opts.Trace),
		chk:   newChecker(),
	}
	c.net = newNetwork(opts.Nodes, opts.MinDelay, opts.MaxDelay, opts.DropRate, opts.DupRate)
	c.conf = initialConf(&opts)
	c.confs = []confPoint{{cs: c.conf}}
	for i := range opts.Nodes {
		id := uint64(i + 1)
		n := &node{
			id:       id,
			rng:      rand.New(rand.NewPCG(opts.Seed, mix64(id))),
			store:    &simStorage{MemoryStorage: storage.NewMemoryStorageWithConf(c.conf)},
			durable:  newLogMirror(),
			volatile: newLogMirror(),
			minFsync: opts.MinFsync,
			maxFsync: opts.MaxFsync,
		}
		c.nodes = append(c.nodes, n)
		if err := c.startCore(n); err != nil {
			return nil, err
		}
		phase := time.Duration(c.rng.Int64N(int64(opts.TickInterval)))
		c.q.push(event{at: phase, kind: evTick, node: id})
	}
	return c, nil
}

// Now returns the virtual time.
func (c *Cluster) Now() time.Duration { return c.now }

// Seed returns the seed of the cluster.
func (c *Cluster) Seed() uint64 { return c.opts.Seed }

// Size returns the number of nodes.
func (c *Cluster) Size() int { return len(c.nodes) }

// Stats returns the counters so far.
func (c *Cluster) Stats() Stats { return c.stats }

// Err returns the first violation, or nil.
func (c *Cluster) Err() error { return c.err }

// RunFor processes events for d of virtual time. It returns the first
// invariant violation (a *Violation), also on later calls.
func (c *Cluster) RunFor(d time.Duration) error {
	return c.runUntil(c.now+d, nil)
}

// RunUntil processes events until cond holds (checked before the first event
// and after each one) or limit of virtual time passes, in which case it
// returns an error wrapping ErrTimeout. A violation is returned first.
func (c *Cluster) RunUntil(cond func() bool, limit time.Duration) error {
	if c.err != nil {
		return c.err
	}
	if cond() {
		return nil
	}
	deadline := c.now + limit
	if err := c.runUntil(deadline, cond); err != nil {
		return err
	}
	if !cond() {
		return fmt.Errorf("%w: seed %d, %v of virtual time, now %.3fs", ErrTimeout, c.opts.Seed, limit, c.now.Seconds())
	}
	return nil
}

// runUntil processes events due at or before deadline, stopping early when
// cond (if non-nil) holds or a violation occurs. The clock ends at deadline
// unless it stopped early.
func (c *Cluster) runUntil(deadline time.Duration, cond func() bool) error {
	for c.err == nil && c.q.len() > 0 && c.q.peek().at <= deadline {
		c.safeStep()
		if cond != nil && c.err == nil && cond() {
			return nil
		}
	}
	if c.err == nil && c.now < deadline {
		c.now = deadline
	}
	return c.err
}

// maxPending bounds the agenda. A healthy cluster keeps a few hundred events
// pending; a core that answers duplicated messages with more messages grows
// it exponentially, which the run reports instead of exhausting memory.
const maxPending = 20000

// safeStep runs step, turning a panic of a core into a violation so that
// the report names the seed and shows the trace.
func (c *Cluster) safeStep() {
	defer func() {
		if r := recover(); r != nil {
			c.failf(0, "core panic", "%v\n%s", r, debug.Stack())
		}
	}()
	c.step()
}

// step runs the earliest event.
func (c *Cluster) step() {
	if c.q.len() > maxPending {
		c.failf(0, "message storm", "%d events pending; messages multiply", c.q.len())
		return
	}
	e := c.q.pop()
	c.now = e.at
	c.stats.Events++
	switch e.kind {
	case evTick:
		c.q.push(event{at: c.now + c.tickInterval(e.node), kind: evTick, node: e.node})
		n := c.node(e.node)
		if n.core == nil {
			return
		}
		if c.trace.wants() {
			c.trace.add(traceRec{at: c.now, kind: trTick, node: n.id})
		}
		c.checkSnapshotStalls(n)
		n.core.Tick()
		c.drain(n)
	case evDeliver:
		c.deliver(c.q.takeMsg(e.msg))
	case evPersist:
		c.persist(c.node(e.node), e.gen)
	case evRestart:
		if n := c.node(e.node); n.core == nil {
			c.Restart(n.id)
		}
	case evUnreachable:
		c.reportUnreachable(e.node, e.peer)
	case evSnapSaved:
		c.snapshotSaved(c.node(e.node), e.gen, e.id)
	case evSnapFetched:
		c.snapshotFetched(c.node(e.node), e.gen, e.id)
	default:
		if c.chaos != nil {
			c.chaos.handle(e)
		}
	}
}

func (c *Cluster) node(id uint64) *node { return c.nodes[id-1] }

func (c *Cluster) validID(id uint64) bool { return id >= 1 && id <= uint64(len(c.nodes)) }

// Up reports whether node id is running.
func (c *Cluster) Up(id uint64) bool { return c.node(id).core != nil }

// Role returns the role node id last reported, or RoleFollower when down.
func (c *Cluster) Role(id uint64) core.Role {
	n := c.node(id)
	if n.core == nil {
		return core.RoleFollower
	}
	return n.role
}

// Term returns the current term of node id, or 0 when it is down.
func (c *Cluster) Term(id uint64) uint64 {
	if n := c.node(id); n.core != nil {
		return n.core.Term()
	}
	return 0
}

// Status returns the core status of node id; ok is false when it is down.
func (c *Cluster) Status(id uint64) (st core.Status, ok bool) {
	if n := c.node(id); n.core != nil {
		return n.core.Status(), true
	}
	return core.Status{}, false
}

// Applied returns the index of the last entry node id applied to its state
// machine, or of the snapshot it loaded, since it last started.
func (c *Cluster) Applied(id uint64) uint64 { return c.node(id).applied }

// Snapshot returns the index and term of node id's latest durable snapshot
// (saved or fetched), or zeros when it has none.
func (c *Cluster) Snapshot(id uint64) (index, term uint64) {
	s, _ := c.node(id).latest()
	return s.meta.Index, s.meta.Term
}

// FirstIndex returns the first index node id's durable log holds: one past
// its compaction point or installed snapshot.
func (c *Cluster) FirstIndex(id uint64) uint64 { return c.node(id).durable.off + 1 }

// Installing reports whether node id is fetching a leader's snapshot.
func (c *Cluster) Installing(id uint64) bool { return c.node(id).install != nil }

// Leader returns the running node that believes it leads in the highest
// term, or 0 when none does.
func (c *Cluster) Leader() uint64 {
	var best, bestTerm uint64
	for _, n := range c.nodes {
		if n.core != nil && n.role == core.RoleLeader {
			if t := n.core.Term(); best == 0 || t > bestTerm {
				best, bestTerm = n.id, t
			}
		}
	}
	return best
}

// Committed returns the highest index any node has reported committed.
func (c *Cluster) Committed() uint64 { return c.chk.commitMax() }

// CommittedEntry returns the term, type and payload of the committed entry at
// index; ok is false when index is not known committed.
func (c *Cluster) CommittedEntry(index uint64) (term uint64, typ raftpb.EntryType, data []byte, ok bool) {
	if index == 0 || index > c.chk.commitMax() {
		return 0, 0, nil, false
	}
	d := &c.chk.committed[index]
	return d.term, d.typ, d.data, true
}

// AllApplied reports whether every node is up and has applied index.
func (c *Cluster) AllApplied(index uint64) bool {
	for _, n := range c.nodes {
		if n.core == nil || n.applied < index {
			return false
		}
	}
	return true
}

// Propose hands data to node id's core as one entry per payload and
// processes the resulting Ready. It returns the core's answer: the index and
// term of the first entry, or an error such as core.ErrProposalDropped.
func (c *Cluster) Propose(id uint64, data ...[]byte) (first, term uint64, err error) {
	n := c.node(id)
	if n.core == nil {
		return 0, 0, fmt.Errorf("rafttest: node %d is down", id)
	}
	first, term, err = n.core.Propose(data...)
	if err != nil {
		c.stats.ProposalsDropped++
		c.trace.add(traceRec{at: c.now, kind: trProposeDropped, node: id, note: "refused"})
		return first, term, err
	}
	c.stats.Proposals++
	c.trace.add(traceRec{at: c.now, kind: trPropose, node: id, a: first, b: term, c: uint64(len(data))})
	c.drain(n)
	return first, term, nil
}

// Crash stops node id: its core, its in-flight (not yet durable) Readys, a
// snapshot being saved or fetched and its volatile state are lost; its
// MemoryStorage and durable snapshots keep what was durable. Messages it
// already sent stay in flight. Crashing a down node is a no-op.
func (c *Cluster) Crash(id uint64) {
	n := c.node(id)
	if n.core == nil {
		return
	}
	c.stats.Crashes++
	c.countSnapshotCrash(n)
	c.trace.add(traceRec{at: c.now, kind: trCrash, node: id, a: uint64(n.pending.len())})
	n.crash()
	c.crashBug(n)
}

// Restart starts a new core for node id on its durable storage: the state
// machine loads the latest durable snapshot (the log is first reset to start
// after it if a crash cut its install short), the core starts with Applied
// at its index, and the committed log after it is applied again. Restarting
// a running node is a no-op.
func (c *Cluster) Restart(id uint64) {
	n := c.node(id)
	if n.core != nil {
		return
	}
	c.loadSnapshot(n)
	if c.err != nil {
		return
	}
	if err := c.startCore(n); err != nil {
		c.fail(n.id, "restart", err.Error())
		return
	}
	c.stats.Restarts++
	c.trace.add(traceRec{at: c.now, kind: trRestart, node: id, a: n.durable.last(), b: n.hs.Term, c: n.smSnap})
	c.drain(n)
}

// startCore creates node n's core on its durable storage.
func (c *Cluster) startCore(n *node) error {
	r, err := core.New(core.Config{
		ID:                  n.id,
		ElectionTick:        c.opts.ElectionTick,
		HeartbeatTick:       c.opts.HeartbeatTick,
		Storage:             n.store,
		Applied:             n.applied,
		Rand:                n.rng,
		MaxInflightMsgs:     c.opts.MaxInflightMsgs,
		MaxInflightBytes:    c.opts.MaxInflightBytes,
		MaxBatchEntries:     c.opts.MaxBatchEntries,
		MaxBatchBytes:       c.opts.MaxBatchBytes,
		MaxApplyBytes:       c.opts.MaxApplyBytes,
		MaxUncommittedBytes: c.opts.MaxUncommittedBytes,
		DisablePreVote:      c.opts.DisablePreVote,
		DisableCheckQuorum:  c.opts.DisableCheckQuorum,
	})
	if err != nil {
		return fmt.Errorf("rafttest: node %d: %w", n.id, err)
	}
	n.start(r, c.now)
	return nil
}

// fail records the first violation and stops the run.
func (c *Cluster) fail(node uint64, invariant, detail string) {
	if c.err != nil {
		return
	}
	c.err = &Violation{
		Seed:      c.opts.Seed,
		At:        c.now,
		Node:      node,
		Invariant: invariant,
		Detail:    detail,
		Trace:     c.trace.tail(),
		Replay:    ReplayCommand(c.opts.Seed),
	}
	if c.opts.Duration != defaultDuration {
		v := c.err.(*Violation)
		v.Replay += fmt.Sprintf(" -rafttest.simtime=%v", c.opts.Duration)
	}
}

func (c *Cluster) failf(node uint64, invariant, format string, args ...any) {
	if c.err == nil {
		c.fail(node, invariant, fmt.Sprintf(format, args...))
	}
}

package rafttest

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/raftkit/raftkit/internal/core"
	"github.com/raftkit/raftkit/raftpb"
)

// Result summarizes a Run.
type Result struct {
	// Options are the options the run used after defaults and the choices
	// drawn from the seed (cluster size, core variant).
	Options Options
	// Stats are the cluster's counters at the end of the run.
	Stats Stats
	// LivenessAt is the virtual time the healed cluster took, after the
	// faulty period, to apply a fresh proposal on every node.
	LivenessAt time.Duration
	// Duration is the total virtual time simulated.
	Duration time.Duration
}

// Run simulates one randomized run: a cluster of opts.Nodes nodes (3, 5 or 7
// drawn from the seed when zero) under random faults and proposals for
// opts.Duration, then, with every fault healed and every node restarted, a
// liveness phase in which a leader must commit and apply a fresh proposal on
// all nodes within opts.LivenessTimeout. Everything is a pure function of
// opts; the error is a *Violation naming the seed.
func Run(opts Options) (Result, error) {
	opts.setDefaultsForRun()
	res := Result{Options: opts}
	c, err := NewCluster(opts)
	if err != nil {
		return res, err
	}
	ch := &chaos{c: c, end: c.opts.Duration}
	c.chaos = ch
	ch.start()
	err = c.runUntil(ch.end+c.opts.LivenessTimeout, ch.livenessDone)
	res.Stats, res.Duration = c.stats, c.now
	if err != nil {
		return res, err
	}
	if !ch.livenessDone() {
		c.fail(0, "liveness", ch.livenessReport())
		return res, c.err
	}
	res.LivenessAt = ch.doneAt - ch.end
	return res, nil
}

// setDefaultsForRun draws from the seed what Run leaves to it, from a
// generator separate from the cluster's so that these choices do not shift
// the rest of the run.
func (o *Options) setDefaultsForRun() {
	r := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	drawnNodes := o.Nodes == 0
	if drawnNodes {
		o.Nodes = 3 + 2*r.IntN(3)
	}
	if o.VaryCoreConfig {
		// A short election timeout against network delays of up to 400 ms
		// makes for contested elections.
		o.ElectionTick = []int{10, 10, 5, 3}[r.IntN(4)]
		o.FaultInterval = []time.Duration{2 * time.Second, 2 * time.Second, 500 * time.Millisecond}[r.IntN(3)]
		o.DisablePreVote = r.IntN(4) == 0
		o.DisableCheckQuorum = r.IntN(4) == 0
		o.MaxInflightMsgs = []int{0, 2, 8, 32}[r.IntN(4)]
		o.MaxBatchEntries = []int{0, 1, 4, 16, 64}[r.IntN(5)]
		if o.MaxInflightMsgs != 0 && o.MaxInflightMsgs*o.MaxBatchEntries < 16 {
			// Keep at least 16 entries per round trip, so that a lagging
			// node catches up by hundreds of entries a second, well within
			// the liveness timeout.
			o.MaxInflightMsgs = 16
		}
		o.MaxBatchBytes = []uint64{0, 0, 100}[r.IntN(3)]
		o.MaxApplyBytes = []uint64{0, 1, 100}[r.IntN(3)]
		o.MaxInflightBytes = []uint64{0, 0, 300}[r.IntN(3)]
		o.MaxUncommittedBytes = []uint64{0, 0, 1000}[r.IntN(3)]
		// Snapshots in four seeds out of five, from every few entries
		// (installs are frequent, compaction constant) to rarely.
		o.SnapshotEvery = []uint64{0, 3, 10, 50, 200}[r.IntN(5)]
		o.CompactMargin = []uint64{0, 2, 20, 200}[r.IntN(4)]
		// Fetches of up to about 5 s, which a newer snapshot, a new term
		// or a crash often interrupts.
		o.SnapshotByteTime = []time.Duration{1, 10, 50, 100}[r.IntN(4)] * time.Microsecond
		// Membership changes in a quarter of the seeds, among a pool of
		// five IDs of which one to five start as voters, some of the rest
		// as learners. Drawn last, so that the other seeds run as before.
		if r.IntN(4) == 0 {
			o.MembershipChanges = true
			if drawnNodes {
				o.Nodes = 5
				o.Voters = []int{1, 2, 3, 3, 4, 5}[r.IntN(6)]
				o.Learners = r.IntN(o.Nodes - o.Voters + 1)
			}
		}
	}
	o.setDefaults()
}

// chaos is Run's driver: it schedules random faults and proposals during the
// faulty period, then heals everything and drives the liveness check.
type chaos struct {
	c         *Cluster
	end       time.Duration // end of the faulty period
	ended     bool
	proposals int // payloads proposed so far, for unique payloads

	// finals are the liveness proposals accepted by a leader; any one of
	// them applied everywhere ends the run.
	finals      []finalProposal
	lastFinalAt time.Duration
	doneAt      time.Duration
	done        bool

	// snapCrashAt[p] is the earliest time crashWithin may again schedule a
	// crash at snapshot crash point p.
	snapCrashAt [numCrashPoints]time.Duration
}

// crashPoint names where in snapshot work crashWithin may crash a node.
type crashPoint uint8

const (
	crashSaving    crashPoint = iota // during a save
	crashFetching                    // during a fetch
	crashFetched                     // after a fetch, before the install
	crashInstalled                   // after the install, before Advance
	numCrashPoints
)

type finalProposal struct {
	index, term uint64
	data        string
}

func (ch *chaos) start() {
	c := ch.c
	c.q.push(event{at: ch.faultGap(), kind: evFault})
	c.q.push(event{at: ch.proposeGap(), kind: evPropose})
	c.q.push(event{at: ch.readGap(), kind: evRead})
	c.q.push(event{at: ch.end, kind: evEndFaults})
}

// faultGap draws the time of the next fault: uniform in [0.1, 1.9] times
// the mean interval.
func (ch *chaos) faultGap() time.Duration {
	mean := ch.c.opts.FaultInterval
	return ch.c.now + mean/10 + time.Duration(ch.c.rng.Int64N(int64(mean*18/10)))
}

func (ch *chaos) proposeGap() time.Duration {
	return ch.c.now + 10*time.Millisecond + time.Duration(ch.c.rng.Int64N(int64(300*time.Millisecond)))
}

func (ch *chaos) handle(e event) {
	c := ch.c
	switch e.kind {
	case evFault:
		if ch.ended {
			return
		}
		ch.fault()
		c.q.push(event{at: ch.faultGap(), kind: evFault})
	case evPropose:
		if ch.ended {
			return
		}
		ch.propose()
		c.q.push(event{at: ch.proposeGap(), kind: evPropose})
	case evRead:
		if ch.ended {
			return
		}
		ch.read()
		c.q.push(event{at: ch.readGap(), kind: evRead})
	case evEndFaults:
		ch.endFaults()
	case evCrash:
		if n := c.node(e.node); n.core != nil && n.gen == e.gen {
			ch.crashNode(n.id, 10*time.Millisecond, time.Second)
		}
	case evLiveness:
		ch.liveness()
		if !ch.done {
			c.q.push(event{at: c.now + c.opts.TickInterval, kind: evLiveness})
		}
	}
}

// randomNode returns a random node ID, the current leader instead with
// probability preferLeader when there is one.
func (ch *chaos) randomNode(preferLeader float64) uint64 {
	c := ch.c
	if l := c.Leader(); l != 0 && c.rng.Float64() < preferLeader {
		return l
	}
	return uint64(c.rng.IntN(len(c.nodes)) + 1)
}

// fault performs one random fault.
func (ch *chaos) fault() {
	c := ch.c
	if c.opts.MembershipChanges && c.rng.IntN(6) == 0 {
		ch.changeMembership()
		return
	}
	switch p := c.rng.IntN(100); {
	case p < 16: // split into two random sides
		var a, b []uint64
		for _, n := range c.nodes {
			if c.rng.IntN(2) == 0 {
				a = append(a, n.id)
			} else {
				b = append(b, n.id)
			}
		}
		c.Partition(a, b)
	case p < 28:
		c.Isolate(ch.randomNode(0.5))
	case p < 36:
		from := uint64(c.rng.IntN(len(c.nodes)) + 1)
		to := uint64(c.rng.IntN(len(c.nodes)) + 1)
		if from != to {
			c.Cut(from, to)
		}
	case p < 54:
		c.Heal()
	case p < 70:
		ch.crash()
	case p < 79:
		c.SetDropRate([]float64{0, 0, 0.01, 0.05, 0.1, 0.3}[c.rng.IntN(6)])
	case p < 85:
		c.SetDupRate([]float64{0, 0.01, 0.05, 0.2}[c.rng.IntN(4)])
	case p < 89:
		// A slow disk, on one node or all of them.
		var id uint64
		if c.rng.IntN(2) == 0 {
			id = ch.randomNode(0.5)
		}
		lat := []time.Duration{1, 5, 20}[c.rng.IntN(3)] * time.Millisecond
		c.SetFsync(id, lat, 10*lat)
	case p < 93:
		maxDelay := []time.Duration{5, 20, 20, 100, 400}[c.rng.IntN(5)] * time.Millisecond
		c.SetDelay(time.Millisecond, maxDelay)
	case p < 97:
		if l := c.Leader(); l != 0 {
			to := uint64(c.rng.IntN(len(c.nodes)) + 1)
			_ = c.TransferLeadership(l, to) // refused when to is l
		}
	default:
		id := uint64(c.rng.IntN(len(c.nodes)) + 1)
		_ = c.Campaign(id) // refused when down
	}
}

// crash crashes a node, preferably the leader or one with writes in flight,
// and schedules its restart.
func (ch *chaos) crash() {
	c := ch.c
	id := ch.randomNode(0.5)
	if c.rng.IntN(3) == 0 {
		// Prefer a node with writes in flight: that is where lost
		// acknowledgements and votes would show.
		for _, n := range c.nodes {
			if n.pending.len() > 0 {
				id = n.id
				break
			}
		}
	}
	if c.Up(id) {
		ch.crashNode(id, 100*time.Millisecond, 5*time.Second)
	}
}

// crashNode crashes node id and schedules its restart after a random
// downtime in [minDown, maxDown).
func (ch *chaos) crashNode(id uint64, minDown, maxDown time.Duration) {
	c := ch.c
	c.Crash(id)
	down := minDown + time.Duration(c.rng.Int64N(int64(maxDown-minDown)))
	c.q.push(event{at: c.now + down, kind: evRestart, node: id})
}

// onSend sometimes schedules a crash of the sender of a message that
// promises durable state (a vote request, a granted vote, an
// acknowledgement of entries), within the next few milliseconds: had the
// core sent it before its state was durable, the crash would lose what the
// message promised. For a correct core these are just more crashes.
func (ch *chaos) onSend(m *raftpb.Message) {
	if ch.ended {
		return
	}
	// One in odds: votes are rare and decisive, acknowledgements plentiful.
	var odds int
	switch {
	case m.Type == raftpb.MsgVoteResp && !m.Reject:
		odds = 20
	case m.Type == raftpb.MsgVote:
		odds = 50
	case m.Type == raftpb.MsgAppResp && !m.Reject:
		odds = 1000
	default:
		return
	}
	c := ch.c
	if c.rng.IntN(odds) != 0 {
		return
	}
	at := c.now + time.Duration(c.rng.Int64N(int64(3*time.Millisecond)))
	c.q.push(event{at: at, kind: evCrash, node: m.From, gen: c.node(m.From).gen})
}

// crashWithin sometimes (one in odds, and at most about once per eight
// fault intervals for each crash point) schedules a crash of n within
// window, at crash point p of a snapshot's life, where a crash loses the
// most. Snapshots can be taken every few entries, hence the rate limit,
// which keeps these crashes from crowding out the other faults.
func (ch *chaos) crashWithin(n *node, p crashPoint, window time.Duration, odds int) {
	c := ch.c
	if ch.ended || c.now < ch.snapCrashAt[p] || c.rng.IntN(odds) != 0 {
		return
	}
	fi := c.opts.FaultInterval
	ch.snapCrashAt[p] = c.now + 4*fi + time.Duration(c.rng.Int64N(int64(8*fi)))
	at := c.now + time.Duration(c.rng.Int64N(int64(max(window, 1))))
	c.q.push(event{at: at, kind: evCrash, node: n.id, gen: n.gen})
}

// propose proposes one to three unique payloads, usually to a node that
// believes it leads, sometimes to any running node.
func (ch *chaos) propose() {
	c := ch.c
	var target uint64
	if c.rng.IntN(100) < 85 {
		var leaders [64]uint64
		n := 0
		for _, nd := range c.nodes {
			if nd.core != nil && nd.role == core.RoleLeader {
				leaders[n] = nd.id
				n++
			}
		}
		if n > 0 {
			target = leaders[c.rng.IntN(n)]
		}
	}
	if target == 0 {
		target = uint64(c.rng.IntN(len(c.nodes)) + 1)
	}
	if !c.Up(target) {
		return
	}
	k := 1 + c.rng.IntN(3)
	data := make([][]byte, k)
	for i := range data {
		ch.proposals++
		data[i] = ch.payload(strconv.Itoa(ch.proposals))
	}
	_, _, _ = c.Propose(target, data...)
}

func (ch *chaos) payload(suffix string) []byte {
	b := make([]byte, 0, 24)
	b = append(b, 's')
	b = strconv.AppendUint(b, ch.c.opts.Seed, 10)
	b = append(b, '-')
	return append(b, suffix...)
}

// endFaults heals the network, restores a clean network and restarts every
// crashed node, then starts the liveness driver.
func (ch *chaos) endFaults() {
	c := ch.c
	ch.ended = true
	c.trace.add(traceRec{at: c.now, kind: trPhase, note: "END OF FAULTS: heal, restart all, liveness check"})
	c.Heal()
	c.SetDropRate(0)
	c.SetDupRate(0)
	c.SetDelay(c.opts.MinDelay, c.opts.MaxDelay)
	c.SetFsync(0, c.opts.MinFsync, c.opts.MaxFsync)
	for _, n := range c.nodes {
		c.Restart(n.id)
	}
	ch.decommission()
	c.q.push(event{at: c.now, kind: evLiveness})
}

// liveness proposes a fresh payload to the leader, again if an earlier one
// has not committed within a few election timeouts.
func (ch *chaos) liveness() {
	c := ch.c
	if ch.livenessDone() {
		return
	}
	retry := 3 * time.Duration(c.opts.ElectionTick) * c.opts.TickInterval
	if len(ch.finals) > 0 && c.now-ch.lastFinalAt < retry {
		return
	}
	l := c.Leader()
	if l == 0 {
		return
	}
	data := ch.payload("final-" + strconv.Itoa(len(ch.finals)+1))
	first, term, err := c.Propose(l, data)
	if err != nil {
		return
	}
	ch.finals = append(ch.finals, finalProposal{index: first, term: term, data: string(data)})
	ch.lastFinalAt = c.now
}

// livenessDone reports whether some final proposal is committed as proposed
// and applied on every node.
func (ch *chaos) livenessDone() bool {
	if ch.done {
		return true
	}
	c := ch.c
	for _, f := range ch.finals {
		term, _, data, ok := c.CommittedEntry(f.index)
		if ok && term == f.term && string(data) == f.data && c.MembersApplied(f.index) {
			ch.done, ch.doneAt = true, c.now
			return true
		}
	}
	return false
}

func (ch *chaos) livenessReport() string {
	c := ch.c
	s := fmt.Sprintf("no fresh proposal applied on all members within %v after healing; leader n%d, committed %d (configuration %+v), finals %v; nodes:",
		c.opts.LivenessTimeout, c.Leader(), c.Committed(), c.CommittedConf(), ch.finals)
	for _, n := range c.nodes {
		term := uint64(0)
		if n.core != nil {
			term = n.core.Term()
		}
		s += fmt.Sprintf(" n%d{%s t%d lead=%d applied=%d commit=%d first=%d last=%d snap=%d fetching=%v}", n.id, n.role, term, n.lead,
			n.applied, n.commit, n.durable.off+1, n.volatile.last(), n.smSnap, n.install != nil)
	}
	return s
}

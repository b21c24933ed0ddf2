package rafttest

import (
	"github.com/raftkit/raftkit/raftpb"
)

// The checker verifies Raft's safety properties incrementally, at the very
// operation that could break them, so that "after every event" costs O(1)
// per event plus O(1) per entry written:
//
//   - Election safety: at most one leader per term. Recorded when a node
//     reports RoleLeader in a Ready's SoftState. A node that reports
//     following leader L in term T must follow the node recorded for T.
//   - Log matching: every entry written to a durable log is keyed by (index,
//     term) to the chain hash of the log up to it; all nodes must agree, so
//     equal (index, term) implies equal entries and equal prefixes. A log
//     compacted or replaced by a snapshot keeps the chain at its first index
//     (logMirror), so this holds over the entries still held.
//   - Durable state: a node's durable term never decreases and its durable
//     vote never changes within a term.
//   - Committed entries are never lost: the committed log is extended from
//     the log of whichever node first reports a higher commit index (a
//     Ready's HardState.Commit), using the core's own log (durable entries
//     plus those of taken Readys). A node reporting commit C must hold the
//     committed log up to min(C, committed so far). A node whose log (in
//     memory or durable) holds a committed entry may never truncate or
//     overwrite it; a node that never held it may hold something else there.
//     An entry below a node's compaction point or installed snapshot counts
//     as held through the snapshot, which must agree with the committed log.
//   - Leader completeness: whenever a leader of term T hands out a Ready (in
//     particular when it becomes leader and whenever its commit index moves),
//     its log must hold every entry committed in a term below T. The term in
//     which an entry was committed is taken as the current term of the node
//     that first reported it committed: an upper bound of the true one, so
//     the check never fires wrongly (a stale leader of an older term need not
//     hold what a newer leader committed).
//   - State machine safety: each node applies indexes s+1, s+2, ... without
//     gaps, s being the snapshot its state machine started from (0 for none,
//     again after a restart); each applied entry must be durable on that node
//     (the core promises it) and equal to the committed entry. The checks of
//     state across snapshots are in checker_snap.go.
type checker struct {
	// committed[i] is the committed entry at index i; committed[0] is a
	// zero sentinel.
	committed []digest
	// commitRuns partitions committed[1:] into runs by the term in which
	// they were committed: run i ends at commitRuns[i].last.
	commitRuns []commitRun
	// leaders maps a term to the node that led in it.
	leaders map[uint64]uint64
	// logTerms maps (index, term) of every durable entry to its chain hash.
	logTerms map[posKey]uint64
	// states[i] is the state machine hash at index i (stateStep) that the
	// first node to reach i had; 0 while no node has.
	states []uint64
}

type posKey struct{ index, term uint64 }

type commitRun struct{ term, last uint64 }

// committedBefore returns the highest committed index whose commit term is
// below term.
func (k *checker) committedBefore(term uint64) uint64 {
	for i := len(k.commitRuns) - 1; i >= 0; i-- {
		if k.commitRuns[i].term < term {
			return k.commitRuns[i].last
		}
	}
	return 0
}

func newChecker() checker {
	return checker{
		committed: make([]digest, 1, 1024),
		leaders:   make(map[uint64]uint64),
		logTerms:  make(map[posKey]uint64, 1024),
		states:    make([]uint64, 1, 1024),
	}
}

func (k *checker) commitMax() uint64 { return uint64(len(k.committed) - 1) }

// matches reports whether mirror m holds the committed log up to index i
// (i must be <= both m.last() and commitMax(), and m.off <= commitMax()).
// Entries at or below m.off are held through the snapshot: the prefix up to
// i < m.off agrees with the committed log exactly when the one up to m.off
// does.
func (k *checker) matches(m *logMirror, i uint64) bool {
	i = max(i, m.off)
	return m.at(i).chain == k.committed[i].chain
}

// firstDiff returns the first index <= i at which m differs from the
// committed log (m.off when its snapshot does); for failure reports only.
func (k *checker) firstDiff(m *logMirror, i uint64) uint64 {
	if m.off > 0 && m.ents[0].chain != k.committed[m.off].chain {
		return m.off
	}
	for j := m.off + 1; j <= i; j++ {
		if !m.at(j).sameEntry(&k.committed[j]) {
			return j
		}
	}
	return i
}

// heldCommitted returns the highest index in [lo, hi] up to which m holds
// the committed log, or lo-1 if m does not hold committed[lo]. Holding is
// monotone (a prefix property of the chain), so a binary search finds it.
func (k *checker) heldCommitted(m *logMirror, lo, hi uint64) uint64 {
	if !k.matches(m, lo) {
		return lo - 1
	}
	if k.matches(m, hi) {
		return hi
	}
	// Invariant: matches(lo) && !matches(hi).
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if k.matches(m, mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// writeMirror truncates-and-appends ents to one of n's mirrors, failing if
// that removes or changes a committed entry n held.
func (c *Cluster) writeMirror(n *node, m *logMirror, ents []raftpb.Entry, what string) {
	k := &c.chk
	first, newLast := ents[0].Index, ents[len(ents)-1].Index
	held := uint64(0)
	if first >= 1 && first <= m.last() {
		if hi := min(m.last(), k.commitMax()); hi >= first {
			held = k.heldCommitted(m, first, hi)
		}
	}
	if err := m.write(ents); err != nil {
		c.failf(n.id, "log continuity", "%s: %v", what, err)
		return
	}
	if held < first {
		return
	}
	if newLast < held {
		c.failf(n.id, "committed entries lost", "%s truncated at %d to end at %d but held committed entries up to %d",
			what, first, newLast, held)
		return
	}
	if !k.matches(m, held) {
		j := k.firstDiff(m, held)
		c.failf(n.id, "committed entries lost", "%s overwrote committed entry %d (%v) with (%v)",
			what, j, &k.committed[j], m.at(j))
	}
}

// checkDurableLoss checks that n's durable log may shrink to end at newLast
// outside of an append (a disk losing writes): not if n held a committed
// entry past newLast.
func (c *Cluster) checkDurableLoss(n *node, newLast uint64) {
	k := &c.chk
	m := &n.durable
	hi := min(m.last(), k.commitMax())
	if hi <= newLast {
		return
	}
	if held := k.heldCommitted(m, newLast+1, hi); held > newLast {
		c.failf(n.id, "committed entries lost", "durable log shrank to %d but held committed entries up to %d (%v)",
			newLast, held, &k.committed[held])
	}
}

// checkLogMatching registers the entries n just made durable.
func (c *Cluster) checkLogMatching(n *node, ents []raftpb.Entry) {
	k := &c.chk
	for i := range ents {
		idx := ents[i].Index
		key := posKey{idx, ents[i].Term}
		chain := n.durable.at(idx).chain
		if prev, ok := k.logTerms[key]; !ok {
			k.logTerms[key] = chain
		} else if prev != chain {
			c.failf(n.id, "log matching", "durable entry %d/%d (%v) has a different entry or prefix than the same index and term on another node",
				ents[i].Term, idx, n.durable.at(idx))
			return
		}
	}
}

// checkHardState checks a HardState about to become durable on n.
func (c *Cluster) checkHardState(n *node, hs raftpb.HardState) {
	old := n.hs
	switch {
	case hs.Term < old.Term:
		c.failf(n.id, "durable state", "term regressed from %d to %d", old.Term, hs.Term)
	case hs.Term == old.Term && old.Vote != raftpb.None && hs.Vote != old.Vote:
		c.failf(n.id, "durable state", "vote in term %d changed from n%d to n%d", hs.Term, old.Vote, hs.Vote)
	}
}

// onCommit handles n reporting commit index C.
func (c *Cluster) onCommit(n *node, C uint64) {
	k := &c.chk
	m := &n.volatile
	if C > m.last() {
		c.failf(n.id, "commit", "commit index %d beyond the node's log, which ends at %d", C, m.last())
		return
	}
	if m.off > k.commitMax() {
		c.failf(n.id, "commit", "the node's log starts after %d, beyond the highest index known committed, %d", m.off, k.commitMax())
		return
	}
	if j := min(C, k.commitMax()); j > 0 && !k.matches(m, j) {
		d := k.firstDiff(m, j)
		c.failf(n.id, "committed entries lost", "node reports commit %d but holds %v at committed index %d (committed: %v)",
			C, m.at(d), d, &k.committed[d])
		return
	}
	if C > k.commitMax() {
		for i := k.commitMax() + 1; i <= C; i++ {
			k.committed = append(k.committed, *m.at(i))
			c.noteCommittedConf(i, m.at(i))
		}
		term := n.core.Term()
		if r := len(k.commitRuns) - 1; r >= 0 && k.commitRuns[r].term == term {
			k.commitRuns[r].last = C
		} else {
			k.commitRuns = append(k.commitRuns, commitRun{term: term, last: C})
		}
		c.stats.Committed = C
	}
	if C > n.commit {
		c.trace.add(traceRec{at: c.now, kind: trCommit, node: n.id, a: n.commit, b: C})
		n.commit = C
	}
}

// checkLeaderComplete checks that leader n holds every committed entry.
func (c *Cluster) checkLeaderComplete(n *node) {
	k := &c.chk
	term := n.core.Term()
	cm := k.committedBefore(term)
	if cm == 0 {
		return
	}
	m := &n.volatile
	if m.last() < cm {
		c.failf(n.id, "leader completeness", "leader of term %d has a log ending at %d; %d was committed before its term (%v)",
			term, m.last(), cm, &k.committed[cm])
		return
	}
	if !k.matches(m, cm) {
		d := k.firstDiff(m, cm)
		c.failf(n.id, "leader completeness", "leader of term %d holds %v at %d where %v was committed before its term",
			term, m.at(d), d, &k.committed[d])
	}
}

// checkElection records that n leads in term.
func (c *Cluster) checkElection(n *node, term uint64) {
	k := &c.chk
	if prev, ok := k.leaders[term]; ok {
		if prev != n.id {
			c.failf(n.id, "election safety", "n%d and n%d are both leaders of term %d", prev, n.id, term)
		}
		return
	}
	k.leaders[term] = n.id
	c.stats.Elections++
	c.stats.MaxTerm = max(c.stats.MaxTerm, term)
}

// checkKnownLeader checks that the leader n follows in term is the one that
// became leader of term: a leader reports its election before it sends
// anything, so the checker always knows it first.
func (c *Cluster) checkKnownLeader(n *node, term, lead uint64) {
	if l, ok := c.chk.leaders[term]; !ok || l != lead {
		c.failf(n.id, "election safety", "follows n%d in term %d, whose leader is n%d (0: none)", lead, term, l)
	}
}

// checkApply checks the entry n is about to apply.
func (c *Cluster) checkApply(n *node, e *raftpb.Entry) {
	k := &c.chk
	i := e.Index
	if i > n.durable.last() {
		c.failf(n.id, "apply durability", "applying %d/%d but the durable log ends at %d", e.Term, i, n.durable.last())
		return
	}
	if i <= n.durable.off {
		c.failf(n.id, "apply durability", "applying %d/%d but the durable log starts after %d", e.Term, i, n.durable.off)
		return
	}
	d := digestOf(0, e)
	if !n.durable.at(i).sameEntry(&d) {
		c.failf(n.id, "apply durability", "applying (%v) at %d but the durable log holds (%v)", &d, i, n.durable.at(i))
		return
	}
	if i > k.commitMax() {
		// Committed without a Ready reporting it; take it from this node.
		c.onCommit(n, i)
		if c.err != nil {
			return
		}
	}
	if !k.matches(&n.durable, i) {
		j := k.firstDiff(&n.durable, i)
		c.failf(n.id, "state machine safety", "applying %d: the node's log differs from the committed log at %d: (%v) vs committed (%v)",
			i, j, n.durable.at(j), &k.committed[j])
	}
}

package rafttest

// The checks this file adds for snapshots and compaction (see the comment
// at the top of checker.go for the others):
//
//   - State machine safety across snapshots: every node's state machine
//     state at index i, whether reached by applying entries or by loading a
//     snapshot (installed from a leader, or its own at restart), equals every
//     other node's state at i. States are compared as chained hashes of the
//     applied payloads (stateStep).
//   - A snapshot is never loaded below the state machine's applied index,
//     and no entry at or below the index of the snapshot a state machine
//     took or loaded is applied after it (node.go, snapshot.go).
//   - A snapshot describes a prefix of the committed log: its log chain at
//     its index is the committed one. Replacing a log by a snapshot (an
//     install, or the reset at restart after a crash cut an install short)
//     loses no committed entry the log held past it.
//   - Compaction only ever follows a durable snapshot: the log is never
//     compacted past the latest durable snapshot, so a restart always finds
//     a snapshot covering what the log no longer holds (snapshot.go).

// checkState records or compares the state h of n's state machine at index
// i; how says how n reached it, for the report.
func (c *Cluster) checkState(n *node, i, h uint64, how string) {
	k := &c.chk
	if i == 0 {
		return
	}
	for uint64(len(k.states)) <= i {
		k.states = append(k.states, 0)
	}
	switch prev := k.states[i]; {
	case prev == 0:
		k.states[i] = h
	case prev != h:
		c.failf(n.id, "state machine safety", "state at %d %s (%016x) differs from another node's state there (%016x)",
			i, how, h, prev)
	}
}

// resetMirror replaces mirror m of n's log (what says which) by snapshot s,
// checking that s is a prefix of the committed log and that m held no
// committed entry past it.
func (c *Cluster) resetMirror(n *node, m *logMirror, s *snapshot, what string) {
	k := &c.chk
	idx := s.meta.Index
	if idx > k.commitMax() {
		c.failf(n.id, "snapshot", "snapshot %d/%d (taken by n%d) is beyond the highest index known committed, %d",
			s.meta.Term, idx, s.taker, k.commitMax())
		return
	}
	if s.chain != k.committed[idx].chain || s.meta.Term != k.committed[idx].term {
		c.failf(n.id, "snapshot", "snapshot %d/%d (taken by n%d) is not a prefix of the committed log (committed %d: %v)",
			s.meta.Term, idx, s.taker, idx, &k.committed[idx])
		return
	}
	if hi := min(m.last(), k.commitMax()); hi > idx && m.off < hi {
		lo := max(idx, m.off) + 1
		if held := k.heldCommitted(m, lo, hi); held >= lo {
			c.failf(n.id, "committed entries lost", "%s replaced by snapshot %d/%d but held committed entries up to %d",
				what, s.meta.Term, idx, held)
			return
		}
	}
	m.reset(idx, s.meta.Term, s.chain)
}

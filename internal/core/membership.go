package core

import (
	"errors"
	"fmt"
	"slices"

	"github.com/raftkit/raftkit/internal/core/confchange"
	"github.com/raftkit/raftkit/raftpb"
)

// Membership changes (Raft thesis §4, SOFAJRaft's ConfigurationManager).
//
// A configuration entry takes effect when it is appended to a log, not when
// it commits: on the leader when it is proposed, on a follower when it
// appends it. So each node's configuration is a function of its log: the
// configuration at the start of the log (the snapshot's, or the bootstrap
// one) followed by every configuration entry after it. When a conflicting
// suffix is replaced the configuration reverts to the latest configuration
// entry still in the log; at New the log is scanned to recover it.
//
// Every change of voters is joint: EnterJoint, then, once it is committed,
// LeaveJoint, which the leader appends on its own. The leader refuses a new
// change while a configuration entry is uncommitted, while joint, and before
// it has committed an entry of its term (a new leader may hold an
// uncommitted configuration entry of an earlier term it does not know of as
// such). A leader that is not a voter of the configuration it has committed
// hands leadership over and steps down.

var (
	// ErrConfChangeBusy is returned by ProposeConfChange while an earlier
	// change is unfinished: a configuration entry is appended but not
	// committed, the configuration is joint, or the leader has not yet
	// committed an entry of its own term. Retry once it has settled.
	ErrConfChangeBusy = errors.New("core: configuration change in progress")
	// ErrInvalidConfChange is returned for a change the core refuses
	// whatever the state: no voters, a zero ID, an ID twice or both voter
	// and learner, a voter demoted straight to learner, or no change at all.
	ErrInvalidConfChange = errors.New("core: invalid configuration change")
)

// confScanBytes bounds one read of the log while New looks for
// configuration entries. A variable so that tests can make every read one
// entry.
var confScanBytes uint64 = 1 << 20

// membership tracks the configuration entries of the log.
//
// Invariant: the tracker's configuration (retained peers aside) is
// current().
type membership struct {
	// base is the configuration in force before every entry of pending: the
	// snapshot's or bootstrap one, a ResetConf, or the result of the
	// committed configuration entries folded into it.
	base raftpb.ConfState
	// pending are the configuration entries after base, oldest first, with
	// the configuration each produced. Entries at or below the commit index
	// are folded into base lazily; the others may still be truncated away.
	pending []confPoint
	// resetPending: ResetConf replaced the configuration and no
	// configuration entry has been appended since, so a leader must log it.
	resetPending bool
	// bootstrapped: base is the configuration the group was bootstrapped
	// with (storage holds no snapshot). A joint one is left as it is: the
	// core completes the joint phases it reaches through the log (an
	// EnterJoint entry, or a snapshot taken after one), while a group
	// bootstrapped joint, which only tests build, stays as it was made.
	bootstrapped bool
	// retireAt is, on a leader, the index of the configuration entry that
	// made the tracker retain the peers it removed (0: none retained). They
	// are dropped at the first check-quorum round after it commits.
	retireAt uint64
	// version counts configuration changes; readyVersion is the version the
	// last Ready reported.
	version, readyVersion uint64
}

// confPoint is one configuration entry of the log and the configuration it
// produced.
type confPoint struct {
	index uint64
	cs    raftpb.ConfState
}

func (m *membership) current() raftpb.ConfState {
	if n := len(m.pending); n > 0 {
		return m.pending[n-1].cs
	}
	return m.base
}

// lastIndex is the index of the latest configuration entry, or 0 when the
// configuration comes from a snapshot, the bootstrap or ResetConf.
func (m *membership) lastIndex() uint64 {
	if n := len(m.pending); n > 0 {
		return m.pending[n-1].index
	}
	return 0
}

// fold merges the entries at or below committed into base: they can no
// longer be truncated.
func (m *membership) fold(committed uint64) {
	k := 0
	for k < len(m.pending) && m.pending[k].index <= committed {
		m.base = m.pending[k].cs
		k++
	}
	if k > 0 {
		m.pending = slices.Delete(m.pending, 0, k)
		m.bootstrapped = false
	}
}

// truncate forgets the entries at or after index and reports whether any
// was forgotten.
func (m *membership) truncate(index uint64) bool {
	k := len(m.pending)
	for k > 0 && m.pending[k-1].index >= index {
		k--
	}
	dropped := k < len(m.pending)
	m.pending = m.pending[:k]
	return dropped
}

// initConf sets the configuration at New: cs, the configuration of the
// latest snapshot (or the bootstrap one), followed by the configuration
// entries of the durable log after the snapshot, read in bounded batches.
// Those at or below commit are folded into base. The log may still hold
// entries at or below the snapshot index (the runtime keeps a margin for
// lagging followers); cs already includes their changes, and replaying a
// joint transition twice would give another configuration than the peers'.
func (r *Raft) initConf(cs raftpb.ConfState, commit uint64) error {
	snap, err := r.log.storage.Snapshot()
	if err != nil {
		return fmt.Errorf("core: reading the snapshot's index: %w", err)
	}
	lo, last := max(r.log.firstIndex(), snap.Index+1), r.log.lastIndex()
	r.conf.base, r.conf.bootstrapped = cs.Clone(), snap.Index == 0
	for lo <= last {
		ents, err := r.log.storage.Entries(lo, last+1, confScanBytes)
		if err != nil {
			return fmt.Errorf("core: scanning the log for configuration entries: %w", err)
		}
		if len(ents) == 0 {
			return fmt.Errorf("core: scanning the log for configuration entries: no entry at %d", lo)
		}
		r.followConfEntries(ents)
		lo = ents[len(ents)-1].Index + 1
		r.conf.fold(commit)
	}
	if err := r.trk.ApplyConf(r.conf.current(), last); err != nil {
		return fmt.Errorf("core: initial configuration: %w", err)
	}
	return nil
}

// followConfEntries records the configuration entries among ents.
func (r *Raft) followConfEntries(ents []raftpb.Entry) {
	for i := range ents {
		e := &ents[i]
		if e.Type != raftpb.EntryConfChange {
			continue
		}
		r.conf.resetPending = false
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			r.logger.Error("ignoring a configuration entry that does not decode", "index", e.Index, "err", err)
			continue
		}
		next, err := confchange.Apply(r.conf.current(), &cc)
		if err != nil {
			r.logger.Error("ignoring a configuration entry that cannot follow the configuration",
				"index", e.Index, "change", cc.String(), "err", err)
			continue
		}
		r.conf.pending = append(r.conf.pending, confPoint{index: e.Index, cs: next})
	}
}

// onLogAppend follows the configuration through every append to the log:
// ents were just appended, replacing whatever the log held from ents[0] on.
func (r *Raft) onLogAppend(ents []raftpb.Entry) {
	r.conf.fold(r.log.committed)
	truncated := r.conf.truncate(ents[0].Index)
	n := len(r.conf.pending)
	r.followConfEntries(ents)
	if truncated || len(r.conf.pending) > n {
		r.setConf(r.conf.current(), r.conf.lastIndex())
	}
}

// restoreConf makes cs, a snapshot's configuration, the configuration of a
// log that now starts after the snapshot at index.
func (r *Raft) restoreConf(cs raftpb.ConfState, index uint64) error {
	changed := !cs.Equal(r.trk.ConfState())
	if err := r.trk.ApplyConf(cs, index); err != nil {
		return err
	}
	r.conf.base, r.conf.pending, r.conf.resetPending = cs.Clone(), nil, false
	r.conf.bootstrapped = false
	if changed {
		r.confChanged()
	}
	return nil
}

// setConf makes cs the tracker's configuration if it differs. On a leader
// the peers it removes are retained until the entry at index (which made
// the change) is committed, so that they learn of their removal.
func (r *Raft) setConf(cs raftpb.ConfState, index uint64) {
	if cs.Equal(r.trk.ConfState()) {
		return
	}
	var err error
	if r.role == RoleLeader {
		had := slices.Clone(r.trk.IDs())
		err = r.trk.ApplyConfRetaining(cs, r.log.lastIndex())
		for _, id := range r.trk.IDs() {
			if _, found := slices.BinarySearch(had, id); !found {
				// A new peer is reachable until a check-quorum round says
				// otherwise, as every peer is when a leader is elected.
				r.trk.Progress[id].RecentActive = true
			}
			if r.trk.IsRetained(id) {
				r.conf.retireAt = index
			}
		}
	} else {
		err = r.trk.ApplyConf(cs, r.log.lastIndex())
	}
	if err != nil {
		// confchange.Apply validated cs, so this is a bug.
		panic(fmt.Errorf("core: applying configuration %+v: %w", cs, err))
	}
	r.confChanged()
}

// confChanged adjusts the role and leader state to a new configuration.
func (r *Raft) confChanged() {
	r.conf.version++
	r.logger.Info("configuration changed", "conf", r.trk.Voters.String(), "learners", len(r.trk.Learners),
		"term", r.term)
	_, learner := r.trk.Learners[r.id]
	switch r.role {
	case RoleFollower, RoleLearner:
		r.role = RoleFollower
		if learner {
			r.role = RoleLearner
		}
	case RolePreCandidate, RoleCandidate:
		if !r.promotable() {
			r.becomeFollower(r.term, r.lead)
		}
	case RoleLeader:
		if r.leadTransferee != raftpb.None && !r.isIncomingVoter(r.leadTransferee) {
			r.logger.Info("leadership transfer abandoned: the transferee is leaving", "to", r.leadTransferee)
			r.leadTransferee = raftpb.None
			// As when a transfer times out: a MsgTimeoutNow may be in
			// flight, and the election it starts ignores leases.
			r.read.leaseRevoked = true
		}
	}
}

// isIncomingVoter reports whether id votes in the configuration being
// entered (the only one, outside a joint configuration).
func (r *Raft) isIncomingVoter(id uint64) bool {
	_, ok := r.trk.Voters[0][id]
	return ok
}

// removalUncommitted reports whether this node, no voter of its latest
// configuration, was a voter of one its log holds from the commit index on.
// Until the entries that removed it commit, the group may need it to elect
// a leader: the other voters may lack them and so be unable to win, while
// it refuses them its vote for a shorter log. So it still campaigns, in its
// latest configuration, which does not count its own vote (Raft thesis
// §4.2.2), and as leader commits those entries and hands over.
func (r *Raft) removalUncommitted() bool {
	if r.conf.lastIndex() <= r.log.committed {
		return false
	}
	cs := r.conf.base
	for _, p := range r.conf.pending {
		if p.index > r.log.committed &&
			(slices.Contains(cs.Voters, r.id) || slices.Contains(cs.VotersOutgoing, r.id)) {
			return true
		}
		cs = p.cs
	}
	return false
}

// ProposeConfChange proposes that the group move to the configuration whose
// voters and learners are cc.Voters and cc.Learners; cc.Addrs travel with
// the entry for the runtime's address book, and cc.Kind is ignored: the
// core logs ConfChangeSimple when the voters stay the same and
// ConfChangeEnterJoint otherwise (adding, removing or promoting even one
// voter), and appends the ConfChangeLeaveJoint itself once the joint
// configuration is committed. It returns the index of the appended entry;
// the configuration takes effect at once on this node, and on every other
// when it appends the entry.
//
// Errors: ErrNotLeader; ErrProposalDropped during a leadership transfer;
// ErrConfChangeBusy while an earlier change is unfinished;
// ErrInvalidConfChange for a target that is not a valid configuration,
// demotes a voter straight to learner, or changes nothing.
func (r *Raft) ProposeConfChange(cc raftpb.ConfChange) (index uint64, err error) {
	switch {
	case r.role != RoleLeader:
		return 0, fmt.Errorf("%w (leader is %d)", ErrNotLeader, r.lead)
	case r.leadTransferee != raftpb.None:
		return 0, fmt.Errorf("%w: leadership transfer to %d in progress", ErrProposalDropped, r.leadTransferee)
	case r.log.lastIndex()+1 >= MaxIndex:
		return 0, fmt.Errorf("%w: log index would exceed %d", ErrProposalDropped, uint64(MaxIndex))
	}
	if err := r.confBusy(); err != nil {
		return 0, err
	}
	kind, err := confchange.Plan(r.trk.ConfState(), cc.Voters, cc.Learners)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidConfChange, err)
	}
	target, _ := confchange.Apply(raftpb.ConfState{}, &raftpb.ConfChange{Voters: cc.Voters, Learners: cc.Learners})
	cc = raftpb.ConfChange{Kind: kind, Voters: target.Voters, Learners: target.Learners, Addrs: slices.Clone(cc.Addrs)}
	r.logger.Info("proposing configuration change", "change", cc.String(), "term", r.term)
	return r.appendConfChange(&cc), nil
}

// confBusy says why a new change must wait, or returns nil.
func (r *Raft) confBusy() error {
	switch {
	case r.conf.lastIndex() > r.log.committed:
		return fmt.Errorf("%w: the configuration entry at %d is not committed yet (commit %d)",
			ErrConfChangeBusy, r.conf.lastIndex(), r.log.committed)
	case len(r.trk.Voters[1]) > 0:
		return fmt.Errorf("%w: the configuration %s is joint", ErrConfChangeBusy, r.trk.Voters.String())
	case r.log.termOrZero(r.log.committed) != r.term:
		return fmt.Errorf("%w: no entry of term %d committed yet", ErrConfChangeBusy, r.term)
	}
	return nil
}

// appendConfChange appends cc as the leader's next entry and returns its
// index. Leaving a joint configuration shrinks the quorum, which may commit
// entries at once.
func (r *Raft) appendConfChange(cc *raftpb.ConfChange) uint64 {
	index := r.log.lastIndex() + 1
	r.appendEntries([]raftpb.Entry{{Type: raftpb.EntryConfChange, Data: cc.MarshalAppend(nil)}})
	if r.maybeCommit() {
		r.bcastAppend()
		r.onCommitAdvanced()
	}
	return index
}

// firstEntryOfTerm is the entry a new leader appends first: an empty entry,
// which lets entries of earlier terms commit, or, after ResetConf, the reset
// configuration, which does that too and makes the reset durable and known
// to the group.
func (r *Raft) firstEntryOfTerm() raftpb.Entry {
	if !r.conf.resetPending {
		return raftpb.Entry{Type: raftpb.EntryNoop}
	}
	cs := r.trk.ConfState()
	cc := raftpb.ConfChange{Kind: raftpb.ConfChangeSimple, Voters: cs.Voters, Learners: cs.Learners}
	r.logger.Warn("logging the configuration reset", "conf", r.trk.Voters.String(), "term", r.term)
	return raftpb.Entry{Type: raftpb.EntryConfChange, Data: cc.MarshalAppend(nil)}
}

// onCommitAdvanced runs on the leader after its commit index moved (so an
// entry of its term is committed) and the new commit index was sent out. A
// committed joint configuration is left; a leader that is no voter of its
// committed configuration hands over.
func (r *Raft) onCommitAdvanced() {
	if r.role != RoleLeader || r.conf.lastIndex() > r.log.committed {
		return
	}
	switch {
	case len(r.trk.Voters[1]) > 0 && (len(r.conf.pending) > 0 || !r.conf.bootstrapped):
		r.logger.Info("leaving the committed joint configuration", "conf", r.trk.Voters.String(), "term", r.term)
		r.appendConfChange(&raftpb.ConfChange{Kind: raftpb.ConfChangeLeaveJoint})
	case !r.trk.IsVoter(r.id):
		r.handOver()
	}
}

// BestTransferee is the voter of the incoming configuration, other than
// this leader, with the longest log known to match (the lowest ID among
// equals): the one to hand leadership to. 0 on a non-leader or when there
// is none.
//
// Concurrency: owner goroutine only, like every Raft method.
func (r *Raft) BestTransferee() uint64 {
	if r.role != RoleLeader {
		return raftpb.None
	}
	var best, match uint64
	for _, id := range r.trk.IDs() {
		if pr := r.trk.Progress[id]; id != r.id && r.isIncomingVoter(id) && (best == 0 || pr.Match > match) {
			best, match = id, pr.Match
		}
	}
	return best
}

// handOver makes a leader that is no longer a voter tell the most
// up-to-date voter (the lowest ID among equals) to campaign at once, and
// step down in the same term.
func (r *Raft) handOver() {
	best := r.BestTransferee()
	r.logger.Info("removed from the configuration: handing leadership over", "to", best, "term", r.term)
	if best != raftpb.None {
		r.sendTimeoutNow(best)
	}
	r.becomeFollower(r.term, raftpb.None)
}

// dropRetained forgets the peers a leader retained after removing them;
// they matter to no other role.
func (r *Raft) dropRetained() {
	r.trk.DropRetained()
	r.conf.retireAt = 0
}

// maybeDropRetained forgets, at a leader's check-quorum round, the peers it
// retained after removing them once their removal is committed: they have
// had an election timeout since to hear of it.
func (r *Raft) maybeDropRetained() {
	if r.conf.retireAt != 0 && r.conf.retireAt <= r.log.committed {
		r.dropRetained()
	}
}

// ResetConf replaces this node's configuration with voters and learners,
// locally and without consensus: the UNSAFE recovery of a group that has
// lost a majority of its voters for good. Call it on every survivor with the
// same configuration. The node becomes a follower (or learner) in the next
// term with no vote, so that it soon campaigns in the new configuration; a
// node that then becomes leader appends the reset configuration as the first
// entry of its term, which makes it durable and replicates it.
//
// ResetConf can lose committed entries and, should the "lost" voters come
// back, split the group in two: never use it while a majority of the old
// configuration may be alive. The reset is NOT DURABLE until that entry is
// in this node's log: a restart before it recovers the configuration from
// the log and undoes the reset, which must then be repeated.
//
// Errors: ErrInvalidConfChange when voters and learners are not a valid
// configuration (no voters, a zero ID, an ID twice or in both lists).
func (r *Raft) ResetConf(voters, learners []uint64) error {
	cs, err := confchange.Apply(raftpb.ConfState{},
		&raftpb.ConfChange{Kind: raftpb.ConfChangeSimple, Voters: voters, Learners: learners})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfChange, err)
	}
	r.logger.Warn("UNSAFE: configuration reset without consensus", "voters", cs.Voters, "learners", cs.Learners,
		"was", r.trk.Voters.String(), "term", r.term+1)
	r.becomeFollower(r.term+1, raftpb.None)
	r.conf.base, r.conf.pending, r.conf.resetPending, r.conf.bootstrapped = cs, nil, true, false
	r.setConf(cs, 0)
	return nil
}

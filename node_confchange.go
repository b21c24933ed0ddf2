package raftkit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/raftkit/raftkit/internal/core"
	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// changeConf runs one membership change on the leader: mutate turns the
// current configuration into the target; new voters first join as
// learners and catch up; then the target is proposed (the core goes
// through a joint configuration when voters change) and the call returns
// once this node has applied it.
func (n *Node) changeConf(ctx context.Context, op string, mutate func(*Configuration) error) error {
	if !n.changing.CompareAndSwap(false, true) {
		return &Error{Code: CodeBusy, Msg: "another membership change is in progress on this node"}
	}
	defer n.changing.Store(false)
	var cur raftpb.ConfState
	err := n.onWorker(ctx, func() error {
		if n.w.rn.Role() != core.RoleLeader {
			return n.notLeader(n.w.rn.Lead())
		}
		cur = n.w.rn.Status().Config
		return nil
	})
	if err != nil {
		return err
	}
	if cur.IsJoint() {
		return &Error{Code: CodeBusy, Msg: "the group is leaving a joint configuration; retry"}
	}
	target := n.configuration(cur)
	if err := mutate(&target); err != nil {
		return &Error{Code: CodeInvalidArgument, Msg: op + ": " + err.Error()}
	}
	if err := n.checkTarget(target); err != nil {
		return &Error{Code: CodeInvalidArgument, Msg: op + ": " + err.Error()}
	}
	n.log.Info("membership change", "op", op, "voters", peerIDs(target.Voters), "learners", peerIDs(target.Learners))
	var fresh, promoted []Peer // new voters that are not learners yet; learners becoming voters
	for _, p := range target.Voters {
		switch {
		case slices.Contains(cur.Voters, p.ID):
		case slices.Contains(cur.Learners, p.ID):
			promoted = append(promoted, p)
		default:
			fresh = append(fresh, p)
		}
	}
	if len(fresh) > 0 {
		stage := n.configuration(cur)
		stage.Learners = append(stage.Learners, fresh...)
		if err := n.proposeConf(ctx, stage); err != nil {
			return err
		}
	}
	// A learner that is far behind would stall the quorums it joins as
	// much as a new member would: every new voter catches up first.
	if len(fresh)+len(promoted) > 0 {
		if err := n.catchUp(ctx, peerIDs(append(fresh, promoted...))); err != nil {
			if len(fresh) > 0 {
				n.rollBackLearners(cur, fresh)
			}
			return err
		}
	}
	return n.proposeConf(ctx, target)
}

// checkTarget refuses a configuration without voters, with duplicate
// members or members without addresses.
func (n *Node) checkTarget(c Configuration) error {
	if len(c.Voters) == 0 {
		return errors.New("a configuration needs at least one voter")
	}
	seen := map[uint64]bool{}
	for _, p := range append(slices.Clone(c.Voters), c.Learners...) {
		switch {
		case p.ID == 0:
			return errors.New("member ID 0")
		case seen[p.ID]:
			return fmt.Errorf("member %d named twice", p.ID)
		case p.Addr == "":
			return fmt.Errorf("member %d has no address", p.ID)
		case len(p.Addr) > storage.MaxAddrLen:
			// Kept in memory but not in the address book, it would make
			// every later snapshot's address list unreadable.
			return fmt.Errorf("member %d's address is %d bytes, more than %d", p.ID, len(p.Addr), storage.MaxAddrLen)
		}
		seen[p.ID] = true
	}
	return nil
}

// proposeConf proposes target and waits until this node has applied it
// (for a voter change: the joint configuration and the one that leaves it).
func (n *Node) proposeConf(ctx context.Context, target Configuration) error {
	cc := raftpb.ConfChange{Voters: peerIDs(target.Voters), Learners: peerIDs(target.Learners)}
	addrs := map[uint64]string{}
	for _, p := range append(slices.Clone(target.Voters), target.Learners...) {
		cc.Addrs = append(cc.Addrs, raftpb.PeerAddr{ID: p.ID, Addr: p.Addr})
		addrs[p.ID] = p.Addr
	}
	index, term, err := n.proposeConfRetrying(ctx, cc, addrs)
	if err != nil {
		return err
	}
	want := raftpb.ConfState{Voters: cc.Voters, Learners: cc.Learners}
	if err := n.waitApplied(ctx, index); err != nil {
		return err
	}
	if err := n.checkConfEntryKept(ctx, index, term); err != nil {
		return err
	}
	for {
		cs, changed := n.confW.get()
		if cs.Equal(want) && !cs.IsJoint() {
			return nil
		}
		select {
		case <-changed:
		case <-n.stopped:
			return n.closedErr()
		case <-ctx.Done():
			return &Error{Code: CodeTimeout, Msg: "waiting for the configuration to be applied; it may still take effect",
				Err: ctx.Err()}
		}
	}
}

// proposeConfRetrying hands cc to the core. The core's busy refusals that
// settle by themselves — a new leader that has not yet committed an entry
// of its term, a joint configuration the leader is leaving — are retried
// every tick for up to an election timeout; after that ErrBusy is returned.
func (n *Node) proposeConfRetrying(ctx context.Context, cc raftpb.ConfChange, addrs map[uint64]string) (index, term uint64, err error) {
	deadline := time.Now().Add(time.Duration(n.opts.ElectionTicks) * n.host.opts.TickInterval)
	tick := time.NewTicker(n.host.opts.TickInterval)
	defer tick.Stop()
	for {
		// The call may run after onWorker gave up on ctx: it publishes its
		// results by closing ran, and they are read only then.
		var busy bool
		ran := make(chan struct{})
		err = n.onWorker(ctx, func() error {
			defer close(ran)
			// Known before the entry's first AppendEntries leave this node.
			n.learnAddrs(addrs)
			var err error
			// A leader appends its proposals in its current term.
			index, err = n.w.rn.ProposeConfChange(cc)
			term = n.w.rn.Term()
			busy = errors.Is(err, core.ErrConfChangeBusy)
			return n.confRefusal(err)
		})
		select {
		case <-ran:
		default:
			return 0, 0, err // the worker did not get to it: a timeout or a stop
		}
		if !busy || time.Now().After(deadline) {
			return index, term, err
		}
		select {
		case <-tick.C:
		case <-n.stopped:
			return 0, 0, n.closedErr()
		case <-ctx.Done():
			return 0, 0, &Error{Code: CodeTimeout, Msg: "the configuration change stayed refused as busy until the deadline", Err: ctx.Err()}
		}
	}
}

// confRefusal turns the core's refusal of a configuration change into a
// raftkit error.
func (n *Node) confRefusal(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, core.ErrNotLeader):
		return n.notLeader(n.w.rn.Lead())
	case errors.Is(err, core.ErrConfChangeBusy), errors.Is(err, core.ErrProposalDropped):
		return &Error{Code: CodeBusy, Msg: "a configuration change or leadership transfer is unfinished", Err: err}
	case errors.Is(err, core.ErrInvalidConfChange):
		return &Error{Code: CodeInvalidArgument, Err: err}
	}
	return &Error{Code: CodeUnknown, Err: err}
}

// catchUp waits until the learners ids have acknowledged entries and are
// within CatchupMarginEntries of the leader's log, for at most
// CatchupTimeout.
func (n *Node) catchUp(parent context.Context, ids []uint64) error {
	ctx, cancel := context.WithTimeout(parent, n.opts.CatchupTimeout)
	defer cancel()
	tick := time.NewTicker(n.host.opts.TickInterval)
	defer tick.Stop()
	for {
		caught := false
		err := n.onWorker(ctx, func() error {
			st := n.w.rn.Status()
			if st.Role != core.RoleLeader {
				return n.notLeader(st.Lead)
			}
			caught = true
			for _, id := range ids {
				i := slices.IndexFunc(st.Progress, func(p core.FollowerStatus) bool { return p.ID == id })
				// Match 0: it has not answered yet, and a short log is no
				// reason to count a member that may not even be running.
				if i < 0 || st.Progress[i].Match == 0 || st.Progress[i].Match+n.opts.CatchupMarginEntries < st.LastIndex {
					caught = false
				}
			}
			return nil
		})
		if err == nil && caught {
			return nil
		}
		if ctx.Err() != nil {
			// Whether it struck during the look or the wait, the deadline
			// is the news, not the worker call it cut short.
			return n.catchUpTimeout(parent, ctx, ids)
		}
		if err != nil {
			return err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return n.catchUpTimeout(parent, ctx, ids)
		}
	}
}

// catchUpTimeout says which deadline ended a catch-up: CatchupTimeout or
// the caller's.
func (n *Node) catchUpTimeout(parent, ctx context.Context, ids []uint64) error {
	within := fmt.Sprintf("within %v", n.opts.CatchupTimeout)
	if parent.Err() != nil {
		within = "before the call's deadline"
	}
	return &Error{Code: CodeTimeout, Msg: fmt.Sprintf("new voters %v did not catch up %s", ids, within), Err: ctx.Err()}
}

// rollBackLearners removes the learners a failed catch-up added, so that
// a new voter that could not keep up does not stay in the configuration.
// Best effort: on failure the learners stay, and Status shows them.
func (n *Node) rollBackLearners(cur raftpb.ConfState, added []Peer) {
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.CatchupTimeout)
	defer cancel()
	if err := n.proposeConf(ctx, n.configuration(cur)); err != nil {
		n.log.Warn("removing learners that did not catch up", "learners", peerIDs(added), "err", err)
	}
}

func peerIDs(ps []Peer) []uint64 {
	ids := make([]uint64, 0, len(ps))
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	return ids
}

// TransferLeadershipTo hands leadership to voter id, or with id 0 to the
// most up-to-date other voter (naming this leader itself does nothing). The leader stops accepting writes, brings
// the target up to date and tells it to campaign at once; if the target has
// not taken over within an election timeout the transfer is abandoned and
// the leader serves again. It returns once the target leads.
//
// Errors: ErrNotLeader, ErrInvalid for a target that is not a
// voter, ErrTimeout if leadership did not move in time (or ctx ended), and
// ErrLeaderChanged if another node took over.
//
// Concurrency: safe for concurrent use.
func (n *Node) TransferLeadershipTo(ctx context.Context, id uint64) error {
	err := n.onWorker(ctx, func() error {
		st := n.w.rn.Status()
		if st.Role != core.RoleLeader {
			return n.notLeader(st.Lead)
		}
		if id == n.id {
			return nil // already there
		}
		if id == 0 {
			id = n.w.rn.BestTransferee()
			if id == 0 {
				return &Error{Code: CodeInvalidArgument, Msg: "no other voter to transfer leadership to"}
			}
		}
		if err := n.w.rn.TransferLeadership(id); err != nil {
			return &Error{Code: CodeInvalidArgument, Msg: fmt.Sprintf("cannot transfer leadership to %d", id), Err: err}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The core abandons the transfer after an election timeout; allow
	// for the target's election on top.
	limit := time.Duration(3*n.opts.ElectionTicks) * n.host.opts.TickInterval
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(n.host.opts.TickInterval)
	defer tick.Stop()
	for {
		switch v := n.view.Load(); {
		case v.lead == id:
			return nil
		case v.lead != 0 && v.lead != n.id:
			return &Error{Code: CodeLeaderChanged, Leader: n.addr(v.lead),
				Msg: fmt.Sprintf("node %d took over instead of %d", v.lead, id)}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return &Error{Code: CodeTimeout, Msg: fmt.Sprintf("leadership did not move to %d", id), Err: ctx.Err()}
		}
	}
}

// ResetPeers is the UNSAFE recovery path for a group that has lost a
// majority of its voters for good: it replaces this node's configuration
// with voters without consensus. Call it on every surviving member, with
// the same voters; one of them is then elected and makes the
// configuration durable by logging it. It can lose committed entries and,
// if the "lost" members come back, split the group in two. Never use it
// while a majority of the old configuration may still be alive. A restart
// before the new leader has logged the configuration undoes the reset.
//
// Concurrency: safe for concurrent use.
func (n *Node) ResetPeers(ctx context.Context, voters []Peer) error {
	if err := n.checkTarget(Configuration{Voters: voters}); err != nil {
		return &Error{Code: CodeInvalidArgument, Msg: "reset peers: " + err.Error()}
	}
	addrs := map[uint64]string{}
	for _, p := range voters {
		addrs[p.ID] = p.Addr
	}
	n.log.Warn("UNSAFE: resetting the configuration without consensus", "voters", peerIDs(voters))
	return n.onWorker(ctx, func() error {
		n.learnAddrs(addrs)
		if err := n.w.rn.ResetConf(peerIDs(voters), nil); err != nil {
			return &Error{Code: CodeInvalidArgument, Msg: "reset peers", Err: err}
		}
		return nil
	})
}

// checkConfEntryKept, called once this node has applied index, fails with
// CodeLeaderChanged when the entry applied there is not the proposal's
// (another term's): a new leader overwrote the proposal, which then never
// takes effect, and waiting for its configuration would only run into the
// caller's deadline. A compacted entry cannot be checked; the caller goes
// on waiting for the configuration then.
func (n *Node) checkConfEntryKept(ctx context.Context, index, term uint64) error {
	var got uint64
	var known bool
	if err := n.onWorker(ctx, func() error {
		t, err := n.w.lm.Term(index)
		got, known = t, err == nil
		return nil
	}); err != nil {
		return err
	}
	if known && got != term {
		return &Error{Code: CodeLeaderChanged, Msg: fmt.Sprintf(
			"the configuration change proposed at index %d in term %d was replaced by term %d's entry; it did not take effect", index, term, got)}
	}
	return nil
}

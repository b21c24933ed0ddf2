package raftkit

import (
	"cmp"
	"slices"

	"github.com/raftkit/raftkit/internal/core"
	"github.com/raftkit/raftkit/raftpb"
)

// onSoftState turns role and leader changes into state machine callbacks,
// queued behind the entries already handed to the apply loop so the state
// machine sees them in the order they happened.
func (n *Node) onSoftState(ss core.SoftState) {
	w := &n.w
	prev := w.soft
	w.soft = ss
	if (prev.Lead != 0 && prev.Lead != ss.Lead) || (prev.Role == core.RoleLeader && ss.Role != core.RoleLeader) {
		// The core drops the reads it holds when leadership moves, and a
		// read forwarded to the old leader may never be answered. (Learning
		// of a leader, from none, loses nothing: without one the core
		// refused reads at once.)
		n.reads.failAll(&Error{Code: CodeLeaderChanged, Leader: n.addr(ss.Lead),
			Msg: "leadership changed before the read was confirmed; retry"})
	}
	term := w.rn.Term()
	w.lastTerm = term
	n.publishView()
	n.met.onSoftState(prev, ss, term)
	if prev.Role == core.RoleLeader && ss.Role != core.RoleLeader {
		n.log.Info("stopped leading", "term", term, "leader", ss.Lead)
		if w.led != 0 {
			w.led = 0
			n.fsm.enqueue(applyItem{kind: applyLeaderStop, lctx: n.lctx(ss.Lead, term)})
		}
	}
	if ss.Role == core.RoleLeader && prev.Role != core.RoleLeader {
		n.log.Info("became leader", "term", term)
	}
	if w.follows != 0 && w.follows != ss.Lead {
		n.fsm.enqueue(applyItem{kind: applyStopFollowing, lctx: n.lctx(w.follows, term)})
		w.follows = 0
	}
	if ss.Lead != 0 && ss.Lead != n.id && w.follows != ss.Lead {
		w.follows = ss.Lead
		n.log.Info("following leader", "leader", ss.Lead, "addr", n.addr(ss.Lead), "term", term)
		n.fsm.enqueue(applyItem{kind: applyStartFollowing, lctx: n.lctx(ss.Lead, term)})
	}
}

func (n *Node) lctx(lead, term uint64) LeaderChangeContext {
	return LeaderChangeContext{LeaderID: lead, LeaderAddr: n.addr(lead), Term: term}
}

// publishView updates what Apply and Leader read without the worker.
func (n *Node) publishView() {
	w := &n.w
	n.view.Store(&nodeView{role: Role(w.soft.Role), lead: w.soft.Lead, term: w.rn.Term()})
}

// dispatchCommitted matches committed entries with the tasks waiting for
// them and queues the batch to the apply loop.
func (n *Node) dispatchCommitted(ents []raftpb.Entry) {
	w := &n.w
	var futs []*Future
	futs, w.pending = settlePending(w.pending, ents)
	startLeader := false
	for i := range ents {
		// The leader's own no-op of its term being applied means every entry
		// committed before the term is applied too: the moment the state
		// machine may start serving as leader.
		e := &ents[i]
		if e.Type == raftpb.EntryNoop && w.soft.Role == core.RoleLeader && e.Term == w.rn.Term() && w.led != e.Term {
			startLeader = true
		}
	}
	n.fsm.enqueue(applyItem{kind: applyEntries, ents: ents, futs: futs})
	if startLeader {
		w.led = w.rn.Term()
		n.fsm.enqueue(applyItem{kind: applyLeaderStart, term: w.led})
	}
}

// settlePending takes from pending (ordered by index) every task at or
// below the last of the committed entries ents. A task whose (index, term)
// is a committed entry's gets that entry's slot in futs (nil when none
// does); any other lost its entry to another leader's log for good, since
// the committed entry at its index has another term, and fails now. It
// returns the tasks still waiting.
func settlePending(pending []pendingTask, ents []raftpb.Entry) (futs []*Future, rest []pendingTask) {
	for i := range ents {
		e := &ents[i]
		for len(pending) > 0 && pending[0].index <= e.Index {
			p := pending[0]
			pending[0] = pendingTask{}
			pending = pending[1:]
			if p.index == e.Index && p.term == e.Term {
				if futs == nil {
					futs = make([]*Future, len(ents))
				}
				futs[i] = p.fut
				continue
			}
			p.fut.complete(Result{Index: p.index, Term: p.term, Err: &Error{Code: CodeLeaderChanged,
				Msg: "the entry was replaced by another leader's log"}})
		}
	}
	return futs, pending
}

// addPending appends the tasks just proposed at first.. in term, keeping
// the queue ordered by index. An older task may still wait at an index at
// or after first: its entry left this node's log when another leader's
// replaced it, but a third node may hold it and commit it yet, so only the
// committed entry at that index can settle it (see settlePending).
func addPending(pending []pendingTask, first, term uint64, tasks []taskReq) []pendingTask {
	start := len(pending)
	for i, t := range tasks {
		pending = append(pending, pendingTask{index: first + uint64(i), term: term, fut: t.fut})
	}
	if start > 0 && pending[start-1].index >= first {
		slices.SortStableFunc(pending, func(a, b pendingTask) int { return cmp.Compare(a.index, b.index) })
	}
	return pending
}

// releaseTasks returns the tasks' bytes to the task budget; called once per
// task, when it leaves the inbox.
func (n *Node) releaseTasks(tasks []taskReq) {
	var freed uint64
	for _, t := range tasks {
		freed += t.bytes
	}
	if freed > 0 {
		n.mu.Lock()
		n.taskBytes -= freed
		n.mu.Unlock()
	}
}

func completeTasks(tasks []taskReq, err error) {
	for _, t := range tasks {
		t.fut.complete(Result{Err: err})
	}
}

// closedErr is why a task can no longer be served.
func (n *Node) closedErr() error {
	if err := n.errState(); err != nil {
		return err
	}
	return &Error{Code: CodeShuttingDown, Msg: "node shut down"}
}

// leaveProtocol stops the group from taking part in raft after a failure:
// the core is never stepped again (its state may be inconsistent), waiting
// tasks fail, and peers see the node as down.
func (n *Node) leaveProtocol() {
	w := &n.w
	err := n.closedErr()
	for _, p := range w.pending {
		p.fut.complete(Result{Index: p.index, Term: p.term, Err: err})
	}
	w.pending = nil
	if v := n.view.Load(); v.role != RoleFollower || v.lead != 0 {
		n.view.Store(&nodeView{term: v.term})
	}
}

// finishStop carries out Shutdown on the raft worker. The group leaves the
// protocol at once, but the stop completes only when every log write it
// queued has finished: a node started again for the group must find the log
// as this one left it, not have writes land under it.
func (n *Node) finishStop() {
	w := &n.w
	if !w.stopping {
		w.stopping = true
		n.leaveProtocol()
		n.log.Info("node shutting down")
	}
	if !n.jobsSettled() {
		return // the engine's callback schedules the group again
	}
	if s := &n.w.snap; s.install != nil {
		s.install.cancel()
		s.install = nil
	}
	if n.snapBusy.Load() > 0 {
		return // a save or fetch is running; its report schedules the group
	}
	final := n.snapshotStatus()
	final.State = StateShutdown
	n.final.Store(&final)
	w.done = true
	n.mu.Lock()
	n.shut = true
	n.mu.Unlock()
	n.host.removeNode(n)
	n.met.forget()
	n.log.Info("node shut down")
	n.fsm.enqueue(applyItem{kind: applyShutdown, done: n.stopped})
}

// jobsSettled reports whether every log write queued has completed.
func (n *Node) jobsSettled() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, j := range n.w.jobs {
		if !j.done {
			return false
		}
	}
	return true
}

// snapshotStatus builds a Status on the raft worker.
func (n *Node) snapshotStatus() Status {
	w := &n.w
	if w.done {
		return *n.final.Load()
	}
	cs := w.rn.Status()
	s := Status{
		GroupID: n.group, NodeID: n.id, Role: Role(cs.Role),
		Term: cs.HardState.Term, Vote: cs.HardState.Vote, Leader: cs.Lead, LeaderAddr: n.addr(cs.Lead),
		CommitIndex: cs.HardState.Commit, AppliedIndex: n.fsm.applied.Load(), LastIndex: cs.LastIndex,
		Voters: cs.Config.Voters, Learners: cs.Config.Learners, OutgoingVoters: cs.Config.VotersOutgoing,
		PendingTasks: len(w.pending), ApplyQueueBytes: n.fsm.bytes.Load(), LogCacheBytes: w.lm.CacheBytes(),
	}
	if err := n.failure.Load(); err != nil {
		s.State, s.Err = StateError, err
	}
	s.FirstIndex, _ = w.lm.FirstIndex()
	s.SnapshotIndex, s.SnapshotTerm = w.snap.last.Index, w.snap.last.Term
	if in := w.snap.install; in != nil {
		s.InstallingSnapshot = in.msg.Snapshot.Index
	}
	for _, p := range cs.Progress {
		if p.ID == n.id {
			continue
		}
		s.Followers = append(s.Followers, FollowerStatus{
			ID: p.ID, Addr: n.addr(p.ID), Match: p.Match, Next: p.Next, State: p.State,
			Inflight: p.Inflight, InflightBytes: p.InflightSize, RecentActive: p.RecentActive, IsLearner: p.IsLearner,
		})
	}
	return s
}

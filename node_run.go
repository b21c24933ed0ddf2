package raftkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/raftkit/raftkit/internal/core"
	"github.com/raftkit/raftkit/raftpb"
)

// maxReadiesPerRun bounds the Readys one run processes before yielding the
// worker to other groups; the group is scheduled again if more remain.
const maxReadiesPerRun = 64

// run is one turn of the group on a raft worker: take what arrived, step
// the core, and carry out its Readys.
func (n *Node) run() {
	n.mu.Lock()
	in := n.in
	n.in = n.spare
	n.mu.Unlock()

	w := &n.w
	if !w.done {
		n.runCore(&in)
	}
	if w.done || w.stopping || n.failure.Load() != nil {
		n.releaseTasks(in.tasks)
		completeTasks(in.tasks, n.closedErr())
		n.failSnapshotWaiters(in.snapReqs)
	}
	failCalls(in.calls, n.closedErr())
	if len(in.status) > 0 {
		s := n.snapshotStatus()
		for _, ch := range in.status {
			ch <- s
		}
	}
	clear(in.msgs)
	clear(in.tasks)
	clear(in.status)
	in.snapReqs, in.saved, in.fetched = nil, nil, nil
	n.mu.Lock()
	n.spare = inbox{msgs: in.msgs[:0], tasks: in.tasks[:0], status: in.status[:0], calls: in.calls[:0]}
	n.mu.Unlock()
}

// runCore steps the core with the inbox. A panic from the core (it panics
// on storage read errors it cannot handle) puts the group into the error
// state instead of crashing the host.
func (n *Node) runCore(in *inbox) {
	w := &n.w
	defer func() {
		if r := recover(); r != nil {
			n.enterError(newError(CodeStorage, nil, "raft core: %v\n%s", r, debug.Stack()))
			n.leaveProtocol()
		}
	}()
	if in.stop || w.stopping {
		n.finishStop()
		return
	}
	if in.failed || n.failure.Load() != nil {
		n.leaveProtocol()
		return
	}
	if in.applied > w.applied {
		w.applied = in.applied
		w.rn.AppliedTo(in.applied)
	}
	for range in.ticks {
		w.rn.Tick()
	}
	if in.ticks > 0 && (w.soft.Role == core.RoleLeader || len(n.met.followers) > 0) {
		n.met.updateFollowers(w.rn.Status())
	}
	debug := len(in.msgs) > 0 && n.log.Enabled(context.Background(), slog.LevelDebug)
	for i := range in.msgs {
		m := &in.msgs[i]
		if debug {
			logMessage(n.log, "received", m)
		}
		if m.Type == raftpb.MsgSnap && m.Snapshot != nil && n.interceptSnapshot(*m) {
			continue
		}
		if err := w.rn.Step(*m); err != nil {
			n.log.Debug("message refused", "type", m.Type, "from", m.From, "err", err)
		}
	}
	n.runSnapshots(in)
	n.runCalls(in.calls)
	tasks := in.tasks
	in.tasks = in.tasks[:0] // from here on propose owns them
	n.propose(tasks)
	n.drainReady()
	if t := w.rn.Term(); t != w.lastTerm {
		w.lastTerm = t
		n.publishView()
	}
}

// propose turns queued tasks into one proposal per run.
func (n *Node) propose(tasks []taskReq) {
	if len(tasks) == 0 {
		return
	}
	defer clear(tasks) // the inbox array is reused; drop the references
	n.releaseTasks(tasks)
	w := &n.w
	term := w.rn.Term()
	data := make([][]byte, 0, len(tasks))
	keep := tasks[:0]
	for _, t := range tasks {
		if t.term != 0 && t.term != term {
			t.fut.complete(Result{Err: &Error{Code: CodeStaleTerm,
				Msg: fmt.Sprintf("expected term %d, leader is in term %d", t.term, term)}})
			continue
		}
		data = append(data, t.data)
		keep = append(keep, t)
	}
	if len(keep) == 0 {
		return
	}
	proposed := false
	defer func() {
		if !proposed { // the core panicked: the group fails, and so do these
			completeTasks(keep, &Error{Code: CodeStorage, Msg: "the raft core failed while proposing"})
		}
	}()
	first, term, err := w.rn.Propose(data...)
	proposed = true
	if err != nil {
		var rerr error = n.notLeader(w.rn.Lead())
		if errors.Is(err, core.ErrProposalDropped) && w.rn.Role() == core.RoleLeader {
			rerr = &Error{Code: CodeBusy, Msg: "uncommitted log over budget", Err: err}
			n.met.busy.Add(float64(len(keep)))
		}
		completeTasks(keep, rerr)
		return
	}
	n.met.proposals.Add(float64(len(keep)))
	w.pending = addPending(w.pending, first, term, keep)
}

// drainReady completes durable jobs and carries out Readys until the core
// is quiet or the run's budget is spent.
func (n *Node) drainReady() {
	w := &n.w
	for i := 0; ; i++ {
		if !n.completeJobs() {
			return
		}
		if !w.rn.HasReady() {
			return
		}
		if i == maxReadiesPerRun {
			n.host.raftPool.schedule(n)
			return
		}
		n.handleReady(w.rn.Ready())
	}
}

// completeJobs advances the core past every leading Ready whose writes are
// durable, in the order the Readys were taken. It returns false if the
// group failed.
func (n *Node) completeJobs() bool {
	w := &n.w
	for len(w.jobs) > 0 {
		j := w.jobs[0]
		n.mu.Lock()
		done, err := j.done, j.err
		n.mu.Unlock()
		if !done {
			return true
		}
		if err != nil {
			n.enterError(newError(CodeStorage, err, "appending to the log"))
			n.leaveProtocol()
			return false
		}
		w.jobs[0] = nil
		w.jobs = w.jobs[1:]
		if k := len(j.rd.Entries); k > 0 {
			w.lm.MarkDurable(j.rd.Entries[k-1].Index)
		}
		n.send(j.rd.MessagesAfterPersist)
		w.rn.Advance(j.rd)
	}
	return true
}

// handleReady carries out one Ready: send what may go now, start the
// writes, and hand committed entries to the apply loop.
func (n *Node) handleReady(rd core.Ready) {
	w := &n.w
	// Addresses of members a configuration entry adds are known before
	// the entry's AppendEntries leave for them.
	n.learnEntryAddrs(rd.Entries)
	if rd.SoftState != nil {
		n.onSoftState(*rd.SoftState)
	}
	if len(rd.ReadStates) > 0 {
		n.onReadStates(rd.ReadStates)
	}
	n.send(rd.Messages)
	rd.Messages = nil
	if rd.Snapshot != nil {
		n.installSnapshot(*rd.Snapshot)
	}
	if !rd.HardState.IsEmpty() {
		if err := w.lm.SaveHardState(rd.HardState); err != nil {
			panic(err)
		}
		n.met.term.Set(float64(rd.HardState.Term))
		n.met.commit.Set(float64(rd.HardState.Commit))
	}
	committed := rd.CommittedEntries
	rd.CommittedEntries = nil // the job keeps only what Advance needs
	w.snap.bytes += entriesBytes(committed)
	j := &persistJob{rd: rd}
	if len(rd.Entries) > 0 {
		start := time.Now()
		w.lm.Append(rd.Entries, func(err error) {
			n.met.appendLatency.Observe(time.Since(start).Seconds())
			n.mu.Lock()
			j.done, j.err = true, err
			n.mu.Unlock()
			n.host.raftPool.schedule(n)
		})
	} else {
		j.done = true
	}
	w.jobs = append(w.jobs, j)
	if len(committed) > 0 {
		n.dispatchCommitted(committed)
	}
}

// send hands messages to the transport; a refused send tells the core the
// peer is unreachable so it stops pipelining to it.
func (n *Node) send(msgs []raftpb.Message) {
	debug := len(msgs) > 0 && n.log.Enabled(context.Background(), slog.LevelDebug)
	for i := range msgs {
		m := &msgs[i]
		addr := n.addr(m.To)
		if addr == "" || m.To == n.id {
			continue
		}
		if debug {
			logMessage(n.log, "sending", m)
		}
		if m.Type == raftpb.MsgSnap {
			n.noteSnapshotSent(m)
		}
		if !n.host.trans.Send(addr, n.group, m) {
			n.w.rn.ReportUnreachable(m.To)
		}
	}
}

// runSnapshots feeds the snapshot executor and installer what arrived and
// lets them act; raft worker only.
func (n *Node) runSnapshots(in *inbox) {
	s := &n.w.snap
	s.ticks += in.ticks
	s.tickNow += in.ticks
	s.waiters = append(s.waiters, in.snapReqs...)
	in.snapReqs = nil // answered through s.waiters from here on
	for _, r := range in.saved {
		n.onSnapshotSaved(r)
	}
	for _, r := range in.fetched {
		n.onFetched(r)
	}
	n.abortStaleInstall()
	if in.ticks > 0 {
		n.checkSnapshotStalls()
	}
	n.maybeSnapshot()
}

// failSnapshotWaiters answers Snapshot calls once the group stopped.
func (n *Node) failSnapshotWaiters(reqs []chan snapshotResult) {
	s := &n.w.snap
	r := snapshotResult{err: n.closedErr()}
	replySnapshot(reqs, r)
	replySnapshot(s.waiters, r)
	replySnapshot(s.saveFor, r)
	s.waiters, s.saveFor = nil, nil
	if s.install != nil {
		s.install.cancel()
		s.install = nil
	}
}

// logMessage is the per-message detail of debug logs.
func logMessage(log *slog.Logger, what string, m *raftpb.Message) {
	log.Debug(what, "type", m.Type, "from", m.From, "to", m.To, "term", m.Term, "index", m.Index,
		"log_term", m.LogTerm, "entries", len(m.Entries), "commit", m.Commit, "reject", m.Reject)
}

package raftkit

// This file is snapshot install: a follower fetching the leader's snapshot
// (internal/snapcopy) before its core sees the MsgSnap, and the leader
// noticing a follower that never finished one.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/raftkit/raftkit/internal/snapcopy"
	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// installState is a follower's fetch in progress.
type installState struct {
	msg    raftpb.Message // the MsgSnap that started it
	cancel context.CancelFunc
}

// fetchResult is a finished fetch, handed back to the raft worker.
type fetchResult struct {
	msg   raftpb.Message
	stats snapcopy.CopyStats
	err   error
	// copied and committed are how long the copy and the commit (sync
	// and publish) took.
	copied, committed time.Duration
}

// snapStallTimeouts is how long a leader waits, in election timeouts, for a
// follower it sent a snapshot to, while nobody fetches any of the group's
// snapshot files, before offering the snapshot again.
const snapStallTimeouts = 4

// interceptSnapshot decides what to do with a MsgSnap before the core
// sees it. The core may see it only once the snapshot's files are
// committed here; until then this node fetches them. It reports whether it
// consumed m.
func (n *Node) interceptSnapshot(m raftpb.Message) bool {
	s := &n.w.snap
	meta := m.Snapshot
	if !n.coreWouldInstall(m) || (meta.Index == s.fetched.Index && meta.Term == s.fetched.Term) {
		return false // the core answers, or installs what is here
	}
	if n.snapper == nil {
		n.log.Error("the leader sent a snapshot but the state machine does not implement Snapshotter", "index", meta.Index)
		n.rejectSnapshot(m)
		return true
	}
	if in := s.install; in != nil {
		cur := in.msg.Snapshot
		if meta.Index <= cur.Index && m.Term <= in.msg.Term {
			return true // a duplicate, or older than the fetch under way
		}
		n.log.Info("a newer snapshot or term supersedes the fetch in progress", "index", meta.Index, "was", cur.Index)
		in.cancel()
	}
	ctx, cancel := context.WithCancel(n.host.snap.ctx)
	s.install = &installState{msg: m, cancel: cancel}
	n.log.Info("fetching the leader's snapshot", "index", meta.Index, "term", meta.Term, "from", m.From)
	n.goSnapshot(func() { n.fetchSnapshot(ctx, m) })
	return true
}

// fetchSnapshot copies the snapshot's files from the sender's host into a
// new local snapshot and commits it.
func (n *Node) fetchSnapshot(ctx context.Context, m raftpb.Message) {
	var stats snapcopy.CopyStats
	var copied, committed time.Duration
	start := time.Now()
	w, err := n.snaps.Create(*m.Snapshot)
	if err == nil {
		stats, err = snapcopy.Copy(ctx, n.host.snapCaller, n.addr(m.From), n.group, m.Snapshot.Index, m.Snapshot.Term,
			n.snaps.FS(), w.Dir(), n.host.copyOpts)
		copied = time.Since(start)
		if err == nil {
			// Copy verified every byte it wrote against the source's
			// checksums; reading the files back would only repeat it.
			if vc, ok := w.(storage.VerifiedCommitter); ok {
				err = vc.CommitVerified(stats.Verified)
			} else {
				err = w.Commit()
			}
			committed = time.Since(start) - copied
		} else {
			err = errors.Join(err, w.Abort())
		}
	}
	r := fetchResult{msg: m, stats: stats, err: err, copied: copied, committed: committed}
	n.reportSnapshotWork(func(in *inbox) { in.fetched = append(in.fetched, r) })
}

// coreWouldInstall reports whether the core, stepped with m now, would
// install its snapshot: m is of the current term or later, and the snapshot
// covers entries this log lacks or holds under another term. Otherwise the
// core only answers it, and fetching the files would be wasted, or worse:
// files committed and never installed would become the latest snapshot.
func (n *Node) coreWouldInstall(m raftpb.Message) bool {
	meta := m.Snapshot
	if m.Term < n.w.rn.Term() || meta.Index <= n.w.rn.Committed() {
		return false
	}
	t, err := n.w.lm.Term(meta.Index)
	return err != nil || t != meta.Term
}

// onFetched hands a fetched snapshot to the core, or tells the leader the
// fetch failed; raft worker only.
func (n *Node) onFetched(r fetchResult) {
	s := &n.w.snap
	meta := r.msg.Snapshot
	current := s.install != nil && s.install.msg.Snapshot.Index == meta.Index && s.install.msg.Term == r.msg.Term
	if current {
		s.install.cancel()
		s.install = nil
	}
	if r.err == nil && (!current || !n.coreWouldInstall(r.msg)) {
		// Superseded, or the term or log moved on meanwhile: the files
		// would never be installed, so they must not stay as the latest
		// snapshot.
		n.log.Info("discarding a fetched snapshot that will not be installed", "index", meta.Index)
		if err := n.snaps.Delete(meta.Index); err != nil {
			n.log.Warn("deleting a discarded snapshot", "index", meta.Index, "err", err)
		}
		return
	}
	if r.err != nil {
		if errors.Is(r.err, context.Canceled) {
			return // superseded or shutting down
		}
		n.log.Warn("fetching the leader's snapshot failed", "index", meta.Index, "err", r.err)
		n.rejectSnapshot(r.msg)
		return
	}
	n.log.Info("snapshot fetched", "index", meta.Index, "bytes", r.stats.Bytes, "files", r.stats.Files,
		"retries", r.stats.Retries, "corrupt_chunks", r.stats.CorruptChunks,
		"copy_time", r.copied, "commit_time", r.committed)
	s.fetched = *meta
	n.met.snapInstalls.Add(1)
	n.met.snapInstallBytes.Add(float64(r.stats.Bytes))
	if err := n.learnFetchedAddrs(meta.Index); err != nil {
		n.enterError(newError(CodeStorage, err, "learning the addresses of snapshot %d", meta.Index))
		return
	}
	if err := n.w.rn.Step(r.msg); err != nil {
		n.log.Debug("fetched snapshot refused by the core", "err", err)
	}
}

// rejectSnapshot tells m's sender that its snapshot was not installed, so
// that it may offer one again.
func (n *Node) rejectSnapshot(m raftpb.Message) {
	// The MsgSnap never reached the core, whose term may still be lower;
	// the leader drops an answer below its own term.
	term := max(m.Term, n.w.rn.Term())
	n.send([]raftpb.Message{{Type: raftpb.MsgSnapStatus, From: n.id, To: m.From, Term: term, Reject: true}})
}

// abortStaleInstall cancels a fetch whose leader's term has passed.
func (n *Node) abortStaleInstall() {
	s := &n.w.snap
	if in := s.install; in != nil && n.w.rn.Term() > in.msg.Term {
		n.log.Info("a new term aborts the snapshot fetch", "index", in.msg.Snapshot.Index)
		in.cancel()
		s.install = nil
	}
}

// installSnapshot carries out a Ready's snapshot: the log restarts after
// it and the state machine loads it. The files are committed already
// (interceptSnapshot let the core see the MsgSnap only then).
func (n *Node) installSnapshot(meta raftpb.SnapshotMeta) {
	w := &n.w
	if err := w.lm.ResetToSnapshot(meta); err != nil {
		panic(err) // runCore turns it into the group's error state
	}
	// The reset went through the engine after every append in flight, so
	// all their callbacks have run: settle them before the bookkeeping
	// starts over.
	n.completeJobs()
	w.lm.AfterResetToSnapshot(meta)
	w.snap.last, w.snap.fetched = meta, raftpb.SnapshotMeta{}
	n.fsm.enqueue(applyItem{kind: applySnapshotLoad, snap: meta})
}

// noteSnapshotSent remembers when the leader sent m, a MsgSnap.
func (n *Node) noteSnapshotSent(m *raftpb.Message) {
	s := &n.w.snap
	if s.sent == nil {
		s.sent = map[uint64]int{}
	}
	s.sent[m.To] = s.tickNow
}

// checkSnapshotStalls offers the snapshot again to a follower that has not
// fetched from this host for several election timeouts; raft worker only.
// Progress is only known as activity of the group's snapshot service, so a
// long install that keeps fetching is never interrupted.
func (n *Node) checkSnapshotStalls() {
	s := &n.w.snap
	if len(s.sent) == 0 {
		return
	}
	stall := snapStallTimeouts * n.opts.ElectionTicks
	window := time.Duration(stall) * n.host.opts.TickInterval
	active := time.Since(n.host.snapActivity(n.group)) < window
	for to, at := range s.sent {
		if s.tickNow-at < stall || active {
			continue
		}
		delete(s.sent, to)
		n.w.rn.ReportSnapshot(to, false)
	}
}

// learnFetchedAddrs merges the address book of the snapshot at index, just
// fetched and committed, before the core installs it: its configuration may
// name members whose configuration entries this member never saw.
func (n *Node) learnFetchedAddrs(index uint64) error {
	rd, err := n.snaps.Latest()
	if err != nil {
		return err
	}
	defer rd.Close()
	if rd.Meta().Index != index {
		return fmt.Errorf("latest snapshot is %d, not the fetched %d", rd.Meta().Index, index)
	}
	return n.learnSnapshotAddrs(rd.Dir())
}

package raftkit

// This file is the snapshot executor (SOFAJRaft's SnapshotExecutor): when
// to take a snapshot, how one is saved without stopping apply, and the log
// compaction that follows.

import (
	"context"
	"errors"
	"fmt"
	"path"
	"runtime/debug"
	"time"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// snapState is the raft worker's bookkeeping of snapshots.
type snapState struct {
	last    raftpb.SnapshotMeta // latest durable snapshot (Index 0: none)
	saving  bool                // a save is between the apply loop and its commit
	retryAt int                 // after a failed save, no trigger fires before this tick
	ticks   int                 // ticks since the last snapshot was triggered
	bytes   uint64              // entry payload committed since then
	waiters []chan snapshotResult
	saveFor []chan snapshotResult // the waiters of the save in progress

	install  *installState       // a follower's fetch in progress
	fetched  raftpb.SnapshotMeta // committed locally, not yet installed
	sent     map[uint64]int      // leader: peer → tick its MsgSnap left
	tickNow  int                 // ticks since start, for sent
	lastSeen time.Time           // when sent was last checked
}

type snapshotResult struct {
	info SnapshotInfo
	err  error
}

// saveResult is a finished save, handed back to the raft worker.
type saveResult struct {
	meta raftpb.SnapshotMeta
	err  error
}

// Snapshot takes a snapshot now, unless the latest one already covers
// every applied entry, and compacts the log after it. It returns the
// snapshot's index and term once it is durable. It waits for ctx; the
// snapshot may still complete after ctx ends. Safe for concurrent use;
// concurrent calls share one snapshot.
func (n *Node) Snapshot(ctx context.Context) (SnapshotInfo, error) {
	if n.snapper == nil {
		return SnapshotInfo{}, &Error{Code: CodeInvalidArgument, Msg: "the state machine does not implement Snapshotter"}
	}
	if err := n.failure.Load(); err != nil {
		return SnapshotInfo{}, err
	}
	ch := make(chan snapshotResult, 1)
	n.mu.Lock()
	if n.shut {
		n.mu.Unlock()
		return SnapshotInfo{}, n.closedErr()
	}
	n.in.snapReqs = append(n.in.snapReqs, ch)
	n.mu.Unlock()
	n.host.raftPool.schedule(n)
	select {
	case r := <-ch:
		return r.info, r.err
	case <-n.stopped:
		return SnapshotInfo{}, n.closedErr()
	case <-ctx.Done():
		return SnapshotInfo{}, &Error{Code: CodeTimeout, Msg: "waiting for the snapshot", Err: ctx.Err()}
	}
}

// maybeSnapshot starts a save when a trigger is due; raft worker only.
func (n *Node) maybeSnapshot() {
	s := &n.w.snap
	if n.snapper == nil || s.saving {
		return
	}
	o := &n.opts
	interval := int(o.SnapshotInterval / n.host.opts.TickInterval)
	triggered := s.tickNow >= s.retryAt && ((o.SnapshotInterval > 0 && s.ticks >= max(interval, 1)) ||
		(o.SnapshotEntries > 0 && n.w.applied >= s.last.Index+uint64(o.SnapshotEntries)) ||
		(o.SnapshotBytes > 0 && s.bytes >= uint64(o.SnapshotBytes)))
	if !triggered && len(s.waiters) == 0 {
		return
	}
	s.ticks = 0
	if n.w.applied == 0 {
		replySnapshot(s.waiters, snapshotResult{err: &Error{Code: CodeTryAgain, Msg: "nothing applied yet to snapshot"}})
		s.waiters = s.waiters[:0]
		return
	}
	if n.w.applied <= s.last.Index {
		// Nothing applied since the last snapshot: it is still current.
		replySnapshot(s.waiters, snapshotResult{info: SnapshotInfo{Index: s.last.Index, Term: s.last.Term}})
		s.waiters = s.waiters[:0]
		return
	}
	s.saving, s.bytes = true, 0
	s.saveFor, s.waiters = s.waiters, nil
	// Counted from here, not from the goroutine's start, so that a stop
	// waits for a save still queued to the apply loop (see finishStop).
	n.snapBusy.Add(1)
	n.fsm.enqueue(applyItem{kind: applySnapshotSave})
}

func replySnapshot(chs []chan snapshotResult, r snapshotResult) {
	for _, ch := range chs {
		ch <- r
	}
}

// captureSnapshot runs on the apply loop with every entry up to last
// applied: it lets the state machine capture its view, then writes it on a
// goroutine of its own so that apply continues meanwhile.
func (f *fsmCaller) captureSnapshot() {
	n := f.n
	meta := raftpb.SnapshotMeta{Index: f.lastIndex, Term: f.lastTerm, ConfState: f.conf.Clone()}
	var save SnapshotSaveFunc
	var err error
	if f.failed.Load() {
		err = n.errState()
	} else {
		perr := f.call("SaveSnapshot", func() { save, err = n.snapper.SaveSnapshot() })
		err = errors.Join(perr, err)
	}
	if err == nil && save == nil {
		err = errors.New("SaveSnapshot returned no save function")
	}
	if err != nil || meta.Index == 0 {
		n.snapshotSaved(saveResult{meta: meta, err: errors.Join(err, errNothingToSnapshot(meta))})
		return
	}
	go n.writeSnapshot(meta, save) // counted in snapBusy since maybeSnapshot
}

func errNothingToSnapshot(meta raftpb.SnapshotMeta) error {
	if meta.Index == 0 {
		return errors.New("nothing applied yet")
	}
	return nil
}

// writeSnapshot writes and commits one snapshot, then deletes the older
// ones no reader holds, and reports to the raft worker.
func (n *Node) writeSnapshot(meta raftpb.SnapshotMeta, save SnapshotSaveFunc) {
	start := time.Now()
	w, err := n.snaps.Create(meta)
	if err == nil {
		err = runSave(save, &SnapshotWriter{fs: n.snaps.FS(), dir: w.Dir(), info: SnapshotInfo{Index: meta.Index, Term: meta.Term}})
		if err == nil {
			err = storage.WriteAddresses(n.snaps.FS(), path.Join(w.Dir(), snapAddrFile), n.addrsCopy())
		}
		if err == nil {
			err = w.Commit()
		} else {
			err = errors.Join(err, w.Abort())
		}
	}
	if err == nil {
		n.log.Info("snapshot saved", "index", meta.Index, "term", meta.Term, "took", time.Since(start))
		n.met.snapSaves.Add(1)
		n.met.snapSaveBytes.Add(float64(n.snapshotBytes(meta.Index)))
		n.deleteOldSnapshots(meta.Index)
	}
	n.snapshotSaved(saveResult{meta: meta, err: err})
}

// runSave runs the state machine's save function, turning a panic into an
// error: it runs on a goroutine of its own, where a panic would end the
// process that hosts every group.
func runSave(save SnapshotSaveFunc, w *SnapshotWriter) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("SnapshotSaveFunc panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return save(w)
}

// deleteOldSnapshots removes the snapshots before index. One a reader
// holds (a follower is fetching it) stays until a later snapshot's turn.
func (n *Node) deleteOldSnapshots(index uint64) {
	metas, err := n.snaps.List()
	if err != nil {
		n.log.Warn("listing snapshots", "err", err)
		return
	}
	for _, m := range metas {
		if m.Index >= index {
			continue
		}
		if err := n.snaps.Delete(m.Index); err != nil && !errors.Is(err, storage.ErrSnapshotInUse) {
			n.log.Warn("deleting an old snapshot", "index", m.Index, "err", err)
		}
	}
}

// snapshotSaved hands a finished save to the raft worker.
func (n *Node) snapshotSaved(r saveResult) {
	n.reportSnapshotWork(func(in *inbox) { in.saved = append(in.saved, r) })
}

// onSnapshotSaved records a durable snapshot and compacts the log behind
// it; raft worker only.
func (n *Node) onSnapshotSaved(r saveResult) {
	s := &n.w.snap
	s.saving = false
	waiters := s.saveFor
	s.saveFor = nil
	if r.err != nil {
		// Triggers stay due after a failure (the entries are still
		// there): wait an election timeout before the next attempt rather
		// than retrying on every run.
		s.retryAt = s.tickNow + n.opts.ElectionTicks
		n.log.Warn("snapshot failed", "index", r.meta.Index, "err", r.err)
		replySnapshot(waiters, snapshotResult{err: &Error{Code: CodeStorage, Msg: "taking a snapshot", Err: r.err}})
		return
	}
	replySnapshot(waiters, snapshotResult{info: SnapshotInfo{Index: r.meta.Index, Term: r.meta.Term}})
	if r.meta.Index <= s.last.Index {
		return // an installed snapshot overtook this one
	}
	s.last = r.meta
	n.w.lm.SetSnapshot(r.meta)
	n.compactLog(r.meta.Index)
}

// compactLog discards the log before the snapshot at index, keeping the
// configured margin of entries.
func (n *Node) compactLog(index uint64) {
	margin := n.opts.SnapshotMarginEntries
	if index+1 <= margin {
		return
	}
	to := index + 1 - margin
	first, err := n.w.lm.FirstIndex()
	if err != nil || to <= first {
		return
	}
	n.w.lm.Compact(to, func(err error) {
		if err != nil {
			n.enterError(newError(CodeStorage, err, "compacting the log before %d", to))
		}
	})
	n.log.Debug("log compacted", "first_index", to, "snapshot", index)
}

// loadSnapshot runs on the apply loop: the state machine takes the state
// of the committed snapshot meta (at restart, or installed from the
// leader). It returns the snapshot's index, now applied.
func (f *fsmCaller) loadSnapshot(meta raftpb.SnapshotMeta) uint64 {
	n := f.n
	if f.failed.Load() {
		return 0
	}
	rd, err := n.snaps.Latest()
	if err == nil && rd.Meta().Index > meta.Index {
		// A newer install overtook this one; its own load item follows.
		_ = rd.Close()
		return 0
	}
	if err == nil && (rd.Meta().Index != meta.Index || rd.Meta().Term != meta.Term) {
		err = errors.Join(fmt.Errorf("latest snapshot is %d/%d", rd.Meta().Term, rd.Meta().Index), rd.Close())
	}
	if err != nil {
		f.fail(newError(CodeStorage, err, "opening snapshot %d/%d to load", meta.Term, meta.Index))
		return 0
	}
	defer rd.Close()
	r := &SnapshotReader{fs: n.snaps.FS(), dir: rd.Dir(), info: SnapshotInfo{Index: meta.Index, Term: meta.Term}, files: userFiles(rd.Files())}
	var lerr error
	if f.call("LoadSnapshot", func() { lerr = n.snapper.LoadSnapshot(r) }) != nil {
		return 0
	}
	if lerr != nil {
		f.fail(newError(CodeStateMachine, lerr, "LoadSnapshot %d/%d", meta.Term, meta.Index))
		return 0
	}
	f.lastIndex, f.lastTerm = meta.Index, meta.Term
	f.conf = meta.ConfState.Clone()
	n.confW.set(f.conf, meta.Index)
	n.log.Info("snapshot loaded", "index", meta.Index, "term", meta.Term)
	return meta.Index
}

// snapshotBytes is the size of the files of the snapshot at index, if it
// is the latest (it is, right after its save); 0 otherwise.
func (n *Node) snapshotBytes(index uint64) int64 {
	r, err := n.snaps.Latest()
	if err != nil || r == nil {
		return 0
	}
	defer r.Close()
	if r.Meta().Index != index {
		return 0
	}
	var total int64
	for _, f := range r.Files() {
		total += f.Size
	}
	return total
}

package logmanager

import (
	"errors"
	"fmt"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
	"github.com/raftkit/raftkit/storage/logengine"
)

// LogManager serves one group's log to its core and queues the group's
// appends to the host's log engine.
//
// Concurrency: not safe for concurrent use. Its owner is whichever worker is
// running the group (at most one at a time); the engine and meta storage it
// wraps are safe for concurrent use on their own.
type LogManager struct {
	engine *logengine.Engine
	group  uint64
	log    *logengine.GroupLog
	meta   storage.MetaStorage
	conf   raftpb.ConfState
	cache  tailCache
	// durable is the last index of the log as the completed appends left
	// it; inflight holds the first index of each append queued and not yet
	// durable, oldest first. The commit recorded with a HardState is
	// clamped below both (see safeCommit), so that a restart never finds a
	// commit index beyond its log nor over entries an append in flight is
	// replacing.
	durable  uint64
	inflight []uint64
	stored   raftpb.HardState
	// snap is the group's latest durable snapshot (Index 0: none yet).
	snap raftpb.SnapshotMeta
	// compactedTo is the first index the last Compact kept: the cache may
	// still hold entries before it, which must read as compacted.
	compactedTo uint64
}

// New builds the LogManager of group on engine. conf is the group's
// configuration (until configuration entries exist it comes from the
// group's options). maxCacheBytes bounds the tail cache; 0 disables it.
func New(engine *logengine.Engine, group uint64, meta storage.MetaStorage, conf raftpb.ConfState, maxCacheBytes uint64) (*LogManager, error) {
	hs, err := meta.HardState()
	if err != nil {
		return nil, fmt.Errorf("logmanager: group %d: reading hard state: %w", group, err)
	}
	lm := &LogManager{
		engine: engine, group: group, log: engine.Group(group), meta: meta,
		conf: conf.Clone(), stored: hs,
	}
	lm.cache.maxBytes = maxCacheBytes
	if lm.durable, err = lm.log.LastIndex(); err != nil {
		return nil, fmt.Errorf("logmanager: group %d: reading last index: %w", group, err)
	}
	return lm, nil
}

// InitialState returns the stored HardState and the group's configuration
// at the start of the log: the latest snapshot's, or the bootstrap one when
// there is no snapshot. (Configuration entries in the log after it are the
// core's to replay.) The commit index is at least the snapshot's index:
// what a snapshot covers is committed, though the commit index is stored
// only with term and vote changes.
func (lm *LogManager) InitialState() (raftpb.HardState, raftpb.ConfState, error) {
	hs := lm.stored
	if !hs.IsEmpty() || lm.snap.Index > 0 {
		hs.Commit = max(hs.Commit, lm.snap.Index)
	}
	if lm.snap.Index > 0 {
		return hs, lm.snap.ConfState.Clone(), nil
	}
	return hs, lm.conf.Clone(), nil
}

// FirstIndex is the engine's first index for the group, or where the last
// Compact cut if its truncation is still in flight (a reader must see the
// compaction as soon as it is decided, never the prefix come back).
func (lm *LogManager) FirstIndex() (uint64, error) {
	f, err := lm.log.FirstIndex()
	return max(f, lm.compactedTo), err
}

// LastIndex is the last durable index: the core never asks the storage for
// entries it has not seen become durable.
func (lm *LogManager) LastIndex() (uint64, error) { return lm.log.LastIndex() }

// Term returns the term of entry i, from the cache when it holds i.
func (lm *LogManager) Term(i uint64) (uint64, error) {
	if i+1 < lm.compactedTo {
		return 0, storage.ErrCompacted
	}
	if t, ok := lm.cache.term(i); ok {
		return t, nil
	}
	return lm.log.Term(i)
}

// Entries returns [lo, hi) bounded by maxBytes, from the cache for the part
// it holds and from the engine for the part before it.
func (lm *LogManager) Entries(lo, hi, maxBytes uint64) ([]raftpb.Entry, error) {
	if lo < lm.compactedTo {
		return nil, storage.ErrCompacted
	}
	first := lm.cache.first()
	if first == 0 || lo >= lm.cache.next() || hi <= first {
		return lm.log.Entries(lo, hi, maxBytes)
	}
	if lo >= first {
		return lm.cache.slice(lo, hi, maxBytes), nil
	}
	head, err := lm.log.Entries(lo, first, maxBytes)
	if err != nil || uint64(len(head)) < first-lo {
		return head, err
	}
	var size uint64
	for i := range head {
		size += head[i].Size()
	}
	if size >= maxBytes {
		return head, nil
	}
	tail := lm.cache.slice(first, hi, maxBytes-size)
	// The first cached entry may be larger than what is left of the budget;
	// slice returns it anyway, but only the first entry of a reply may
	// exceed maxBytes.
	if len(tail) > 0 && size+tail[0].Size() > maxBytes {
		return head, nil
	}
	return append(head[:len(head):len(head)], tail...), nil
}

// Snapshot returns the latest durable snapshot recorded with SetSnapshot.
// Before the first one it reports an empty snapshot while the log starts at
// 1, and ErrSnapshotTemporarilyUnavailable otherwise.
func (lm *LogManager) Snapshot() (raftpb.SnapshotMeta, error) {
	if lm.snap.Index > 0 {
		return lm.snap.Clone(), nil
	}
	first, err := lm.log.FirstIndex()
	if err != nil {
		return raftpb.SnapshotMeta{}, err
	}
	if first > 1 {
		return raftpb.SnapshotMeta{}, storage.ErrSnapshotTemporarilyUnavailable
	}
	return raftpb.SnapshotMeta{ConfState: lm.conf.Clone()}, nil
}

// Append puts ents in the tail cache at once (they replace any cached
// entries at or after ents[0].Index) and queues them to the engine; done is
// called from the engine's writer goroutine once they are durable or the
// write failed. Appends become durable in the order they were queued.
func (lm *LogManager) Append(ents []raftpb.Entry, done func(error)) {
	lm.cache.append(ents)
	lm.inflight = append(lm.inflight, ents[0].Index)
	lm.engine.Submit([]logengine.Write{{Group: lm.group, Entries: ents}}, done)
}

// MarkDurable records that the oldest Append in flight, which ended at
// last, is durable. The owner calls it once per successful Append, in the
// order of the Appends.
func (lm *LogManager) MarkDurable(last uint64) {
	lm.durable = last
	if len(lm.inflight) > 0 {
		lm.inflight = append(lm.inflight[:0], lm.inflight[1:]...)
	}
}

// safeCommit is the highest commit index a HardState may record now: within
// the durable log, and below every entry an append in flight replaces (a
// crash could leave the old entries there, which the commit index must not
// cover).
func (lm *LogManager) safeCommit() uint64 {
	c := lm.durable
	for _, first := range lm.inflight {
		c = min(c, first-1)
	}
	return c
}

// SaveHardState makes the term and vote of hs durable before it returns.
// A change of commit alone is not written (the commit index is recovered
// from the leader after a restart); when written, the commit is clamped to
// the durable log.
func (lm *LogManager) SaveHardState(hs raftpb.HardState) error {
	if hs.Term == lm.stored.Term && hs.Vote == lm.stored.Vote {
		return nil
	}
	hs.Commit = min(hs.Commit, lm.safeCommit())
	if hs.Commit < lm.stored.Commit && hs.Term == lm.stored.Term {
		hs.Commit = lm.stored.Commit
	}
	if err := lm.meta.SetHardState(hs); err != nil {
		return fmt.Errorf("logmanager: group %d: %w", lm.group, err)
	}
	lm.stored = hs
	return nil
}

// CacheBytes is the payload held by the tail cache.
func (lm *LogManager) CacheBytes() uint64 { return lm.cache.bytes }

// IsStorageError reports whether err came from storage rather than from the
// protocol (compacted or unavailable ranges are protocol events).
func IsStorageError(err error) bool {
	return err != nil && !errors.Is(err, storage.ErrCompacted) && !errors.Is(err, storage.ErrUnavailable)
}

// SetSnapshot records meta as the group's latest durable snapshot: what
// Snapshot offers to a follower that needs compacted entries.
func (lm *LogManager) SetSnapshot(meta raftpb.SnapshotMeta) {
	if meta.Index > lm.snap.Index {
		lm.snap = meta.Clone()
	}
}

// Compact discards the entries before index, which a durable snapshot
// covers. The truncation is queued to the engine behind the appends in
// flight; done is called from the engine's writer once it is written.
// Entries the tail cache holds below index stay until evicted; the core
// never reads below FirstIndex.
func (lm *LogManager) Compact(index uint64, done func(error)) {
	lm.compactedTo = max(lm.compactedTo, index)
	lm.engine.Submit([]logengine.Write{{Group: lm.group, TruncatePrefix: index}}, done)
}

// ResetToSnapshot replaces the whole log with the snapshot meta (a follower
// installing a leader's snapshot): the log restarts after (Index, Term),
// durably before it returns. The reset is queued behind the appends in
// flight, so they are complete (their done callbacks have run) when it
// returns; the owner must account for them before calling
// AfterResetToSnapshot.
func (lm *LogManager) ResetToSnapshot(meta raftpb.SnapshotMeta) error {
	if err := lm.log.Reset(meta.Index, meta.Term); err != nil {
		return fmt.Errorf("logmanager: group %d: reset to snapshot %d: %w", lm.group, meta.Index, err)
	}
	return nil
}

// AfterResetToSnapshot drops what the reset log no longer holds: the
// cache and the append bookkeeping, and records meta as the snapshot.
func (lm *LogManager) AfterResetToSnapshot(meta raftpb.SnapshotMeta) {
	lm.cache.chunks, lm.cache.bytes = nil, 0
	lm.compactedTo = meta.Index + 1
	lm.durable = meta.Index
	lm.inflight = lm.inflight[:0]
	lm.SetSnapshot(meta)
}

// ReconcileWithSnapshot makes the log agree with the durable snapshot meta
// found at start: a log that ends before meta.Index, or holds a different
// term there, is reset to start after it (the snapshot was installed but
// the crash came before the log was reset). Call it before the core starts.
func (lm *LogManager) ReconcileWithSnapshot(meta raftpb.SnapshotMeta) error {
	lm.SetSnapshot(meta)
	last, err := lm.log.LastIndex()
	if err != nil {
		return err
	}
	first, err := lm.log.FirstIndex()
	if err != nil {
		return err
	}
	if last >= meta.Index && first <= meta.Index+1 {
		if t, err := lm.log.Term(meta.Index); err == nil && t == meta.Term {
			return nil
		}
	}
	if err := lm.ResetToSnapshot(meta); err != nil {
		return err
	}
	lm.AfterResetToSnapshot(meta)
	return nil
}

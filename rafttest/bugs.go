package rafttest

import (
	"time"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// runtimeBug names a deliberate defect of the simulated runtime. Only the
// package's own tests set one (Options.bug), to show that the checker notices
// when durability or the Ready protocol is broken.
type runtimeBug uint8

const (
	bugNone runtimeBug = iota
	// bugSendBeforePersist sends MessagesAfterPersist when the Ready is
	// taken, before its writes are durable.
	bugSendBeforePersist
	// bugForgetHardState wipes the durable HardState (term and vote) on
	// crash.
	bugForgetHardState
	// bugLoseTailOnCrash drops the last durable entry on crash, as a disk
	// that acknowledged an fsync it did not do.
	bugLoseTailOnCrash
	// bugCompactBeforeDurable compacts the log when a snapshot is taken,
	// before it is durable.
	bugCompactBeforeDurable
	// bugInstallStale fetches a MsgSnap the core would not install (at or
	// below its commit index) and loads it into the state machine anyway.
	bugInstallStale
	// bugRestartAppliedZero loads the latest snapshot at restart but starts
	// the core with Applied 0, so committed entries are applied again.
	bugRestartAppliedZero
	// bugWrongSnapshotPayload fetches the state of the sender's oldest
	// snapshot along with the one the MsgSnap names.
	bugWrongSnapshotPayload
	// bugSlowClock makes node 1's clock tick at a third of the rate of the
	// others, breaking the clock assumption of lease reads: its lease
	// outlives the followers' promise not to elect anyone else.
	bugSlowClock
)

// tickInterval is the virtual time until node id's next tick.
func (c *Cluster) tickInterval(id uint64) time.Duration {
	if c.opts.bug == bugSlowClock && id == 1 {
		return 3 * c.opts.TickInterval
	}
	return c.opts.TickInterval
}

// crashBug damages the durable state of node n, just crashed, as the
// configured bug says.
func (c *Cluster) crashBug(n *node) {
	switch c.opts.bug {
	case bugForgetHardState:
		n.hs = raftpb.HardState{}
		n.store.SetHardState(n.hs)
	case bugLoseTailOnCrash:
		last := n.durable.last()
		if last <= n.durable.off {
			return // nothing after the snapshot to lose
		}
		c.checkDurableLoss(n, last-1)
		if c.err != nil {
			return
		}
		n.store.MemoryStorage = cloneWithoutLast(n.store.MemoryStorage)
		n.hs.Commit = min(n.hs.Commit, last-1)
		n.store.SetHardState(n.hs)
		n.durable.truncate(last - 1)
		n.volatile = n.durable.clone()
	}
}

// cloneWithoutLast returns a copy of s without its last entry, which must
// follow its snapshot.
func cloneWithoutLast(s *storage.MemoryStorage) *storage.MemoryStorage {
	hs, cs, _ := s.InitialState()
	snap, _ := s.Snapshot()
	c := storage.NewMemoryStorageWithConf(cs)
	if snap.Index > 0 {
		_ = c.ApplySnapshot(snap)
	}
	c.SetHardState(hs)
	if last, _ := s.LastIndex(); last > snap.Index+1 {
		ents, _ := s.Entries(snap.Index+1, last, ^uint64(0))
		_ = c.Append(ents)
	}
	return c
}

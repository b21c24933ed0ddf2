package rafttest

import (
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
)

// crashBug damages the durable state of node n, just crashed, as the
// configured bug says.
func (c *Cluster) crashBug(n *node) {
	switch c.opts.bug {
	case bugForgetHardState:
		n.hs = raftpb.HardState{}
		n.store.SetHardState(n.hs)
	case bugLoseTailOnCrash:
		last := n.durable.last()
		if last == 0 {
			return
		}
		c.checkDurableLoss(n, last-1)
		if c.err != nil {
			return
		}
		n.store = cloneWithoutLast(n.store)
		n.hs.Commit = min(n.hs.Commit, last-1)
		n.store.SetHardState(n.hs)
		n.durable.ents = n.durable.ents[:last]
		n.volatile = n.durable.clone()
	}
}

// cloneWithoutLast returns a copy of s without its last entry.
func cloneWithoutLast(s *storage.MemoryStorage) *storage.MemoryStorage {
	hs, cs, _ := s.InitialState()
	c := storage.NewMemoryStorageWithConf(cs)
	c.SetHardState(hs)
	if last, _ := s.LastIndex(); last > 1 {
		ents, _ := s.Entries(1, last, ^uint64(0))
		_ = c.Append(ents)
	}
	return c
}

package raftkit

import (
	"github.com/raftkit/raftkit/internal/core/confchange"
	"github.com/raftkit/raftkit/raftpb"
)

// applyConfEntries follows the configuration entries among ents, which the
// state machine has just applied (the Iterator never shows them): the
// configuration snapshots record, what OnConfigurationCommitted reports and
// what membership changes wait for. Apply loop only.
func (f *fsmCaller) applyConfEntries(ents []raftpb.Entry) {
	for i := range ents {
		e := &ents[i]
		if e.Type != raftpb.EntryConfChange {
			continue
		}
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			// The core appended it, so it decoded there; a failure here is
			// a bug or corruption, and the group must not go on guessing.
			f.fail(newError(CodeStorage, err, "decoding the configuration entry at %d", e.Index))
			return
		}
		next, err := confchange.Apply(f.conf, &cc)
		if err != nil {
			// The core refused the same change when it appended the entry
			// and kept its configuration; so does the apply loop.
			f.n.log.Warn("configuration entry does not follow the configuration", "index", e.Index, "err", err)
			continue
		}
		f.conf = next
		f.n.confW.set(f.conf, e.Index)
		conf := f.n.configuration(f.conf)
		f.call("OnConfigurationCommitted", func() { f.sm.OnConfigurationCommitted(conf) })
	}
}

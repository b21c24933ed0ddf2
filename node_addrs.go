package raftkit

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"

	"github.com/raftkit/raftkit/raftpb"
	"github.com/raftkit/raftkit/storage"
)

// snapAddrFile is the file in every snapshot that carries the group's
// address book, so that a member that installs a snapshot can reach
// members whose configuration entries the snapshot compacted away. Names
// starting with "__" are raftkit's (see checkSnapshotFileName).
const snapAddrFile = "__peers"

// addr returns the raft address of member id, or "" if none is known.
//
// Concurrency: safe for concurrent use; the map is copy-on-write.
func (n *Node) addr(id uint64) string {
	if m := n.addrs.Load(); m != nil {
		return (*m)[id]
	}
	return ""
}

// PeerAddr returns the raft address this member knows for member id (from
// the configuration entries, snapshots and options it has seen), or "" if
// it knows none.
//
// Concurrency: safe for concurrent use.
func (n *Node) PeerAddr(id uint64) string { return n.addr(id) }

// addrsCopy returns a copy of the address book.
func (n *Node) addrsCopy() map[uint64]string {
	if m := n.addrs.Load(); m != nil {
		return maps.Clone(*m)
	}
	return map[uint64]string{}
}

// learnAddrs adds or replaces addresses (from configuration entries or
// installed snapshots) and stores the book durably when it changed. A
// failure to store puts the group into the error state: a restart would
// otherwise come back unable to reach members it had learned of.
//
// Concurrency: safe for concurrent use; writers are serialised.
func (n *Node) learnAddrs(add map[uint64]string) {
	if err := n.mergeAddrs(add); err != nil {
		n.enterError(newError(CodeStorage, err, "storing the address book"))
	}
}

func (n *Node) mergeAddrs(add map[uint64]string) error {
	n.addrMu.Lock()
	defer n.addrMu.Unlock()
	cur := n.addrsCopy()
	changed := false
	for id, a := range add {
		if id != 0 && a != "" && cur[id] != a {
			cur[id], changed = a, true
		}
	}
	if !changed {
		return nil
	}
	if _, err := n.book.Merge(add); err != nil {
		return err
	}
	n.addrs.Store(&cur)
	return nil
}

// openAddrs loads the group's address book: what was learned before. The
// caller then merges the latest snapshot's book and, last, the options'
// peers with mergeOptionAddrs, so that the operator's word at start wins
// for the IDs it names.
func (n *Node) openAddrs(groupDir string) error {
	book, err := storage.OpenAddressBook(n.host.opts.FS, groupDir)
	if err != nil {
		return &Error{Code: CodeStorage, Msg: "opening the address book", Err: err}
	}
	known := book.Addresses()
	n.addrs.Store(&known)
	n.book = book
	return nil
}

func (n *Node) mergeOptionAddrs() error {
	opts := map[uint64]string{}
	for _, p := range append(append([]Peer(nil), n.opts.Peers...), n.opts.Learners...) {
		opts[p.ID] = p.Addr
	}
	if err := n.mergeAddrs(opts); err != nil {
		return &Error{Code: CodeStorage, Msg: "storing the address book", Err: err}
	}
	return nil
}

// learnSnapshotAddrs merges the address book a snapshot in dir carries.
// Snapshots written before the book existed carry none.
func (n *Node) learnSnapshotAddrs(dir string) error {
	addrs, err := storage.ReadAddresses(n.snaps.FS(), path.Join(dir, snapAddrFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("reading the snapshot's address book: %w", err)
	}
	return n.mergeAddrs(addrs)
}

// learnEntryAddrs learns the addresses that configuration entries among
// ents carry; raft worker only. An entry that does not decode is left to
// the core, which refuses to apply it.
func (n *Node) learnEntryAddrs(ents []raftpb.Entry) {
	for i := range ents {
		if ents[i].Type != raftpb.EntryConfChange {
			continue
		}
		var cc raftpb.ConfChange
		if cc.Unmarshal(ents[i].Data) != nil || len(cc.Addrs) == 0 {
			continue
		}
		add := make(map[uint64]string, len(cc.Addrs))
		for _, a := range cc.Addrs {
			add[a.ID] = a.Addr
		}
		n.learnAddrs(add)
	}
}

package core

import "github.com/raftkit/raftkit/raftpb"

// Ready is one batch of work the core hands to the runtime. The runtime takes
// Readys with Raft.Ready and must process them in the order taken:
//
//  1. Send Messages at once: they depend on nothing that is not yet durable
//     (a leader's AppendEntries and heartbeats, pre-votes). This is what lets a
//     leader replicate entries before its own disk write finishes.
//  2. Persist, in this order, Snapshot (if any), Entries (an append that first
//     truncates the durable log at Entries[0].Index) and HardState (if
//     non-empty). Several Readys may be persisting at once, but their writes
//     must become durable in the order the Readys were taken.
//  3. Once all of that is durable, send MessagesAfterPersist (votes, vote
//     requests, acknowledgements of appended entries, anything sent under a
//     term not yet durable) and call Raft.Advance(rd).
//
// CommittedEntries may be applied at any time after the Ready is taken: the
// core hands out only entries that are already durable locally. The runtime
// reports progress of the state machine with Raft.AppliedTo.
type Ready struct {
	// SoftState is non-nil when the role or known leader changed since the
	// previous Ready.
	SoftState *SoftState

	// HardState must be persisted when non-empty.
	HardState raftpb.HardState

	// Snapshot, when non-nil, replaces the durable log: the runtime installs
	// it before appending Entries and loads it into the state machine.
	Snapshot *raftpb.SnapshotMeta

	// Entries are appended to the durable log, replacing any entries at or
	// after Entries[0].Index.
	Entries []raftpb.Entry

	// CommittedEntries are ready to apply, in index order.
	CommittedEntries []raftpb.Entry

	// Messages may be sent immediately.
	Messages []raftpb.Message
	// MessagesAfterPersist may be sent only after this Ready's Snapshot,
	// Entries and HardState (and those of every earlier Ready) are durable.
	MessagesAfterPersist []raftpb.Message

	// ConfState, when non-nil, is the configuration now in effect here (a
	// copy): it changed since the previous Ready, because a configuration
	// entry was appended or truncated away, a snapshot was restored or
	// ResetConf was called. It takes effect with this Ready; the runtime may
	// update its view of the members (whom to connect to) from it.
	ConfState *raftpb.ConfState

	// ReadStates are reads (see Raft.ReadIndex) whose read index is known:
	// the runtime serves each once its state machine has applied up to
	// ReadState.Index. They depend on nothing this Ready persists.
	ReadStates []ReadState

	// logEpoch is the unstable log's rewrite epoch when the Ready was taken.
	logEpoch uint64
}

// MustPersist reports whether the Ready carries anything for storage.
func (rd *Ready) MustPersist() bool {
	return !rd.HardState.IsEmpty() || rd.Snapshot != nil || len(rd.Entries) > 0
}

// SoftState is the volatile part of a node's state: who leads and which role
// this node plays. It is never persisted.
type SoftState struct {
	Lead uint64
	Role Role
}

package core

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/raftkit/raftkit/raftpb"
)

// Seed encoding helpers, in fuzzDecoder's format.

// fzRel encodes base+delta for delta in [-3, 4].
func fzRel(delta int) byte { return byte(delta + 3) }

// fzAbs encodes the absolute value v < 64.
func fzAbs(v uint64) byte { return 0x80 + byte(v) }

// fzBig encodes an arbitrary value as a uvarint.
func fzBig(v uint64) []byte { return binary.AppendUvarint([]byte{0xC0}, v) }

// fzMax encodes MaxUint64-k for k < 16.
func fzMax(k uint64) byte { return 0xF0 + byte(k) }

// fzFrom encodes sender from (another member of 1..3) for target.
func fzFrom(target, from uint64) byte {
	for fb := range byte(2) {
		if 1+(target+uint64(fb))%3 == from {
			return fb
		}
	}
	panic("fzFrom: not another member")
}

// fzStepOp is the op byte stepping a message into node.
func fzStepOp(node uint64) byte { return byte(node-1) << 3 }

// Operation bytes for the other kinds (node 1..3).
func fzTickOp(node uint64, n int) []byte { return []byte{byte(node-1)<<3 | 4, byte(n - 1)} }
func fzReadyAdvanceOp(node uint64) byte  { return byte(node-1)<<3 | 5 }
func fzReadyHoldOp(node uint64) byte     { return 2<<5 | byte(node-1)<<3 | 5 }
func fzAdvanceOp(node uint64) byte       { return 3<<5 | byte(node-1)<<3 | 5 }

const fzDeliverOp = 6

// fzCompactOp compacts node's storage up to what it applied.
func fzCompactOp(node uint64) byte { return 3<<6 | byte(node-1)<<3 | 6 }

// fzTransferOp asks node to transfer leadership to peer.
func fzTransferOp(node, peer uint64) []byte { return []byte{byte(node-1)<<6 | 4<<3 | 7, byte(peer)} }

// fzProposeOp proposes n (1..3) entries at node.
func fzProposeOp(node uint64, n int) byte { return byte(node-1)<<6 | byte(n-1)<<3 | 7 }

// Message flag bits.
const (
	fzReject    = 1 << 0
	fzTransfer  = 1 << 1
	fzSnapFlip  = 1 << 2
	fzAnyTo     = 1 << 3
	fzArbIdx    = 1 << 6
	fzEntShift  = 4
	fzInvalidTy = 0xF0
)

// fzCat concatenates bytes and byte slices.
func fzCat(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch v := p.(type) {
		case byte:
			out = append(out, v)
		case []byte:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("fzCat: %T", p))
		}
	}
	return out
}

// fzSettle lets the network run a few rounds.
var fzSettle = fzCat(
	fzReadyAdvanceOp(1), fzReadyAdvanceOp(2), fzReadyAdvanceOp(3), byte(fzDeliverOp),
	fzReadyAdvanceOp(1), fzReadyAdvanceOp(2), fzReadyAdvanceOp(3), byte(fzDeliverOp),
	fzReadyAdvanceOp(1), fzReadyAdvanceOp(2), fzReadyAdvanceOp(3), byte(fzDeliverOp),
)

// fuzzSeeds returns the initial corpus: meaningful messages of each kind,
// and the minimized scripts of what the fuzzer found. In the setup every node
// is in term 1 with entries 1..4 committed, and node 1 leads.
func fuzzSeeds() [][]byte {
	msg := func(node uint64, t raftpb.MessageType, flags byte, from uint64, nums ...any) []byte {
		return fzCat(append([]any{fzStepOp(node), byte(t), flags, fzFrom(node, from)}, nums...)...)
	}
	// Numbers in order: Term, Index, LogTerm, Commit, RejectHint.
	same := fzRel(0)
	ent := func(term byte) []byte { return []byte{term, byte(raftpb.EntryNormal), 1, 'x'} }
	return [][]byte{
		{},
		// A valid append of one new entry at follower 2, persisted, acked.
		fzCat(msg(2, raftpb.MsgApp, 1<<fzEntShift, 1, same, same, same, fzRel(1), same, ent(same)), fzSettle),
		// The leader's own proposals, replicated normally.
		fzCat(fzProposeOp(1, 3), fzReadyHoldOp(1), byte(fzDeliverOp), fzSettle, fzReadyAdvanceOp(1), fzSettle),
		// An append below the commit index.
		msg(3, raftpb.MsgApp, 2<<fzEntShift, 1, same, fzRel(-3), fzRel(-1), same, same, ent(same), ent(same)),
		// An append overwriting the tail with entries of a higher term, while
		// a Ready of the follower is held.
		fzCat(msg(2, raftpb.MsgApp, 1<<fzEntShift, 1, same, same, same, same, same, ent(fzRel(1))), fzReadyHoldOp(2),
			msg(2, raftpb.MsgApp, 2<<fzEntShift, 1, fzRel(1), fzRel(0), same, same, same, ent(fzRel(0)), ent(fzRel(0))),
			fzReadyAdvanceOp(2), fzSettle),
		// A snapshot past the follower's log, in a higher term.
		fzCat(msg(2, raftpb.MsgSnap, 0, 1, fzRel(1), same, same, same, same, fzRel(4), fzRel(1), byte(0)), fzSettle),
		// A snapshot at the very end of the index space.
		fzCat(msg(3, raftpb.MsgSnap, 0, 1, same, same, same, same, same, fzMax(0), fzRel(0), byte(0)), fzSettle),
		// A snapshot that removes the follower from the configuration.
		fzCat(msg(2, raftpb.MsgSnap, 0, 1, same, same, same, same, same, fzRel(2), fzRel(0), byte(3)), fzTickOp(2, 16), fzSettle),
		// A vote request with a much higher term, flagged as a transfer, at the leader.
		fzCat(msg(1, raftpb.MsgVote, fzTransfer, 3, fzBig(1000), fzRel(4), fzRel(4), same, same), fzSettle),
		// A pre-vote with a high term at a follower whose lease expired.
		fzCat(fzTickOp(2, 16), msg(2, raftpb.MsgPreVote, 0, 3, fzAbs(40), fzRel(2), fzRel(2), same, same), fzSettle),
		// An acknowledgement beyond the leader's log.
		fzCat(msg(1, raftpb.MsgAppResp, 0, 2, same, fzRel(1), same, same, same), fzSettle),
		// A rejection with a conflict hint beyond the leader's log.
		fzCat(msg(1, raftpb.MsgAppResp, fzReject, 3, same, fzRel(4), fzAbs(0), same, fzBig(1<<40)), fzSettle),
		// A heartbeat with a commit index far beyond the follower's log.
		fzCat(msg(3, raftpb.MsgHeartbeat, 0, 1, same, same, same, fzMax(0), same), fzSettle),
		// A message type beyond the table, and a message to someone else.
		fzCat(msg(1, fzInvalidTy, 0, 2, same, same, same, same, same),
			msg(1, raftpb.MsgHeartbeatResp, fzAnyTo, 2, fzAbs(9), same, same, same, same, same)),
		// A leadership transfer to 3 while 3 is behind, with a forged
		// acknowledgement from 3 and a stale pre-vote from it.
		fzCat(fzProposeOp(1, 2), fzReadyAdvanceOp(1), fzTransferOp(1, 3),
			msg(1, raftpb.MsgAppResp, 0, 3, same, same, same, same, same),
			msg(1, raftpb.MsgPreVote, 0, 3, fzRel(1), fzRel(-2), same, same, same), fzSettle, fzTickOp(3, 16), fzSettle),
		// The leader compacts its log while follower 3 is cut off, so 3 is
		// sent a snapshot; its delivery is reported failed, then succeeds.
		fzCat(fzProposeOp(1, 3), fzReadyAdvanceOp(1), fzReadyAdvanceOp(2), byte(fzDeliverOp),
			fzReadyAdvanceOp(2), byte(fzDeliverOp), fzReadyAdvanceOp(1), fzCompactOp(1),
			msg(1, raftpb.MsgAppResp, fzReject, 3, same, fzRel(0), fzAbs(0), same, fzAbs(5)),
			fzReadyAdvanceOp(1), []byte{0<<6 | 7<<3 | 7, 3}, fzTickOp(1, 2), byte(fzDeliverOp), fzSettle,
			[]byte{0<<6 | 7<<3 | 7, 0x80 | 3}, fzSettle),
		// Leadership handed to follower 2 out of the blue, then time passes.
		fzCat(msg(2, raftpb.MsgTimeoutNow, 0, 1, same, same, same, same, same), fzSettle, fzTickOp(1, 16), fzSettle),
		// A snapshot just below the end of the index space, then an append
		// whose entries run past it.
		fzCat(msg(3, raftpb.MsgSnap, 0, 1, same, same, same, same, same, fzMax(1), fzRel(0), byte(0)), fzReadyAdvanceOp(3),
			msg(3, raftpb.MsgApp, 2<<fzEntShift, 1, same, same, same, same, same, ent(same), ent(same)), fzSettle),
		// A term at the end of the term space, then an election.
		fzCat(msg(2, raftpb.MsgVote, fzTransfer, 3, fzMax(0), fzRel(4), fzRel(4), same, same), fzReadyAdvanceOp(2),
			fzTickOp(2, 16), fzTickOp(2, 16), msg(2, raftpb.MsgPreVoteResp, 0, 3, same, same, same, same, same), fzSettle),
		// A snapshot that makes follower 2 the only voter, then its election.
		// The leader holds entries 5..7 unacknowledged, so the follower's
		// answer (index 6) stays within the leader's log.
		fzCat(fzProposeOp(1, 3), fzReadyHoldOp(1),
			msg(2, raftpb.MsgSnap, 0, 1, same, same, same, same, same, fzRel(2), fzRel(0), byte(6)), fzSettle,
			fzTickOp(2, 16), fzTickOp(2, 16), fzSettle, fzProposeOp(2, 2), fzSettle),
		// Follower 2 persists 5..7 of term 1 but holds the Advance; a term 2
		// leader overwrites 5, which is persisted too (truncating 6 and 7 in
		// storage); a term 3 leader writes 5..7 of term 1 again; then the
		// held Readys are advanced.
		fzCat(msg(2, raftpb.MsgApp, 3<<fzEntShift, 1, same, same, same, same, same, ent(same), ent(same), ent(same)),
			fzReadyHoldOp(2),
			msg(2, raftpb.MsgApp, 1<<fzEntShift, 3, fzRel(1), fzRel(-3), same, same, same, ent(same)),
			fzReadyHoldOp(2),
			msg(2, raftpb.MsgApp, 3<<fzEntShift, 1, fzRel(1), fzRel(-1), fzRel(-1), same, same,
				ent(fzRel(-2)), ent(fzRel(-2)), ent(fzRel(-2))),
			fzAdvanceOp(2), fzSettle),
		// Follower 2 installs a snapshot and wins an election before the
		// snapshot is persisted; then a follower's rejection sends it back
		// below the snapshot.
		fzCat(msg(2, raftpb.MsgSnap, 0, 1, same, same, same, same, same, fzRel(2), fzRel(0), byte(0)),
			fzTickOp(2, 16), fzTickOp(2, 16),
			msg(2, raftpb.MsgPreVoteResp, 0, 3, fzRel(1), same, same, same, same),
			msg(2, raftpb.MsgVoteResp, 0, 3, same, same, same, same, same),
			msg(2, raftpb.MsgAppResp, fzReject, 1, same, fzRel(-1), fzAbs(0), same, fzRel(-2)),
			fzSettle),
		// A heartbeat response from a non-member.
		fzCat(fzStepOp(1), byte(raftpb.MsgHeartbeatResp), byte(0), byte(0xE5), same, same, same, same, same, fzSettle),
	}
}

// Regression tests for what FuzzStep found, minimized. Each runs a script
// from the fuzz setup (voters 1..3, node 1 leads in term 1, entries 1..4 of
// term 1 committed and applied everywhere, every follower in Replicate with
// Match 4) and expects no panic and no broken invariant. Each names the
// defect it once reproduced; the comments describe the behaviour before the
// fix (Step's range and leader-response validation, sendSnapshot's guards,
// and the unstable log's rewrite epoch).

func fzStepInto(node uint64, m raftpb.Message) fuzzOp {
	return fuzzOp{kind: fzStep, node: node, msg: m}
}

var fzConf123 = raftpb.ConfState{Voters: []uint64{1, 2, 3}}

// Crash 1: a MsgAppResp acknowledging an index beyond the leader's last
// index. The leader sets Match/Next past its log, sendOneAppend fails to read
// the term at Next-1 (ErrUnavailable), falls back to sendSnapshot, which
// panics "core: entries compacted but storage has no snapshot"
// (leader.go sendSnapshot <- sendOneAppend <- sendAppend <-
// handleAppendResponse). With a compacted storage it would instead stream a
// snapshot to a peer that claims to be ahead of the leader.
func TestFuzzCrashAckBeyondLastIndex(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []fuzzOp
	}{
		{"forged ack", []fuzzOp{
			fzStepInto(1, raftpb.Message{Type: raftpb.MsgAppResp, From: 2, To: 1, Term: 1, Index: 5}),
		}},
		// A forged MsgApp in the leader's name makes an honest follower
		// append entry 5 and acknowledge it; its answer crashes the leader.
		{"follower fed a forged append", []fuzzOp{
			fzStepInto(2, raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Term: 1, Index: 4, LogTerm: 1, Commit: 4,
				Entries: []raftpb.Entry{{Index: 5, Term: 1}}}),
			{kind: fzReady, node: 2}, {kind: fzAdvance, node: 2},
			{kind: fzDeliver},
		}},
		// Same through a snapshot: follower 2 installs a snapshot at 6 and
		// acknowledges index 6.
		{"follower fed a forged snapshot", []fuzzOp{
			fzStepInto(2, raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 2, Term: 1,
				Snapshot: &raftpb.SnapshotMeta{Index: 6, Term: 1, ConfState: fzConf123}}),
			{kind: fzReady, node: 2}, {kind: fzAdvance, node: 2},
			{kind: fzDeliver},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runFuzzScript(t, tc.ops) })
	}
}

// Crash 2: a MsgAppResp rejection at an index beyond the leader's last
// index (a probe it never sent). In StateReplicate any rejected index above
// Match is acted on: MaybeDecrTo sets Next = min(Index, RejectHint) = 6 past
// the log, and the same sendSnapshot panic follows ("core: entries compacted
// but storage has no snapshot", via handleAppendResponse's reject branch).
func TestFuzzCrashRejectBeyondLastIndex(t *testing.T) {
	runFuzzScript(t, []fuzzOp{
		fzStepInto(1, raftpb.Message{Type: raftpb.MsgAppResp, From: 3, To: 1, Term: 1, Index: 6, Reject: true, RejectHint: 6}),
	})
}

// Crash 3: log indexes that wrap around at MaxUint64.
func TestFuzzCrashIndexOverflow(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []fuzzOp
	}{
		// A snapshot at index MaxUint64: unstable.restore sets offset =
		// Index+1 = 0, so while the snapshot is pending every read of the
		// last term indexes entries[MaxUint64-0] and panics "index out of
		// range [18446744073709551615] with length 0" (unstable.maybeTerm <-
		// raftLog.term <- lastTerm <- isUpToDate <- handleVoteRequest; a tick
		// that starts an election panics the same way in requestVotes).
		{"snapshot at MaxUint64", []fuzzOp{
			fzStepInto(3, raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 3, Term: 1,
				Snapshot: &raftpb.SnapshotMeta{Index: math.MaxUint64, Term: 1, ConfState: fzConf123}}),
			fzStepInto(3, raftpb.Message{Type: raftpb.MsgVote, From: 2, To: 3, Term: 2, Index: 100, LogTerm: 5, Transfer: true}),
		}},
		// A snapshot at MaxUint64-1, then an append of entries
		// MaxUint64 and 0 (validate accepts them: the expected index wraps
		// the same way). lastIndex() becomes 0 below committed
		// (MaxUint64-1) and MemoryStorage.Append silently drops the
		// "entirely compacted" batch. The script fails there on the log
		// invariant; without the check, the vote request that follows (or
		// any election) panics "core: storage failed: storage: requested
		// index is compacted" (mustStorage <- lastTerm <- isUpToDate).
		{"append across MaxUint64", []fuzzOp{
			fzStepInto(3, raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 3, Term: 1,
				Snapshot: &raftpb.SnapshotMeta{Index: math.MaxUint64 - 1, Term: 1, ConfState: fzConf123}}),
			{kind: fzReady, node: 3}, {kind: fzAdvance, node: 3},
			fzStepInto(3, raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 3, Term: 1, Index: math.MaxUint64 - 1, LogTerm: 1,
				Entries: []raftpb.Entry{{Index: math.MaxUint64, Term: 1}, {Index: 0, Term: 1}}}),
			{kind: fzReady, node: 3}, {kind: fzAdvance, node: 3},
			fzStepInto(3, raftpb.Message{Type: raftpb.MsgVote, From: 2, To: 3, Term: 2, Index: 100, LogTerm: 5, Transfer: true}),
		}},
		// No wrapping message needed: a snapshot at MaxUint64-1 that makes
		// node 3 the only voter; it elects itself and appends its empty
		// entry at MaxUint64, so offset+len(entries) wraps to 0 (the
		// unstable invariant); after persisting, lastTerm panics "core:
		// storage failed: storage: requested index is compacted".
		{"leader appends at MaxUint64", []fuzzOp{
			fzStepInto(3, raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 3, Term: 1,
				Snapshot: &raftpb.SnapshotMeta{Index: math.MaxUint64 - 1, Term: 1, ConfState: raftpb.ConfState{Voters: []uint64{3}}}}),
			{kind: fzTick, node: 3, n: 30},
			{kind: fzReady, node: 3}, {kind: fzAdvance, node: 3},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runFuzzScript(t, tc.ops) })
	}
}

// Crash 4: a leader elected while a snapshot it installed is still unstable
// (not yet persisted) must send a follower entries below that snapshot;
// sendSnapshot reads storage.Snapshot(), which does not have it yet, and
// panics "core: entries compacted but storage has no snapshot" (sendSnapshot
// <- sendOneAppend <- sendAppend <- handleAppendResponse). With an older
// snapshot in storage it would send that stale snapshot instead.
func TestFuzzCrashLeaderWithUnstableSnapshot(t *testing.T) {
	runFuzzScript(t, []fuzzOp{
		fzStepInto(2, raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 2, Term: 1,
			Snapshot: &raftpb.SnapshotMeta{Index: 6, Term: 1, ConfState: fzConf123}}),
		fzStepInto(2, raftpb.Message{Type: raftpb.MsgTimeoutNow, From: 1, To: 2, Term: 1}),
		fzStepInto(2, raftpb.Message{Type: raftpb.MsgVoteResp, From: 3, To: 2, Term: 2}),
		// Node 1's log ends at 4: it rejects the probe at 6.
		fzStepInto(2, raftpb.Message{Type: raftpb.MsgAppResp, From: 1, To: 2, Term: 2, Index: 6, Reject: true, RejectHint: 5}),
	})
}

// Finding 5 (a broken invariant, no panic): a message with Term MaxUint64 is adopted, and the
// next election increments the term to 0. Here MsgTimeoutNow at that term
// moves node 2 to term MaxUint64 and straight into a candidacy in term 0:
// the term goes backwards (a second vote in terms already voted in becomes
// possible), every message it sends carries Term 0 and is rejected by its
// peers as invalid.
func TestFuzzInvariantTermOverflow(t *testing.T) {
	runFuzzScript(t, []fuzzOp{
		fzStepInto(2, raftpb.Message{Type: raftpb.MsgTimeoutNow, From: 1, To: 2, Term: math.MaxUint64}),
	})
}

// Finding 6 (a broken invariant, no panic): unstable.stableTo trusts (index, term) alone. A
// follower persists 5..7 of term 1 (Ready held back), a term 2 leader
// overwrites 5 and that is persisted too (storage now ends at 5 of term 2),
// a term 3 leader sends 5..7 of term 1 again; advancing the first Ready then
// finds entry 7 of term 1 and marks 5..7 durable although storage holds only
// 1..5 with 5 of term 2. unstable.offset becomes 8 past storage, those
// entries are never handed to the runtime, and the MsgAppResp for index 7 is
// sent with the next Ready: an acknowledgement of entries that are not on
// disk. Plausible with honest peers in a five-node group (two leader changes
// while a follower's write is in flight).
func TestFuzzInvariantStableToAfterRewrite(t *testing.T) {
	ent := func(i, term uint64) raftpb.Entry { return raftpb.Entry{Index: i, Term: term, Data: []byte("x")} }
	runFuzzScript(t, []fuzzOp{
		fzStepInto(2, raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Term: 1, Index: 4, LogTerm: 1, Commit: 4,
			Entries: []raftpb.Entry{ent(5, 1), ent(6, 1), ent(7, 1)}}),
		{kind: fzReady, node: 2},
		fzStepInto(2, raftpb.Message{Type: raftpb.MsgApp, From: 3, To: 2, Term: 2, Index: 4, LogTerm: 1, Commit: 4,
			Entries: []raftpb.Entry{ent(5, 2)}}),
		{kind: fzReady, node: 2},
		fzStepInto(2, raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Term: 3, Index: 4, LogTerm: 1, Commit: 4,
			Entries: []raftpb.Entry{ent(5, 1), ent(6, 1), ent(7, 1)}}),
		{kind: fzAdvance, node: 2},
	})
}

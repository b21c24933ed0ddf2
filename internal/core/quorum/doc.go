// Package quorum holds the pure arithmetic of Raft quorums: given which
// voters acknowledged which log index, or which voters granted or rejected a
// vote, it answers "what is committed?" and "who won the election?".
//
// Two configuration shapes are supported:
//
//   - MajorityConfig, a plain set of voters. A decision needs strictly more
//     than half of them.
//   - JointConfig, the pair of majority configurations used while a
//     membership change is in flight (Raft §6, "joint consensus"). A decision
//     needs a majority of the incoming AND a majority of the outgoing
//     configuration, so that no two leaders can be elected and no entry can
//     be committed by either side alone during the transition.
//
// Empty configurations follow a deliberate convention: an empty
// MajorityConfig "agrees" with everything (it reports math.MaxUint64 as its
// committed index and VoteWon as its vote result). This is what lets a
// JointConfig whose outgoing half is empty behave exactly like its incoming
// half, by taking the minimum index and the conjunction of the results.
// Callers that hold a fully empty configuration must handle that case
// themselves; it never occurs in a live Raft group.
//
// The package performs no IO, starts no goroutines and has no mutable
// package-level state. Everything here is a function of its arguments, which
// makes it easy to test exhaustively. MajorityConfig.CommittedIndex runs on
// the leader's hot path on every acknowledgement and therefore does not
// allocate for configurations of up to seven voters.
package quorum

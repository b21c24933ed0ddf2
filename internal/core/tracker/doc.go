// Package tracker is the leader's bookkeeping about its peers: the
// per-follower replication progress (Probe, Replicate and Snapshot states),
// the Inflights window that bounds the AppendEntries pipelined to each
// follower in Replicate state, and the tracker of the current configuration
// (voters, learners, joint state) together with the votes collected in an
// election. The quorum arithmetic itself lives in package quorum.
//
// Everything here is plain state driven by the Raft core's single goroutine;
// the package never does IO and never blocks.
package tracker

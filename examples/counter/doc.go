// Package counter is the Counter example of raftkit, after SOFAJRaft's: a
// replicated int64 that clients increment by a delta and read. It is the
// smallest complete raftkit application: a StateMachine, a server that
// hosts it and serves requests on the raft port, and a client that finds
// the leader through a route table.
//
// Both operations go through the raft log: IncrementAndGet(delta) is a
// command, and Get is a linearizable read served by logging a read command
// (until raftkit has ReadIndex). The package owns the counter's commands,
// state machine, server and client; it never touches raft internals.
package counter

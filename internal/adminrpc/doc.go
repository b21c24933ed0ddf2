// Package adminrpc is the admin protocol of raftkit, shared by the server
// (a NodeHost serves it on the raft port under Service) and by package cli
// and the raftctl command: membership changes, leadership transfer,
// snapshots, the unsafe reset of a configuration, and membership queries.
//
// # Wire format
//
// One Request and one Response per call, as JSON: admin traffic is rare
// and small, and JSON keeps it readable in a packet capture. Decoding is
// strict, since a server must never act on a request it half understood:
// unknown fields, trailing data, unknown operations, arguments an
// operation does not take, node ID 0, missing or malformed addresses,
// duplicate IDs or addresses, more than MaxPeers members and messages over
// MaxMessageBytes are all refused with errors matching ErrBadRequest (or
// ErrBadResponse), which reach remote callers with raftkit's
// invalid-argument code. EncodeRequest runs the same checks, so a client
// learns of a bad request before sending it.
//
// Failures of the operation itself are not responses: they travel as
// transport errors, keeping raftkit's codes and leader hints (a client's
// route table follows a not-leader hint to the leader).
//
// # What it owns and never does
//
// It owns the message types, their validation, and the dispatch of a
// decoded request to an Admin (NewHandler). It never decides anything
// about membership: the Admin (a raftkit.Node) does, and its errors pass
// through unchanged. It does not import package raftkit, which imports it;
// the few wire codes it needs are repeated here.
package adminrpc

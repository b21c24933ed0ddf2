// Package transport defines how raft messages and application requests
// travel between the hosts of a raftkit cluster: the Transport a NodeHost
// sends through, the Handler it receives with, and application services on
// the raft port. Implementations live in subpackages: tcp (the production
// transport: framed, checksummed, batched, optionally mutual TLS) and memnet
// (in-process, for tests).
//
// This package owns the interfaces and their contracts only. It never
// interprets raft messages (the core does) nor resolves groups (the NodeHost
// does).
package transport

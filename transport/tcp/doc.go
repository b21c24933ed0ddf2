// Package tcp is raftkit's production transport: raft messages and
// application requests between hosts over TCP, optionally mutual TLS, in the
// checksummed frames of package frame.
//
// # Connections
//
// A Transport listens on one port and dials one outbound connection per peer
// address, lazily on the first Send, which carries the messages of every
// raft group for that peer. Connections are one-way for raft traffic: a host
// sends on the connection it dialed and receives on the ones it accepted, so
// a pair of hosts uses two connections. Every connection opens with a Hello
// frame naming the dialer's listen address; an accepted connection that
// sends anything else first, or nothing within HandshakeTimeout, is dropped.
//
// # Goroutines
//
// The thread map of a Transport:
//
//   - one accept loop;
//   - per accepted connection, one reader that decodes frames and calls
//     Handler.HandleRaft in arrival order, one writer for service responses
//     (started by the first request), and one goroutine per request running
//     its ServiceHandler;
//   - per peer address, one writer that dials, then repeatedly takes
//     everything Send queued and writes it with one Write call: the batch.
//
// A Client has, per address, one reader that matches responses to calls by
// sequence number and one writer that batches requests like a peer writer.
// Every goroutine is tracked: Close returns only once all have exited, which
// requires ServiceHandlers to return when their context is done.
//
// # Failures
//
// A failed dial or write drops the peer's queue and puts the peer in
// backoff: Send returns false until it expires, and the next Send after it
// redials. An inbound peer that sends a corrupt or oversized frame, no
// Hello, or a message its HandleRaft rejects is disconnected and logged at
// Warn with the reason; Stats counts each reason. Nothing a peer sends can
// make the process panic.
//
// The package owns connection management, batching, backoff, the handshake
// and service dispatch. It never interprets raft messages, never retries a
// dropped message (raft does), and holds no package-level mutable state:
// logger, random source and dialer come in through Options.
package tcp

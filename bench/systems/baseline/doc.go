// Package baseline is the bare limit of replicated durable writes on this
// machine: three replicas that do only the work no replicated log can avoid
// (copy each payload once, send it to both followers, write it and
// fdatasync it on a majority) with no Raft logic at all. The harness runs it
// beside the Raft implementations to show how close each comes to it.
//
// # The protocol
//
// Replica 0 is the leader, for good; IsLeader is id == 0, and Propose on
// replicas 1 and 2 returns systems.ErrNotLeader. Groups > 1 is
// systems.ErrUnsupported.
//
//   - Propose copies its payload, as a record [len u32][payload], into the
//     open batch under a mutex, wakes the batcher if it is not already
//     woken, and waits for the batch to complete or its context to end.
//   - One batcher goroutine, once woken, yields once so that proposers
//     already runnable can append, then takes every queued batch, seals it
//     (assigns seq 1, 2, ...), and dispatches it at once to the leader's
//     disk goroutine and to each follower's writer goroutine. It never
//     waits for earlier batches: batches are pipelined. A batch holds at
//     most 1 MiB (or one record, if MaxPayload is larger).
//   - The leader's disk goroutine takes every batch queued since its last
//     round and makes them durable with one write and one fdatasync, in
//     seq order, concurrently with replication.
//   - Each follower writer (one TCP connection per follower, over
//     loopback) takes every batch queued, writes them as frames
//     [batch seq u64][len u32][batch bytes] into a bufio.Writer and flushes
//     once. It dials until the follower listens (replicas start in any
//     order); batches queue meanwhile, so the follower gets the log from
//     seq 1.
//   - A follower reads frames in order (a gap drops the connection); its
//     disk goroutine takes every frame received since its last round, does
//     one write and one fdatasync, and writes back the highest durable seq
//     as an 8-byte ack on the same connection.
//   - A batch completes when the leader's fdatasync of it is done and one
//     follower acknowledged it (a majority of three); all its Proposes then
//     return nil. Integers are little-endian.
//
// # What it owns
//
// One file, baseline.log, in each replica's directory, created (truncated)
// at StartNode; the follower's listener on cfg.Addrs[id] (the leader
// listens nowhere and only dials cfg.Addrs[1] and cfg.Addrs[2]); and its
// goroutines: on the leader the batcher, the disk goroutine, and per
// follower a writer and an ack reader; on a follower the accept-and-read
// goroutine and, per connection, a disk goroutine. Close stops all of them
// and closes the files, listeners and connections.
//
// The log file holds the batches' bytes back to back (records
// [len u32][payload], no framing, no checksums). It is preallocated to
// 256 MiB with fallocate, size included, as raftkit's log engine
// preallocates its segments, so that fdatasync commits data rather than
// block allocation or a new size; where fallocate is unsupported, or off
// Linux, there is no preallocation (and f.Sync stands in for fdatasync off
// Linux). When the next batch would cross the 256 MiB mark the log wraps
// to offset 0 and overwrites the oldest batches. The rule depends only on
// the batch lengths, so every replica puts every batch at the same offset.
// A round is therefore one write, or two when it wraps.
//
// # What it never does
//
// No elections, terms, votes, indexes, heartbeats or timeouts; no state
// machine and no apply step; no checksums, no recovery and no reading of the
// log (a restarted replica starts an empty log, and a follower starts over
// on every new connection); no catch-up or retransmission: a follower whose
// connection breaks is out until the leader restarts, and the other carries
// the majority. No flow control: batches for a follower that is not yet
// connected queue in memory, without bound if it never comes. It never
// retries a failed write or fsync: on the leader
// every pending and later Propose fails with the error; a follower drops
// the connection without acknowledging. Its files are measurement
// artifacts, not a log anyone can trust after a crash (a wrapped or torn
// tail is indistinguishable from data).
package baseline

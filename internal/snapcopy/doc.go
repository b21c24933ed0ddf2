// Package snapcopy moves a committed snapshot's files from the host that
// has them to a host that needs them, in checksummed chunks, over a
// transport service: a follower whose raft core received MsgSnap (which
// carries only the SnapshotMeta) pulls the files from the leader's host
// with Copy into a storage.SnapshotWriter's directory; the leader's host
// serves them with a Server registered under Service. Service calls go over
// a client connection of their own, so big chunks never delay raft traffic.
//
// The package owns the pull protocol below, the server's sessions (the
// snapshot readers it pins while copies run), its throttle, and the
// copier's pipelining, retries and verification. It never commits, aborts,
// syncs, installs or deletes a snapshot (the runtime does, through
// storage.SnapshotStorage), never decides when to copy or give up (the
// runtime cancels Copy's context), and never sees raft messages. It keeps
// no package-level state; logger and clock come in through options.
//
// # Protocol
//
// A request's first byte is its kind; integers are big-endian; a name is a
// uvarint length (at most 4096) and that many bytes, a clean relative
// slash-separated path with no "." or ".." component. The group travels in
// the transport's own header.
//
//	manifest request   1 | index u64 | term u64
//	manifest response  1 | count uvarint | count × (name | size u64 | crc32c u32)
//	chunk request      2 | index u64 | term u64 | offset u64 | length u32 | name
//	chunk response     2 | crc32c u32 | length bytes of data
//
// The server keeps a session per (group, index, term): the snapshot's
// reader, pinned against deletion, and its files, opened at their first
// chunk request and read with ReadAt. Any request for a key without a
// session opens one through Source.Latest if the latest snapshot is that
// (index, term); otherwise it fails with ErrSnapshotGone. So a copy resumes
// transparently across a server restart or an expired session while the
// snapshot is still the latest, and a session keeps serving its snapshot
// even after a newer one is committed. A session no request used for
// SessionIdle is closed: lazily by the next request, or by a janitor
// goroutine that runs only while sessions exist. A chunk must lie within
// its file and be at most 16 MiB, which with its 5-byte header fits the TCP
// transport's default 64 MiB frame with room to spare; Copy asks for 1 MiB
// by default. Chunk responses of a server share
// one token bucket (MaxBytesPerSecond), waited on before the read.
//
// Errors cross the wire as transport.WireError codes, clear of raftkit's
// own: 200 the snapshot is gone (ErrSnapshotGone on the caller's side),
// 201 an invalid request (malformed, unknown file, range beyond the end),
// 202 the server is closed. Other errors (the Source's, I/O) keep the
// code their error carries, if any.
//
// Copy fetches the manifest, creates the directories and empty files, and
// keeps Window chunk requests in flight, in file order, creating each file
// as its first chunk is requested (so about Window files are open at
// once). Each worker verifies its chunk's CRC32C and size, writes it with
// WriteAt, starts the chunk's writeback where the file can
// (vfs.WritebackStarter, so the commit's sync finds the data already on
// its way to disk), and hands its CRC32C back; a file whose chunks are all written
// has its CRC32C combined from theirs (crc.go) and compared with the
// manifest, so nothing is read back. A failed call that may pass
// (unreachable, connection lost, a deadline of the Caller's, a closed
// server) is retried with a doubling backoff for the same chunk only, so no
// written byte is fetched again; a corrupt chunk is fetched again up to 8
// times in a row; a file that fails its CRC32C is fetched again from
// offset 0, up to 3 fetches in all. Any other error, ErrSnapshotGone
// included, ends the copy.
package snapcopy

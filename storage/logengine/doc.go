// Package logengine is the durable log shared by every raft group of a
// process: one segmented, append-only log per data directory, written by one
// goroutine that turns whatever is queued — appends, prefix truncations and
// resets of any number of groups — into one write and one fsync (group
// commit). Each group sees its own storage.LogStorage, a *GroupLog.
//
// # What it owns, what it never does
//
// The package owns the segment files "<dir>/<20-digit seq>.log" in the
// directory given to Open, "<dir>/next.prep", the next segment being
// readied, and "<dir>/<20-digit seq>.free", dead segments kept for reuse,
// and nothing else in it (other names are ignored). An Engine runs
// exactly two goroutines: the writer, and the preparer, which readies the
// file the writer's next roll takes; it never starts one per request or per
// group. It keeps no data in memory: the
// index holds, per entry, its term and where its encoding lies on disk, and
// Entries preads exactly what it returns. It never retries a failed write
// or fsync and never continues after one (see Failure). It never drops
// committed data silently: recovery repairs only a torn tail, and refuses to
// open on anything else it cannot verify. It stores no hard state, no
// configuration and no snapshot; those belong to storage's MetaStorage and
// SnapshotStorage.
//
// # On-disk format
//
// All integers are little-endian; "uvarint" is encoding/binary's. A segment
// file starts with a 24-byte header:
//
//	magic "RKLOG002" | seq u64 | CRC32C(magic, seq) u32 | 4 zero bytes
//
// followed by records, each framed as
//
//	length u32 | CRC32C u32 XOR salt | type u8 | payload
//
// where length counts type and payload (so it is never zero), the
// Castagnoli CRC covers the same bytes, and salt is the low 32 bits of
// seq × 0x9E3779B1. A zero length field, or the end of the file, marks the
// end of the data; the writer puts one after every round (the next round
// overwrites it). What lies after the end is zeros, or, in a recycled file
// (see Recycling), the records of its previous life, which never verify:
// they carry another seq's salt.
//
// Format 1 ("RKLOG001") differs only in having no salt and no end marker
// after each round; the engine still reads it and appends to a format 1
// active segment in format 1, but creates only format 2 segments. Segments are preallocated to
// Options.SegmentSize with vfs.File.Preallocate and, where the file can
// (vfs.Extender, the OS's), extended to that size without writing, so
// appends never change the size and a small round's fdatasync has no
// size to commit; the unwritten rest reads as zeros. Record types:
//
//	1 entries   group uvarint | first index uvarint | count uvarint |
//	            count × (term uvarint | entry type u8 | data length uvarint | data)
//	2 truncate  group uvarint | first uvarint | prevTerm uvarint | last uvarint
//	3 reset     group uvarint | index uvarint | term uvarint
//	4 rewrite   as entries
//	5 round     round length u32
//
// Every group-commit round is one write of: a round record whose length is
// the byte length of the whole round (round record included), then the
// round's records. Rounds are atomic on recovery: a round is replayed only
// if all of its records are present and verify. A round never spans two
// segments: when the active segment would exceed SegmentSize the writer
// rolls first — rename next.prep to the next seq, write the header, sync
// the file, sync the directory — and a round bigger than SegmentSize gets a
// segment of its own. The preparer made next.prep beforehand: created,
// preallocated, filled with zeros to SegmentSize where the file system
// gains from it (vfs.ZeroFiller) when Options.ZeroFill is set and
// synced; if it failed, the roll creates the segment in place. Filling
// makes every append an overwrite of written blocks, so a round's
// fdatasync commits no block allocation or size change; the zeros after
// the data read as a zero length field, the end of the data, so filled and
// unfilled segments recover alike. Open fills the first segment, and the
// rest of the active one, itself. A file becomes a segment only by the
// roll's rename, so a crash while readying leaves at most next.prep, which
// Open deletes.
//
// # Replay rules
//
// Segments are replayed in seq order, records in file order. For a group:
//
//   - entries at index i: discard the group's entries at or after i, then
//     put the entries at [i, i+count). Suffix truncation is implied by the
//     append, so entries an acknowledged append discarded never come back.
//   - rewrite at index i: put the entries at [i, i+count), overwriting in
//     place and discarding nothing. GC writes these when it moves live
//     entries out of a segment it is about to delete.
//   - truncate: the log becomes [first, last]: entries outside are dropped,
//     and Term(first-1) is prevTerm. TruncatePrefix writes one (first being
//     the new first index, last the group's last index then), and so does
//     GC as a checkpoint of a group's bounds. prevTerm and last make the
//     bounds self-contained: no earlier record is needed to know the term
//     of first-1 (whose entry may be long deleted) or where the log ends
//     (the append that cut it may be in a deleted segment).
//   - reset: the log becomes empty, starting after (index, term).
//
// A group is fresh (FirstIndex 1, LastIndex 0, Term(0) = 0) until its
// first record. Before a group's latest truncate or reset record, replay
// may see an incomplete history (GC deletes segments out of order), so it
// tolerates gaps there; once every segment is replayed each group's entries
// must cover exactly [first, last], or Open refuses with an error.
//
// # Recovery
//
// Open verifies the header and every record's CRC and decodes every
// payload. In the last segment only, a bad record (short, checksum
// mismatch, malformed, outside or overrunning its round, or a round ending
// early) is a torn write when no valid round record follows it anywhere in
// the file: the segment is truncated at the start of the torn round, and
// synced, and the engine appends after it. Zeros or the end of the file
// after the bad record are the common case; a valid round record after it
// proves that committed rounds follow, so the log is corrupt and Open
// refuses with an error naming the file and offset. A bad record in any
// other segment always refuses (a round is synced before the next one
// starts, and before a roll, so only the last segment can hold an unsynced
// round). A zero length field followed by anything but zeros ends a
// format 2 segment's data, unless a round record valid under its salt
// follows (then the log is corrupt: committed rounds lie past the end); a
// format 1 segment treats it as a bad record, as above. A last segment
// whose header is bad, with no valid round record in it, is a torn roll
// and is deleted. Recovery never panics and never
// trusts a length or count before bounds-checking it.
//
// # Garbage collection
//
// Each segment tracks its live bytes: the encoded size of the entries some
// group still indexes there. GC (explicit, or one pass after a round with
// a truncation or reset, or after a roll) takes as victims the non-active
// segments with no live bytes, and the oldest ones with fewer than
// RewriteThreshold live bytes (up to MaxWriteBatchBytes of live data per
// pass). In one round it writes rewrite records for the victims' live
// entries and, for every group with a record in a victim at or after the
// group's latest truncate or reset record, a checkpoint (a truncate record
// of the group's current bounds), then syncs. Only after that round is
// durable are the victims removed and the directory synced. The checkpoint
// is what makes out-of-order deletion safe: a deleted segment may have held
// the append that discarded entries still present in an older segment, and
// the checkpoint's last bound discards them again on replay. So a lagging
// group never pins an old segment, and one large old segment never pins the
// dead ones after it.
//
// # Recycling
//
// GC keeps up to Options.RecycleSegments dead segments instead of deleting
// them, renamed to "<old seq>.free" (and deletes the rest, and any larger
// than SegmentSize). A roll takes the oldest free file before the
// preparer's: it writes the new header and an end marker over the old
// header, syncs, renames the file to the new segment's name and syncs the
// directory. Renaming last means a file with a segment's name always has
// that segment's header; a crash before it leaves a free file. Why: the
// blocks of a fresh file are allocated but unwritten, so the fdatasync of a
// round appended to one also commits their conversion to written blocks (a
// journal commit on ext4); a recycled file was written in its previous
// life, so appends are overwrites and fdatasync flushes data only. Open
// keeps the free files it finds, up to RecycleSegments.
//
// # Failure
//
// Any error writing, syncing, preallocating, creating, or removing a file,
// or syncing the directory, fails the engine permanently: the round's
// requests get an error wrapping ErrFailed and the cause, and so does every
// later call (Err reports it). A failed fsync leaves the file's state
// unknown, so it is never retried; the process must reopen the directory,
// and recovery decides what is durable.
//
// # Concurrency
//
// Engine and GroupLog methods are safe for concurrent use. The index is
// guarded by a sync.RWMutex: readers hold it shared, including during
// their preads, and the writer takes it exclusively only to install a
// durable round, so reads run concurrently with the writer's IO.
package logengine

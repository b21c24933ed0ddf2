// Package vfs is the file-system seam of raftkit's storage: every byte the
// log engine, meta storage and snapshot storage write goes through an FS, so
// that tests can swap the operating system for a strict in-memory file system
// that forgets whatever was not made durable when it "crashes", and that
// fails writes and syncs on demand.
//
// Durability model (the one the OS gives on Linux with ext4/xfs, and the one
// MemFS enforces):
//   - file contents are durable once File.Sync returns;
//   - the existence of a name (create, rename, remove) is durable once the
//     parent directory has been synced with SyncDir.
//
// MemFS adds what tests need on top: Crash and CrashKeepPartial (torn
// writes), fault injection (InjectFault, with the ErrIO and ErrNoSpace
// constants) and a capacity limit. To keep tests practical it treats the
// directories MkdirAll creates as durable at once.
//
// The package owns the FS and File interfaces, the optional ZeroFiller
// (OS files fill ranges with zeros, so a log can append over written
// blocks; MemFS files do not), the OS implementation, and MemFS. It never interprets file contents, starts no goroutines and holds no
// package-level mutable state.
package vfs

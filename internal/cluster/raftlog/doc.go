// Package raftlog is the durable raft log of a node for go.etcd.io/raft/v3
// (a RawNode with AsyncStorageWrites): Log keeps the entries, the hard
// state and the latest snapshot's metadata and implements raft.Storage;
// Snapshots keeps the snapshot data files.
//
// # Entries
//
// Entries live in hashicorp/raft-wal (Consul's WAL: preallocated segment
// files, a CRC over each appended batch, one fsync per StoreLogs, recovery
// of the tail segment at open, random reads through an offset index). Each
// raftpb.Entry becomes one raft-wal record (hashicorp raft.Log): Index,
// Term and Data as they are (Data shared, not copied), Type as 0x40 +
// etcd's EntryType (EntryNormal 0x40, EntryConfChange 0x41,
// EntryConfChangeV2 0x42; hashicorp/raft's own types are 0–5), and in
// Extensions a CRC32-C of index, term, type and data, checked whenever an
// entry is read back: raft-wal checks only the newest batch, at open.
//
// FirstIndex is one past the compaction point (set by Compact and
// InstallSnapshot), whatever raft-wal still holds: it deletes head entries
// a whole segment file at a time. Term of the compaction point is kept
// with it. Errors as MemoryStorage: ErrCompacted at or below it (Term:
// below it), ErrUnavailable beyond the last entry.
//
// The newest entries, up to Options.CacheBytes of data, stay in memory:
// Entries and Term for recent indexes (replicating to followers, applying)
// neither read the disk nor decode. Older ones are read from raft-wal.
//
// # Hard state, snapshot metadata, and when they are saved
//
// The hard state and the snapshot record (the latest snapshot's metadata
// and the compaction point with its term) are values in raft-wal's meta
// store, a bolt database: each save is a transaction with its own fsync,
// so Append avoids them:
//
//   - Term and Vote are saved whenever either changes, before Append
//     returns: they must never be lost (a node that forgot its vote could
//     vote twice in a term). The Commit of that moment is saved with them.
//   - Commit alone moves with nearly every Append. Saving it each time
//     would double the fsyncs, and the commit index is volatile state in
//     Raft (a restarted node learns it again from the leader), so it is
//     saved only when the last save is at least CommitSaveInterval old
//     (default 1 s), with any Term/Vote save, and by Close. After a crash
//     the saved Commit can therefore be behind: it is a hint that lets a
//     restarted node apply what it knew to be committed without waiting
//     for a leader.
//   - InitialState returns Commit = min(max(saved Commit, snapshot index),
//     LastIndex): etcd raft panics on a Commit outside [FirstIndex-1,
//     LastIndex], and the snapshot only ever covers committed entries.
//     Its ConfState is the latest snapshot's: configuration changes in
//     entries after it reach the application again (start raft with
//     Applied = the snapshot's index) and it calls ApplyConfChange.
//   - SetSnapshot, Compact and InstallSnapshot save the snapshot record
//     (one transaction each; they are rare).
//
// Entries are written before the hard state in an Append, so a saved
// Commit never points past the entries saved before it.
//
// # Crashes
//
// raft-wal recovers a torn tail by itself: at open it cuts entries written
// after the last commit frame and, if the last batch fails its CRC, that
// whole batch, silently. After a crash such a batch was never
// acknowledged, so nothing is lost. Open logs an error when the cut took
// entries that were there at the last clean Close (which notes the last
// index), or when the log ends before the saved Commit: acknowledged
// entries were lost.
//
// The snapshot record is saved before the entries it makes obsolete are
// deleted. If the process dies in between, Open finds entries that do not
// continue the compaction point (their term at that index differs, or
// they end before it) and deletes them, finishing the interrupted
// InstallSnapshot; entries at or below the compaction point left by an
// interrupted Compact are simply never served.
//
// # Files
//
// The Log's directory holds raft-wal's files (wal-meta.db and
// <base index>-<segment id>.wal) and raftlog.lock, nothing else: Open
// refuses a directory with other files, a raft-wal log written by
// hashicorp/raft, or one without our format mark (ErrFormat), and a
// directory another Log has open (ErrLocked) instead of waiting forever
// for bolt's file lock.
//
// raft-wal v0.4.2's WAL.Close closes the meta store too, but when wal.Open
// fails it leaves the store it opened open (and its file locked). The Log
// therefore creates the BoltMetaDB, passes it with WithMetaStore, and
// closes it itself; a second Close is a no-op.
package raftlog

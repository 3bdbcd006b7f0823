package raftlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Errors. The raft.Storage reads return raft's own sentinels (ErrCompacted,
// ErrUnavailable) unwrapped, because raft compares them with ==; every
// other error wraps one of these or one of raft's with %w.
var (
	// ErrFormat means the directory holds something that is not a raftlog
	// (another program's files, a hashicorp/raft log, a newer format).
	ErrFormat = errors.New("raftlog: directory holds another format")
	// ErrLocked means another Log (in this process or another) has the
	// directory open.
	ErrLocked = errors.New("raftlog: directory is in use")
	// ErrCorrupt means a record or file fails its checksum or cannot be
	// decoded.
	ErrCorrupt = errors.New("raftlog: corrupt data")
	// ErrInvalid means a write the log cannot take: entries that are not
	// consecutive or leave a gap, an overwrite of entries the snapshot
	// covers, a snapshot whose term does not match the log, a compaction
	// beyond the latest snapshot.
	ErrInvalid = errors.New("raftlog: invalid write")
	// ErrFailed means an earlier write failed: what is on disk is no
	// longer known, so the log takes no more writes. Close and reopen it.
	ErrFailed = errors.New("raftlog: an earlier write failed")
	// ErrClosed means the Log or Snapshots was closed.
	ErrClosed = errors.New("raftlog: closed")
	// ErrNotFound means there is no snapshot file for the metadata asked for.
	ErrNotFound = errors.New("raftlog: snapshot not found")
)

// Keys in raft-wal's stable store.
var (
	keyFormat    = []byte("raftlog.format")
	keyHardState = []byte("raftlog.hardstate")
	keySnapshot  = []byte("raftlog.snapshot")
	// keyClosed holds the last index at a clean Close, until the next Open.
	keyClosed = []byte("raftlog.closed")
	// hashicorp/raft's keys: their presence means a hashicorp/raft log.
	foreignKeys = [][]byte{[]byte("CurrentTerm"), []byte("LastVoteTerm"), []byte("LastVoteCand")}
)

const (
	formatV1 = "hatcheck raftlog 1"
	lockName = "raftlog.lock"
)

// Options configures a Log. Zero values take the defaults on each field.
type Options struct {
	// SegmentSize is the size of raft-wal's segment files (preallocated).
	// Compaction deletes whole segments. Default 64 MiB.
	SegmentSize int
	// CacheBytes bounds the newest entries (by len(Data)) kept in memory
	// for Entries and Term. Default 16 MiB; negative: no cache.
	CacheBytes int
	// CommitSaveInterval is how often at most a commit index that moved is
	// saved on its own (a bolt transaction with an fsync); see the package
	// doc. Default 1 s; negative: on every change.
	CommitSaveInterval time.Duration
	// Logger receives the log's own lines and raft-wal's. Default: discard.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.SegmentSize == 0 {
		o.SegmentSize = wal.DefaultSegmentSize
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = 16 << 20
	}
	if o.CommitSaveInterval == 0 {
		o.CommitSaveInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Log is the durable raft log of one node: entries, hard state, and the
// metadata of the latest snapshot. It implements raft.Storage.
//
// Concurrency: the raft.Storage methods may be called from any goroutine,
// concurrently with each other and with one writer. The writes (Append,
// InstallSnapshot, SetSnapshot, Compact) are called by one goroutine at a
// time. A writer never holds the lock across an fsync: it removes entries
// from view before it removes them from disk, and shows new entries once
// they are durable, so the raft goroutine's reads never wait for the disk
// (with AsyncStorageWrites raft reads only entries it knows are stable).
// Close is called once reads and writes have stopped.
type Log struct {
	dir  string
	opts Options
	log  *slog.Logger
	lock *os.File
	meta *metadb.BoltMetaDB // ours: see Open
	wal  *wal.WAL

	// mu guards what readers see. The writer reads these fields without
	// it (it is their only mutator) and takes it to change them.
	mu           sync.RWMutex
	compactIndex uint64 // FirstIndex()-1
	compactTerm  uint64 // Term(compactIndex)
	last         uint64
	snap         raftpb.SnapshotMetadata
	hs           raftpb.HardState // the latest given to Append, saved or not
	// cache holds the newest entries, consecutive and ending at last (or
	// empty). Slices of it are handed to readers, so an entry in it is
	// never written again: cutting the end reslices with a capacity limit,
	// so that the next append copies rather than overwrites.
	cache      []raftpb.Entry
	cacheBytes int

	appends latency // how long StoreLogs (write and fsync) took

	// Writer-only state.
	saved   raftpb.HardState // the latest on disk
	savedAt time.Time
	failed  error
	closed  bool
}

var _ raft.Storage = (*Log)(nil)

var segmentName = regexp.MustCompile(`^[0-9]{20}-[0-9a-f]{16}\.wal$`)

// Open opens the log in dir, creating dir and an empty log if needed. The
// directory holds nothing else: files that are not raft-wal's or ours, or
// a raft-wal log that is not ours, make Open fail with ErrFormat.
func Open(dir string, opts Options) (*Log, error) {
	opts.setDefaults()
	l := &Log{dir: dir, opts: opts, log: opts.Logger.With("dir", dir)}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = l.closeFiles()
		}
	}()
	// bbolt waits forever for a file lock held elsewhere; fail instead.
	var err error
	if l.lock, err = os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(l.lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		// The holder wrote its process id into the file: name it, so that
		// an operator knows which process to look at.
		holder := ""
		if b, rerr := os.ReadFile(filepath.Join(dir, lockName)); rerr == nil && len(bytes.TrimSpace(b)) > 0 {
			holder = " by process " + string(bytes.TrimSpace(b))
		}
		return nil, fmt.Errorf("%w%s: %s: %v", ErrLocked, holder, dir, err)
	}
	if err := l.lock.Truncate(0); err == nil {
		_, _ = l.lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	// We own the meta store and open it ourselves: that lets us check the
	// format before raft-wal recovers (and deletes) segment files, and close
	// it when wal.Open fails, which leaves it open and locked (WAL.Close
	// does close it in v0.4.2; closing it again is a no-op).
	l.meta = &metadb.BoltMetaDB{}
	if _, err := l.meta.Load(dir); err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Join(dir, metadb.FileName), err)
	}
	fresh, err := l.checkFormat()
	if err != nil {
		return nil, err
	}
	l.wal, err = wal.Open(dir, wal.WithMetaStore(l.meta), wal.WithSegmentSize(opts.SegmentSize),
		wal.WithLogger(walLogger{hclog.NewNullLogger(), l.log.With("component", "raft-wal")}))
	if err != nil {
		return nil, fmt.Errorf("open log in %s: %w", dir, err)
	}
	if fresh {
		if last, err := l.wal.LastIndex(); err != nil || last > 0 {
			return nil, fmt.Errorf("%w: %s holds a raft-wal log that is not ours", ErrFormat, dir)
		}
		if err := l.meta.SetStable(keyFormat, []byte(formatV1)); err != nil {
			return nil, err
		}
	}
	if err := l.load(); err != nil {
		return nil, err
	}
	ok = true
	return l, nil
}

// checkDir refuses a directory holding files that are neither raft-wal's
// nor ours.
func checkDir(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		switch name := de.Name(); {
		case name == lockName, name == metadb.FileName, name == metadb.FileName+".tmp":
		case segmentName.MatchString(name) && de.Type().IsRegular():
		default:
			return fmt.Errorf("%w: unexpected %s in %s", ErrFormat, name, dir)
		}
	}
	return nil
}

// checkFormat reports whether the meta store is new; it fails if it is
// another program's.
func (l *Log) checkFormat() (fresh bool, err error) {
	v, err := l.meta.GetStable(keyFormat)
	if err != nil {
		return false, err
	}
	if v != nil {
		if string(v) != formatV1 {
			return false, fmt.Errorf("%w: %s is %q, this is %q", ErrFormat, l.dir, v, formatV1)
		}
		return false, nil
	}
	for _, k := range append([][]byte{keyHardState, keySnapshot}, foreignKeys...) {
		if v, err := l.meta.GetStable(k); err != nil || v != nil {
			return false, fmt.Errorf("%w: %s holds key %q but no format mark", ErrFormat, l.dir, k)
		}
	}
	return true, nil
}

// load reads the saved state and makes the entries agree with it.
func (l *Log) load() error {
	if b, err := l.meta.GetStable(keyHardState); err != nil {
		return err
	} else if b != nil {
		if err := l.hs.Unmarshal(b); err != nil {
			return fmt.Errorf("%w: hard state: %v", ErrCorrupt, err)
		}
	}
	l.saved = l.hs
	var rec snapRecord
	if b, err := l.meta.GetStable(keySnapshot); err != nil {
		return err
	} else if b != nil {
		if err := rec.unmarshal(b); err != nil {
			return err
		}
	}
	first, last, err := l.walBounds()
	if err != nil {
		return err
	}
	// raft-wal cuts a torn or corrupt tail at open without a word. After a
	// crash that is expected (the cut batch was never acknowledged); after
	// a clean Close it means the segment file was damaged.
	if b, err := l.meta.GetStable(keyClosed); err != nil {
		return err
	} else if len(b) == 8 {
		if closed := binary.LittleEndian.Uint64(b); closed > max(last, rec.compactIndex) {
			l.log.Error("raft-wal cut entries at open that were in the log at the last clean close: a segment file is damaged",
				"index", max(last, rec.compactIndex), "closed_index", closed)
		}
		if err := l.meta.SetStable(keyClosed, nil); err != nil {
			return err
		}
	}
	// The log cannot end before the snapshot (SetSnapshot and Append
	// refuse that) unless raft-wal cut acknowledged entries at open. The
	// snapshot holds them: make it the compaction point.
	if last < rec.meta.Index && rec.compactIndex < rec.meta.Index {
		l.log.Warn("log ends before the snapshot; compacting to it", "index", last, "snapshot_index", rec.meta.Index)
		rec.compactIndex, rec.compactTerm = rec.meta.Index, rec.meta.Term
		if err := l.saveSnapRecord(rec); err != nil {
			return err
		}
	}
	l.compactIndex, l.compactTerm, l.snap = rec.compactIndex, rec.compactTerm, rec.meta
	// Entries count only if they continue the compaction point. They do
	// not after InstallSnapshot saved the new snapshot and died before
	// deleting the entries it replaces: finish that now.
	if last > 0 {
		stale := last < l.compactIndex || first > l.compactIndex+1
		if !stale && first <= l.compactIndex {
			e, err := l.readEntry(l.compactIndex)
			if err != nil {
				return err
			}
			stale = e.Term != l.compactTerm
		}
		if stale {
			l.log.Warn("dropping entries that do not continue the snapshot (an interrupted install)",
				"first", first, "last", last, "index", l.compactIndex, "term", l.compactTerm)
			if err := l.wal.DeleteRange(first, last); err != nil {
				return err
			}
			last = 0
		}
	}
	l.last = max(last, l.compactIndex)
	if l.hs.Commit > l.last {
		l.log.Error("the log ends before the saved commit index: acknowledged entries were lost",
			"index", l.last, "commit", l.hs.Commit)
	}
	l.log.Debug("opened raft log", "first", l.compactIndex+1, "last", l.last,
		"snapshot_index", l.snap.Index, "term", l.hs.Term, "commit", l.hs.Commit)
	return nil
}

func (l *Log) walBounds() (first, last uint64, err error) {
	if first, err = l.wal.FirstIndex(); err != nil {
		return 0, 0, err
	}
	if last, err = l.wal.LastIndex(); err != nil {
		return 0, 0, err
	}
	return first, last, nil
}

// InitialState returns the saved hard state and the ConfState of the
// latest snapshot. Configuration changes in entries after the snapshot are
// not reflected: raft hands them to the application again (start raft
// with Applied = the snapshot's index), which calls ApplyConfChange.
// Commit is never below the snapshot's index nor beyond LastIndex.
func (l *Log) InitialState() (raftpb.HardState, raftpb.ConfState, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	hs := l.hs
	if !raft.IsEmptyHardState(hs) || l.snap.Index > 0 {
		hs.Commit = min(max(hs.Commit, l.snap.Index), l.last)
	}
	return hs, cloneMeta(l.snap).ConfState, nil
}

// Entries returns the entries [lo, hi), at least one and within maxSize
// bytes (as raft counts them) otherwise. The caller may append to the
// slice; nobody may change its entries.
func (l *Log) Entries(lo, hi, maxSize uint64) ([]raftpb.Entry, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if lo <= l.compactIndex {
		return nil, raft.ErrCompacted
	}
	if hi > l.last+1 {
		return nil, raft.ErrUnavailable
	}
	if l.last == l.compactIndex {
		return nil, raft.ErrUnavailable // as MemoryStorage: the log is empty
	}
	if lo >= hi {
		return nil, nil
	}
	cacheFirst := l.last + 1 - uint64(len(l.cache))
	if lo >= cacheFirst {
		ents := limitSize(l.cache[lo-cacheFirst:hi-cacheFirst], maxSize)
		return ents[:len(ents):len(ents)], nil
	}
	var ents []raftpb.Entry
	var size uint64
	for i := lo; i < hi; i++ {
		var e raftpb.Entry
		if i >= cacheFirst {
			e = l.cache[i-cacheFirst]
		} else {
			var err error
			if e, err = l.readEntry(i); err != nil {
				return nil, err
			}
		}
		s := uint64(e.Size())
		if len(ents) > 0 && size+s > maxSize {
			break
		}
		size += s
		ents = append(ents, e)
	}
	return ents, nil
}

// limitSize is etcd raft's: the longest prefix within maxSize, but at least
// one entry.
func limitSize(ents []raftpb.Entry, maxSize uint64) []raftpb.Entry {
	if len(ents) == 0 {
		return ents
	}
	size := uint64(ents[0].Size())
	for n := 1; n < len(ents); n++ {
		size += uint64(ents[n].Size())
		if size > maxSize {
			return ents[:n]
		}
	}
	return ents
}

// Term returns the term of entry i, for i in [FirstIndex()-1, LastIndex()].
func (l *Log) Term(i uint64) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	switch {
	case i < l.compactIndex:
		return 0, raft.ErrCompacted
	case i == l.compactIndex:
		return l.compactTerm, nil
	case i > l.last:
		return 0, raft.ErrUnavailable
	}
	if cacheFirst := l.last + 1 - uint64(len(l.cache)); i >= cacheFirst {
		return l.cache[i-cacheFirst].Term, nil
	}
	e, err := l.readEntry(i)
	return e.Term, err
}

// LastIndex returns the index of the last entry (the compaction point if
// the log holds none).
func (l *Log) LastIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.last, nil
}

// FirstIndex returns the index of the first entry Entries can return:
// one past the compaction point, whatever raft-wal still keeps on disk.
func (l *Log) FirstIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.compactIndex + 1, nil
}

// Snapshot returns the metadata of the latest snapshot, Data empty: the
// data is in a Snapshots file.
func (l *Log) Snapshot() (raftpb.Snapshot, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return raftpb.Snapshot{Metadata: cloneMeta(l.snap)}, nil
}

// readEntry reads entry i from raft-wal. The caller holds mu (either
// way) or is the writer.
func (l *Log) readEntry(i uint64) (raftpb.Entry, error) {
	var hl hraft.Log
	err := l.wal.GetLog(i, &hl)
	if err == nil {
		var e raftpb.Entry
		if e, err = fromLog(&hl); err == nil && e.Index != i {
			err = fmt.Errorf("%w: entry %d found at %d", ErrCorrupt, e.Index, i)
		}
		if err == nil {
			return e, nil
		}
	}
	l.log.Error("reading the log failed", "index", i, "err", err)
	return raftpb.Entry{}, fmt.Errorf("read entry %d: %w", i, err)
}

// Append makes ents durable before it returns, with one fsync of the
// segment file (the caller merges every pending MsgStorageAppend into one
// call: group commit), and hs as the package doc says: term and vote
// always, with a bolt transaction; a commit that moved alone at most once
// per CommitSaveInterval. ents must be
// consecutive; when merging, a later message's entries replace the
// earlier ones from their first index on. If ents[0] overwrites existing
// entries (a new leader's log wins), the conflicting suffix is truncated
// first. Entries at or below the compaction point are skipped, as
// MemoryStorage does. An empty hs (raft.IsEmptyHardState) saves nothing.
// ents' Data is kept, not copied: it must not change afterwards.
func (l *Log) Append(hs raftpb.HardState, ents []raftpb.Entry) error {
	if err := l.writable(); err != nil {
		return err
	}
	if len(ents) > 0 {
		if err := l.appendEntries(ents); err != nil {
			return err
		}
	}
	if !raft.IsEmptyHardState(hs) {
		return l.setHardState(hs)
	}
	return nil
}

func (l *Log) appendEntries(ents []raftpb.Entry) error {
	for i := 1; i < len(ents); i++ {
		if ents[i].Index != ents[i-1].Index+1 {
			return fmt.Errorf("%w: entry %d follows entry %d", ErrInvalid, ents[i].Index, ents[i-1].Index)
		}
	}
	if first := l.compactIndex + 1; ents[0].Index < first {
		if ents[len(ents)-1].Index < first {
			return nil
		}
		ents = ents[first-ents[0].Index:]
	}
	from := ents[0].Index
	switch {
	case from > l.last+1:
		return fmt.Errorf("%w: entry %d would leave a gap after %d", ErrInvalid, from, l.last)
	case from <= l.snap.Index:
		// Raft never rewrites a committed entry, and the snapshot covers
		// only committed ones.
		return fmt.Errorf("%w: entry %d would overwrite the snapshot at %d", ErrInvalid, from, l.snap.Index)
	}
	logs, err := toLogs(ents)
	if err != nil {
		return err
	}
	if from <= l.last {
		l.log.Info("truncating the log: a new leader's entries win", "index", from, "term", ents[0].Term, "last", l.last)
		l.mu.Lock()
		l.cutCache(from)
		l.last = from - 1
		l.mu.Unlock()
		_, walLast, err := l.walBounds()
		if err != nil {
			return l.fail(err)
		}
		if walLast >= from {
			if err := l.wal.DeleteRange(from, walLast); err != nil {
				return l.fail(fmt.Errorf("truncate log from %d: %w", from, err))
			}
		}
	}
	start := time.Now()
	if err := l.wal.StoreLogs(logs); err != nil {
		return l.fail(fmt.Errorf("append entries %d..%d: %w", from, ents[len(ents)-1].Index, err))
	}
	l.appends.observe(time.Since(start))
	l.mu.Lock()
	l.last = ents[len(ents)-1].Index
	l.appendCache(ents)
	l.mu.Unlock()
	return nil
}

// setHardState keeps hs and saves it if term or vote changed (these must
// never be lost: a node must not vote twice in a term), or if only commit
// moved and the last save is CommitSaveInterval old.
func (l *Log) setHardState(hs raftpb.HardState) error {
	l.mu.Lock()
	l.hs = hs
	l.mu.Unlock()
	if hs.Term == l.saved.Term && hs.Vote == l.saved.Vote &&
		(hs.Commit == l.saved.Commit || time.Since(l.savedAt) < l.opts.CommitSaveInterval) {
		return nil
	}
	return l.saveHardState(hs)
}

// SyncCommit makes the commit index durable at index or beyond before it
// returns. The group calls it when it applies a membership change: a node
// restarted with a commit index below a committed change would come back
// with an older configuration than its peers use, and two changes apart
// their quorums need not overlap. index must be committed and in the log.
func (l *Log) SyncCommit(index uint64) error {
	if err := l.writable(); err != nil {
		return err
	}
	l.mu.Lock()
	if l.hs.Commit < index {
		l.hs.Commit = index
	}
	hs := l.hs
	l.mu.Unlock()
	if l.saved.Commit >= index {
		return nil
	}
	return l.saveHardState(hs)
}

func (l *Log) saveHardState(hs raftpb.HardState) error {
	b, err := hs.Marshal()
	if err != nil {
		return err
	}
	if err := l.meta.SetStable(keyHardState, b); err != nil {
		return l.fail(fmt.Errorf("save hard state (term %d): %w", hs.Term, err))
	}
	l.saved, l.savedAt = hs, time.Now()
	return nil
}

func (l *Log) saveSnapRecord(r snapRecord) error {
	b, err := r.marshal()
	if err != nil {
		return err
	}
	if err := l.meta.SetStable(keySnapshot, b); err != nil {
		return l.fail(fmt.Errorf("save snapshot metadata (index %d): %w", r.meta.Index, err))
	}
	return nil
}

// InstallSnapshot replaces the log by a snapshot received from the leader:
// every entry is dropped unless the log holds the snapshot's (index,
// term), in which case only the entries up to it are. Call it before the
// Append of the same MsgStorageAppend.
func (l *Log) InstallSnapshot(meta raftpb.SnapshotMetadata) error {
	if err := l.writable(); err != nil {
		return err
	}
	if meta.Index <= l.snap.Index {
		return fmt.Errorf("install snapshot at %d (have %d): %w", meta.Index, l.snap.Index, raft.ErrSnapOutOfDate)
	}
	meta = cloneMeta(meta)
	keep := false
	if meta.Index <= l.last {
		t, err := l.Term(meta.Index)
		if err != nil {
			return err
		}
		keep = t == meta.Term
	}
	l.mu.Lock()
	l.snap = meta
	if keep {
		l.dropCacheThrough(meta.Index)
	} else {
		l.cache, l.cacheBytes = nil, 0
		l.last = meta.Index
	}
	l.compactIndex, l.compactTerm = meta.Index, meta.Term
	l.mu.Unlock()
	// The record first, the entries after: if we die in between, Open
	// finds entries that do not continue the snapshot and drops them.
	if err := l.saveSnapRecord(snapRecord{meta.Index, meta.Term, meta}); err != nil {
		return err
	}
	first, last, err := l.walBounds()
	if err != nil {
		return l.fail(err)
	}
	if keep {
		last = meta.Index
	}
	if first > 0 && first <= last {
		if err := l.wal.DeleteRange(first, last); err != nil {
			return l.fail(fmt.Errorf("drop entries %d..%d: %w", first, last, err))
		}
	}
	l.log.Info("installed snapshot", "index", meta.Index, "term", meta.Term, "kept_entries", keep)
	return nil
}

// SetSnapshot records a snapshot this node took of its own state, at an
// entry of the log; the entries stay until Compact.
func (l *Log) SetSnapshot(meta raftpb.SnapshotMetadata) error {
	if err := l.writable(); err != nil {
		return err
	}
	if meta.Index <= l.snap.Index {
		return fmt.Errorf("snapshot at %d (have %d): %w", meta.Index, l.snap.Index, raft.ErrSnapOutOfDate)
	}
	if meta.Index > l.last {
		return fmt.Errorf("%w: snapshot at %d is beyond the last entry %d", ErrInvalid, meta.Index, l.last)
	}
	t, err := l.Term(meta.Index)
	if err != nil {
		return err
	}
	if t != meta.Term {
		return fmt.Errorf("%w: snapshot at %d has term %d, the entry %d", ErrInvalid, meta.Index, meta.Term, t)
	}
	meta = cloneMeta(meta)
	l.mu.Lock()
	l.snap = meta
	l.mu.Unlock()
	return l.saveSnapRecord(snapRecord{l.compactIndex, l.compactTerm, meta})
}

// Compact drops the entries up to and including index, which must not be
// beyond the latest snapshot. raft-wal deletes whole segment files, so
// some of them may stay on disk for a while; they are never served.
func (l *Log) Compact(index uint64) error {
	if err := l.writable(); err != nil {
		return err
	}
	if index <= l.compactIndex {
		return fmt.Errorf("compact to %d (compacted to %d): %w", index, l.compactIndex, raft.ErrCompacted)
	}
	if index > l.snap.Index {
		return fmt.Errorf("%w: compact to %d beyond the snapshot at %d", ErrInvalid, index, l.snap.Index)
	}
	term, err := l.Term(index)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.compactIndex, l.compactTerm = index, term
	l.dropCacheThrough(index)
	l.mu.Unlock()
	// The compaction point (and its term) first, the entries after.
	if err := l.saveSnapRecord(snapRecord{index, term, l.snap}); err != nil {
		return err
	}
	first, _, err := l.walBounds()
	if err != nil {
		return l.fail(err)
	}
	if first > 0 && first <= index {
		if err := l.wal.DeleteRange(first, index); err != nil {
			return l.fail(fmt.Errorf("compact to %d: %w", index, err))
		}
	}
	return nil
}

// Close saves the hard state if it changed since the last save, notes the
// last index (so that the next Open can tell a damaged tail from a torn
// write) and closes the files.
func (l *Log) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	if l.failed == nil {
		if l.hs != l.saved {
			errs = append(errs, l.saveHardState(l.hs))
		}
		errs = append(errs, l.meta.SetStable(keyClosed, binary.LittleEndian.AppendUint64(nil, l.last)))
	}
	return errors.Join(append(errs, l.closeFiles())...)
}

func (l *Log) closeFiles() error {
	var errs []error
	if l.wal != nil {
		errs = append(errs, l.wal.Close())
	}
	if l.meta != nil {
		errs = append(errs, l.meta.Close())
	}
	if l.lock != nil {
		errs = append(errs, l.lock.Close())
	}
	return errors.Join(errs...)
}

func (l *Log) writable() error {
	if l.closed {
		return ErrClosed
	}
	if l.failed != nil {
		return fmt.Errorf("%w: %v", ErrFailed, l.failed)
	}
	return nil
}

func (l *Log) fail(err error) error {
	l.failed = err
	l.log.Error("raft log write failed; refusing further writes", "err", err)
	return err
}

// appendCache adds ents (which end at l.last) and evicts the oldest entries
// beyond CacheBytes. Called with mu held.
func (l *Log) appendCache(ents []raftpb.Entry) {
	if l.opts.CacheBytes < 0 {
		return
	}
	l.cache = append(l.cache, ents...)
	for i := range ents {
		l.cacheBytes += len(ents[i].Data)
	}
	n := 0
	for n < len(l.cache) && l.cacheBytes > l.opts.CacheBytes {
		l.cacheBytes -= len(l.cache[n].Data)
		n++
	}
	l.cache = l.cache[n:]
}

// cutCache removes the cached entries from index on. Called with mu held,
// before l.last changes.
func (l *Log) cutCache(index uint64) {
	cacheFirst := l.last + 1 - uint64(len(l.cache))
	k := 0
	if index > cacheFirst {
		k = int(index - cacheFirst)
	}
	for _, e := range l.cache[k:] {
		l.cacheBytes -= len(e.Data)
	}
	l.cache = l.cache[:k:k]
}

// dropCacheThrough removes the cached entries up to and including index.
// Called with mu held.
func (l *Log) dropCacheThrough(index uint64) {
	cacheFirst := l.last + 1 - uint64(len(l.cache))
	if index < cacheFirst {
		return
	}
	n := min(int(index-cacheFirst+1), len(l.cache))
	for _, e := range l.cache[:n] {
		l.cacheBytes -= len(e.Data)
	}
	l.cache = l.cache[n:]
}

// walLogger passes raft-wal's lines to our logger. raft-wal logs only
// errors (a failed segment rotation, deletion or close); the embedded null
// logger drops anything else.
type walLogger struct {
	hclog.Logger
	l *slog.Logger
}

func (w walLogger) Error(msg string, args ...any) { w.l.Error(msg, args...) }
func (w walLogger) Warn(msg string, args ...any)  { w.l.Warn(msg, args...) }
func (w walLogger) Info(msg string, args ...any)  { w.l.Info(msg, args...) }

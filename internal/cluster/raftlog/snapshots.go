package raftlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"go.etcd.io/raft/v3/raftpb"
)

// Snapshot files: <term>-<index>.snap, both as 16 hex digits so that the
// names sort by (term, index).
//
//	magic "HCSNAP" | version uint16 | metadata length uint32 |
//	marshaled SnapshotMetadata | data | CRC32-C uint32
//
// All integers little-endian. The CRC covers everything before it (header
// and metadata as well as the data). A file is written under a temporary
// name (.tmp) and renamed into place by Commit.
const (
	snapMagic    = "HCSNAP"
	snapVersion  = 1
	snapHdrLen   = len(snapMagic) + 2 + 4
	snapTrailer  = 4
	snapSuffix   = ".snap"
	tmpSuffix    = ".tmp"
	maxSnapMeta  = 64 << 20 // a ConfState of a few ids; this bounds what a corrupt length allocates
	snapNameForm = "%016x-%016x" + snapSuffix
)

// Snapshots is a directory of snapshot data files, each named by the
// (term, index) of its metadata. Its methods are safe for concurrent use.
//
// Order of writes: Commit a snapshot's file before Log.SetSnapshot or
// Log.InstallSnapshot names it, so that the Log never refers to a file
// that is not there; with retain >= 2 the file the Log still names stays
// while a newer one is committed. At start, open the snapshot the Log
// names (Log.Snapshot), which is not always Latest.
type Snapshots struct {
	dir    string
	retain int
	log    *slog.Logger

	mu sync.Mutex
	// metas lists the files oldest first, corrupt ones left out. Only the
	// newest has its full metadata (the others' is read when opened).
	metas []raftpb.SnapshotMetadata
}

// OpenSnapshots opens (creating if needed) the snapshot directory dir,
// which holds nothing else. Temporary files left by a crash are removed.
// The newest file is verified in full (it is read once); if it is
// corrupt, a warning is logged, the file is left for inspection and the
// previous one is tried. Commit keeps the newest retain (at least 1).
func OpenSnapshots(dir string, retain int, logger *slog.Logger) (*Snapshots, error) {
	if retain < 1 {
		return nil, fmt.Errorf("%w: retain %d snapshots", ErrInvalid, retain)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Snapshots{dir: dir, retain: retain, log: logger.With("dir", dir)}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var metas []raftpb.SnapshotMetadata
	for _, de := range des {
		name := de.Name()
		var term, index uint64
		switch {
		case strings.HasSuffix(name, tmpSuffix):
			s.log.Info("removing an unfinished snapshot", "file", name)
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, err
			}
		case parseSnapName(name, &term, &index) && de.Type().IsRegular():
			metas = append(metas, raftpb.SnapshotMetadata{Term: term, Index: index})
		default:
			return nil, fmt.Errorf("%w: unexpected %s in %s", ErrFormat, name, dir)
		}
	}
	// ReadDir sorts by name, which is (term, index) order. Verify from the
	// newest down until one is good; older ones are checked when read.
	for i := len(metas) - 1; i >= 0; i-- {
		meta, err := s.verify(metas[i])
		if err == nil {
			s.metas = append(metas[:i:i], meta)
			break
		}
		s.log.Warn("ignoring a corrupt snapshot (left in place)", "term", metas[i].Term, "index", metas[i].Index, "err", err)
	}
	return s, nil
}

func parseSnapName(name string, term, index *uint64) bool {
	n, err := fmt.Sscanf(name, snapNameForm, term, index)
	return err == nil && n == 2 && name == snapName(*term, *index)
}

func snapName(term, index uint64) string { return fmt.Sprintf(snapNameForm, term, index) }

// verify reads a whole file and returns its metadata.
func (s *Snapshots) verify(m raftpb.SnapshotMetadata) (raftpb.SnapshotMetadata, error) {
	rc, _, meta, err := s.open(m)
	if err != nil {
		return meta, err
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return meta, err
	}
	return meta, nil
}

// Latest returns the metadata of the newest snapshot, if there is one.
func (s *Snapshots) Latest() (raftpb.SnapshotMetadata, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.metas) == 0 {
		return raftpb.SnapshotMetadata{}, false
	}
	return cloneMeta(s.metas[len(s.metas)-1]), true
}

// Open returns a reader of the snapshot's data and its size. The reader
// fails with ErrCorrupt instead of io.EOF if the checksum does not match:
// read it to the end before trusting what it gave.
func (s *Snapshots) Open(meta raftpb.SnapshotMetadata) (io.ReadCloser, int64, error) {
	rc, size, _, err := s.open(meta)
	return rc, size, err
}

func (s *Snapshots) open(want raftpb.SnapshotMetadata) (*snapReader, int64, raftpb.SnapshotMetadata, error) {
	name := snapName(want.Term, want.Index)
	f, err := os.Open(filepath.Join(s.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, want, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, 0, want, err
	}
	r, size, meta, err := newSnapReader(f, name)
	if err == nil && (meta.Term != want.Term || meta.Index != want.Index) {
		err = fmt.Errorf("%w: %s holds the snapshot at term %d, index %d", ErrCorrupt, name, meta.Term, meta.Index)
	}
	if err != nil {
		f.Close()
		return nil, 0, want, err
	}
	return r, size, meta, nil
}

// Create starts a snapshot file; nothing is visible until Commit.
func (s *Snapshots) Create(meta raftpb.SnapshotMetadata) (*SnapshotWriter, error) {
	if meta.Index == 0 {
		return nil, fmt.Errorf("%w: snapshot at index 0", ErrInvalid)
	}
	mb, err := meta.Marshal()
	if err != nil {
		return nil, err
	}
	name := snapName(meta.Term, meta.Index)
	f, err := os.CreateTemp(s.dir, name+".*"+tmpSuffix)
	if err != nil {
		return nil, err
	}
	w := &SnapshotWriter{s: s, meta: cloneMeta(meta), f: f, name: name, bw: bufio.NewWriterSize(f, 256<<10)}
	hdr := make([]byte, 0, snapHdrLen+len(mb))
	hdr = append(hdr, snapMagic...)
	hdr = binary.LittleEndian.AppendUint16(hdr, snapVersion)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(mb)))
	if _, err := w.Write(append(hdr, mb...)); err != nil {
		w.Abort()
		return nil, err
	}
	w.size = 0 // Write counted the header
	return w, nil
}

// SnapshotWriter receives one snapshot's data. It is used by one goroutine.
type SnapshotWriter struct {
	s    *Snapshots
	meta raftpb.SnapshotMetadata
	f    *os.File
	name string
	bw   *bufio.Writer
	crc  uint32
	size int64
	done bool
}

// Write appends snapshot data.
func (w *SnapshotWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, ErrClosed
	}
	n, err := w.bw.Write(p)
	w.crc = crc32.Update(w.crc, castagnoli, p[:n])
	w.size += int64(n)
	return n, err
}

// Commit makes the snapshot durable and visible: fsync the file, rename it
// into place, fsync the directory, then remove all but the newest retain.
// On error the temporary file is removed.
func (w *SnapshotWriter) Commit() error {
	if w.done {
		return ErrClosed
	}
	err := w.commit()
	if err != nil {
		w.Abort()
		return fmt.Errorf("commit snapshot %s: %w", w.name, err)
	}
	w.done = true
	w.s.log.Info("saved snapshot", "term", w.meta.Term, "index", w.meta.Index, "bytes", w.size)
	w.s.add(w.meta)
	return nil
}

func (w *SnapshotWriter) commit() error {
	if _, err := w.bw.Write(binary.LittleEndian.AppendUint32(nil, w.crc)); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(w.f.Name(), filepath.Join(w.s.dir, w.name)); err != nil {
		return err
	}
	return syncDir(w.s.dir)
}

// Abort drops the snapshot. It does nothing after Commit.
func (w *SnapshotWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.f.Name())
}

// add records a committed snapshot and removes the oldest beyond retain.
func (s *Snapshots) add(meta raftpb.SnapshotMetadata) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := func(m raftpb.SnapshotMetadata) string { return snapName(m.Term, m.Index) }
	s.metas = slices.DeleteFunc(s.metas, func(m raftpb.SnapshotMetadata) bool { return key(m) == key(meta) })
	s.metas = append(s.metas, meta)
	slices.SortFunc(s.metas, func(a, b raftpb.SnapshotMetadata) int { return strings.Compare(key(a), key(b)) })
	for len(s.metas) > s.retain {
		old := s.metas[0]
		// A reader that has the file open keeps reading it.
		if err := os.Remove(filepath.Join(s.dir, key(old))); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("removing an old snapshot failed", "term", old.Term, "index", old.Index, "err", err)
		}
		s.metas = s.metas[1:]
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// snapReader reads a snapshot's data and checks the trailer at the end.
type snapReader struct {
	f    *os.File
	name string
	br   *bufio.Reader
	left int64
	crc  uint32
	err  error // sticky: io.EOF once verified, else the failure
}

// newSnapReader reads the header and metadata of f.
func newSnapReader(f *os.File, name string) (*snapReader, int64, raftpb.SnapshotMetadata, error) {
	var meta raftpb.SnapshotMetadata
	corrupt := func(what string) error { return fmt.Errorf("%w: %s: %s", ErrCorrupt, name, what) }
	st, err := f.Stat()
	if err != nil {
		return nil, 0, meta, err
	}
	br := bufio.NewReaderSize(f, 256<<10)
	hdr := make([]byte, snapHdrLen)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, 0, meta, corrupt("short header")
	}
	if string(hdr[:len(snapMagic)]) != snapMagic {
		return nil, 0, meta, corrupt("not a snapshot file")
	}
	if v := binary.LittleEndian.Uint16(hdr[len(snapMagic):]); v != snapVersion {
		return nil, 0, meta, fmt.Errorf("%w: %s has version %d", ErrFormat, name, v)
	}
	n := int64(binary.LittleEndian.Uint32(hdr[len(snapMagic)+2:]))
	size := st.Size() - int64(snapHdrLen) - n - snapTrailer
	if n > maxSnapMeta || size < 0 {
		return nil, 0, meta, corrupt("bad metadata length")
	}
	mb := make([]byte, n)
	if _, err := io.ReadFull(br, mb); err != nil {
		return nil, 0, meta, corrupt("short metadata")
	}
	if err := meta.Unmarshal(mb); err != nil {
		return nil, 0, meta, corrupt(err.Error())
	}
	crc := crc32.Update(crc32.Checksum(hdr, castagnoli), castagnoli, mb)
	return &snapReader{f: f, name: name, br: br, left: size, crc: crc}, size, meta, nil
}

func (r *snapReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.left == 0 {
		r.err = r.checkTrailer()
		return 0, r.err
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.br.Read(p)
	r.crc = crc32.Update(r.crc, castagnoli, p[:n])
	r.left -= int64(n)
	if errors.Is(err, io.EOF) {
		// The file was shorter than it said when opened.
		err = fmt.Errorf("%w: %s: truncated", ErrCorrupt, r.name)
	}
	if err != nil {
		r.err = err
	}
	return n, err
}

func (r *snapReader) checkTrailer() error {
	var b [snapTrailer]byte
	if _, err := io.ReadFull(r.br, b[:]); err != nil {
		return fmt.Errorf("%w: %s: no checksum", ErrCorrupt, r.name)
	}
	if binary.LittleEndian.Uint32(b[:]) != r.crc {
		return fmt.Errorf("%w: %s: checksum mismatch", ErrCorrupt, r.name)
	}
	return io.EOF
}

func (r *snapReader) Close() error { return r.f.Close() }

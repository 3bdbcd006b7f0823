package raftlog

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

func openLog(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return l
}

// makeEntries returns entries from..to of term, each with size bytes of
// data that names it (so that a search of the segment files finds it).
func makeEntries(from, to, term uint64, size int) []raftpb.Entry {
	var ents []raftpb.Entry
	for i := from; i <= to; i++ {
		ents = append(ents, raftpb.Entry{Index: i, Term: term, Data: entryData(i, term, size)})
	}
	return ents
}

func entryData(index, term uint64, size int) []byte {
	tag := fmt.Sprintf("<entry %d term %d>", index, term)
	return bytes.Repeat([]byte(tag), size/len(tag)+1)[:size]
}

func sameEntries(a, b []raftpb.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Index != b[i].Index || a[i].Term != b[i].Term || a[i].Type != b[i].Type || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func describe(ents []raftpb.Entry) string {
	if len(ents) == 0 {
		return "[]"
	}
	return fmt.Sprintf("[%d..%d, %d entries]", ents[0].Index, ents[len(ents)-1].Index, len(ents))
}

// sameErr reports whether two errors are both nil or match the same raft
// sentinel.
func sameErr(a, b error) bool {
	for _, s := range []error{raft.ErrCompacted, raft.ErrUnavailable, raft.ErrSnapOutOfDate} {
		if errors.Is(a, s) != errors.Is(b, s) {
			return false
		}
	}
	return (a == nil) == (b == nil)
}

// model drives a Log and etcd's MemoryStorage with the same random writes
// and checks that every read answers the same.
type model struct {
	t      *testing.T
	rnd    *rand.Rand
	dir    string
	opts   Options
	l      *Log
	ms     *raft.MemoryStorage
	term   uint64           // term of new entries
	commit uint64           // raft's commit index: never truncated
	hs     raftpb.HardState // the latest given to Append
}

func TestMatchesMemoryStorage(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			var logs bytes.Buffer
			opts := Options{SegmentSize: 16 << 10, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			if seed%2 == 0 {
				opts.CacheBytes = 2 << 10 // most reads go to disk
			}
			m := &model{t: t, rnd: rand.New(rand.NewPCG(seed, 0)), dir: t.TempDir(), opts: opts, ms: raft.NewMemoryStorage(), term: 1}
			m.l = openLog(t, m.dir, opts)
			defer func() { m.l.Close() }()
			for step := 0; step < 250; step++ {
				switch r := m.rnd.IntN(100); {
				case r < 65:
					m.append()
				case r < 77:
					m.setSnapshot()
				case r < 89:
					m.compact()
				default:
					m.install()
				}
				m.compare(fmt.Sprint("step ", step))
				if step%50 == 49 {
					m.reopen()
					m.compare(fmt.Sprint("reopen after step ", step))
					if strings.Contains(logs.String(), "level=ERROR") {
						t.Fatalf("errors logged:\n%s", logs.String())
					}
				}
			}
		})
	}
}

func (m *model) bounds() (first, last, snap uint64) {
	first, _ = m.ms.FirstIndex()
	last, _ = m.ms.LastIndex()
	s, _ := m.ms.Snapshot()
	return first, last, s.Metadata.Index
}

func (m *model) append() {
	first, last, snap := m.bounds()
	start := last + 1
	switch r := m.rnd.IntN(10); {
	case r < 3:
		// A new leader overwrites a suffix that is neither committed nor
		// in the snapshot.
		if lo := max(snap, m.commit, first-1) + 1; lo <= last {
			start = lo + m.rnd.Uint64N(last-lo+1)
			m.term++
		}
	case r < 4:
		// Entries that begin below the compaction point.
		if first > 1 && m.commit < first && snap < first {
			start = first - 1 - m.rnd.Uint64N(min(3, first-1))
			m.term++
		}
	}
	n := 1 + m.rnd.Uint64N(8)
	ents := make([]raftpb.Entry, n)
	for i := range ents {
		ents[i] = raftpb.Entry{Index: start + uint64(i), Term: m.term, Type: raftpb.EntryType(m.rnd.IntN(3))}
		if size := m.rnd.IntN(300); size > 0 {
			ents[i].Data = entryData(ents[i].Index, m.term, size)
		}
	}
	var hs raftpb.HardState
	if m.rnd.IntN(2) == 0 {
		if m.rnd.IntN(4) == 0 {
			m.term++
		}
		newLast := start + n - 1
		m.commit = max(m.commit, min(m.commit+m.rnd.Uint64N(10), newLast))
		hs = raftpb.HardState{Term: m.term, Vote: m.rnd.Uint64N(4), Commit: m.commit}
		m.hs = hs
	}
	if err := m.ms.Append(ents); err != nil {
		m.t.Fatal(err)
	}
	if err := m.l.Append(hs, ents); err != nil {
		m.t.Fatalf("Append(%+v, %s): %v", hs, describe(ents), err)
	}
}

func (m *model) confState() raftpb.ConfState {
	var cs raftpb.ConfState
	for id := uint64(1); id <= 5; id++ {
		if m.rnd.IntN(2) == 0 || id == 5 && len(cs.Voters) == 0 {
			cs.Voters = append(cs.Voters, id)
		}
	}
	return cs
}

func (m *model) setSnapshot() {
	_, last, snap := m.bounds()
	if last <= snap {
		return
	}
	i := snap + 1 + m.rnd.Uint64N(last-snap)
	cs := m.confState()
	s, err := m.ms.CreateSnapshot(i, &cs, nil)
	if err != nil {
		m.t.Fatal(err)
	}
	if err := m.l.SetSnapshot(s.Metadata); err != nil {
		m.t.Fatalf("SetSnapshot(%d): %v", i, err)
	}
	m.commit = max(m.commit, i)
}

func (m *model) compact() {
	first, _, snap := m.bounds()
	var i uint64
	switch {
	case m.rnd.IntN(8) == 0 && first > 1:
		i = 1 + m.rnd.Uint64N(first-1) // already compacted: ErrCompacted from both
	case snap >= first:
		i = first + m.rnd.Uint64N(snap-first+1)
	default:
		return
	}
	errM, errL := m.ms.Compact(i), m.l.Compact(i)
	if !sameErr(errM, errL) {
		m.t.Fatalf("Compact(%d): MemoryStorage %v, Log %v", i, errM, errL)
	}
}

func (m *model) install() {
	// Raft installs only snapshots beyond its commit index.
	_, last, snap := m.bounds()
	lo := max(snap, m.commit) + 1
	if lo > last+5 {
		return
	}
	meta := raftpb.SnapshotMetadata{Index: lo + m.rnd.Uint64N(last+5-lo+1), ConfState: m.confState()}
	if t, err := m.ms.Term(meta.Index); err == nil && m.rnd.IntN(2) == 0 {
		// The log holds the snapshot's last entry: only the entries up to
		// it go (MemoryStorage: take a snapshot there and compact).
		meta.Term = t
		if _, err := m.ms.CreateSnapshot(meta.Index, &meta.ConfState, nil); err != nil {
			m.t.Fatal(err)
		}
		if err := m.ms.Compact(meta.Index); err != nil {
			m.t.Fatal(err)
		}
	} else {
		m.term++
		meta.Term = m.term
		if err := m.ms.ApplySnapshot(raftpb.Snapshot{Metadata: meta}); err != nil {
			m.t.Fatal(err)
		}
	}
	if err := m.l.InstallSnapshot(meta); err != nil {
		m.t.Fatalf("InstallSnapshot(%d, %d): %v", meta.Index, meta.Term, err)
	}
	m.commit = max(m.commit, meta.Index)
	if err := m.l.InstallSnapshot(meta); !errors.Is(err, raft.ErrSnapOutOfDate) {
		m.t.Fatalf("second InstallSnapshot(%d): %v, want ErrSnapOutOfDate", meta.Index, err)
	}
}

func (m *model) reopen() {
	if err := m.l.Close(); err != nil {
		m.t.Fatalf("close: %v", err)
	}
	m.l = openLog(m.t, m.dir, m.opts)
}

func (m *model) compare(when string) {
	t := m.t
	first, last, _ := m.bounds()
	if f, _ := m.l.FirstIndex(); f != first {
		t.Fatalf("%s: FirstIndex %d, want %d", when, f, first)
	}
	if l, _ := m.l.LastIndex(); l != last {
		t.Fatalf("%s: LastIndex %d, want %d", when, l, last)
	}
	for i := max(first, 2) - 2; i <= last+2; i++ {
		tm, errM := m.ms.Term(i)
		tl, errL := m.l.Term(i)
		if tm != tl || !sameErr(errM, errL) {
			t.Fatalf("%s: Term(%d) = %d, %v; want %d, %v", when, i, tl, errL, tm, errM)
		}
	}
	check := func(lo, hi, maxSize uint64) {
		em, errM := m.ms.Entries(lo, hi, maxSize)
		el, errL := m.l.Entries(lo, hi, maxSize)
		if !sameEntries(em, el) || !sameErr(errM, errL) {
			t.Fatalf("%s: Entries(%d, %d, %d) = %s, %v; want %s, %v", when, lo, hi, maxSize, describe(el), errL, describe(em), errM)
		}
		if errL != nil && errL != raft.ErrCompacted && errL != raft.ErrUnavailable {
			t.Fatalf("%s: Entries(%d, %d): %v is not raft's bare sentinel", when, lo, hi, errL)
		}
	}
	check(first, last+1, math.MaxUint64)
	for range 6 {
		lo := first - 1 + m.rnd.Uint64N(last-first+2)
		if lo > last {
			continue
		}
		hi := lo + 1 + m.rnd.Uint64N(last-lo+1)
		check(lo, hi, []uint64{0, m.rnd.Uint64N(2000), math.MaxUint64}[m.rnd.IntN(3)])
	}
	if _, err := m.l.Entries(first, last+2, math.MaxUint64); err != raft.ErrUnavailable {
		t.Fatalf("%s: Entries beyond the last: %v, want ErrUnavailable", when, err)
	}

	sm, _ := m.ms.Snapshot()
	sl, _ := m.l.Snapshot()
	if !reflect.DeepEqual(sm.Metadata, sl.Metadata) || len(sl.Data) != 0 {
		t.Fatalf("%s: Snapshot %+v, want %+v", when, sl.Metadata, sm.Metadata)
	}
	hs, cs, err := m.l.InitialState()
	want := m.hs
	if !raft.IsEmptyHardState(want) || sm.Metadata.Index > 0 {
		want.Commit = min(max(want.Commit, sm.Metadata.Index), last)
	}
	if err != nil || hs != want || !reflect.DeepEqual(cs, sm.Metadata.ConfState) {
		t.Fatalf("%s: InitialState %+v, %+v, %v; want %+v, %+v", when, hs, cs, err, want, sm.Metadata.ConfState)
	}
}

// TestEntriesAreNeverChanged: appending to a slice Entries returned does
// not change the log, and the log's later overwrites do not change the
// slice.
func TestEntriesAreNeverChanged(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{})
	defer l.Close()
	if err := l.Append(raftpb.HardState{}, makeEntries(1, 10, 1, 10)); err != nil {
		t.Fatal(err)
	}
	got, err := l.Entries(3, 7, math.MaxUint64)
	if err != nil {
		t.Fatal(err)
	}
	keep := append([]raftpb.Entry(nil), got...)
	_ = append(got, raftpb.Entry{Index: 99, Term: 99}) // the caller may append
	if ents, _ := l.Entries(7, 8, math.MaxUint64); !sameEntries(ents, makeEntries(7, 7, 1, 10)) {
		t.Fatalf("the caller's append changed the log: entry 7 is %v", ents)
	}
	// Few enough entries to fit the cache's spare capacity.
	if err := l.Append(raftpb.HardState{}, makeEntries(5, 6, 2, 10)); err != nil {
		t.Fatal(err)
	}
	if !sameEntries(got, keep) {
		t.Fatalf("an overwrite changed returned entries: %v", got)
	}
	now, _ := l.Entries(3, 7, math.MaxUint64)
	if !sameEntries(now, append(makeEntries(3, 4, 1, 10), makeEntries(5, 6, 2, 10)...)) {
		t.Fatalf("after the overwrite: %v", now)
	}
}

// TestCacheServesRecentEntriesWithoutDisk: with the WAL closed under it,
// recent entries still come from memory and older ones fail.
func TestCacheServesRecentEntriesWithoutDisk(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{CacheBytes: 10 * 100})
	defer l.Close()
	for i := uint64(1); i <= 30; i += 5 {
		if err := l.Append(raftpb.HardState{}, makeEntries(i, i+4, 1, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.wal.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, err := l.Entries(21, 31, math.MaxUint64); err != nil || !sameEntries(ents, makeEntries(21, 30, 1, 100)) {
		t.Fatalf("recent entries: %s, %v", describe(ents), err)
	}
	if term, err := l.Term(21); err != nil || term != 1 {
		t.Fatalf("Term(21) = %d, %v", term, err)
	}
	if _, err := l.Entries(20, 31, math.MaxUint64); !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("entry 20 should have come from disk: %v", err)
	}
}

// TestHardStateSaves: term and vote changes are saved at once, commit on
// its own at most every CommitSaveInterval, and at Close.
func TestHardStateSaves(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{CommitSaveInterval: time.Hour})
	saved := func() raftpb.HardState {
		t.Helper()
		var hs raftpb.HardState
		b, err := l.meta.GetStable(keyHardState)
		if err != nil || hs.Unmarshal(b) != nil {
			t.Fatalf("read saved hard state: %v", err)
		}
		return hs
	}
	if err := l.Append(raftpb.HardState{Term: 2, Vote: 1, Commit: 3}, makeEntries(1, 10, 2, 10)); err != nil {
		t.Fatal(err)
	}
	if hs := saved(); hs != (raftpb.HardState{Term: 2, Vote: 1, Commit: 3}) {
		t.Fatalf("after a term change: saved %+v", hs)
	}
	if err := l.Append(raftpb.HardState{Term: 2, Vote: 1, Commit: 8}, nil); err != nil {
		t.Fatal(err)
	}
	if hs := saved(); hs.Commit != 3 {
		t.Fatalf("commit alone saved at once: %+v", hs)
	}
	if hs, _, _ := l.InitialState(); hs.Commit != 8 {
		t.Fatalf("InitialState commit %d, want 8 (the latest given)", hs.Commit)
	}
	if err := l.Append(raftpb.HardState{Term: 2, Vote: 3, Commit: 9}, nil); err != nil {
		t.Fatal(err)
	}
	if hs := saved(); hs != (raftpb.HardState{Term: 2, Vote: 3, Commit: 9}) {
		t.Fatalf("after a vote change: saved %+v", hs)
	}
	l.opts.CommitSaveInterval = time.Nanosecond
	if err := l.Append(raftpb.HardState{Term: 2, Vote: 3, Commit: 10}, nil); err != nil {
		t.Fatal(err)
	}
	if hs := saved(); hs.Commit != 10 {
		t.Fatalf("commit not saved once the interval passed: %+v", hs)
	}
	l.opts.CommitSaveInterval = time.Hour
	if err := l.Append(raftpb.HardState{Term: 2, Vote: 3, Commit: 10}, makeEntries(11, 12, 2, 10)); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(raftpb.HardState{Term: 2, Vote: 3, Commit: 12}, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, Options{})
	defer l.Close()
	if hs, _, _ := l.InitialState(); hs != (raftpb.HardState{Term: 2, Vote: 3, Commit: 12}) {
		t.Fatalf("after Close and Open: %+v", hs)
	}
}

// TestInitialStateCommitWithinLog: Commit is raised to the snapshot's
// index and capped at the last entry.
func TestInitialStateCommitWithinLog(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	if err := l.Append(raftpb.HardState{Term: 1, Commit: 2}, makeEntries(1, 5, 1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := l.InstallSnapshot(raftpb.SnapshotMetadata{Index: 20, Term: 3, ConfState: raftpb.ConfState{Voters: []uint64{1}}}); err != nil {
		t.Fatal(err)
	}
	if hs, cs, _ := l.InitialState(); hs.Commit != 20 || !reflect.DeepEqual(cs.Voters, []uint64{1}) {
		t.Fatalf("InitialState %+v %+v, want commit 20 and the snapshot's voters", hs, cs)
	}
	l.Close()
	l = openLog(t, dir, Options{})
	defer l.Close()
	if hs, _, _ := l.InitialState(); hs.Commit != 20 {
		t.Fatalf("after reopen: %+v, want commit 20", hs)
	}
	// A saved commit beyond the log (its tail lost) is capped.
	l.hs.Commit = 99
	if hs, _, _ := l.InitialState(); hs.Commit != 20 {
		t.Fatalf("commit beyond the log: %+v, want 20", hs)
	}
}

// TestOpenFinishesInterruptedInstall: the snapshot record saved, the
// process gone before the replaced entries were deleted.
func TestOpenFinishesInterruptedInstall(t *testing.T) {
	for _, tc := range []struct {
		name        string
		index, term uint64
		wantLast    uint64
	}{
		{"term differs at the index", 15, 5, 15},
		{"log ends before the index", 40, 5, 40},
		{"log holds the index and term", 15, 1, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, Options{})
			if err := l.Append(raftpb.HardState{Term: 1}, makeEntries(1, 20, 1, 10)); err != nil {
				t.Fatal(err)
			}
			meta := raftpb.SnapshotMetadata{Index: tc.index, Term: tc.term}
			if err := l.saveSnapRecord(snapRecord{tc.index, tc.term, meta}); err != nil {
				t.Fatal(err)
			}
			l.Close()
			l = openLog(t, dir, Options{})
			defer l.Close()
			first, _ := l.FirstIndex()
			last, _ := l.LastIndex()
			if first != tc.index+1 || last != tc.wantLast {
				t.Fatalf("log %d..%d, want %d..%d", first, last, tc.index+1, tc.wantLast)
			}
			if term, _ := l.Term(tc.index); term != tc.term {
				t.Fatalf("Term(%d) = %d, want %d", tc.index, term, tc.term)
			}
			if err := l.Append(raftpb.HardState{}, makeEntries(last+1, last+3, 6, 10)); err != nil {
				t.Fatalf("append after open: %v", err)
			}
		})
	}
}

func TestOpenRefusesOtherFormats(t *testing.T) {
	t.Run("stray file", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "raft.db"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrFormat) {
			t.Fatalf("Open: %v, want ErrFormat", err)
		}
	})
	t.Run("hashicorp raft log", func(t *testing.T) {
		dir := t.TempDir()
		w, err := wal.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.StoreLogs([]*hraft.Log{{Index: 1, Term: 1, Type: hraft.LogCommand, Data: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
		w.Close()
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrFormat) {
			t.Fatalf("Open: %v, want ErrFormat", err)
		}
		// It was not changed: raft-wal still reads it.
		w, err = wal.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if last, _ := w.LastIndex(); last != 1 {
			t.Fatalf("foreign log's last index %d after our Open", last)
		}
	})
	t.Run("hashicorp raft stable store", func(t *testing.T) {
		dir := t.TempDir()
		w, err := wal.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.SetUint64([]byte("CurrentTerm"), 3); err != nil {
			t.Fatal(err)
		}
		w.Close()
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrFormat) {
			t.Fatalf("Open: %v, want ErrFormat", err)
		}
	})
}

func TestOpenTwiceFails(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "by process "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second Open: %v, want ErrLocked naming this process", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, Options{}) // Close released everything
	l.Close()
}

func TestInvalidWrites(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{})
	defer l.Close()
	if err := l.Append(raftpb.HardState{}, makeEntries(1, 10, 1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := l.SetSnapshot(raftpb.SnapshotMetadata{Index: 6, Term: 1}); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"gap":                    l.Append(raftpb.HardState{}, makeEntries(12, 13, 1, 10)),
		"not consecutive":        l.Append(raftpb.HardState{}, append(makeEntries(11, 12, 1, 10), makeEntries(14, 14, 1, 10)...)),
		"overwrite the snapshot": l.Append(raftpb.HardState{}, makeEntries(6, 7, 2, 10)),
		"snapshot term":          l.SetSnapshot(raftpb.SnapshotMetadata{Index: 8, Term: 2}),
		"snapshot beyond log":    l.SetSnapshot(raftpb.SnapshotMetadata{Index: 11, Term: 1}),
		"compact beyond snap":    l.Compact(7),
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := l.SetSnapshot(raftpb.SnapshotMetadata{Index: 5, Term: 1}); !errors.Is(err, raft.ErrSnapOutOfDate) {
		t.Errorf("older snapshot: %v", err)
	}
	// Nothing was changed, and the log still takes writes.
	if last, _ := l.LastIndex(); last != 10 {
		t.Fatalf("last %d", last)
	}
	if err := l.Append(raftpb.HardState{}, makeEntries(11, 11, 1, 10)); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentReads runs raft.Storage reads against one writer that
// appends, overwrites, snapshots and compacts (run with -race).
func TestConcurrentReads(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{SegmentSize: 32 << 10, CacheBytes: 4 << 10})
	defer l.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				first, _ := l.FirstIndex()
				last, _ := l.LastIndex()
				ents, err := l.Entries(first, last+1, 64<<10)
				if err == raft.ErrCompacted || err == raft.ErrUnavailable {
					continue // raced with a compaction or a truncation
				}
				if err != nil {
					errs <- err
					return
				}
				for i := range ents {
					if ents[i].Index != first+uint64(i) || !bytes.Equal(ents[i].Data, entryData(ents[i].Index, ents[i].Term, 200)) {
						errs <- fmt.Errorf("entry %d of Entries(%d, ...) is %d/%d", i, first, ents[i].Index, ents[i].Term)
						return
					}
				}
				if _, err := l.Term(last); err != nil && err != raft.ErrCompacted && err != raft.ErrUnavailable {
					errs <- err
					return
				}
			}
		}()
	}
	var last, term uint64 = 0, 1
	for round := 0; round < 200; round++ {
		from := last + 1
		if round%7 == 6 {
			from, term = last-2, term+1 // overwrite
		}
		if err := l.Append(raftpb.HardState{Term: term, Commit: from - 1}, makeEntries(from, from+9, term, 200)); err != nil {
			t.Fatal(err)
		}
		last = from + 9
		if round%20 == 19 {
			if err := l.SetSnapshot(raftpb.SnapshotMetadata{Index: last - 5, Term: term}); err != nil {
				t.Fatal(err)
			}
			if err := l.Compact(last - 30); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

func TestEntryTypesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{CacheBytes: -1})
	ents := []raftpb.Entry{
		{Index: 1, Term: 1, Type: raftpb.EntryNormal, Data: []byte("n")},
		{Index: 2, Term: 1, Type: raftpb.EntryConfChange, Data: []byte("c")},
		{Index: 3, Term: 2, Type: raftpb.EntryConfChangeV2, Data: []byte("v2")},
		{Index: 4, Term: 2, Type: raftpb.EntryNormal},
	}
	if err := l.Append(raftpb.HardState{}, ents); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(raftpb.HardState{}, []raftpb.Entry{{Index: 5, Term: 2, Type: 3}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown type: %v", err)
	}
	// The documented mapping onto raft-wal's records.
	for i, want := range []hraft.LogType{logTypeNormal, logTypeConfChange, logTypeConfChangeV2, 0x40} {
		var rec hraft.Log
		if err := l.wal.GetLog(uint64(i+1), &rec); err != nil || rec.Type != want {
			t.Fatalf("record %d has type %d, %v; want %d", i+1, rec.Type, err, want)
		}
	}
	l.Close()
	l = openLog(t, dir, Options{})
	defer l.Close()
	got, err := l.Entries(1, 5, math.MaxUint64)
	if err != nil || !sameEntries(got, ents) {
		t.Fatalf("got %v, %v", got, err)
	}
}

// Every append is counted in the latency histogram, in a bucket at least
// as large as its time.
func TestAppendLatencyIsCounted(t *testing.T) {
	l, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := uint64(1); i <= 5; i++ {
		if err := l.Append(raftpb.HardState{}, []raftpb.Entry{{Index: i, Term: 1, Data: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	h := l.AppendLatency()
	if h.Count != 5 || h.Sum <= 0 || len(h.Buckets) != len(AppendBuckets) {
		t.Fatalf("histogram %+v after 5 appends", h)
	}
	for i := 1; i < len(h.Buckets); i++ {
		if h.Buckets[i] < h.Buckets[i-1] {
			t.Fatalf("buckets not cumulative: %v", h.Buckets)
		}
	}
	if last := h.Buckets[len(h.Buckets)-1]; last > 5 {
		t.Fatalf("more appends in the buckets (%d) than made", last)
	}
}

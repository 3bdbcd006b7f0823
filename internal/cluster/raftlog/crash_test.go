package raftlog

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// A crash test re-executes the test binary; the child, told by these
// variables what to do and where, writes and then SIGKILLs itself without
// closing anything.
const (
	childEnv    = "RAFTLOG_CRASH_CHILD"
	childDirEnv = "RAFTLOG_CRASH_DIR"
)

var crashOpts = Options{SegmentSize: 64 << 10, CommitSaveInterval: time.Hour}

// crashChild runs the test's child part if this process is the child and
// reports whether it was.
func crashChild(t *testing.T, write func(l *Log) error) bool {
	if os.Getenv(childEnv) != t.Name() {
		return false
	}
	l, err := Open(os.Getenv(childDirEnv), crashOpts)
	if err == nil {
		err = write(l)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// runCrashChild runs the child of the calling test in dir and checks that
// it died by SIGKILL.
func runCrashChild(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name(), childDirEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
	}
}

func appendBatches(l *Log, from, to, term uint64, size int) error {
	for i := from; i <= to; i += 10 {
		if err := l.Append(raftpb.HardState{Term: term}, makeEntries(i, min(i+9, to), term, size)); err != nil {
			return err
		}
	}
	return nil
}

func expectEntries(t *testing.T, l *Log, want []raftpb.Entry) {
	t.Helper()
	lo, hi := want[0].Index, want[len(want)-1].Index+1
	got, err := l.Entries(lo, hi, math.MaxUint64)
	if err != nil || !sameEntries(got, want) {
		t.Fatalf("Entries(%d, %d) = %s, %v; want %s", lo, hi, describe(got), err, describe(want))
	}
	if last, _ := l.LastIndex(); last != hi-1 {
		t.Fatalf("last index %d, want %d", last, hi-1)
	}
}

// TestCrashAfterTruncation: a new leader's entries replace a suffix, then
// the process is killed. The reopened log holds exactly the new log, and
// appending goes on.
func TestCrashAfterTruncation(t *testing.T) {
	if crashChild(t, func(l *Log) error {
		if err := appendBatches(l, 1, 120, 1, 1000); err != nil {
			return err
		}
		return l.Append(raftpb.HardState{Term: 2, Commit: 100}, makeEntries(101, 105, 2, 1000))
	}) {
		return
	}
	dir := t.TempDir()
	runCrashChild(t, dir)
	l := openLog(t, dir, crashOpts)
	want := append(makeEntries(1, 100, 1, 1000), makeEntries(101, 105, 2, 1000)...)
	expectEntries(t, l, want)
	if err := l.Append(raftpb.HardState{}, makeEntries(106, 110, 2, 1000)); err != nil {
		t.Fatalf("append after reopen: %v", err)
	}
	l.Close()
	l = openLog(t, dir, crashOpts)
	defer l.Close()
	expectEntries(t, l, append(want, makeEntries(106, 110, 2, 1000)...))
}

// TestCrashKeepsTermAndVote: term and vote are on disk when Append
// returns; a commit that moved alone within CommitSaveInterval is not.
func TestCrashKeepsTermAndVote(t *testing.T) {
	if crashChild(t, func(l *Log) error {
		if err := l.Append(raftpb.HardState{Term: 3, Vote: 2, Commit: 4}, makeEntries(1, 5, 3, 100)); err != nil {
			return err
		}
		if err := l.Append(raftpb.HardState{Term: 4, Vote: 3, Commit: 4}, nil); err != nil {
			return err
		}
		return l.Append(raftpb.HardState{Term: 4, Vote: 3, Commit: 7}, makeEntries(6, 8, 4, 100))
	}) {
		return
	}
	dir := t.TempDir()
	runCrashChild(t, dir)
	l := openLog(t, dir, crashOpts)
	defer l.Close()
	hs, _, err := l.InitialState()
	if err != nil || hs != (raftpb.HardState{Term: 4, Vote: 3, Commit: 4}) {
		t.Fatalf("InitialState %+v, %v; want term 4, vote 3, commit 4 (the commit saved with them)", hs, err)
	}
	expectEntries(t, l, append(makeEntries(1, 5, 3, 100), makeEntries(6, 8, 4, 100)...))
}

// TestCrashAfterCompaction: snapshot and compaction, then kill.
func TestCrashAfterCompaction(t *testing.T) {
	cs := raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	if crashChild(t, func(l *Log) error {
		if err := appendBatches(l, 1, 300, 2, 1000); err != nil {
			return err
		}
		if err := l.SetSnapshot(raftpb.SnapshotMetadata{Index: 200, Term: 2, ConfState: cs}); err != nil {
			return err
		}
		return l.Compact(150)
	}) {
		return
	}
	dir := t.TempDir()
	runCrashChild(t, dir)
	l := openLog(t, dir, crashOpts)
	defer l.Close()
	if first, _ := l.FirstIndex(); first != 151 {
		t.Fatalf("first index %d, want 151", first)
	}
	if term, err := l.Term(150); term != 2 || err != nil {
		t.Fatalf("Term(150) = %d, %v", term, err)
	}
	if _, err := l.Term(149); err != raft.ErrCompacted {
		t.Fatalf("Term(149): %v, want ErrCompacted", err)
	}
	if _, err := l.Entries(150, 200, math.MaxUint64); err != raft.ErrCompacted {
		t.Fatalf("Entries(150, ...): %v, want ErrCompacted", err)
	}
	expectEntries(t, l, makeEntries(151, 300, 2, 1000))
	snap, _ := l.Snapshot()
	if snap.Metadata.Index != 200 || snap.Metadata.Term != 2 || !slices.Equal(snap.Metadata.ConfState.Voters, cs.Voters) {
		t.Fatalf("snapshot %+v", snap.Metadata)
	}
	// raft-wal deleted the segments wholly below the compaction point.
	if segs := segmentFiles(t, dir); len(segs) == 0 || segmentBase(t, segs[0]) > 151 || segmentBase(t, segs[0]) == 1 {
		t.Fatalf("segments after compaction: %v", segs)
	}
	if err := l.Append(raftpb.HardState{}, makeEntries(301, 305, 2, 1000)); err != nil {
		t.Fatalf("append after reopen: %v", err)
	}
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var segs []string
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".wal") {
			segs = append(segs, filepath.Join(dir, de.Name()))
		}
	}
	return segs // sorted by base index, then id
}

func segmentBase(t *testing.T, path string) uint64 {
	var base, id uint64
	if _, err := fmt.Sscanf(filepath.Base(path), "%020d-%016x.wal", &base, &id); err != nil {
		t.Fatal(err)
	}
	return base
}

// damageTail writes 1..20 in batches of 5 and 21 alone, closes the log,
// and hands the tail segment's bytes and the offset of entry 21's data to
// damage, which returns what to write back.
func damageTail(t *testing.T, damage func(b []byte, entry21, entry15 int) []byte) (dir string) {
	dir = t.TempDir()
	l := openLog(t, dir, Options{SegmentSize: 1 << 20})
	for i := uint64(1); i <= 20; i += 5 {
		if err := l.Append(raftpb.HardState{Term: 1}, makeEntries(i, i+4, 1, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Append(raftpb.HardState{}, makeEntries(21, 21, 1, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, dir)
	tail := segs[len(segs)-1]
	b, err := os.ReadFile(tail)
	if err != nil {
		t.Fatal(err)
	}
	entry21 := bytes.Index(b, entryData(21, 1, 1000))
	entry15 := bytes.Index(b, entryData(15, 1, 1000))
	if entry21 < 0 || entry15 < 0 {
		t.Fatal("entries not found in the tail segment")
	}
	if err := os.WriteFile(tail, damage(b, entry21, entry15), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTornTail: the tail segment ends in the middle of the last batch
// (as after a crash during its write). Open cuts that batch and keeps the
// rest; raft-wal does so silently.
func TestTornTail(t *testing.T) {
	dir := damageTail(t, func(b []byte, entry21, _ int) []byte { return b[:entry21+500] })
	var logs bytes.Buffer
	l := openLog(t, dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer l.Close()
	expectEntries(t, l, makeEntries(1, 20, 1, 1000))
	expectCutReported(t, logs.String())
	if err := l.Append(raftpb.HardState{}, makeEntries(21, 22, 2, 1000)); err != nil {
		t.Fatalf("append after the cut: %v", err)
	}
	expectEntries(t, l, append(makeEntries(1, 20, 1, 1000), makeEntries(21, 22, 2, 1000)...))
}

// TestCorruptLastBatch: a byte flipped inside the last committed batch.
// raft-wal finds that its CRC does not match and drops the whole batch at
// open, silently, as it would a torn write.
func TestCorruptLastBatch(t *testing.T) {
	dir := damageTail(t, func(b []byte, entry21, _ int) []byte {
		b[entry21+500] ^= 0x01
		return b
	})
	var logs bytes.Buffer
	l := openLog(t, dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer l.Close()
	expectEntries(t, l, makeEntries(1, 20, 1, 1000))
	expectCutReported(t, logs.String())
}

// expectCutReported checks that Open said the tail was cut, as raft-wal
// does not.
func expectCutReported(t *testing.T, logs string) {
	t.Helper()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "index=20 closed_index=21") {
		t.Fatalf("Open did not report the cut tail:\n%s", logs)
	}
}

// TestCorruptEarlierBatch: a byte flipped in a batch before the last.
// raft-wal does not notice (it checks only the last batch, at open); the
// entry's own checksum makes reading it fail with ErrCorrupt.
func TestCorruptEarlierBatch(t *testing.T) {
	dir := damageTail(t, func(b []byte, _, entry15 int) []byte {
		b[entry15+500] ^= 0x01
		return b
	})
	l := openLog(t, dir, Options{})
	defer l.Close()
	if last, _ := l.LastIndex(); last != 21 {
		t.Fatalf("last index %d, want 21 (raft-wal keeps the damaged batch)", last)
	}
	if _, err := l.Entries(11, 22, math.MaxUint64); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Entries over the damaged entry: %v, want ErrCorrupt", err)
	}
	if _, err := l.Term(15); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Term(15): %v, want ErrCorrupt", err)
	}
	expectEntries(t, l, makeEntries(16, 21, 1, 1000))
}

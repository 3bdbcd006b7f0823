package raftlog

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func snapMeta(term, index uint64) raftpb.SnapshotMetadata {
	return raftpb.SnapshotMetadata{Term: term, Index: index, ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}}
}

func snapData(index uint64, size int) []byte {
	b := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(index)})
	_, _ = r.Read(b)
	return b
}

func saveSnapshot(t *testing.T, s *Snapshots, meta raftpb.SnapshotMetadata, data []byte) {
	t.Helper()
	w, err := s.Create(meta)
	if err != nil {
		t.Fatal(err)
	}
	for len(data) > 0 { // in uneven pieces
		n := min(len(data), 7919)
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func readSnapshot(s *Snapshots, meta raftpb.SnapshotMetadata) ([]byte, int64, error) {
	rc, size, err := s.Open(meta)
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return b, size, err
}

func snapFile(dir string, meta raftpb.SnapshotMetadata) string {
	return filepath.Join(dir, snapName(meta.Term, meta.Index))
}

func TestSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSnapshots(dir, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Latest(); ok {
		t.Fatal("Latest of an empty directory")
	}
	meta, data := snapMeta(3, 1000), snapData(1, 1<<20+13)
	saveSnapshot(t, s, meta, data)
	for _, s := range []*Snapshots{s, mustOpenSnapshots(t, dir, 2)} {
		if got, ok := s.Latest(); !ok || !reflect.DeepEqual(got, meta) {
			t.Fatalf("Latest %+v %v, want %+v", got, ok, meta)
		}
		got, size, err := readSnapshot(s, meta)
		if err != nil || size != int64(len(data)) || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes (size %d), %v; want %d bytes", len(got), size, err, len(data))
		}
	}
	if _, _, err := s.Open(snapMeta(3, 999)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open of a missing snapshot: %v", err)
	}
	// An empty snapshot is a snapshot.
	saveSnapshot(t, s, snapMeta(3, 1001), nil)
	if got, size, err := readSnapshot(s, snapMeta(3, 1001)); err != nil || size != 0 || len(got) != 0 {
		t.Fatalf("empty snapshot: %d bytes, size %d, %v", len(got), size, err)
	}
}

func mustOpenSnapshots(t *testing.T, dir string, retain int) *Snapshots {
	t.Helper()
	s, err := OpenSnapshots(dir, retain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSnapshotChecksum(t *testing.T) {
	for name, pos := range map[string]func(size int) int{
		"trailer": func(size int) int { return size - 1 },
		"data":    func(size int) int { return size / 2 },
		"header":  func(size int) int { return snapHdrLen + 2 }, // inside the metadata
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpenSnapshots(t, dir, 2)
			meta := snapMeta(2, 50)
			saveSnapshot(t, s, meta, snapData(2, 100000))
			b, err := os.ReadFile(snapFile(dir, meta))
			if err != nil {
				t.Fatal(err)
			}
			b[pos(len(b))] ^= 0x20
			if err := os.WriteFile(snapFile(dir, meta), b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := readSnapshot(s, meta); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read: %v, want ErrCorrupt", err)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		dir := t.TempDir()
		s := mustOpenSnapshots(t, dir, 2)
		meta := snapMeta(2, 50)
		saveSnapshot(t, s, meta, snapData(2, 100000))
		if err := os.Truncate(snapFile(dir, meta), 5000); err != nil {
			t.Fatal(err)
		}
		if _, _, err := readSnapshot(s, meta); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("read of a cut file: %v, want ErrCorrupt", err)
		}
	})
}

func TestSnapshotLeftoverTempRemoved(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenSnapshots(t, dir, 2)
	w, err := s.Create(snapMeta(1, 10))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half a snapshot")); err != nil {
		t.Fatal(err)
	}
	// The process dies here: no Commit, no Abort.
	if tmps := tempFiles(t, dir); len(tmps) != 1 {
		t.Fatalf("temp files while writing: %v", tmps)
	}
	s = mustOpenSnapshots(t, dir, 2)
	if tmps := tempFiles(t, dir); len(tmps) != 0 {
		t.Fatalf("temp files after open: %v", tmps)
	}
	if _, ok := s.Latest(); ok {
		t.Fatal("an uncommitted snapshot is visible")
	}
	w, err = s.Create(snapMeta(1, 10))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if tmps := tempFiles(t, dir); len(tmps) != 0 {
		t.Fatalf("temp files after Abort: %v", tmps)
	}
}

func tempFiles(t *testing.T, dir string) []string {
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tmps []string
	for _, de := range des {
		if strings.HasSuffix(de.Name(), tmpSuffix) {
			tmps = append(tmps, de.Name())
		}
	}
	return tmps
}

func TestSnapshotCorruptNewestFallsBack(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenSnapshots(t, dir, 3)
	older, newer := snapMeta(2, 100), snapMeta(3, 200)
	saveSnapshot(t, s, older, snapData(1, 5000))
	saveSnapshot(t, s, newer, snapData(2, 5000))
	b, _ := os.ReadFile(snapFile(dir, newer))
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(snapFile(dir, newer), b, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err := OpenSnapshots(dir, 3, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Latest(); !ok || got.Index != older.Index || got.Term != older.Term || !slices.Equal(got.ConfState.Voters, older.ConfState.Voters) {
		t.Fatalf("Latest %+v, want the older snapshot", got)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "index=200") {
		t.Fatalf("no warning about the corrupt snapshot: %s", logs.String())
	}
	if _, err := os.Stat(snapFile(dir, newer)); err != nil {
		t.Fatalf("the corrupt snapshot was not left in place: %v", err)
	}
}

func TestSnapshotRetain(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenSnapshots(t, dir, 2)
	var metas []raftpb.SnapshotMetadata
	for i := uint64(1); i <= 4; i++ {
		metas = append(metas, snapMeta(1+i/3, i*100))
		saveSnapshot(t, s, metas[len(metas)-1], snapData(i, 1000))
	}
	des, _ := os.ReadDir(dir)
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	want := []string{snapName(metas[2].Term, metas[2].Index), snapName(metas[3].Term, metas[3].Index)}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	if _, _, err := s.Open(metas[1]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a dropped snapshot: %v", err)
	}
	if got, _ := s.Latest(); got.Index != 400 {
		t.Fatalf("Latest %+v", got)
	}
	// Retention counts from what is on disk at open too.
	s = mustOpenSnapshots(t, dir, 2)
	saveSnapshot(t, s, snapMeta(5, 500), nil)
	if _, _, err := s.Open(metas[2]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the oldest after a reopen: %v", err)
	}
}

func TestSnapshotsRefuseOtherFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "2-100-1700000000"), 0o700); err != nil { // hashicorp/raft's layout
		t.Fatal(err)
	}
	if _, err := OpenSnapshots(dir, 2, nil); !errors.Is(err, ErrFormat) {
		t.Fatalf("OpenSnapshots: %v, want ErrFormat", err)
	}
}

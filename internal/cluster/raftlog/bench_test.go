package raftlog

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// Run these on the disk the log will use: t.TempDir is under $TMPDIR.
const (
	benchBatch     = 24   // entries per Append (a group commit)
	benchEntrySize = 1024 // bytes of data per entry
)

// BenchmarkAppend is the cost of one group commit: 24 entries of 1 KB and
// a hard state whose commit moved (saved once a second). ns/op is per
// Append; compare with BenchmarkFsync for the share the disk takes.
func BenchmarkAppend(b *testing.B) {
	l := openLog(b, b.TempDir(), Options{})
	defer l.Close()
	data := make([]byte, benchEntrySize)
	ents := make([]raftpb.Entry, benchBatch)
	b.SetBytes(benchBatch * benchEntrySize)
	b.ReportAllocs()
	next := uint64(1)
	for b.Loop() {
		for i := range ents {
			ents[i] = raftpb.Entry{Index: next, Term: 1, Data: data}
			next++
		}
		if err := l.Append(raftpb.HardState{Term: 1, Vote: 1, Commit: next - 1}, ents); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFsync is the floor under BenchmarkAppend: write what one
// Append writes (24 KB of data plus raft-wal's framing) after the last
// write in a preallocated file, and fsync it, as raft-wal does. Like
// raft-wal it always writes blocks not written before (in a new file once
// one is full): on ext4 the fsync then also commits the extents' change
// from preallocated to written.
func BenchmarkFsync(b *testing.B) {
	const size = 64 << 20
	dir := b.TempDir()
	var f *os.File
	defer func() { f.Close() }()
	next := func(n int) {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
		var err error
		if f, err = os.Create(filepath.Join(dir, fmt.Sprint(n))); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, benchBatch*(benchEntrySize+40))
	b.SetBytes(benchBatch * benchEntrySize)
	off, files := int64(size), 0
	for b.Loop() {
		if off+int64(len(buf)) > size {
			files++
			next(files)
			off = 0
		}
		if _, err := f.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		off += int64(len(buf))
	}
}

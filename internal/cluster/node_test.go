package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
)

func openNode(tb testing.TB, dir string) *Node {
	tb.Helper()
	return openNodeWith(tb, Config{DataDir: dir, PeerAddr: "127.0.0.1:0"})
}

func openNodeWith(tb testing.TB, cfg Config) *Node {
	tb.Helper()
	n, err := Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !n.Ready() {
		if time.Now().After(deadline) {
			tb.Fatal("not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return n
}

func set(key, val string) command.Tx {
	return command.Tx{{Op: command.OpSet, Key: []byte(key), Args: [][]byte{[]byte(val)}}}
}

func TestWriteThenReadAndRestart(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		res, err := n.Write(ctx, set(fmt.Sprint("k", i), fmt.Sprint(i)))
		if err != nil || res.Err != nil || res.Results[0].Kind != command.KindOK {
			t.Fatalf("write %d: %+v %v", i, res, err)
		}
		r, err := n.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte(fmt.Sprint("k", i))})
		if err != nil || string(r.Bulk) != fmt.Sprint(i) {
			t.Fatalf("read-your-write %d: %+v %v", i, r, err)
		}
	}
	id := n.ID()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := n.Write(ctx, set("x", "y")); !errors.Is(err, ErrShutdown) {
		t.Fatalf("write after close: %v", err)
	}
	n2 := openNode(t, dir)
	defer n2.Close()
	if n2.ID() != id {
		t.Fatalf("id %q became %q", id, n2.ID())
	}
	r, _ := n2.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte("k99")})
	if string(r.Bulk) != "99" {
		t.Fatalf("after restart k99 = %q", r.Bulk)
	}
}

// TestCASSurvivesRestart: memcached CAS values are part of the replicated
// state, so a client's gets/cas pair works across a restart.
func TestCASSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir)
	ctx := context.Background()
	res, err := n.Write(ctx, command.Tx{{Op: command.OpMCStore, Key: []byte("k"), Args: [][]byte{[]byte("v")}, ClientFlags: 9}})
	if err != nil || res.Err != nil {
		t.Fatal(err, res.Err)
	}
	cas := res.Results[0].CAS
	if cas == 0 {
		t.Fatal("store returned no CAS value")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2 := openNode(t, dir)
	defer n2.Close()
	r, err := n2.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte("k")})
	if err != nil || r.CAS != cas || r.Flags != 9 {
		t.Fatalf("after restart: CAS %d flags %d (%v), want CAS %d flags 9", r.CAS, r.Flags, err, cas)
	}
	res, err = n2.Write(ctx, command.Tx{{Op: command.OpMCStore, Key: []byte("k"), Args: [][]byte{[]byte("w")}, CAS: cas}})
	if err != nil || res.Results[0].Int != command.Stored || res.Results[0].CAS <= cas {
		t.Fatalf("cas with the value from before the restart: %+v %v", res, err)
	}
}

func TestNodeIDMismatch(t *testing.T) {
	dir := t.TempDir()
	if _, err := loadNodeID(dir, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := loadNodeID(dir, "b"); !errors.Is(err, ErrNodeID) {
		t.Fatalf("got %v", err)
	}
	if id, err := loadNodeID(dir, ""); err != nil || id != "a" {
		t.Fatalf("stored id: %q %v", id, err)
	}
}

func TestConcurrentWritesShareEntries(t *testing.T) {
	n := openNode(t, t.TempDir())
	defer n.Close()
	ctx := context.Background()
	before := n.group.CommitIndex()
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		go func(i int) {
			_, err := n.Write(ctx, set(fmt.Sprint("c", i), "v"))
			errs <- err
		}(i)
	}
	for i := 0; i < 200; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Group commit: 200 concurrent writes must not need 200 log entries.
	if used := n.group.CommitIndex() - before; used >= 200 {
		t.Fatalf("200 concurrent writes took %d log entries", used)
	}
}

// CommitWait holds an entry open only when writes come from several
// clients: a lone writer, one write after another, never waits for
// company that cannot come; many concurrent writers do, and share entries.
func TestCommitWaitOnlyForConcurrentWriters(t *testing.T) {
	n := openNodeWith(t, Config{DataDir: t.TempDir(), PeerAddr: "127.0.0.1:0", CommitWait: time.Millisecond})
	defer n.Close()
	ctx := context.Background()
	for i := range 50 {
		if _, err := n.Write(ctx, set(fmt.Sprint("k", i), "v")); err != nil {
			t.Fatal(err)
		}
	}
	if w := n.Stats().CommitWaits; w != 0 {
		t.Fatalf("a lone writer waited for company %d times", w)
	}
	// Whether a given entry waits depends on what is queued when it
	// starts; over rounds of concurrent writes some must.
	errs := make(chan error, 200)
	for round := 0; n.Stats().CommitWaits == 0; round++ {
		if round == 50 {
			t.Fatal("50 rounds of 200 concurrent writes never held an entry open")
		}
		for i := range 200 {
			go func() {
				_, err := n.Write(ctx, set(fmt.Sprint("c", round, i), "v"))
				errs <- err
			}()
		}
		for range 200 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
}

// BenchmarkWrite measures the durable write path: proposal, Raft log
// append with fsync, apply. Sequential writes pay one fsync each.
func BenchmarkWrite(b *testing.B) {
	n := openNode(b, b.TempDir())
	defer n.Close()
	val := bytes.Repeat([]byte("v"), 1024)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tx := command.Tx{{Op: command.OpSet, Key: []byte(fmt.Sprintf("PHPREDIS_SESSION:%032x", i%100000)), Args: [][]byte{val}, Flags: command.FlagExpireRel, N: 1440000}}
		if _, err := n.Write(ctx, tx); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkWriteParallel measures group commit: many writers share fsyncs.
func BenchmarkWriteParallel(b *testing.B) {
	n := openNode(b, b.TempDir())
	defer n.Close()
	val := bytes.Repeat([]byte("v"), 1024)
	ctx := context.Background()
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer() // opening the node (an election) is not the write path
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			tx := command.Tx{{Op: command.OpSet, Key: []byte(fmt.Sprintf("PHPREDIS_SESSION:%032x", i%100000)), Args: [][]byte{val}}}
			if _, err := n.Write(ctx, tx); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkRead measures the linearizable read path (barrier + lookup).
func BenchmarkRead(b *testing.B) {
	n := openNode(b, b.TempDir())
	defer n.Close()
	ctx := context.Background()
	if _, err := n.Write(ctx, set("k", "v")); err != nil {
		b.Fatal(err)
	}
	cmd := &command.Cmd{Op: command.OpGet, Key: []byte("k")}
	b.ReportAllocs()
	b.ResetTimer() // opening the node (an election) is not the read path
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := n.Read(ctx, cmd); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
)

// crashChildEnv tells a re-executed test binary to play the child of a
// crash test: do its writes in the named directory, then SIGKILL itself.
const crashChildEnv = "HATCHECK_CRASH_CHILD_DIR"

// TestLogSuffixTruncationSurvivesKill is what a leader does when it loses
// leadership holding entries no follower received (Raft logs "clearing log
// suffix" and deletes them), followed by kill -9. raft-wal before v0.4.2
// sealed the tail segment without its index block on that path, and every
// later start panicked with "sealed segment has no index block"
// (hashicorp/raft-wal#31): the node could never start from its data dir.
func TestLogSuffixTruncationSurvivesKill(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		truncateSuffixThenDie(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLogSuffixTruncationSurvivesKill$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
	}

	w, meta, err := openLogStore(dir, 1<<20, newHCLog(slog.New(slog.DiscardHandler), "wal"))
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer meta.Close()
	defer w.Close()
	first, _ := w.FirstIndex()
	last, _ := w.LastIndex()
	if first != 1 || last != crashKeep {
		t.Fatalf("log holds %d..%d after kill, want 1..%d", first, last, crashKeep)
	}
	for i := uint64(1); i <= last; i++ {
		var l raft.Log
		if err := w.GetLog(i, &l); err != nil || string(l.Data) != fmt.Sprint("entry ", i) {
			t.Fatalf("entry %d after kill: %q %v", i, l.Data, err)
		}
	}
	// The log goes on where the truncation left it, as Raft would write
	// the new leader's entries.
	if err := w.StoreLogs(crashLogs(crashKeep+1, crashKeep+5, 3)); err != nil {
		t.Fatalf("append after restart: %v", err)
	}
	if last, _ := w.LastIndex(); last != crashKeep+5 {
		t.Fatalf("last index %d after append, want %d", last, crashKeep+5)
	}
}

const (
	crashWritten = 120 // entries written before the truncation
	crashKeep    = 100 // entries that survive it
)

func crashLogs(from, to, term uint64) []*raft.Log {
	var logs []*raft.Log
	for i := from; i <= to; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte(fmt.Sprint("entry ", i))})
	}
	return logs
}

// truncateSuffixThenDie writes entries in several appends (as Raft does,
// one StoreLogs per batch), deletes the newest ones as Raft does for an
// uncommitted suffix, and dies without closing anything.
func truncateSuffixThenDie(dir string) {
	w, _, err := openLogStore(dir, 1<<20, newHCLog(slog.New(slog.DiscardHandler), "wal"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	for i := uint64(1); i <= crashWritten; i += 10 {
		if err := w.StoreLogs(crashLogs(i, i+9, 2)); err != nil {
			fmt.Fprintln(os.Stderr, "store:", err)
			os.Exit(2)
		}
	}
	if err := w.DeleteRange(crashKeep+1, crashWritten); err != nil {
		fmt.Fprintln(os.Stderr, "delete suffix:", err)
		os.Exit(2)
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

package cluster

import (
	"context"
	"errors"
	"testing"

	"github.com/hatcheck/hatcheck/internal/cluster/raftlog"
)

// TestOpenStopsWhenStartupEnds: an Open whose Startup context is done
// returns its error, unlocks the data dir and closes the peer port, and
// an Open that fails on the data dir lock returns the error (it used to
// panic closing a node it had already dropped).
func TestOpenStopsWhenStartupEnds(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(Config{DataDir: dir, PeerAddr: "127.0.0.1:0", Startup: ctx}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open with its startup canceled: %v, want context.Canceled", err)
	}
	n, err := Open(Config{DataDir: dir, PeerAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("Open after an interrupted one: %v", err)
	}
	defer n.Close()
	if _, err := Open(Config{DataDir: dir, PeerAddr: "127.0.0.1:0"}); !errors.Is(err, raftlog.ErrLocked) {
		t.Fatalf("second Open on a data dir in use: %v, want raftlog.ErrLocked", err)
	}
}

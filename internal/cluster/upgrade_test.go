package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hatcheck/hatcheck/internal/command"
)

// TestUpgradeFromHashicorpRaftDataDir starts a node on a data directory
// written by the last release that ran hashicorp/raft
// (testdata/datadir-hashicorp-raft: node n1; 100 keys "snap:i" written,
// then a clean Close, which took a snapshot; then 50 keys "log:i" with a
// TTL and 50 INCRs of "counter", then a crash, so those live only in the
// log). Every session must survive the conversion, with its TTL.
func TestUpgradeFromHashicorpRaftDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/datadir-hashicorp-raft")); err != nil {
		t.Fatal(err)
	}
	check := func(n *Node) {
		t.Helper()
		ctx := context.Background()
		get := func(key string) command.Result {
			r, err := n.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte(key)})
			if err != nil {
				t.Fatalf("GET %s: %v", key, err)
			}
			return r
		}
		for i := 0; i < 100; i++ {
			if r := get(fmt.Sprint("snap:", i)); string(r.Bulk) != fmt.Sprint("v", i) {
				t.Fatalf("snap:%d = %q after the upgrade", i, r.Bulk)
			}
		}
		for i := 0; i < 50; i++ {
			if r := get(fmt.Sprint("log:", i)); string(r.Bulk) != fmt.Sprint("w", i) {
				t.Fatalf("log:%d = %q after the upgrade", i, r.Bulk)
			}
		}
		if r := get("counter"); string(r.Bulk) != "50" {
			t.Fatalf("counter = %q after the upgrade, want 50", r.Bulk)
		}
		ttl, err := n.Read(ctx, &command.Cmd{Op: command.OpTTL, Key: []byte("log:7")})
		if err != nil || ttl.Int <= 0 {
			t.Fatalf("TTL of log:7 after the upgrade: %+v %v", ttl, err)
		}
		if _, err := n.Write(ctx, set("after", "upgrade")); err != nil {
			t.Fatalf("write after the upgrade: %v", err)
		}
	}
	n := openNode(t, dir)
	if n.ID() != "n1" {
		t.Fatalf("node id %q", n.ID())
	}
	check(n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for _, old := range []string{"wal", "snapshots"} {
		if _, err := os.Stat(filepath.Join(dir, "raft", old+".pre-etcd-raft")); err != nil {
			t.Fatalf("the old %s directory was not kept aside: %v", old, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "raft", old)); !os.IsNotExist(err) {
			t.Fatalf("the old %s directory is still in place: %v", old, err)
		}
	}
	// The second start opens the converted layout as it is.
	n = openNode(t, dir)
	defer n.Close()
	check(n)
}

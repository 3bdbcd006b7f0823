package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	hraft "github.com/hashicorp/raft"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/hatcheck/hatcheck/internal/cluster/group"
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

// Old configuration entries become the membership changes between
// consecutive configurations, so that converted nodes agree on the
// configuration at every index.
func TestOldConfigurationsBecomeChanges(t *testing.T) {
	srv := func(id, addr string, voter bool) hraft.Server {
		s := hraft.Server{ID: hraft.ServerID(id), Address: hraft.ServerAddress(addr), Suffrage: hraft.Nonvoter}
		if voter {
			s.Suffrage = hraft.Voter
		}
		return s
	}
	conf := func(ss ...hraft.Server) hraft.Configuration { return hraft.Configuration{Servers: ss} }
	one := conf(srv("n1", "a1", true))
	for _, tc := range []struct {
		name       string
		prev, next hraft.Configuration
		want       []raftpb.ConfChangeSingle
		about      string // the member named in the context
	}{
		{"add a non-voter", one, conf(srv("n1", "a1", true), srv("n2", "a2", false)),
			[]raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddLearnerNode, NodeID: raftID("n2")}}, "n2"},
		{"promote", conf(srv("n1", "a1", true), srv("n2", "a2", false)), conf(srv("n1", "a1", true), srv("n2", "a2", true)),
			[]raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddNode, NodeID: raftID("n2")}}, "n2"},
		{"move", conf(srv("n1", "a1", true), srv("n2", "a2", true)), conf(srv("n1", "a1", true), srv("n2", "b2", true)),
			[]raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeUpdateNode, NodeID: raftID("n2")}}, "n2"},
		{"remove", conf(srv("n1", "a1", true), srv("n2", "a2", true)), one,
			[]raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeRemoveNode, NodeID: raftID("n2")}}, ""},
	} {
		cc, ok := configChange(tc.prev, tc.next)
		if !ok || fmt.Sprint(cc.Changes) != fmt.Sprint(tc.want) {
			t.Errorf("%s: %v %v, want %v", tc.name, cc.Changes, ok, tc.want)
			continue
		}
		var m group.Member
		_ = json.Unmarshal(cc.Context[group.ProposalHeader:], &m)
		if m.Name != tc.about {
			t.Errorf("%s: context names %q, want %q", tc.name, m.Name, tc.about)
		}
	}
	if _, ok := configChange(one, one); ok {
		t.Error("an unchanged configuration became a change")
	}
}

package hatcheck_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck"
	"github.com/hatcheck/hatcheck/internal/testcert"
)

// openGroup opens three embedded nodes in this process, the first starting
// the group and the others joining it; tweak adjusts each one's Config.
func openGroup(t testing.TB, tweak ...func(*hatcheck.Config)) ([]*hatcheck.Node, []hatcheck.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var nodes []*hatcheck.Node
	var cfgs []hatcheck.Config
	for i := range 3 {
		cfg := hatcheck.Config{NodeID: fmt.Sprintf("app%d", i+1), DataDir: t.TempDir(), ElectionTimeout: 200 * time.Millisecond}
		if i > 0 {
			cfg.Join = []string{"127.0.0.1:1", nodes[0].PeerAddr()} // the first address answers nothing
		}
		for _, f := range tweak {
			f(&cfg)
		}
		n, err := hatcheck.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("open %s: %v", cfg.NodeID, err)
		}
		cfg.PeerAddr = n.PeerAddr()
		nodes, cfgs = append(nodes, n), append(cfgs, cfg)
		t.Cleanup(func() { n.Close() })
	}
	return nodes, cfgs
}

func TestEmbeddedGroupReplicatesAndFailsOver(t *testing.T) {
	nodes, cfgs := openGroup(t)
	ctx := context.Background()
	if err := nodes[1].Set(ctx, "sess:1", []byte("alice"), 0); err != nil {
		t.Fatal(err)
	}
	// Linearizable on every node: a write acknowledged on one is seen by
	// the next read on any other.
	for i, n := range nodes {
		v, ok, err := n.Get(ctx, "sess:1")
		if err != nil || !ok || string(v) != "alice" {
			t.Fatalf("node %d: Get = %q, %v, %v; want alice", i, v, ok, err)
		}
	}
	if _, ok, err := nodes[2].Get(ctx, "missing"); ok || err != nil {
		t.Fatalf("Get(missing) = %v, %v; want not found", ok, err)
	}

	// The leader closes: it hands over, and the others go on.
	leader := -1
	for i, n := range nodes {
		if n.IsLeader() {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no node leads")
	}
	if err := nodes[leader].Close(); err != nil {
		t.Fatal(err)
	}
	other := nodes[(leader+1)%3]
	if err := other.Set(ctx, "sess:2", []byte("bob"), time.Minute); err != nil {
		t.Fatalf("write after the leader closed: %v", err)
	}
	if l := other.Leader(); l == "" || l == cfgs[leader].NodeID {
		t.Fatalf("leader after close = %q", l)
	}

	// Reopened on its data dir, it has every write, the one it missed too.
	cfg := cfgs[leader]
	again, err := hatcheck.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	for key, want := range map[string]string{"sess:1": "alice", "sess:2": "bob"} {
		v, ok, err := again.Get(ctx, key)
		if err != nil || !ok || string(v) != want {
			t.Fatalf("reopened node: Get(%s) = %q, %v, %v; want %s", key, v, ok, err, want)
		}
	}
}

func TestEmbeddedConditionalWritesAndExpiry(t *testing.T) {
	n, err := hatcheck.Open(context.Background(), hatcheck.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	if ok, err := n.SetNX(ctx, "lock", []byte("me"), time.Minute); !ok || err != nil {
		t.Fatalf("first SetNX = %v, %v; want true", ok, err)
	}
	if ok, err := n.SetNX(ctx, "lock", []byte("you"), time.Minute); ok || err != nil {
		t.Fatalf("second SetNX = %v, %v; want false", ok, err)
	}
	if ok, err := n.DeleteIf(ctx, "lock", []byte("you")); ok || err != nil {
		t.Fatalf("DeleteIf(other value) = %v, %v; want false", ok, err)
	}
	if ok, err := n.DeleteIf(ctx, "lock", []byte("me")); !ok || err != nil {
		t.Fatalf("DeleteIf(own value) = %v, %v; want true", ok, err)
	}
	if _, ok, _ := n.Get(ctx, "lock"); ok {
		t.Fatal("lock still there after DeleteIf")
	}

	if err := n.Set(ctx, "short", []byte("x"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, ok, err := n.Get(ctx, "short")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a key with a 50ms ttl still exists after 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := n.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := n.Expire(ctx, "k", time.Hour); !ok || err != nil {
		t.Fatalf("Expire(k) = %v, %v", ok, err)
	}
	if ok, err := n.Expire(ctx, "nokey", time.Hour); ok || err != nil {
		t.Fatalf("Expire(nokey) = %v, %v", ok, err)
	}
	if _, err := n.Expire(ctx, "k", 0); err == nil {
		t.Fatal("Expire with ttl 0 gave no error")
	}
	if got, err := n.Delete(ctx, "k", "nokey"); got != 1 || err != nil {
		t.Fatalf("Delete = %d, %v; want 1", got, err)
	}
}

func TestEmbeddedNodeServesRedisPortToo(t *testing.T) {
	n, err := hatcheck.Open(context.Background(), hatcheck.Config{DataDir: t.TempDir(), RedisAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.MemcacheAddr() != "" || n.HTTPAddr() != "" {
		t.Fatalf("ports not asked for are open: memcache %q, http %q", n.MemcacheAddr(), n.HTTPAddr())
	}
	ctx := context.Background()
	if err := n.Set(ctx, "from-go", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: n.RedisAddr()})
	defer c.Close()
	if v, err := c.Get(ctx, "from-go").Result(); err != nil || v != "1" {
		t.Fatalf("redis GET = %q, %v", v, err)
	}
	if err := c.HSet(ctx, "h", "f", "v").Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.Get(ctx, "h"); !errors.Is(err, hatcheck.ErrWrongType) {
		t.Fatalf("Get of a hash: err = %v, want ErrWrongType", err)
	}
}

func TestEmbeddedOpenGivesUpWithItsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	dir := t.TempDir()
	_, err := hatcheck.Open(ctx, hatcheck.Config{DataDir: dir, Join: []string{"127.0.0.1:1"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open joining nobody: err = %v, want DeadlineExceeded", err)
	}
	// It let go of its data dir (and its lock): the directory can be used
	// again, here to start a group of its own.
	n, err := hatcheck.Open(context.Background(), hatcheck.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	if _, err := hatcheck.Open(context.Background(), hatcheck.Config{}); err == nil {
		t.Fatal("Open without DataDir gave no error")
	}
}

// Embedded peers speak mutual TLS when given certificates; a node whose
// certificate another CA signed is not let in.
func TestEmbeddedPeersOverMutualTLS(t *testing.T) {
	ca, other := testcert.NewCA(t, "ca"), testcert.NewCA(t, "other")
	cfg := func(c *testcert.CA, name string) hatcheck.Config {
		f := c.WriteFiles(t, t.TempDir(), name, c.Issue(t, name))
		return hatcheck.Config{NodeID: name, DataDir: t.TempDir(), TLSCertFile: f.Cert, TLSKeyFile: f.Key, TLSCACertFile: f.CA}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := hatcheck.Open(ctx, cfg(ca, "app1"))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	c2 := cfg(ca, "app2")
	c2.Join = []string{first.PeerAddr()}
	second, err := hatcheck.Open(ctx, c2)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if err := second.Set(ctx, "k", []byte("over tls"), 0); err != nil {
		t.Fatal(err)
	}
	if v, _, err := first.Get(ctx, "k"); err != nil || string(v) != "over tls" {
		t.Fatalf("Get on the other peer = %q, %v", v, err)
	}
	stranger := cfg(other, "app3")
	stranger.Join = []string{first.PeerAddr()}
	short, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if _, err := hatcheck.Open(short, stranger); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a peer of another CA: %v, want it never admitted", err)
	}
}

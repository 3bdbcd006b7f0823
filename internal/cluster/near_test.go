package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/faultproxy"
)

// nearCluster starts size nodes with a near-cache each, every peer link
// through a faultproxy, and waits until every node holds a lease.
func nearCluster(t *testing.T, size int) ([]*Node, *faultproxy.Network) {
	t.Helper()
	nw := faultproxy.New()
	t.Cleanup(nw.Close)
	var nodes []*Node
	for i := 0; i < size; i++ {
		id := fmt.Sprintf("n%d", i+1)
		p, err := nw.Listen(id)
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{DataDir: t.TempDir(), PeerAddr: "127.0.0.1:0", Advertise: p.Addr(), NodeID: id,
			NearCacheBytes: 1 << 20, ElectionTimeout: 300 * time.Millisecond, FailoverWait: 3 * time.Second}
		if i > 0 {
			cfg.Join = []string{nodes[0].PeerAddr()}
		}
		n, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		p.SetTarget(n.mux.ln.Addr().String())
		t.Cleanup(func() { n.Abort() })
		nodes = append(nodes, n)
	}
	waitVoters(t, nodes[0], size)
	for _, n := range nodes {
		waitUntil(t, 5*time.Second, "a lease on "+n.ID(), n.near.leaseRunning)
	}
	return nodes, nw
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func leaderOf(t *testing.T, nodes []*Node) (leader *Node, followers []*Node) {
	t.Helper()
	waitUntil(t, 10*time.Second, "leader", func() bool {
		leader, followers = nil, nil
		for _, n := range nodes {
			if n.closing.Load() {
				continue
			}
			if n.IsLeader() && n.group.LeaderReady() {
				leader = n
			} else {
				followers = append(followers, n)
			}
		}
		return leader != nil
	})
	return leader, followers
}

func mustSet(t *testing.T, n *Node, key, val string) time.Duration {
	t.Helper()
	start := time.Now()
	res, err := n.Write(context.Background(), set(key, val))
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("set %s on %s: %v", key, n.ID(), err)
	}
	return time.Since(start)
}

func mustGet(t *testing.T, n *Node, key string) string {
	t.Helper()
	v, ok, err := n.NearGet(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s on %s: %v", key, n.ID(), err)
	}
	if !ok {
		return "<nil>"
	}
	return string(v)
}

// cached reports whether n would serve key from its cache now.
func cached(n *Node, key string) (string, bool) {
	v, ok, hit := n.near.get(key)
	if !ok {
		v = []byte("<nil>")
	}
	return string(v), hit
}

// A write on one node removes another node's cached copy before it is
// acknowledged, whichever node writes.
func TestNearCacheWriteInvalidatesBeforeAck(t *testing.T) {
	nodes, _ := nearCluster(t, 3)
	leader, fs := leaderOf(t, nodes)
	for _, writer := range []*Node{leader, fs[1]} {
		reader := fs[0]
		key := "k-" + writer.ID()
		mustSet(t, writer, key, "v1")
		if got := mustGet(t, reader, key); got != "v1" {
			t.Fatalf("first read: %q", got)
		}
		if v, hit := cached(reader, key); !hit || v != "v1" {
			t.Fatalf("after a read %s does not serve %s from its cache (%q, %v)", reader.ID(), key, v, hit)
		}
		hits := reader.NearStats().Hits
		if got := mustGet(t, reader, key); got != "v1" || reader.NearStats().Hits != hits+1 {
			t.Fatalf("second read: %q, hits %d → %d", got, hits, reader.NearStats().Hits)
		}
		mustSet(t, writer, key, "v2")
		// Acknowledged: no cached copy of v1 may be served any more.
		if v, hit := cached(reader, key); hit {
			t.Fatalf("write by %s acknowledged, %s still serves %q from its cache", writer.ID(), reader.ID(), v)
		}
		if got := mustGet(t, reader, key); got != "v2" {
			t.Fatalf("read after the write: %q", got)
		}
	}
	if s := leader.NearStats(); s.InvalidationsSent == 0 {
		t.Fatalf("leader stats %+v: no invalidation sent", s)
	}
}

// A node's own write drops its cached copy, and deletes, multi-key writes
// and flushes invalidate too.
func TestNearCacheOwnWriteAndMultiKeyWrites(t *testing.T) {
	nodes, _ := nearCluster(t, 3)
	_, fs := leaderOf(t, nodes)
	b, c := fs[0], fs[1]
	for _, k := range []string{"a", "b", "c"} {
		mustSet(t, b, k, "1")
		mustGet(t, b, k)
		mustGet(t, c, k)
	}
	mustSet(t, b, "a", "2")
	if got := mustGet(t, b, "a"); got != "2" {
		t.Fatalf("own write: read %q", got)
	}
	write := func(n *Node, tx command.Tx) {
		t.Helper()
		if res, err := n.Write(context.Background(), tx); err != nil || res.Err != nil {
			t.Fatal(err, res.Err)
		}
	}
	write(c, command.Tx{{Op: command.OpDel, Args: [][]byte{[]byte("b")}}})
	if _, hit := cached(b, "b"); hit {
		t.Fatal("DEL on another node left b cached")
	}
	if got := mustGet(t, b, "b"); got != "<nil>" {
		t.Fatalf("after DEL: %q", got)
	}
	mustGet(t, b, "c")
	write(c, command.Tx{{Op: command.OpFlushAll}})
	if _, hit := cached(b, "c"); hit {
		t.Fatal("FLUSHALL left c cached")
	}
	if got := mustGet(t, b, "c"); got != "<nil>" {
		t.Fatalf("after FLUSHALL: %q", got)
	}
	// The absence is cached too, and invalidated by the next write.
	if _, hit := cached(b, "c"); !hit {
		t.Fatal("the absence of c was not cached")
	}
	mustSet(t, c, "c", "3")
	if got := mustGet(t, b, "c"); got != "3" {
		t.Fatalf("after the write of an absent key: %q", got)
	}
}

// While a write of a key is between its invalidation and its apply on the
// leader, no node may start caching the key: its read could return the
// value before the write and never be invalidated.
func TestNearCacheNotFilledWhileWriteInFlight(t *testing.T) {
	nodes, _ := nearCluster(t, 3)
	leader, fs := leaderOf(t, nodes)
	mustSet(t, leader, "k", "v1")
	m := leader.track.beginWrite(set("k", "v2"), false)
	if got := mustGet(t, fs[0], "k"); got != "v1" {
		t.Fatalf("read: %q", got)
	}
	if _, hit := cached(fs[0], "k"); hit {
		t.Fatal("cached a key whose write is in flight")
	}
	leader.track.endWrite(m)
	mustGet(t, fs[0], "k")
	if _, hit := cached(fs[0], "k"); !hit {
		t.Fatal("not cached once the write was applied")
	}
}

// An invalidation that arrives while a read is filling the cache spoils
// the fill: the value is returned, not cached.
func TestNearCacheInvalidationSpoilsFill(t *testing.T) {
	c := newNearCache(1 << 20)
	g := leaseGrant{leader: 1, term: 1, epoch: 1, dur: time.Second}
	c.setLease(g, time.Now(), time.Second)
	gen := c.beginFill("k")
	c.invalidate([]string{"k"})
	c.endFill("k", gen, &g, []byte("old"), true, time.Time{})
	if _, _, hit := c.get("k"); hit {
		t.Fatal("a spoiled fill was cached")
	}
	gen = c.beginFill("k")
	c.setLease(leaseGrant{leader: 2, term: 2, epoch: 1, dur: time.Second}, time.Now(), time.Second)
	c.endFill("k", gen, &g, []byte("old"), true, time.Time{})
	if _, _, hit := c.get("k"); hit {
		t.Fatal("a fill under the previous leader's lease was cached")
	}
}

// The cache is bounded in bytes and keeps what is read.
func TestNearCacheEvictsByBytes(t *testing.T) {
	c := newNearCache(64 << 10)
	g := leaseGrant{leader: 1, term: 1, epoch: 1, dur: time.Minute}
	c.setLease(g, time.Now(), time.Minute)
	val := make([]byte, 1000)
	fill := func(k string) {
		c.endFill(k, c.beginFill(k), &g, val, true, time.Time{})
	}
	fill("hot")
	for i := 0; i < 500; i++ {
		c.get("hot")
		fill(fmt.Sprint(i))
	}
	if n, used := c.size(); used > 64<<10 || n < 40 {
		t.Fatalf("%d entries, %d bytes", n, used)
	}
	if _, _, hit := c.get("hot"); !hit {
		t.Fatal("the key read between every fill was evicted")
	}
	c.endFill("exp", c.beginFill("exp"), &g, val, true, time.Now().Add(20*time.Millisecond))
	time.Sleep(30 * time.Millisecond)
	if _, _, hit := c.get("exp"); hit {
		t.Fatal("served past its expiry")
	}
}

// A node cut off from the leader stops serving from its cache when its
// lease ends, and the leader's write of a key it caches waits at most
// about a lease for it.
func TestNearCacheCutOffNodeLeaseRunsOut(t *testing.T) {
	nodes, nw := nearCluster(t, 3)
	leader, fs := leaderOf(t, nodes)
	b := fs[0]
	mustSet(t, leader, "k", "v1")
	mustGet(t, b, "k")
	if _, hit := cached(b, "k"); !hit {
		t.Fatal("not cached")
	}
	nw.Isolate(b.ID())
	took := mustSet(t, leader, "k", "v2")
	lease := leaseFor(300 * time.Millisecond)
	if took > lease+300*time.Millisecond {
		t.Fatalf("the write took %v; a lease is %v", took, lease)
	}
	if v, hit := cached(b, "k"); hit {
		t.Fatalf("write acknowledged, the cut-off node still serves %q", v)
	}
	if s := leader.NearStats(); s.LeaseWaits == 0 {
		t.Fatalf("leader stats %+v: no lease waited out", s)
	}
	nw.Heal()
	// Back in touch, it has a new epoch: it flushed, and reads v2.
	waitUntil(t, 5*time.Second, "a lease again", b.near.leaseRunning)
	if got := mustGet(t, b, "k"); got != "v2" {
		t.Fatalf("after healing: %q", got)
	}
}

// A stalled node (its messages held, as if paused) cannot renew its
// lease either, and so stops serving within a lease.
func TestNearCacheStalledNodeStopsServing(t *testing.T) {
	nodes, nw := nearCluster(t, 3)
	leader, fs := leaderOf(t, nodes)
	mustSet(t, leader, "k", "v1")
	mustGet(t, fs[0], "k")
	nw.Stall(fs[0].ID())
	defer nw.Resume()
	lease := leaseFor(300 * time.Millisecond)
	time.Sleep(lease + 50*time.Millisecond)
	if _, hit := cached(fs[0], "k"); hit {
		t.Fatal("a node that cannot reach the leader serves past its lease")
	}
}

// A leader change flushes every cache: a killed leader's leases run out
// and the new leader's first lease flushes; a planned hand-over revokes
// the leases first.
func TestNearCacheLeaderChangeFlushes(t *testing.T) {
	nodes, _ := nearCluster(t, 3)
	leader, fs := leaderOf(t, nodes)
	mustSet(t, leader, "k", "v1")
	for _, n := range nodes {
		mustGet(t, n, "k")
	}
	flushes := fs[0].NearStats().Flushes
	if err := leader.transfer(""); err != nil {
		t.Fatal(err)
	}
	if _, hit := cached(fs[0], "k"); hit {
		t.Fatal("a hand-over left a cached copy")
	}
	if fs[0].NearStats().Flushes == flushes {
		t.Fatal("no flush on hand-over")
	}
	leader, fs = leaderOf(t, nodes)
	waitUntil(t, 5*time.Second, "leases from the new leader", func() bool {
		return fs[0].near.leaseRunning() && fs[1].near.leaseRunning()
	})
	for _, n := range fs {
		mustGet(t, n, "k")
	}
	flushes = fs[0].NearStats().Flushes
	follower := fs[0]
	leader.Abort()
	leader, _ = leaderOf(t, nodes)
	waitUntil(t, 5*time.Second, "a flush after the leader was killed", func() bool {
		return follower.NearStats().Flushes > flushes
	})
	if _, hit := cached(follower, "k"); hit {
		t.Fatal("a leader change left a cached copy")
	}
	mustSet(t, leader, "k", "v2")
	if got := mustGet(t, follower, "k"); got != "v2" {
		t.Fatalf("after the leader change: %q", got)
	}
}

// BenchmarkNearCacheWriteMark is what the near-cache adds to a write of a
// key nobody caches, on the leader: before any node asked for a lease (two
// atomic additions), and once near-caches are in use (listing its keys,
// counting it in flight, ending the count when it is applied).
func BenchmarkNearCacheWriteMark(b *testing.B) {
	val := make([]byte, 1024)
	for _, inUse := range []bool{false, true} {
		b.Run(fmt.Sprintf("in-use=%v", inUse), func(b *testing.B) {
			tr := newTracker(nil, time.Second)
			tr.seen.Store(inUse)
			keys := make([][]byte, 1024)
			for i := range keys {
				keys[i] = fmt.Appendf(nil, "PHPREDIS_SESSION:%032x", i)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					tx := command.Tx{{Op: command.OpSet, Key: keys[i%len(keys)], Args: [][]byte{val}}}
					m := tr.beginWrite(tx, false)
					if !m.ready() {
						b.Fatal("a write of an untracked key must not wait")
					}
					tr.endWrite(m)
					i++
				}
			})
		})
	}
}

// A cached value carries its key's expiry and is not served past it, even
// before the leader's active expiry deletes the key.
func TestNearCacheEntryCarriesExpiry(t *testing.T) {
	nodes, _ := nearCluster(t, 3)
	leader, fs := leaderOf(t, nodes)
	tx := command.Tx{{Op: command.OpSet, Key: []byte("k"), Args: [][]byte{[]byte("v")}, Flags: command.FlagExpireRel, N: 60_000}}
	if _, err := leader.Write(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	mustGet(t, fs[0], "k")
	fs[0].near.mu.Lock()
	e := fs[0].near.entries["k"]
	fs[0].near.mu.Unlock()
	if e == nil {
		t.Fatal("not cached")
	}
	if e.until.After(before.Add(time.Minute)) || e.until.Before(before.Add(59*time.Second)) {
		t.Fatalf("cached until %v from now; the key expires in a minute", e.until.Sub(before))
	}
}

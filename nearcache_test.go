package hatcheck_test

import (
	"context"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck"
)

func withNearCache(cfg *hatcheck.Config) { cfg.NearCacheBytes = 64 << 20 }

// follower returns a node of nodes that does not lead.
func follower(tb testing.TB, nodes []*hatcheck.Node) *hatcheck.Node {
	tb.Helper()
	for _, n := range nodes {
		if !n.IsLeader() {
			return n
		}
	}
	tb.Fatal("no follower")
	return nil
}

// waitCached reads key on n until a read is served from its cache (its
// lease from the leader may still be on its way).
func waitCached(tb testing.TB, n *hatcheck.Node, key string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		hits := n.CacheStats().Hits
		if _, _, err := n.Get(context.Background(), key); err != nil {
			tb.Fatal(err)
		}
		if n.CacheStats().Hits > hits {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no cache hit for %s: %+v", key, n.CacheStats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Through the library: a session read again is served from the cache, and
// a write on any node is seen by the next Get everywhere.
func TestEmbeddedNearCache(t *testing.T) {
	nodes, _ := openGroup(t, withNearCache)
	ctx := context.Background()
	if err := nodes[0].Set(ctx, "sess:1", []byte("alice"), time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitCached(t, n, "sess:1")
	}
	for i, writer := range nodes {
		val := []byte{'v', byte('0' + i)}
		if err := writer.Set(ctx, "sess:1", val, time.Hour); err != nil {
			t.Fatal(err)
		}
		for j, n := range nodes {
			v, ok, err := n.Get(ctx, "sess:1")
			if err != nil || !ok || string(v) != string(val) {
				t.Fatalf("after a Set on node %d, node %d reads %q, %v, %v; want %q", i, j, v, ok, err, val)
			}
		}
	}
	if _, err := nodes[1].Delete(ctx, "sess:1"); err != nil {
		t.Fatal(err)
	}
	for j, n := range nodes {
		if _, ok, err := n.Get(ctx, "sess:1"); ok || err != nil {
			t.Fatalf("after Delete node %d reads %v, %v", j, ok, err)
		}
	}
	var s hatcheck.CacheStats
	for _, n := range nodes {
		st := n.CacheStats()
		s.Hits += st.Hits
		s.InvalidationsSent += st.InvalidationsSent
	}
	if s.Hits == 0 || s.InvalidationsSent == 0 {
		t.Fatalf("stats %+v", s)
	}
}

// BenchmarkNearCacheGet is a session read served from a follower's
// near-cache: no round trip.
func BenchmarkNearCacheGet(b *testing.B) {
	benchGet(b, withNearCache)
}

// BenchmarkGetNoNearCache is the same read without a near-cache: a
// ReadIndex round to the leader (over loopback), then the follower's own
// state.
func BenchmarkGetNoNearCache(b *testing.B) {
	benchGet(b)
}

func benchGet(b *testing.B, tweak ...func(*hatcheck.Config)) {
	nodes, _ := openGroup(b, tweak...)
	ctx := context.Background()
	value := make([]byte, 1024) // a session of 1 KB
	if err := nodes[0].Set(ctx, "sess:bench", value, time.Hour); err != nil {
		b.Fatal(err)
	}
	n := follower(b, nodes)
	if len(tweak) > 0 {
		waitCached(b, n, "sess:bench")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, ok, err := n.Get(ctx, "sess:bench"); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
	b.StopTimer()
	if len(tweak) > 0 {
		if s := n.CacheStats(); s.Misses > 1 {
			b.Logf("%+v", s)
		}
	}
}

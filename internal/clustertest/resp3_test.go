package clustertest

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// A script that reads RESP3 values (a double, a map, a null) and writes
// what it read, run through a follower, changes every node alike. (The
// RESP3 transcripts themselves are replayed through a follower by
// internal/redis's TestTranscriptsThroughAFollower.)
func TestRESP3ScriptThroughAFollower(t *testing.T) {
	c := Start(t, 3)
	follower := c.Others(c.Leader())[0]
	ctx := Ctx(t, 30*time.Second)
	cl := follower.Client()
	if err := cl.ZAdd(ctx, "sz", goredis.Z{Score: 1.25, Member: "m"}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cl.HSet(ctx, "sh", "a", "x").Err(); err != nil {
		t.Fatal(err)
	}
	got, err := cl.Eval(ctx, `redis.setresp(3)
		local d = redis.call('zscore', KEYS[1], 'm').double
		local h = redis.call('hgetall', KEYS[2]).map
		redis.call('set', KEYS[3], tostring(d * 2) .. h.a .. tostring(redis.call('get', 'nosuch') == nil))
		return {double = d}`, []string{"sz", "sh", "sout"}).Result()
	if err != nil || got != "1.25" {
		t.Fatalf("script: %v %v", got, err)
	}
	for _, n := range c.Nodes {
		deadline := time.Now().Add(10 * time.Second)
		v, _ := n.Client().Get(ctx, "sout").Result()
		for v != "2.5xtrue" && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			v, _ = n.Client().Get(ctx, "sout").Result()
		}
		if v != "2.5xtrue" {
			t.Errorf("%s: sout is %q", n.ID, v)
		}
	}
}

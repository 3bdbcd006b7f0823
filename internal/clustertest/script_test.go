package clustertest

import (
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// The script cache is replicated: a script loaded through one node runs
// by SHA on every other (snapshots carry it too: keyspace tests), and
// SCRIPT FLUSH through a third node forgets it everywhere. phpredis's lock release runs through a
// follower.
func TestScriptsRunOnEveryNode(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 30*time.Second)
	release := `if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end`
	sha, err := c.Nodes[0].Client().ScriptLoad(ctx, release).Result()
	if err != nil || sha != "b70c2384248f88e6b75b9f89241a180f856ad852" {
		t.Fatalf("SCRIPT LOAD: %q %v", sha, err)
	}
	for i, n := range c.Nodes {
		cl := n.Client()
		if err := cl.Set(ctx, "s_LOCK", "host|1", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := cl.EvalSha(ctx, sha, []string{"s_LOCK"}, "other|2").Int(); err != nil || v != 0 {
			t.Fatalf("node %d: release with the wrong secret: %d %v", i, v, err)
		}
		if v, err := cl.EvalSha(ctx, sha, []string{"s_LOCK"}, "host|1").Int(); err != nil || v != 1 {
			t.Fatalf("node %d: release: %d %v", i, v, err)
		}
		if ok, err := cl.ScriptExists(ctx, sha).Result(); err != nil || !ok[0] {
			t.Fatalf("node %d: SCRIPT EXISTS: %v %v", i, ok, err)
		}
	}
	if err := c.Nodes[2].Client().ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for i, n := range c.Nodes {
		err := n.Client().EvalSha(ctx, sha, []string{"s_LOCK"}, "x").Err()
		var rerr goredis.Error
		if !errors.As(err, &rerr) || err.Error() != "NOSCRIPT No matching script. Please use EVAL." {
			t.Fatalf("node %d after SCRIPT FLUSH: %v", i, err)
		}
	}
}

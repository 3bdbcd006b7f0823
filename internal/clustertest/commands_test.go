package clustertest

import (
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// The commands of issue 13 that write, sent through a follower, leave the
// same data on every node: SPOP's choice and a script's SRANDMEMBER and
// RANDOMKEY are drawn from the log entry, INCRBYFLOAT computes the same
// bytes everywhere, and the accounted memory agrees.
func TestNewWritesReplicateAlike(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	leader := c.Leader()
	follower := c.Others(leader)[0].Client()
	members := make([]any, 0, 60)
	for i := 0; i < 60; i++ {
		members = append(members, fmt.Sprint("m", i))
	}
	pick := `local m = redis.call('SRANDMEMBER', KEYS[1]); redis.call('SET', KEYS[2], m); ` +
		`redis.call('SET', KEYS[3], redis.call('RANDOMKEY')); return m`
	steps := []func() error{
		func() error { return follower.SAdd(ctx, "s", members...).Err() },
		func() error { return follower.SPop(ctx, "s").Err() },
		func() error { return follower.SPopN(ctx, "s", 7).Err() },
		func() error { return follower.SMove(ctx, "s", "t", "m59").Err() },
		func() error { return follower.SUnionStore(ctx, "u", "s", "t").Err() },
		func() error { return follower.IncrByFloat(ctx, "f", 10.5).Err() },
		func() error { return follower.IncrByFloat(ctx, "f", 0.1).Err() },
		func() error { return follower.SetRange(ctx, "r", 3, "abc").Err() },
		func() error { return follower.SetBit(ctx, "b", 77, 1).Err() },
		func() error { return follower.BitField(ctx, "b", "INCRBY", "u8", "#3", 200).Err() },
		func() error { return follower.HIncrByFloat(ctx, "h", "x", 3e3).Err() },
		func() error { return follower.Copy(ctx, "u", "u1", 1, false).Err() },
		func() error { return follower.Move(ctx, "r", 2).Err() },
		func() error { return follower.Eval(ctx, pick, []string{"s", "picked", "rk"}).Err() },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	read := func(cl *goredis.Client) string {
		pipe := cl.Pipeline()
		cmds := []goredis.Cmder{
			pipe.SMembers(ctx, "s"), pipe.SMembers(ctx, "t"), pipe.SMembers(ctx, "u"),
			pipe.Get(ctx, "f"), pipe.Get(ctx, "b"), pipe.HGetAll(ctx, "h"),
			pipe.Get(ctx, "picked"), pipe.Get(ctx, "rk"), pipe.Exists(ctx, "r"),
		}
		_, _ = pipe.Exec(ctx)
		out := ""
		for _, cmd := range cmds {
			out += fmt.Sprint(cmd) + "\n"
		}
		return out
	}
	want := read(leader.Client())
	for _, n := range c.Nodes {
		if got := read(n.Client()); got != want {
			t.Errorf("%s differs from the leader:\n%s\nleader:\n%s", n.ID, got, want)
		}
	}
	if got := leader.Client().Get(ctx, "f").Val(); got != "10.6" {
		t.Errorf("INCRBYFLOAT: %q", got)
	}
	// Every node has applied everything once the reads above answered.
	sameMemory(t, c, leader)
}

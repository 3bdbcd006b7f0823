package clustertest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Sorted set writes sent through a follower of three, a script's among
// them, leave the same sorted sets and the same accounted memory on every
// node.
func TestSortedSetsReplicateAlike(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	leader := c.Leader()
	follower := c.Others(leader)[0].Client()
	board := `redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2]); ` +
		`return redis.call('ZRANGE', KEYS[1], 0, 2, 'REV', 'WITHSCORES')`
	steps := []func() error{
		func() error {
			return follower.ZAdd(ctx, "z", goredis.Z{Score: 1, Member: "a"}, goredis.Z{Score: 0.1, Member: "b"},
				goredis.Z{Score: 3, Member: "c"}, goredis.Z{Score: 4, Member: "d"}, goredis.Z{Score: 5, Member: "e"}).Err()
		},
		func() error { return follower.ZIncrBy(ctx, "z", 2.5, "a").Err() },
		func() error {
			return follower.ZAddArgs(ctx, "z", goredis.ZAddArgs{GT: true, Members: []goredis.Z{{Score: 1, Member: "e"}}}).Err()
		},
		func() error { return follower.ZRem(ctx, "z", "c").Err() },
		func() error { return follower.ZPopMin(ctx, "z").Err() },
		func() error { return follower.ZRemRangeByScore(ctx, "z", "(3.5", "4").Err() },
		func() error { return follower.ZAdd(ctx, "gone", goredis.Z{Score: 1, Member: "x"}).Err() },
		func() error { return follower.ZPopMax(ctx, "gone").Err() },
		func() error {
			return follower.ZUnionStore(ctx, "u", &goredis.ZStore{Keys: []string{"z", "gone"}, Weights: []float64{2, 1}}).Err()
		},
		func() error {
			return follower.ZRangeStore(ctx, "r", goredis.ZRangeArgs{Key: "z", Start: 0, Stop: 1}).Err()
		},
		func() error { return follower.ZMPop(ctx, "max", 1, "r").Err() },
		func() error {
			// ZRANDMEMBER inside a script chooses alike on every node.
			return follower.Eval(ctx, `redis.call('SET', KEYS[2], redis.call('ZRANDMEMBER', KEYS[1])); return 1`, []string{"u", "picked"}).Err()
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	top, err := follower.Eval(ctx, board, []string{"z"}, 9, "f").Result()
	if err != nil || fmt.Sprint(top) != "[f 9 e 5 a 3.5]" {
		t.Fatalf("script: %v %v", top, err)
	}
	read := func(cl *goredis.Client) string {
		z, err := cl.ZRangeWithScores(ctx, "z", 0, -1).Result()
		return fmt.Sprint(z, err, cl.Exists(ctx, "gone").Val(), cl.ZRangeWithScores(ctx, "u", 0, -1).Val(),
			cl.ZRangeWithScores(ctx, "r", 0, -1).Val(), cl.Get(ctx, "picked").Val())
	}
	if got := read(leader.Client()); !strings.HasPrefix(got, "[{3.5 a} {5 e} {9 f}] <nil> 0 [{7 a} {10 e}] [{3.5 a}]") {
		t.Fatalf("leader: %s", got)
	}
	for _, n := range c.Nodes {
		if got, want := read(n.Client()), read(leader.Client()); got != want {
			t.Errorf("%s: %s, the leader %s", n.ID, got, want)
		}
	}
	sameMemory(t, c, leader)
}

// A sliding-window rate limiter, as applications write it on sorted sets:
// in a MULTI, drop the requests older than the window, add this one, count
// them and renew the key's TTL. Run through a follower, it allows the
// limit and refuses the rest, and the window moves on.
func TestSlidingWindowRateLimiter(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	cl := c.Others(c.Leader())[1].Client()
	const limit, window = 5, 500 * time.Millisecond
	seq := 0
	allow := func(user string) bool {
		t.Helper()
		now := time.Now()
		key := "ratelimit:" + user
		seq++
		var card *goredis.IntCmd
		_, err := cl.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.ZRemRangeByScore(ctx, key, "-inf", fmt.Sprint(now.Add(-window).UnixMicro()))
			p.ZAdd(ctx, key, goredis.Z{Score: float64(now.UnixMicro()), Member: fmt.Sprint(now.UnixMicro(), "-", seq)})
			card = p.ZCard(ctx, key)
			p.PExpire(ctx, key, window)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return card.Val() <= limit
	}
	allowed := 0
	for range 8 {
		if allow("alice") {
			allowed++
		}
	}
	if allowed != limit {
		t.Fatalf("%d of 8 requests allowed in one window, want %d", allowed, limit)
	}
	if !allow("bob") {
		t.Fatal("another user was limited")
	}
	if ttl := cl.PTTL(ctx, "ratelimit:alice").Val(); ttl <= 0 || ttl > window {
		t.Fatalf("PTTL %v", ttl)
	}
	time.Sleep(window + 100*time.Millisecond)
	if !allow("alice") {
		t.Fatal("refused after the window passed")
	}
	if n := cl.ZCard(ctx, "ratelimit:alice").Val(); n != 1 {
		t.Fatalf("%d requests in the new window, want 1", n)
	}
}

// WATCH of a sorted set: a change by another client, through another
// node, aborts the transaction; a change to another member's set does not.
func TestWatchSortedSet(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	a, b := c.Nodes[0].Client(), c.Nodes[1].Client()
	if err := a.ZAdd(ctx, "scores", goredis.Z{Score: 10, Member: "alice"}).Err(); err != nil {
		t.Fatal(err)
	}
	bump := func(interfere func()) error {
		return a.Watch(ctx, func(tx *goredis.Tx) error {
			s, err := tx.ZScore(ctx, "scores", "alice").Result()
			if err != nil {
				return err
			}
			interfere()
			_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				p.ZAdd(ctx, "scores", goredis.Z{Score: s * 2, Member: "alice"})
				return nil
			})
			return err
		}, "scores")
	}
	err := bump(func() { b.ZIncrBy(ctx, "scores", 1, "alice") })
	if !errors.Is(err, goredis.TxFailedErr) {
		t.Fatalf("EXEC after another client's ZINCRBY: %v", err)
	}
	if err := bump(func() { b.ZAdd(ctx, "other", goredis.Z{Score: 1, Member: "x"}) }); err != nil {
		t.Fatal(err)
	}
	if s := a.ZScore(ctx, "scores", "alice").Val(); s != 22 {
		t.Fatalf("score %v, want 22", s)
	}
}

// BZPOPMIN waiting on a follower is woken by a ZADD through another node,
// and the pop is replicated.
func TestBZPOPMINOnFollowerWokenElsewhere(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	leader := c.Leader()
	followers := c.Others(leader)
	got := make(chan *goredis.ZWithKey, 1)
	go func() {
		v, err := followers[0].Client().BZPopMin(ctx, 0, "lb").Result()
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, _ := followers[0].Client().ClientList(ctx).Result()
		if strings.Contains(list, "cmd=bzpopmin") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("BZPOPMIN did not block")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := followers[1].Client().ZAdd(ctx, "lb", goredis.Z{Score: 2, Member: "b"}, goredis.Z{Score: 1, Member: "a"}).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if v == nil || v.Key != "lb" || v.Member != "a" || v.Score != 1 {
			t.Fatalf("BZPOPMIN: %+v", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("BZPOPMIN not woken")
	}
	for _, n := range c.Nodes {
		if z, err := n.Client().ZRange(ctx, "lb", 0, -1).Result(); err != nil || fmt.Sprint(z) != "[b]" {
			t.Fatalf("ZRANGE via %s: %v %v", n.ID, z, err)
		}
	}
}

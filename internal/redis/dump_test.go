package redis_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// DUMP and RESTORE carry values between hatcheck and redis-server 7.0 both
// ways, for every type, small (redis's listpacks and intsets) and large
// (its hash tables, skiplists and quicklists of several nodes): a value
// dumped by one and restored into the other reads back the same.
func TestDumpAndRestoreWithRedisServer(t *testing.T) {
	bin := transcript.Reference(t, "redis-server", "redis-server", false)
	if bin == "" {
		t.Skip("redis-server not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs := goredis.NewClient(&goredis.Options{Addr: startRedisServer(t, bin, ""), Protocol: 2})
	defer rs.Close()
	srv := servertest.Start(t)
	hc := goredis.NewClient(&goredis.Options{Addr: srv.RedisAddr(), Protocol: 2})
	defer hc.Close()

	fill := func(c *goredis.Client, n int) {
		p := c.Pipeline()
		p.Set(ctx, "str", "a string value", 0)
		p.Set(ctx, "int", "-12345", 0)
		for i := range n {
			v := strconv.Itoa(i)
			p.HSet(ctx, "hash", "f"+v, v)
			p.SAdd(ctx, "iset", i*1000)
			p.SAdd(ctx, "set", "m"+v)
			p.RPush(ctx, "list", v, "x"+v)
			p.ZAdd(ctx, "zset", goredis.Z{Score: float64(i) / 3, Member: "z" + v})
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{"str", "int", "hash", "iset", "set", "list", "zset"}
	read := func(c *goredis.Client, key string) string {
		var v any
		var err error
		switch c.Type(ctx, key).Val() {
		case "string":
			v, err = c.Get(ctx, key).Result()
		case "hash":
			v, err = c.HGetAll(ctx, key).Result()
		case "set":
			var m []string
			m, err = c.SMembers(ctx, key).Result()
			slices.Sort(m)
			v = m
		case "list":
			v, err = c.LRange(ctx, key, 0, -1).Result()
		case "zset":
			v, err = c.ZRangeWithScores(ctx, key, 0, -1).Result()
		default:
			return "none"
		}
		return fmt.Sprint(v, err)
	}
	move := func(from, to *goredis.Client) {
		for _, k := range keys {
			p, err := from.Dump(ctx, k).Result()
			if err != nil {
				t.Fatalf("DUMP %s: %v", k, err)
			}
			if err := to.RestoreReplace(ctx, k+"-copy", 0, p).Err(); err != nil {
				t.Fatalf("RESTORE %s: %v", k, err)
			}
			if got, want := read(to, k+"-copy"), read(from, k); got != want {
				t.Errorf("%s restored as\n%.400s\nwant %.400s", k, got, want)
			}
		}
	}
	for _, n := range []int{5, 700} {
		if err := rs.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := hc.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		fill(rs, n)
		fill(hc, n)
		move(rs, hc)
		move(hc, rs)
	}
}

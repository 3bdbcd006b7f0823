package redis_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
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

// Streams travel by DUMP and RESTORE between hatcheck and redis-server 7.0
// both ways (redis checking deeply what it restores,
// sanitize-dump-payload yes): small ones, ones of several of redis's
// 100-entry nodes, with deleted entries, with XSETID's bookkeeping, and
// emptied by XDEL; each restored reads back the same by XRANGE, XLEN and
// XINFO STREAM (last-generated-id, max-deleted-entry-id, entries-added,
// recorded-first-entry-id), and takes new entries after its last ID. A
// stream with consumer groups, which hatcheck does not hold, is refused by
// name, and the connection goes on.
func TestDumpAndRestoreStreamsWithRedisServer(t *testing.T) {
	bin := transcript.Reference(t, "redis-server", "redis-server", false)
	if bin == "" {
		t.Skip("redis-server not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	raddr := startRedisServer(t, bin, "")
	rs := goredis.NewClient(&goredis.Options{Addr: raddr, Protocol: 2})
	defer rs.Close()
	if err := rs.ConfigSet(ctx, "sanitize-dump-payload", "yes").Err(); err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t)
	hc := goredis.NewClient(&goredis.Options{Addr: srv.RedisAddr(), Protocol: 2})
	defer hc.Close()

	fill := func(c *goredis.Client) {
		do := func(args ...any) {
			if err := c.Do(ctx, args...).Err(); err != nil {
				t.Fatalf("%v: %v", args, err)
			}
		}
		do("XADD", "small", "1-1", "f", "v", "n", "12")
		do("XADD", "small", "2-0", "g", "w")
		for i := range 260 {
			do("XADD", "big", fmt.Sprintf("%d-%d", 100+i/4, i%4), "n", i, "p", strings.Repeat("x", i%50))
			do("XADD", "deleted", fmt.Sprintf("%d-0", i+1), "f", i)
		}
		do("XDEL", "deleted", "1-0", "99-0", "100-0", "101-0", "260-0")
		do("XTRIM", "big", "MAXLEN", "150")
		do("XADD", "setid", "5-0", "f", "v")
		do("XADD", "setid", "6-0", "f", "v")
		do("XDEL", "setid", "5-0")
		do("XSETID", "setid", "70-3", "ENTRIESADDED", "40", "MAXDELETEDID", "6-5")
		do("XADD", "empty", "1-0", "f", "v")
		do("XDEL", "empty", "1-0")
	}
	keys := []string{"small", "big", "deleted", "setid", "empty"}
	read := func(c *goredis.Client, key string) string {
		var b strings.Builder
		for _, cmd := range [][]any{{"TYPE", key}, {"XLEN", key}, {"XRANGE", key, "-", "+"}} {
			v, err := c.Do(ctx, cmd...).Result()
			fmt.Fprint(&b, v, err, "\n")
		}
		info, err := c.Do(ctx, "XINFO", "STREAM", key).Slice()
		for i := 0; i+1 < len(info); i += 2 {
			switch info[i] {
			case "length", "last-generated-id", "max-deleted-entry-id", "entries-added", "recorded-first-entry-id", "first-entry", "last-entry":
				fmt.Fprint(&b, info[i], " ", info[i+1], "\n")
			}
		}
		fmt.Fprint(&b, err)
		return b.String()
	}
	fill(rs)
	fill(hc)
	move := func(from, to *goredis.Client, who string) {
		for _, k := range keys {
			p, err := from.Dump(ctx, k).Result()
			if err != nil {
				t.Fatalf("%s: DUMP %s: %v", who, k, err)
			}
			if err := to.RestoreReplace(ctx, k+"-copy", 0, p).Err(); err != nil {
				t.Fatalf("%s: RESTORE %s: %v", who, k, err)
			}
			if got, want := read(to, k+"-copy"), read(from, k); got != want {
				t.Errorf("%s: %s restored as\n%.1500s\nwant %.1500s", who, k, got, want)
			}
			// It goes on: the next entry's ID follows the restored last ID.
			a, err1 := to.XAdd(ctx, &goredis.XAddArgs{Stream: k + "-copy", ID: "*", Values: []string{"x", "y"}}).Result()
			b, err2 := from.XAdd(ctx, &goredis.XAddArgs{Stream: k, ID: "*", Values: []string{"x", "y"}}).Result()
			if err1 != nil || err2 != nil || a == "" || b == "" {
				t.Fatalf("%s: XADD after RESTORE %s: %v %v", who, k, err1, err2)
			}
			if err := to.Del(ctx, k+"-copy").Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	move(rs, hc, "redis-server to hatcheck")
	move(hc, rs, "hatcheck to redis-server")
	move(rs, hc, "redis-server to hatcheck, again")

	// Consumer groups: redis's payload has them; hatcheck refuses it.
	rs.XGroupCreate(ctx, "small", "g1", "0")
	p, err := rs.Dump(ctx, "small").Result()
	if err != nil {
		t.Fatal(err)
	}
	err = hc.Restore(ctx, "grouped", 0, p).Err()
	if err == nil || !strings.Contains(err.Error(), "consumer groups") {
		t.Fatalf("RESTORE of a stream with consumer groups: %v", err)
	}
	if n, err := hc.Exists(ctx, "grouped").Result(); err != nil || n != 0 {
		t.Fatalf("after the refused RESTORE: EXISTS %d, %v", n, err)
	}
}

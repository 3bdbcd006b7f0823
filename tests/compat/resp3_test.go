package compat

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
)

// RESP3 as a real client speaks it. Debian's python3-redis (4.3) predates
// RESP3 support (redis-py 5.0 added protocol=3), so go-redis, which sends
// HELLO 3 [AUTH] [SETNAME] first by default, is the RESP3 client here; the
// same calls are made over RESP2 to show that both framings decode to the
// same values.
func TestGoRedisRESP3(t *testing.T) {
	s := servertest.Start(t, func(c *servertest.Config) { c.RequirePass = "s3cret" })
	for _, proto := range []int{3, 2} {
		t.Run(map[int]string{2: "RESP2", 3: "RESP3"}[proto], func(t *testing.T) {
			ctx := context.Background()
			rc := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr(), Password: "s3cret", Protocol: proto, ClientName: "app"})
			t.Cleanup(func() { rc.Close() })
			key := func(k string) string { return "resp" + string(rune('0'+proto)) + ":" + k }

			if err := rc.HSet(ctx, key("h"), "a", "1", "b", "2").Err(); err != nil {
				t.Fatal(err)
			}
			// HGETALL is a map in RESP3: go-redis decodes it into the
			// same map[string]string as RESP2's flat array.
			if h, err := rc.HGetAll(ctx, key("h")).Result(); err != nil || !maps.Equal(h, map[string]string{"a": "1", "b": "2"}) {
				t.Fatalf("HGETALL = %v, %v", h, err)
			}
			if err := rc.SAdd(ctx, key("s"), "x", "y").Err(); err != nil {
				t.Fatal(err)
			}
			m, err := rc.SMembers(ctx, key("s")).Result()
			slices.Sort(m)
			if err != nil || !slices.Equal(m, []string{"x", "y"}) {
				t.Fatalf("SMEMBERS = %v, %v", m, err)
			}
			if _, err := rc.Get(ctx, key("nosuch")).Result(); err != goredis.Nil {
				t.Fatalf("GET missing: %v, want redis.Nil", err)
			}
			// MGET answers nil for a missing key and for one of another type.
			vals, err := rc.MGet(ctx, key("h"), key("nosuch")).Result()
			if err != nil || len(vals) != 2 || vals[0] != nil || vals[1] != nil {
				t.Fatalf("MGET = %v, %v", vals, err)
			}
			// Sorted sets and lists: scores and pops decode alike over both
			// (doubles and [member, score] pairs in RESP3, bulk strings
			// and flat arrays in RESP2; see docs/COMPATIBILITY.md).
			if err := rc.ZAdd(ctx, key("z"), goredis.Z{Score: 1.5, Member: "a"}, goredis.Z{Score: 2, Member: "b"}).Err(); err != nil {
				t.Fatal(err)
			}
			if sc, err := rc.ZScore(ctx, key("z"), "a").Result(); err != nil || sc != 1.5 {
				t.Fatalf("ZSCORE = %v, %v", sc, err)
			}
			if zs, err := rc.ZRangeWithScores(ctx, key("z"), 0, -1).Result(); err != nil || len(zs) != 2 || zs[1] != (goredis.Z{Score: 2, Member: "b"}) {
				t.Fatalf("ZRANGE WITHSCORES = %v, %v", zs, err)
			}
			if zs, err := rc.ZPopMin(ctx, key("z")).Result(); err != nil || len(zs) != 1 || zs[0] != (goredis.Z{Score: 1.5, Member: "a"}) {
				t.Fatalf("ZPOPMIN = %v, %v", zs, err)
			}
			if err := rc.ZAdd(ctx, key("z"), goredis.Z{Score: 3, Member: "c"}, goredis.Z{Score: 4.5, Member: "d"}).Err(); err != nil {
				t.Fatal(err)
			}
			if sc, err := rc.ZIncrBy(ctx, key("z"), 0.25, "d").Result(); err != nil || sc != 4.75 {
				t.Fatalf("ZINCRBY = %v, %v", sc, err)
			}
			if sc, err := rc.ZMScore(ctx, key("z"), "b", "d").Result(); err != nil || !slices.Equal(sc, []float64{2, 4.75}) {
				t.Fatalf("ZMSCORE = %v, %v", sc, err)
			}
			if zs, err := rc.ZPopMin(ctx, key("z"), 1).Result(); err != nil || len(zs) != 1 || zs[0] != (goredis.Z{Score: 2, Member: "b"}) {
				t.Fatalf("ZPOPMIN 1 = %v, %v", zs, err)
			}
			if zs, err := rc.ZUnionWithScores(ctx, goredis.ZStore{Keys: []string{key("z")}}).Result(); err != nil || len(zs) != 2 || zs[1] != (goredis.Z{Score: 4.75, Member: "d"}) {
				t.Fatalf("ZUNION WITHSCORES = %v, %v", zs, err)
			}
			if zs, err := rc.ZRandMemberWithScores(ctx, key("z"), -1).Result(); err != nil || len(zs) != 1 || zs[0].Score == 0 {
				t.Fatalf("ZRANDMEMBER WITHSCORES = %v, %v", zs, err)
			}
			if k, zs, err := rc.ZMPop(ctx, "max", 1, key("z")).Result(); err != nil || k != key("z") || len(zs) != 1 || zs[0] != (goredis.Z{Score: 4.75, Member: "d"}) {
				t.Fatalf("ZMPOP = %v %v, %v", k, zs, err)
			}
			if z, err := rc.BZPopMin(ctx, time.Second, key("z")).Result(); err != nil || z.Key != key("z") || z.Z != (goredis.Z{Score: 3, Member: "c"}) {
				t.Fatalf("BZPOPMIN = %v, %v", z, err)
			}
			if err := rc.RPush(ctx, key("l"), "j1").Err(); err != nil {
				t.Fatal(err)
			}
			if kv, err := rc.BLPop(ctx, time.Second, key("l")).Result(); err != nil || len(kv) != 2 || kv[1] != "j1" {
				t.Fatalf("BLPOP = %v, %v", kv, err)
			}
			if _, err := rc.LPopCount(ctx, key("l"), 2).Result(); err != goredis.Nil {
				t.Fatalf("LPOP with a count on a missing list: %v, want redis.Nil", err)
			}
			cfg, err := rc.ConfigGet(ctx, "maxmemory").Result()
			if err != nil || cfg["maxmemory"] != "0" {
				t.Fatalf("CONFIG GET = %v, %v", cfg, err)
			}
			info, err := rc.Info(ctx, "server").Result()
			if err != nil || !strings.Contains(info, "redis_version:7.0.15") {
				t.Fatalf("INFO = %q, %v", info, err)
			}
			ci, err := rc.ClientInfo(ctx).Result()
			if err != nil || ci.Name != "app" || ci.Resp != proto {
				t.Fatalf("CLIENT INFO = %+v, %v", ci, err)
			}

			// Pub/sub: the confirmation and the message are pushes in
			// RESP3, arrays in RESP2.
			sub := rc.Subscribe(ctx, key("ch"))
			t.Cleanup(func() { sub.Close() })
			if _, err := sub.Receive(ctx); err != nil {
				t.Fatal(err)
			}
			if err := rc.Publish(ctx, key("ch"), "hello").Err(); err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			msg, err := sub.ReceiveMessage(rctx)
			if err != nil || msg.Channel != key("ch") || msg.Payload != "hello" {
				t.Fatalf("message = %+v, %v", msg, err)
			}
		})
	}
}

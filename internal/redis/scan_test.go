package redis_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// HSCAN and SSCAN of small and large collections, against redis-server
// when it is installed: a small collection (a listpack hash, an intset)
// comes whole in one call with cursor 0 on both; a large one is iterated
// with COUNT to cursor 0, and both servers return the same elements (in
// their own order, which is not compared).
func TestCollectionScansMatchRedis(t *testing.T) {
	servers := map[string]string{"hatcheck": servertest.Start(t).RedisAddr()}
	if bin := transcript.Reference(t, "redis-server", "redis-server", false); bin != "" {
		servers["redis-server"] = startRedisServer(t, bin, "")
	}
	for _, c := range []struct {
		name, key string
		add       string
		n         int
		member    func(i int) string
		whole     bool // returned in one call
	}{
		{"small hash", "hsmall", "HSET", 100, func(i int) string { return fmt.Sprint("f", i) }, true},
		{"large hash", "hlarge", "HSET", 700, func(i int) string { return fmt.Sprint("f", i) }, false},
		{"intset", "sints", "SADD", 500, strconv.Itoa, true},
		{"large set of integers", "sbig", "SADD", 600, strconv.Itoa, false},
		{"set of strings", "sstr", "SADD", 150, func(i int) string { return fmt.Sprint("m", i) }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var want []string
			for who, addr := range servers {
				args := []string{c.add, c.key}
				for i := 0; i < c.n; i++ {
					args = append(args, c.member(i))
					if c.add == "HSET" {
						args = append(args, "v")
					}
				}
				request(t, addr, args...)
				scan := "SSCAN"
				if c.add == "HSET" {
					scan = "HSCAN"
				}
				seen := map[string]bool{}
				cursor, calls := "0", 0
				for {
					r := parseReply(t, request(t, addr, scan, c.key, cursor, "COUNT", "20"))
					cursor, calls = string(r.elems[0].bulk), calls+1
					elems := r.elems[1].elems
					for i := 0; i < len(elems); i++ {
						seen[string(elems[i].bulk)] = true
						if scan == "HSCAN" {
							i++ // the value
						}
					}
					if cursor == "0" || calls > 10*c.n {
						break
					}
				}
				if c.whole != (calls == 1) {
					t.Errorf("%s: %d calls", who, calls)
				}
				got := make([]string, 0, len(seen))
				for m := range seen {
					got = append(got, m)
				}
				slices.Sort(got)
				if len(got) != c.n {
					t.Errorf("%s: %d elements, want %d", who, len(got), c.n)
				}
				if want != nil && !slices.Equal(got, want) {
					t.Errorf("%s returned other elements than the other server", who)
				}
				want = got
			}
		})
	}
}

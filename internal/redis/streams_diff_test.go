package redis_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// Random stream commands — explicit, "ms-*" and refused IDs, exact
// MAXLEN and MINID trims, NOMKSTREAM, XDEL, XSETID, ranges with exclusive
// and incomplete bounds and counts, XREAD of several streams, XINFO
// STREAM — sent to redis-server and to hatcheck, every reply compared byte
// for byte. Each stream gets fewer than 100 entries, so that redis keeps it
// in one listpack node and XINFO's radix-tree figures agree too (see
// docs/COMPATIBILITY.md). Skipped where redis-server is not installed
// (the CI has it).
func TestStreamsAgainstRedis(t *testing.T) {
	bin := transcript.Reference(t, "redis-server", "redis-server", false)
	if bin == "" {
		t.Skip("no redis-server")
	}
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			steps := randomStreamSteps(seed, 400)
			want := play(t, startRedisServer(t, bin, ""), steps)
			got := play(t, servertest.Start(t).RedisAddr(), steps)
			errs, empty := 0, 0
			for i := range steps {
				switch {
				case strings.HasPrefix(string(want[i]), "-"):
					errs++
				case string(want[i]) == "*0\r\n" || string(want[i]) == "*-1\r\n" || string(want[i]) == ":0\r\n":
					empty++
				}
				if string(got[i]) != string(want[i]) {
					t.Fatalf("step %d %s:\n got: %q\nwant: %q", i, steps[i].Line, got[i], want[i])
				}
			}
			t.Logf("%d steps: %d errors, %d empty or zero replies", len(steps), errs, empty)
		})
	}
}

func randomStreamSteps(seed uint64, n int) []transcript.Step {
	r := rand.New(rand.NewPCG(seed, 7))
	keys := []string{"a", "b", "c"}
	adds := map[string]int{}
	top := 1 // IDs are drawn around the largest ms used so far
	id := func() string {
		switch r.IntN(10) {
		case 0:
			return fmt.Sprint(r.IntN(top + 2))
		case 1:
			return "0-0"
		default:
			return fmt.Sprintf("%d-%d", r.IntN(top+2), r.IntN(4))
		}
	}
	next := func() string { // mostly above the top, sometimes not
		ms := top + r.IntN(3) - 1
		top = max(top, ms)
		if r.IntN(3) == 0 {
			return fmt.Sprintf("%d-*", ms)
		}
		return fmt.Sprintf("%d-%d", ms, r.IntN(3))
	}
	bound := func(lo bool) string {
		switch r.IntN(8) {
		case 0:
			if lo {
				return "-"
			}
			return "+"
		case 1:
			return "(" + id()
		}
		return id()
	}
	var lines []string
	for len(lines) < n {
		k := keys[r.IntN(len(keys))]
		switch op := r.IntN(13); {
		case op <= 4:
			if adds[k] >= 90 {
				continue
			}
			adds[k]++
			var opts []string
			switch r.IntN(6) {
			case 0:
				opts = append(opts, "MAXLEN", fmt.Sprint(r.IntN(25)))
			case 1:
				opts = append(opts, "MINID", "=", id())
			case 2:
				opts = append(opts, "NOMKSTREAM")
			}
			newID := next()
			fields := []string{"f", fmt.Sprint(len(lines))}
			if r.IntN(4) == 0 {
				fields = append(fields, "g", strings.Repeat("x", r.IntN(20)))
			}
			lines = append(lines, strings.Join(append(append(append([]string{"XADD", k}, opts...), newID), fields...), " "))
		case op == 5:
			lines = append(lines, fmt.Sprintf("XDEL %s %s %s", k, id(), id()))
		case op == 6:
			if r.IntN(2) == 0 {
				lines = append(lines, fmt.Sprintf("XTRIM %s MAXLEN %d", k, r.IntN(20)))
			} else {
				lines = append(lines, fmt.Sprintf("XTRIM %s MINID %s", k, id()))
			}
		case op == 7:
			lines = append(lines, fmt.Sprintf("XRANGE %s %s %s COUNT %d", k, bound(true), bound(false), r.IntN(5)-1))
		case op == 8:
			lines = append(lines, fmt.Sprintf("XREVRANGE %s %s %s", k, bound(false), bound(true)))
		case op == 9:
			lines = append(lines, fmt.Sprintf("XREAD COUNT %d STREAMS a b c %s %s $", r.IntN(4), id(), id()))
		case op == 10:
			lines = append(lines, "XINFO STREAM "+k)
		case op == 11:
			if r.IntN(3) == 0 {
				lines = append(lines, fmt.Sprintf("XSETID %s %s", k, next()))
			} else {
				lines = append(lines, fmt.Sprintf("XSETID %s %d-9 MAXDELETEDID %s", k, top, id()))
			}
		default:
			lines = append(lines, "XLEN "+k)
		}
	}
	steps := make([]transcript.Step, len(lines))
	for i, l := range lines {
		req, _ := encodeInline(l)
		steps[i] = transcript.Step{Line: l, Req: req}
	}
	return steps
}

package bench

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/testbin"
)

func TestPrefillProgressLines(t *testing.T) {
	var out testbin.LockedBuffer
	var done atomic.Int64
	done.Store(340)
	stop := prefillProgress(&out, &done, 1000, 5*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "prefill: 340/1000 keys (34%)\n") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line after 5s: %q", out.String())
		}
		time.Sleep(time.Millisecond)
	}
	done.Store(1000)
	stop(true)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if last := lines[len(lines)-1]; !regexp.MustCompile(`^prefill: 1000/1000 keys \(100%\) in \d+\.\ds$`).MatchString(last) {
		t.Fatalf("last line %q", last)
	}
	n := len(out.String())
	time.Sleep(20 * time.Millisecond)
	if len(out.String()) != n {
		t.Fatalf("lines after stop: %q", out.String()[n:])
	}

	// At most one line per interval: with an hour's interval a quick
	// prefill prints only its last line, and a failed one nothing.
	var quick testbin.LockedBuffer
	prefillProgress(&quick, &done, 1000, time.Hour)(true)
	if got := quick.String(); !strings.HasPrefix(got, "prefill: 1000/1000 keys (100%) in ") || strings.Count(got, "\n") != 1 {
		t.Fatalf("quick prefill printed %q", got)
	}
	var failed testbin.LockedBuffer
	prefillProgress(&failed, &done, 1000, time.Hour)(false)
	if failed.String() != "" {
		t.Fatalf("failed prefill printed %q", failed.String())
	}
	prefillProgress(nil, &done, 1000, time.Millisecond)(true) // no writer: nothing to do
}

// TestPrefillReportsProgress: a run's prefill reports growing counts of
// keys written and ends with the total.
func TestPrefillReportsProgress(t *testing.T) {
	s := servertest.Start(t)
	var out testbin.LockedBuffer
	cfg := quick(s.RedisAddr(), "redis", "reads")
	cfg.Keys = 5000
	cfg.Duration = 100 * time.Millisecond
	cfg.Progress = &out
	cfg.progressInterval = time.Millisecond
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^prefill: (\d+)/5000 keys \((\d+)%\)( in \d+\.\ds)?$`)
	var prev int64 = -1
	var final bool
	for _, line := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(line, "prefill") {
			continue
		}
		m := re.FindStringSubmatch(line)
		if m == nil || final {
			t.Fatalf("prefill line %q (after the last: %v) in %q", line, final, out.String())
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		pct, _ := strconv.ParseInt(m[2], 10, 64)
		if n < prev || pct != n*100/5000 {
			t.Fatalf("line %q after %d keys", line, prev)
		}
		prev, final = n, m[3] != ""
	}
	if !final || prev != 5000 {
		t.Fatalf("no final line with 5000 keys: %q", out.String())
	}
}

package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hatcheck/hatcheck/internal/testbin"
)

// fakeCluster is a Cluster and an Overviewer.
type fakeCluster struct {
	ov  Overview
	err error
}

func (f *fakeCluster) Status(context.Context) (any, error)              { return nil, nil }
func (f *fakeCluster) Remove(context.Context, string) error             { return nil }
func (f *fakeCluster) TransferLeadership(context.Context, string) error { return nil }
func (f *fakeCluster) Overview(ctx context.Context) (Overview, error) {
	if _, ok := ctx.Deadline(); !ok {
		return Overview{}, errors.New("no deadline")
	}
	return f.ov, f.err
}

func TestDashboardBehindThePassword(t *testing.T) {
	h := Handler(okStatus{}, prometheus.NewRegistry(), &fakeCluster{}, Options{Password: "s3cret"})
	for _, path := range []string{"/", "/dashboard/dashboard.js", "/dashboard/dashboard.css", "/cluster/overview"} {
		if got := get(t, h, path, ""); got != 401 {
			t.Errorf("%s without the password: %d, want 401", path, got)
		}
		if got := get(t, h, path, "s3cret"); got != 200 {
			t.Errorf("%s with the password: %d", path, got)
		}
	}
	for _, path := range []string{"/nope", "/dashboard/nope.js", "/index.html"} {
		if got := get(t, h, path, "s3cret"); got != 404 && got != 301 {
			t.Errorf("%s: %d, want 404 (or a redirect to /)", path, got)
		}
	}
	// Without an Overviewer there is no dashboard.
	plain := Handler(okStatus{}, prometheus.NewRegistry(), nil, Options{})
	if got := get(t, plain, "/", ""); got != 404 {
		t.Errorf("GET / without a cluster: %d", got)
	}
}

// The page loads nothing from elsewhere, and says so in its CSP.
func TestDashboardPageIsSelfContained(t *testing.T) {
	h := Handler(okStatus{}, prometheus.NewRegistry(), &fakeCluster{}, Options{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q", ct)
	}
	page := w.Body.String()
	for _, want := range []string{`src="/dashboard/dashboard.js"`, `href="/dashboard/dashboard.css"`, `id="members"`, `id="events"`, `role="alert"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for _, name := range []string{"index.html", "dashboard.js", "dashboard.css"} {
		b, err := dashboardFiles.ReadFile("dashboard/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"http://", "https://", "<style", "style=", "onclick", "onload"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s holds %q: the CSP forbids external and inline resources", name, bad)
			}
		}
	}
}

func TestOverviewLagAndEvents(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	f := &fakeCluster{ov: Overview{Self: "n2", LeaderID: "n1", Term: 4, Members: []MemberView{
		{ID: "n1", Up: true, Role: "leader", Commit: 120, Applied: 120},
		{ID: "n2", Up: true, Role: "follower", Commit: 118, Applied: 100},
		{ID: "n3", Error: "connection refused"},
	}, Events: []Event{{Time: t0, Text: "old"}, {Time: t0.Add(time.Minute), Text: "new"}}}}
	h := Handler(okStatus{}, prometheus.NewRegistry(), f, Options{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/cluster/overview", nil))
	var ov Overview
	if err := json.NewDecoder(w.Body).Decode(&ov); err != nil || w.Code != 200 {
		t.Fatalf("%d %v", w.Code, err)
	}
	lag := func(i int) any {
		if ov.Members[i].Lag == nil {
			return nil
		}
		return *ov.Members[i].Lag
	}
	if lag(0) != uint64(0) || lag(1) != uint64(20) || lag(2) != nil {
		t.Errorf("lags %v %v %v, want 0 20 none", lag(0), lag(1), lag(2))
	}
	if ov.Events[0].Text != "new" {
		t.Errorf("events not newest first: %+v", ov.Events)
	}

	// No leader answering: no lag is known.
	f.ov.Members[0] = MemberView{ID: "n1", Error: "timeout"}
	f.ov.Finish()
	if f.ov.Members[1].Lag != nil {
		t.Errorf("lag without a leader: %d", *f.ov.Members[1].Lag)
	}

	f.err = errors.New("shutting down")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/cluster/overview", nil))
	if b, _ := io.ReadAll(w.Body); w.Code != 503 || !strings.Contains(string(b), "shutting down") {
		t.Errorf("an overview that fails: %d %s", w.Code, b)
	}
}

func TestQuantile(t *testing.T) {
	bounds := []float64{1, 2, 4, 8}
	for _, c := range []struct {
		q    float64
		cum  []uint64
		n    uint64
		want float64
	}{
		{0.5, []uint64{0, 10, 10, 10}, 10, 1.5},    // all in (1, 2]
		{0.99, []uint64{98, 99, 100, 100}, 100, 2}, // the 99th is the last of (1, 2]
		{0.5, []uint64{0, 0, 0, 0}, 4, 8},          // beyond the last bound
		{0.5, []uint64{4, 4, 4, 4}, 4, 0.5},        // within the first, from 0
	} {
		if got := quantile(c.q, bounds, c.cum, c.n); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("quantile(%v, %v) = %v, want %v", c.q, c.cum, got, c.want)
		}
	}
}

// LoadMeter turns the front ends' histograms into ops/s and percentiles
// over its window, counts clients, and reports slow commands once per
// sample.
func TestLoadMeter(t *testing.T) {
	reg := prometheus.NewRegistry()
	rm, mm := NewMetrics(reg, "redis"), NewMetrics(reg, "memcache")
	rm.SetBlocking([]string{"blpop", "bzpopmin"})
	var slow []SlowCommands
	l := NewLoadMeter(func(s SlowCommands) { slow = append(slow, s) }, rm, nil, mm)
	t0 := time.Now()
	l.Sample(t0)
	if ld := l.Load(); ld.OpsPerSec != 0 || ld.P50 != 0 {
		t.Fatalf("one sample: %+v", ld)
	}
	for range 89 {
		rm.Command("get", 100*time.Microsecond, false)
	}
	for range 9 {
		mm.Command("set", 300*time.Microsecond, false)
	}
	rm.Command("set", 50*time.Millisecond, false)
	mm.Command("get", 20*time.Millisecond, false)
	// A blocking command's wait is an operation, but neither a latency
	// nor slow.
	rm.Command("blpop", 5*time.Second, false)
	rm.Connections(3)
	mm.Connections(2)
	l.Sample(t0.Add(2 * time.Second))
	ld := l.Load()
	if ld.OpsPerSec != 50.5 || ld.Clients != 5 {
		t.Errorf("load %+v, want 50.5 ops/s and 5 clients", ld)
	}
	if ld.P50 < 50e-6 || ld.P50 > 100e-6 || ld.P99 < 12.8e-3 || ld.P99 > 51.2e-3 {
		t.Errorf("p50 %v (want in the 50-100 µs bucket), p99 %v (want 12.8-51.2 ms)", ld.P50, ld.P99)
	}
	if len(slow) != 1 || slow[0].Count != 2 || slow[0].Command != "set" || slow[0].Protocol != "redis" {
		t.Fatalf("slow commands: %+v", slow)
	}
	if s := slow[0].String(); !strings.Contains(s, "2 commands slower than 10ms in the last 1s") || !strings.Contains(s, "redis set, 50ms") {
		t.Errorf("slow text %q", s)
	}
	// The window moves on: once every sample in it is idle, so is the
	// load. Slow commands meanwhile are reported together, slowEvery
	// after the last report.
	for i := range 9 {
		if i == 0 || i == 1 {
			mm.Command("get", 30*time.Millisecond, false)
		}
		l.Sample(t0.Add(time.Duration(3+i) * time.Second))
		if len(slow) != 1 {
			t.Fatalf("slow commands reported %v after the last report: %+v", time.Duration(1+i)*time.Second, slow)
		}
	}
	if ld := l.Load(); ld.OpsPerSec != 0 || ld.P99 != 0 {
		t.Errorf("idle for a window: %+v", ld)
	}
	l.Sample(t0.Add(12 * time.Second))
	if len(slow) != 2 || !strings.Contains(slow[1].String(), "2 commands slower than 10ms in the last 10s (slowest: memcache get, 30ms)") {
		t.Errorf("slow commands: %+v, %q", slow, slow[len(slow)-1])
	}
}

// flakyCluster answers its first overview, then fails.
type flakyCluster struct {
	fakeCluster
	mu    sync.Mutex
	calls int
}

func (f *flakyCluster) Overview(ctx context.Context) (Overview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls > 1 {
		return Overview{}, errors.New("members did not answer in time")
	}
	return f.fakeCluster.Overview(ctx)
}

// In headless Chromium: the page draws an overview (a member that does
// not answer shown DOWN with its error), and when the node serving it
// stops answering it keeps the last figures under an error banner.
func TestDashboardPageInChromium(t *testing.T) {
	bin := testbin.Chromium(t)
	now := time.Now()
	f := &flakyCluster{fakeCluster: fakeCluster{ov: Overview{Self: "a", LeaderID: "a", Term: 3, Time: now,
		Members: []MemberView{
			{ID: "a", Up: true, Voter: true, Role: "leader", Health: "ok", Term: 3, Commit: 9, Applied: 9, RedisAddr: "10.0.0.1:6379",
				Load: &Load{OpsPerSec: 1234.5, P50: 0.00042, P99: 0.0123, Clients: 7}, UsedMemory: 3 << 20, Keys: 4321},
			{ID: "b", Up: true, Voter: false, Role: "follower", Health: "ok", Term: 3, Commit: 9, Applied: 5},
			{ID: "c", Voter: true, Error: "dial tcp 10.0.0.3:7481: connect: connection refused", PeerAddr: "10.0.0.3:7481"},
		},
		Events: []Event{{Time: now, Node: "a", Kind: "leader", Text: "a is the leader (term 3)"}},
	}}}
	srv := httptest.NewServer(Handler(okStatus{}, prometheus.NewRegistry(), f, Options{}))
	defer srv.Close()
	dom := testbin.Browse(t, bin, srv.URL+"/", "")
	text := regexp.MustCompile(`<[^>]+>`).ReplaceAllString(dom, " ")
	for _, want := range []string{
		"3 members (2 voting), 2 answering", "Leader a, term 3",
		"1,235", "420 µs", "12.3 ms", "3.0 MiB", "4,321", "10.0.0.1:6379", // a's figures
		"learner", // b
		"DOWN", "not answering: dial tcp 10.0.0.3:7481: connect: connection refused",
		"a is the leader (term 3)",
		srv.Listener.Addr().String() + " answered 503 Service Unavailable: members did not answer in time.",
		"The figures below are from",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page lacks %q:\n%s", want, dom)
		}
	}
	if strings.Contains(dom, `id="banner" role="alert" hidden`) {
		t.Error("the banner is hidden")
	}
	if !regexp.MustCompile(`<tr class="down" data-node="c" data-state="down">`).MatchString(dom) {
		t.Errorf("c's row is not marked down:\n%s", dom)
	}
}

// TestSlowThreshold: SetSlowThreshold replaces the default threshold, a
// negative one turns slow commands off, and the tally names the threshold.
func TestSlowThreshold(t *testing.T) {
	th := time.Millisecond
	m := NewMetrics(prometheus.NewRegistry(), "redis")
	m.SetSlowThreshold(func() time.Duration { return th })
	m.Command("get", 500*time.Microsecond, false)
	m.Command("set", 2*time.Millisecond, false)
	got := m.takeSlow()
	if got.Count != 1 || got.Command != "set" || got.Threshold != time.Millisecond {
		t.Fatalf("slow with a 1ms threshold: %+v", got)
	}
	got.Over = time.Second
	if s := got.String(); !strings.Contains(s, "1 command slower than 1ms") {
		t.Errorf("text %q", s)
	}
	th = -1
	m.Command("set", time.Second, false)
	if got := m.takeSlow(); got.Count != 0 {
		t.Fatalf("slow with the threshold off: %+v", got)
	}
}

package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type okStatus struct{}

func (okStatus) Ready() bool    { return true }
func (okStatus) Healthy() error { return nil }

func get(t *testing.T, h http.Handler, path, password string) int {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	if password != "" {
		r.SetBasicAuth("any", password)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// With a password, everything but the probes needs it; pprof is served
// only when asked for, and then behind the password too.
func TestPasswordGuardsAllButProbes(t *testing.T) {
	h := Handler(okStatus{}, prometheus.NewRegistry(), nil, Options{Password: "s3cret", Pprof: true})
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 401, "/debug/pprof/cmdline": 401} {
		if got := get(t, h, path, ""); got != want {
			t.Errorf("%s without the password: %d, want %d", path, got, want)
		}
	}
	if got := get(t, h, "/metrics", "wrong"); got != 401 {
		t.Errorf("/metrics with a wrong password: %d", got)
	}
	for _, path := range []string{"/metrics", "/debug/pprof/cmdline"} {
		if got := get(t, h, path, "s3cret"); got != 200 {
			t.Errorf("%s with the password: %d", path, got)
		}
	}
	off := Handler(okStatus{}, prometheus.NewRegistry(), nil, Options{})
	if got := get(t, off, "/debug/pprof/cmdline", ""); got != 404 {
		t.Errorf("pprof not asked for: %d, want 404", got)
	}
	if got := get(t, off, "/metrics", ""); got != 200 {
		t.Errorf("/metrics without a password set: %d", got)
	}
}

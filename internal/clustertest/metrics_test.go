package clustertest

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The leader's /metrics shows each follower's lag; a follower's shows
// none, and every node its log's append latency.
func TestFollowerLagAndAppendLatencyMetrics(t *testing.T) {
	c := Start(t, 3)
	leader := c.Leader()
	if err := leader.Client().Set(Ctx(t, 10*time.Second), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	metrics := func(n *Node) string {
		resp, err := http.Get("http://" + n.Cfg.HTTPAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := metrics(leader)
	for _, f := range c.Others(leader) {
		if want := `hatcheck_follower_lag_entries{member="` + f.ID + `"}`; !strings.Contains(m, want) {
			t.Errorf("the leader's /metrics lacks %s", want)
		}
	}
	for _, f := range c.Others(leader) {
		fm := metrics(f)
		if strings.Contains(fm, "hatcheck_follower_lag_entries{") {
			t.Errorf("follower %s reports follower lag", f.ID)
		}
		if !strings.Contains(fm, "hatcheck_log_append_duration_seconds_count") {
			t.Errorf("follower %s lacks the append latency", f.ID)
		}
	}
}

package clustertest

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/testbin"
)

var dashboardScreenshot = flag.String("dashboard-screenshot", "",
	"write a screenshot of the dashboard of the live cluster to this PNG file (docs/dashboard.png)")

// row is one member's row of the dashboard's table.
type row struct{ node, state, text string }

var (
	rowRE = regexp.MustCompile(`(?s)<tr[^>]*data-node="([^"]+)"[^>]*data-state="([^"]*)"[^>]*>(.*?)</tr>`)
	tagRE = regexp.MustCompile(`<[^>]+>`)
)

func rows(dom string) map[string]row {
	out := map[string]row{}
	for _, m := range rowRE.FindAllStringSubmatch(dom, -1) {
		out[m[1]] = row{node: m[1], state: m[2], text: tagRE.ReplaceAllString(m[3], " ")}
	}
	return out
}

// section is the text of the element with id, tags removed.
func section(dom, id string) string {
	i := strings.Index(dom, `id="`+id+`"`)
	if i < 0 {
		return ""
	}
	rest := dom[i:]
	if j := strings.Index(rest, "</section>"); j >= 0 {
		rest = rest[:j]
	}
	return tagRE.ReplaceAllString(rest, " ")
}

// TestDashboardInChromium loads the dashboard of a live three-node cluster
// (with a password, given in the URL as a user would type it) in headless
// Chromium and checks what the page shows: every member, one leader,
// nobody down, figures and events; then kills a follower and checks that
// the page shows that member DOWN while the others stay up.
func TestDashboardInChromium(t *testing.T) {
	bin := testbin.Chromium(t)
	const password = "dash-pw"
	c := Start(t, 3, func(cfg *config.Config) { cfg.RequirePass = password })
	leader := c.Leader()
	serving := c.Nodes[0]
	var victim *Node
	for _, n := range c.Nodes[1:] {
		if n != leader {
			victim = n
			break
		}
	}

	// Some traffic, so that the figures are not all zero: a few clients
	// on every node until the test ends.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	for i, n := range c.Nodes {
		cl := goredis.NewClient(&goredis.Options{Addr: n.Cfg.RedisAddr, Password: password, MaxRetries: -1})
		t.Cleanup(func() { cl.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ctx.Err() == nil; j++ {
				key := fmt.Sprintf("sess:%d:%d", i, j%500)
				_ = cl.Set(ctx, key, "v", time.Hour).Err()
				_ = cl.Get(ctx, key).Err()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(2 * time.Second) // two load samples

	url := fmt.Sprintf("http://user:%s@%s/", password, serving.Cfg.HTTPAddr)
	if *dashboardScreenshot != "" {
		path, err := filepath.Abs(*dashboardScreenshot)
		if err != nil {
			t.Fatal(err)
		}
		testbin.Browse(t, bin, url, path)
		t.Logf("screenshot written to %s", path)
	}

	dom := testbin.Browse(t, bin, url, "")
	rs := rows(dom)
	if len(rs) != 3 {
		t.Fatalf("the page shows %d members, want 3; DOM:\n%s", len(rs), dom)
	}
	leaders := 0
	for _, n := range c.Nodes {
		r, ok := rs[n.ID]
		switch {
		case !ok:
			t.Fatalf("the page does not show %s", n.ID)
		case r.state == "down" || strings.Contains(r.text, "DOWN"):
			t.Fatalf("%s shown down in a healthy cluster: %s", n.ID, r.text)
		case !strings.Contains(r.text, "ok") || !strings.Contains(r.text, n.Cfg.RedisAddr):
			t.Errorf("%s's row lacks its health or Redis address: %s", n.ID, r.text)
		}
		if r.state == "leader" {
			leaders++
			if n != leader {
				t.Errorf("the page shows %s leading, the cluster says %s", n.ID, leader.ID)
			}
		}
	}
	if leaders != 1 {
		t.Errorf("%d leaders on the page", leaders)
	}
	if !strings.Contains(rs[serving.ID].text, "(this node)") {
		t.Errorf("the serving node is not marked: %s", rs[serving.ID].text)
	}
	summary := section(dom, "summary")
	if !strings.Contains(summary, "3 members") || !strings.Contains(summary, "Leader "+leader.ID) {
		t.Errorf("summary: %q", summary)
	}
	if events := section(dom, "events"); !strings.Contains(events, leader.ID+" is the leader") || !strings.Contains(events, "promoted to voter") {
		t.Errorf("events lack the election or the joins: %q", events)
	}
	if !regexp.MustCompile(`<div id="banner" role="alert" hidden`).MatchString(dom) {
		t.Errorf("the error banner shows with every node up:\n%s", section(dom, "banner"))
	}
	if strings.Contains(section(dom, "updated"), "never") {
		t.Error("the page never updated")
	}

	victim.Kill()
	t.Logf("killed %s", victim.ID)
	dom = testbin.Browse(t, bin, url, "")
	rs = rows(dom)
	if r := rs[victim.ID]; r.state != "down" || !strings.Contains(r.text, "DOWN") || !strings.Contains(r.text, "not answering") {
		t.Fatalf("the killed %s is shown as %q: %s", victim.ID, r.state, r.text)
	}
	for _, n := range c.Others(victim) {
		if r := rs[n.ID]; r.state == "down" {
			t.Errorf("%s shown down after %s was killed: %s", n.ID, victim.ID, r.text)
		}
	}
	if summary := section(dom, "summary"); !strings.Contains(summary, "2 answering") {
		t.Errorf("summary after the kill: %q", summary)
	}
}

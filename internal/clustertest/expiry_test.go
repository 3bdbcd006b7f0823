package clustertest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestExpiryFollowsLeadership: keys with a TTL are deleted through the log
// by whichever node leads, also after leadership moves; followers never
// delete by their own clock, so until the log says so they still hold the
// key (while reads already treat it as absent).
func TestExpiryFollowsLeadership(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	old := c.Leader()
	target := c.Others(old)[0]
	// Hand leadership over first, then write short-lived keys: only the new
	// leader's expirer can remove them.
	if err := old.Server().Node().TransferLeadership(ctx, target.ID); err != nil {
		t.Fatal(err)
	}
	if c.Leader() != target {
		t.Fatal("leadership did not move")
	}
	cl := old.Client()
	for _, k := range []string{"a", "b", "c"} {
		if err := cl.Set(ctx, "sess:"+k, "v", 300*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := cl.Exists(ctx, "sess:a").Result(); err != nil || n != 1 {
		t.Fatalf("EXISTS right after SET: %d %v", n, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		held := 0
		for _, n := range c.Nodes {
			held += n.Server().Node().Stats().Keys[0]
		}
		if held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired keys still held by the nodes (%d in total) 20 s later", held)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if exp := target.Server().Node().Stats().Expired; exp != 3 {
		t.Fatalf("the new leader expired %d keys, want 3", exp)
	}
	if exp := old.Server().Node().Stats().Expired; exp != 0 {
		t.Fatalf("the old leader (a follower now) expired %d keys itself", exp)
	}
}

// TestMemccapableOnFollower runs the memcached conformance suite against a
// follower: every command is forwarded to the leader.
func TestMemccapableOnFollower(t *testing.T) {
	bin, err := exec.LookPath("memccapable")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("memccapable not installed; .ci/run must install libmemcached-tools")
		}
		t.Skip("memccapable not installed (Debian libmemcached-tools)")
	}
	c := Start(t, 3)
	f := c.Others(c.Leader())[0]
	host, port, _ := strings.Cut(f.Cfg.MemcacheAddr, ":")
	out, err := exec.Command(bin, "-h", host, "-p", port, "-t", "10").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "All tests passed") {
		t.Fatalf("memccapable against a follower: %v\n%s", err, out)
	}
}

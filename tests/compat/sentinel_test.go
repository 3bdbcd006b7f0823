package compat

import (
	"bufio"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/clustertest"
)

// python is Debian's interpreter, where python3-redis is installed (a
// python3 earlier on PATH may be another installation).
func python(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	need(t, "python3", "python3")
	return "python3"
}

// TestRedisPySentinelFollowsLeader runs redis-py's Sentinel client (Debian
// python3-redis) with the three nodes as sentinels, kills the leader while
// it runs, and checks that it finds the new leader and keeps its data.
func TestRedisPySentinelFollowsLeader(t *testing.T) {
	py := python(t)
	if err := exec.Command(py, "-c", "import redis.sentinel").Run(); err != nil {
		missing(t, "python module redis", "python3-redis")
	}
	sentinelFailover(t, " master", py, "python/sentinel_failover.py")
}

// TestPerlRedisSentinelFollowsLeader does the same with Perl's Redis.pm
// (Debian libredis-perl), the client Request Tracker's sessions use.
func TestPerlRedisSentinelFollowsLeader(t *testing.T) {
	need(t, "perl", "perl")
	if err := exec.Command("perl", "-MRedis", "-e", "1").Run(); err != nil {
		missing(t, "perl module Redis", "libredis-perl")
	}
	sentinelFailover(t, "", "perl", "perl/sentinel_failover.pl")
}

// sentinelFailover runs a client script (see python/sentinel_failover.py)
// against a three-node cluster: the script finds the leader through the
// nodes as sentinels and writes; the test kills the leader; the script must
// write again through the new leader. suffix is what the script prints
// after the value it reads back.
func sentinelFailover(t *testing.T, suffix string, interp string, script ...string) {
	c := clustertest.Start(t, 3)
	args := append(script, "hatcheck")
	for _, n := range c.Nodes {
		args = append(args, n.Cfg.RedisAddr)
	}
	cmd := exec.Command(interp, args...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	leader := c.Leader()
	select {
	case l := <-lines:
		if l != "ready "+leader.Cfg.RedisAddr {
			t.Fatalf("client: %q, want it to find the leader %s\n%s", l, leader.Cfg.RedisAddr, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("client did not start\n%s", stderr.String())
	}
	leader.Kill()
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	var result string
	select {
	case result = <-lines:
	case <-time.After(60 * time.Second):
		t.Fatalf("client did not finish\n%s", stderr.String())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("client: %v: %s\n%s", err, result, stderr.String())
	}
	newLeader := c.Leader()
	want := "ok " + leader.Cfg.RedisAddr + " -> " + newLeader.Cfg.RedisAddr + " after" + suffix
	if result != want {
		t.Fatalf("client: %q, want %q\n%s", result, want, stderr.String())
	}
}

// TestIORedisSentinelFollowsLeader does the same with ioredis's
// `sentinels` option (npm, see node/package.json).
func TestIORedisSentinelFollowsLeader(t *testing.T) {
	need(t, "node", "nodejs")
	if err := exec.Command("node", "-e", `require("./node/node_modules/ioredis")`).Run(); err != nil {
		missing(t, "npm package ioredis", "npm ci in tests/compat/node")
	}
	sentinelFailover(t, "", "node", "node/sentinel_failover.js")
}

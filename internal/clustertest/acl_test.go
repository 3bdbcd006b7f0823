package clustertest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/config"
)

// TestACLUsersAcrossNodes: users are replicated state. A user set through
// a follower can AUTH on another node (go-redis with Username), where its
// permissions are enforced; a changed user's connections get the new
// permissions; ACL DELUSER closes the user's connections on every node;
// and a node that catches up by installing a snapshot knows the users.
func TestACLUsersAcrossNodes(t *testing.T) {
	c := Start(t, 3, func(cfg *config.Config) {
		// Snapshots often, and a short log, so that a node that was
		// down catches up by installing a snapshot.
		cfg.SnapshotThreshold = 64
		cfg.TrailingLogs = 16
		cfg.LogSegmentSize = 256 << 10
	})
	ctx := Ctx(t, 2*time.Minute)
	leader := c.Leader()
	followers := c.Others(leader)
	f0, f1 := followers[0], followers[1]
	if err := f0.Client().Do(ctx, "ACL", "SETUSER", "app1", "on", ">pw1", "~app1:*", "+@all", "-@dangerous").Err(); err != nil {
		t.Fatalf("ACL SETUSER through a follower: %v", err)
	}
	// Applied on every node soon after: AUTH as app1 on the other
	// follower, with a real client's Username.
	app := goredis.NewClient(&goredis.Options{Addr: f1.Cfg.RedisAddr, Username: "app1", Password: "pw1", MaxRetries: -1, PoolSize: 1})
	t.Cleanup(func() { app.Close() })
	waitFor(t, "app1 to authenticate on the other follower", func() error { return app.Ping(ctx).Err() })
	if v, err := app.Do(ctx, "ACL", "WHOAMI").Text(); err != nil || v != "app1" {
		t.Fatalf("ACL WHOAMI: %q %v", v, err)
	}
	if err := app.Set(ctx, "app1:k", "v", 0).Err(); err != nil {
		t.Fatalf("SET app1:k: %v", err)
	}
	noKey := "NOPERM this user has no permissions to access one of the keys used as arguments"
	if err := app.Set(ctx, "other", "v", 0).Err(); err == nil || err.Error() != noKey {
		t.Fatalf("SET other: %v", err)
	}
	if err := app.FlushAll(ctx).Err(); err == nil || err.Error() != "NOPERM this user has no permissions to run the 'flushall' command" {
		t.Fatalf("FLUSHALL: %v", err)
	}
	// Scripts run as the user on every node: the follower's and the
	// leader's executions refuse the same call.
	if err := app.Eval(ctx, "return redis.call('get', 'other')", nil).Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR The user executing the script can't access") {
		t.Fatalf("EVAL reading another key: %v", err)
	}
	if v, err := app.Eval(ctx, "return redis.call('get', 'app1:k')", nil).Text(); err != nil || v != "v" {
		t.Fatalf("EVAL reading its key: %q %v", v, err)
	}
	// A change applies to the connection already authenticated.
	if err := leader.Client().Do(ctx, "ACL", "SETUSER", "app1", "~other").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new key pattern on the connected client", func() error { return app.Set(ctx, "other", "v", 0).Err() })

	// ACL DELUSER through a follower closes app1's connections on the
	// other nodes.
	conns := make([]net.Conn, len(c.Nodes))
	readers := make([]*bufio.Reader, len(c.Nodes))
	for i, n := range c.Nodes {
		nc, err := net.Dial("tcp", n.Cfg.RedisAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		conns[i], readers[i] = nc, bufio.NewReader(nc)
		if reply := rawCommand(t, nc, readers[i], "AUTH", "app1", "pw1"); reply != "+OK" {
			t.Fatalf("node %d: AUTH app1: %q", i, reply)
		}
	}
	if n, err := f0.Client().Do(ctx, "ACL", "DELUSER", "app1").Int(); err != nil || n != 1 {
		t.Fatalf("ACL DELUSER: %d %v", n, err)
	}
	for i, nc := range conns {
		_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := readers[i].ReadByte(); !errors.Is(err, io.EOF) && (err == nil || !strings.Contains(err.Error(), "reset")) {
			t.Fatalf("node %d: the deleted user's connection was not closed: %v", i, err)
		}
	}
	if err := app.Ping(ctx).Err(); err == nil {
		t.Fatal("a deleted user authenticated again")
	}

	// Snapshot: a node down while a user is created (and many writes
	// compact the log) learns the user from the leader's snapshot.
	lagging := f1
	lagging.Kill()
	if err := leader.Client().Do(ctx, "ACL", "SETUSER", "app2", "on", ">pw2", "~app2:*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	cl := leader.Client()
	at := leader.Server().Node().Stats().CommitIndex
	for i := 0; leader.Server().Node().Stats().LastSnapshotIndex <= at+16; i++ {
		if err := cl.Set(ctx, fmt.Sprintf("fill:%d", i), "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("the leader did not take a snapshot")
		}
	}
	// The leader's log now starts after the SETUSER entry: the node
	// cannot learn app2 but from the snapshot.
	lagging.Start()
	app2 := goredis.NewClient(&goredis.Options{Addr: lagging.Cfg.RedisAddr, Username: "app2", Password: "pw2", MaxRetries: -1, PoolSize: 1})
	t.Cleanup(func() { app2.Close() })
	waitFor(t, "app2 to authenticate on the restarted node", func() error { return app2.Ping(ctx).Err() })
	if st := lagging.Server().Node().Stats(); st.Restores == 0 {
		t.Fatal("the node caught up without installing a snapshot")
	}
	if err := app2.Get(ctx, "app1:k").Err(); err == nil || err.Error() != noKey {
		t.Fatalf("app2 GET app1:k on the restored node: %v", err)
	}
}

// waitFor retries f until it succeeds, for up to 30 s.
func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawCommand sends one request and returns the first line of the reply.
func rawCommand(t *testing.T, nc net.Conn, r *bufio.Reader, args ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(line, "\r\n")
}

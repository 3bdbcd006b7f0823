package clustertest

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/testbin"
)

// CLIENT TRACKING across a cluster: a write sent to a follower reaches
// the leader through the log and is applied on every node, and each
// node invalidates its own tracking connections, in RESP3 (a push) and in
// RESP2 (REDIRECT to a subscriber of __redis__:invalidate).
func TestTrackingInvalidatesAcrossNodes(t *testing.T) {
	c := Start(t, 3)
	leader := c.Leader()
	others := c.Others(leader)
	writer := others[0].Client()
	readerNode := others[1]
	ctx := Ctx(t, 30*time.Second)
	if err := writer.Set(ctx, "sess:1", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c.WaitVoters(3)

	reader := testbin.DialRESP(t, readerNode.Cfg.RedisAddr)
	reader.Do("HELLO", "3")
	if got := reader.Do("CLIENT", "TRACKING", "ON"); got != "+OK\r\n" {
		t.Fatalf("CLIENT TRACKING ON: %q", got)
	}
	if got := reader.Do("GET", "sess:1"); got != "$2\r\nv1\r\n" {
		t.Fatalf("GET: %q", got)
	}

	// A RESP2 client on the leader, invalidated through a redirect.
	sub := testbin.DialRESP(t, leader.Cfg.RedisAddr)
	subID := strings.TrimSuffix(strings.TrimPrefix(sub.Do("CLIENT", "ID"), ":"), "\r\n")
	sub.Do("SUBSCRIBE", "__redis__:invalidate")
	r2 := testbin.DialRESP(t, leader.Cfg.RedisAddr)
	r2.Do("CLIENT", "TRACKING", "ON", "REDIRECT", subID)
	r2.Do("GET", "sess:1")

	if err := writer.Set(ctx, "sess:1", "v2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := reader.Next(), ">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\nsess:1\r\n"; got != want {
		t.Fatalf("reader on another node got %q, want %q", got, want)
	}
	if got, want := sub.Next(), "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$6\r\nsess:1\r\n"; got != want {
		t.Fatalf("RESP2 subscriber on the leader got %q, want %q", got, want)
	}
	// The reader sees the new value once it reads again.
	if got := reader.Do("GET", "sess:1"); got != "$2\r\nv2\r\n" {
		t.Fatalf("GET after invalidation: %q", got)
	}
	if err := writer.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := reader.Next(), ">2\r\n$10\r\ninvalidate\r\n_\r\n"; got != want {
		t.Fatalf("after FLUSHALL got %q, want %q", got, want)
	}
}

// INFO replication reports the log: master_repl_offset is each node's
// applied index, and the leader lists each replica's offset (its match
// index), which a caught-up replica has equal to the leader's.
func TestInfoReplicationOffsets(t *testing.T) {
	c := Start(t, 3)
	leader := c.Leader()
	ctx := Ctx(t, 30*time.Second)
	if err := leader.Client().Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c.WaitVoters(3)
	info, err := leader.Client().Info(ctx, "replication").Result()
	if err != nil {
		t.Fatal(err)
	}
	field := func(info, name string) string {
		for _, line := range strings.Split(info, "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == name {
				return v
			}
		}
		t.Fatalf("no %s in %q", name, info)
		return ""
	}
	off := field(info, "master_repl_offset")
	if n, _ := strconv.Atoi(off); n <= 0 {
		t.Fatalf("leader's master_repl_offset %q", off)
	}
	for i := 0; i < 2; i++ {
		slave := field(info, "slave"+strconv.Itoa(i))
		if !strings.Contains(slave, ",state=online,offset=") || strings.Contains(slave, "offset=0,") {
			t.Errorf("slave%d:%s", i, slave)
		}
	}
	for _, n := range c.Others(leader) {
		info, err := n.Client().Info(ctx, "replication").Result()
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := strconv.Atoi(field(info, "slave_repl_offset")); v <= 0 {
			t.Errorf("follower's slave_repl_offset %d", v)
		}
	}
}

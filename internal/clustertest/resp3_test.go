package clustertest

import (
	"bufio"
	"net"
	"regexp"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/resp"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// The RESP3 transcripts of sorted sets and of scripts' RESP3 types,
// recorded from redis-server, replayed through a follower of three: its
// writes' results (ZPOPMIN's pairs, ZINCRBY's double, a script's map or
// boolean) come back from the leader with their marks, so the follower
// frames them as a single node does. HELLO's reply (a role and an id of
// this node's) is left out.
func TestRESP3TranscriptsThroughAFollower(t *testing.T) {
	c := Start(t, 3)
	follower := c.Others(c.Leader())[0]
	for _, name := range []string{"resp3_zsets", "scripting_resp3"} {
		t.Run(name, func(t *testing.T) { replayThrough(t, follower, "../redis/testdata/transcripts/"+name) })
	}
	// A script that reads RESP3 values and writes what it read changes
	// every node alike.
	ctx := Ctx(t, 30*time.Second)
	cl := follower.Client()
	if err := cl.ZAdd(ctx, "sz", goredis.Z{Score: 1.25, Member: "m"}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cl.HSet(ctx, "sh", "a", "x").Err(); err != nil {
		t.Fatal(err)
	}
	got, err := cl.Eval(ctx, `redis.setresp(3)
		local d = redis.call('zscore', KEYS[1], 'm').double
		local h = redis.call('hgetall', KEYS[2]).map
		redis.call('set', KEYS[3], tostring(d * 2) .. h.a .. tostring(redis.call('get', 'nosuch') == nil))
		return {double = d}`, []string{"sz", "sh", "sout"}).Result()
	if err != nil || got != "1.25" {
		t.Fatalf("script: %v %v", got, err)
	}
	for _, n := range c.Nodes {
		deadline := time.Now().Add(10 * time.Second)
		v, _ := n.Client().Get(ctx, "sout").Result()
		for v != "2.5xtrue" && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			v, _ = n.Client().Get(ctx, "sout").Result()
		}
		if v != "2.5xtrue" {
			t.Errorf("%s: sout is %q", n.ID, v)
		}
	}
}

// replayThrough plays a transcript whose every step is a request on one
// connection to n and compares the replies with its golden file.
func replayThrough(t *testing.T, n *Node, path string) {
	encode := func(line string) ([]byte, error) {
		args, _ := resp.SplitArgs([]byte(line), nil)
		req := resp.AppendArray(nil, len(args))
		for _, a := range args {
			req = resp.AppendBulk(req, a)
		}
		return req, nil
	}
	f := transcript.Load(t, path+".txt", encode)
	want := transcript.ReadGolden(t, path+".golden")
	conn, err := net.Dial("tcp", n.Cfg.RedisAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	// Each transcript starts from an empty keyspace, as on a new server.
	if _, err := conn.Write([]byte("*1\r\n$8\r\nFLUSHALL\r\n")); err != nil {
		t.Fatal(err)
	}
	if reply, err := resp.ReadReply(r); err != nil || string(reply) != "+OK\r\n" {
		t.Fatalf("FLUSHALL: %q %v", reply, err)
	}
	hello := regexp.MustCompile(`^HELLO`)
	got := make([][]byte, len(f.Steps))
	for i, s := range f.Steps {
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := conn.Write(s.Req); err != nil {
			t.Fatal(err)
		}
		if got[i], err = resp.ReadReply(r); err != nil {
			t.Fatalf("%s: %v", s.Line, err)
		}
		if hello.MatchString(s.Line) {
			got[i], want[i] = nil, nil
		}
	}
	transcript.Compare(t, "follower", f.Steps, want, got)
}

package clustertest

import (
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// The script cache is replicated: a script loaded through one node runs
// by SHA on every other (snapshots carry it too: keyspace tests), and
// SCRIPT FLUSH through a third node forgets it everywhere. phpredis's lock release runs through a
// follower.
func TestScriptsRunOnEveryNode(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 30*time.Second)
	release := `if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end`
	sha, err := c.Nodes[0].Client().ScriptLoad(ctx, release).Result()
	if err != nil || sha != "b70c2384248f88e6b75b9f89241a180f856ad852" {
		t.Fatalf("SCRIPT LOAD: %q %v", sha, err)
	}
	for i, n := range c.Nodes {
		cl := n.Client()
		if err := cl.Set(ctx, "s_LOCK", "host|1", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := cl.EvalSha(ctx, sha, []string{"s_LOCK"}, "other|2").Int(); err != nil || v != 0 {
			t.Fatalf("node %d: release with the wrong secret: %d %v", i, v, err)
		}
		if v, err := cl.EvalSha(ctx, sha, []string{"s_LOCK"}, "host|1").Int(); err != nil || v != 1 {
			t.Fatalf("node %d: release: %d %v", i, v, err)
		}
		if ok, err := cl.ScriptExists(ctx, sha).Result(); err != nil || !ok[0] {
			t.Fatalf("node %d: SCRIPT EXISTS: %v %v", i, ok, err)
		}
	}
	if err := c.Nodes[2].Client().ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for i, n := range c.Nodes {
		err := n.Client().EvalSha(ctx, sha, []string{"s_LOCK"}, "x").Err()
		var rerr goredis.Error
		if !errors.As(err, &rerr) || err.Error() != "NOSCRIPT No matching script. Please use EVAL." {
			t.Fatalf("node %d after SCRIPT FLUSH: %v", i, err)
		}
	}
}

// Keyspace events and PUBLISH reach a subscriber on another node than the
// one that made the change, exactly once each.
func TestEventsReachSubscribersOnEveryNode(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 30*time.Second)
	sub := c.Nodes[2].Client()
	if err := sub.ConfigSet(ctx, "notify-keyspace-events", "Egx").Err(); err != nil {
		t.Fatal(err)
	}
	ps := sub.PSubscribe(ctx, "__keyevent@0__:*")
	defer ps.Close()
	if err := ps.Subscribe(ctx, "news"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the two subscription confirmations
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w := c.Nodes[0].Client()
	for _, args := range [][]any{{"SET", "a", "1"}, {"DEL", "a"}, {"SET", "b", "1", "PX", "100"}} {
		if err := w.Do(ctx, args...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second) // b expires through the leader's expiry
	if n, err := c.Nodes[1].Client().Publish(ctx, "news", "end").Result(); err != nil || n != 0 {
		// The count is the leader's subscribers (node 0 has none).
		t.Logf("PUBLISH via a follower answered %d %v", n, err)
	}
	var got []string
	for {
		m, err := ps.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, m.Channel+" "+m.Payload)
		if m.Channel == "news" {
			break
		}
	}
	// Egx (Spring Session's setting): generic and expired events; "set" is
	// a string-class ($) event and not sent.
	want := []string{"__keyevent@0__:del a", "__keyevent@0__:expire b", "__keyevent@0__:expired b", "news end"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("subscriber on node 2 got\n%v\nwant\n%v", got, want)
	}
}

// A script using cjson runs through a follower (as a write through the
// log, and as EVAL_RO a read it serves itself), and a function library
// loaded through one node is called on the others: the libraries are
// replicated state like the script cache.
func TestScriptLibrariesAndFunctionsThroughFollowers(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 30*time.Second)
	followers := c.Others(c.Leader())
	f0, f1 := followers[0].Client(), followers[1].Client()
	store := `redis.call('set', KEYS[1], cjson.encode({user = ARGV[1], n = tonumber(ARGV[2])})) return redis.call('get', KEYS[1])`
	if v, err := f0.Eval(ctx, store, []string{"sess"}, "ann", "3").Text(); err != nil || v != `{"user":"ann","n":3}` {
		t.Fatalf("EVAL with cjson through a follower: %q %v", v, err)
	}
	read := `return cjson.decode(redis.call('get', KEYS[1])).user`
	for i, n := range c.Nodes {
		if v, err := n.Client().Do(ctx, "EVAL_RO", read, 1, "sess").Text(); err != nil || v != "ann" {
			t.Fatalf("node %d: EVAL_RO: %q %v", i, v, err)
		}
	}
	lib := "#!lua name=sessions\n" +
		"redis.register_function('touch_session', function(keys, args) return redis.call('hincrby', keys[1], 'hits', 1) end)\n" +
		"redis.register_function{function_name='session_hits', callback=function(keys) return redis.call('hget', keys[1], 'hits') end, flags={'no-writes'}}"
	if name, err := f0.FunctionLoad(ctx, lib).Result(); err != nil || name != "sessions" {
		t.Fatalf("FUNCTION LOAD through a follower: %q %v", name, err)
	}
	for i, n := range c.Nodes {
		if v, err := n.Client().FCall(ctx, "touch_session", []string{"h"}).Int(); err != nil || v != i+1 {
			t.Fatalf("node %d: FCALL: %d %v", i, v, err)
		}
	}
	if v, err := f1.FCallRO(ctx, "session_hits", []string{"h"}).Text(); err != nil || v != "3" {
		t.Fatalf("FCALL_RO on the other follower: %q %v", v, err)
	}
	if err := f1.FCallRO(ctx, "touch_session", []string{"h"}).Err(); err == nil || !strings.Contains(err.Error(), "write flag") {
		t.Fatalf("FCALL_RO of a writing function: %v", err)
	}
	if err := c.Leader().Client().FunctionDelete(ctx, "sessions").Err(); err != nil {
		t.Fatal(err)
	}
	if err := f1.FCall(ctx, "touch_session", []string{"h"}).Err(); err == nil || err.Error() != "ERR Function not found" {
		t.Fatalf("FCALL after FUNCTION DELETE on the leader: %v", err)
	}
}

package compat

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/clustertest"
	"github.com/hatcheck/hatcheck/internal/server/servertest"
)

// Java's session managers (Spring Session, Redisson) cannot be installed
// here: no JDK or Maven repository is reachable. These tests replay their
// command sequences, as CLIENTS.md records them, with go-redis, and check
// what those libraries depend on.

// springIndexedSession replays RedisIndexedSessionRepository: startup
// checks notify-keyspace-events and sets Egx, subscribes to the del and
// expired keyevent channels and the created-event pattern; a session is a
// hash plus an "expires" shadow key whose expiry event tells Spring the
// session expired; a new id is a RENAME of both. w issues the commands,
// sub listens (they may be different nodes).
func springIndexedSession(t *testing.T, w, sub *goredis.Client) {
	ctx := context.Background()
	if err := sub.ConfigGet(ctx, "notify-keyspace-events").Err(); err != nil {
		t.Fatalf("CONFIG GET (Spring's startup fails on an error): %v", err)
	}
	if err := sub.ConfigSet(ctx, "notify-keyspace-events", "Egx").Err(); err != nil {
		t.Fatal(err)
	}
	ps := sub.Subscribe(ctx, "__keyevent@0__:del", "__keyevent@0__:expired")
	defer ps.Close()
	if err := ps.PSubscribe(ctx, "spring:session:event:0:created:*"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	id := "4a7c3b9e-0d1f-4c2a-9b8e-123456789abc"
	key := "spring:session:sessions:" + id
	expires := "spring:session:sessions:expires:" + id
	now := time.Now()
	minute := strconv.FormatInt(now.Add(time.Minute).Truncate(time.Minute).UnixMilli(), 10)
	_, err := w.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.HMSet(ctx, key, "creationTime", now.UnixMilli(), "lastAccessedTime", now.UnixMilli(),
			"maxInactiveInterval", 1, "sessionAttr:user", "alice")
		p.Append(ctx, expires, "")
		p.PExpire(ctx, expires, time.Second)
		p.SAdd(ctx, "spring:session:expirations:"+minute, "expires:"+id)
		p.PExpire(ctx, key, 301*time.Second)
		p.Publish(ctx, "spring:session:event:0:created:"+id, "created")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := w.HGet(ctx, key, "sessionAttr:user").Result(); err != nil || got != "alice" {
		t.Fatalf("HGET: %q %v", got, err)
	}
	// changeSessionId: RENAME both keys.
	newID := "5b8d4c0f-1e2a-4d3b-8c9f-abcdef012345"
	newKey, newExpires := "spring:session:sessions:"+newID, "spring:session:sessions:expires:"+newID
	if err := w.Rename(ctx, key, newKey).Err(); err != nil {
		t.Fatal(err)
	}
	if err := w.Rename(ctx, expires, newExpires).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Exists(ctx, newKey).Result(); err != nil || n != 1 {
		t.Fatalf("EXISTS after RENAME: %d %v", n, err)
	}
	if got, err := w.HGetAll(ctx, newKey).Result(); err != nil || got["sessionAttr:user"] != "alice" || got["maxInactiveInterval"] != "1" {
		t.Fatalf("HGETALL: %v %v", got, err)
	}
	// A second session deleted explicitly.
	other := "spring:session:sessions:deleted-one"
	w.HSet(ctx, other, "creationTime", 1)
	if err := w.Del(ctx, other).Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"pmessage spring:session:event:0:created:" + id + " created": false,
		"message __keyevent@0__:del " + other:                        false,
		"message __keyevent@0__:expired " + newExpires:               false, // the shadow key, within a second
	}
	for left := len(want); left > 0; {
		msg, err := ps.ReceiveTimeout(ctx, 10*time.Second)
		if err != nil {
			t.Fatalf("still waiting for %v: %v", want, err)
		}
		var got string
		switch m := msg.(type) {
		case *goredis.Message:
			kind := "message"
			if m.Pattern != "" {
				kind = "pmessage"
			}
			got = kind + " " + m.Channel + " " + m.Payload
		default:
			continue
		}
		seen, ok := want[got]
		if !ok {
			continue // rename and other events of the flow
		}
		if seen {
			t.Fatalf("%q received twice", got)
		}
		want[got] = true
		left--
	}
}

// redissonSession replays Redisson's Tomcat session manager: attributes in
// a hash, expiry by its Lua script (EVALSHA first, SCRIPT LOAD on
// NOSCRIPT), and attribute updates broadcast with PUBLISH.
func redissonSession(t *testing.T, w *goredis.Client) {
	ctx := context.Background()
	script := `local result = 0;for j = 1, #KEYS, 1 do local expireSet; if ARGV[2] ~= '' then expireSet = redis.call('pexpire', KEYS[j], ARGV[1], ARGV[2]); else expireSet = redis.call('pexpire', KEYS[j], ARGV[1]); end; if expireSet == 1 then result = expireSet;end; end; return result; `
	key := "redisson:tomcat_session:ABCDEF0123456789"
	if err := w.HMSet(ctx, key, "session:creationTime", "1700000000000", "user", "alice").Err(); err != nil {
		t.Fatal(err)
	}
	sha := goredis.NewScript(script).Hash()
	// A fresh server has no scripts: NOSCRIPT, then Redisson loads it.
	if err := w.EvalSha(ctx, sha, []string{key}, 1800000, "").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
		t.Fatalf("EVALSHA of an unknown script: %v", err)
	}
	if loaded, err := w.ScriptLoad(ctx, script).Result(); err != nil || loaded != sha {
		t.Fatalf("SCRIPT LOAD: %q %v", loaded, err)
	}
	if n, err := w.EvalSha(ctx, sha, []string{key}, 1800000, "").Int(); err != nil || n != 1 {
		t.Fatalf("expire script: %d %v", n, err)
	}
	if ttl, err := w.PTTL(ctx, key).Result(); err != nil || ttl < 1790*time.Second {
		t.Fatalf("PTTL after the script: %v %v", ttl, err)
	}
	if vals, err := w.HMGet(ctx, key, "user", "missing").Result(); err != nil || vals[0] != "alice" || vals[1] != nil {
		t.Fatalf("HMGET: %v %v", vals, err)
	}
	if keys, err := w.HKeys(ctx, key).Result(); err != nil || len(keys) != 2 {
		t.Fatalf("HKEYS: %v %v", keys, err)
	}
	if err := w.Publish(ctx, "redisson:tomcat_session_updates:", "attr user").Err(); err != nil {
		t.Fatal(err)
	}
	if err := w.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if err := w.HGet(ctx, key, "user").Err(); !errors.Is(err, goredis.Nil) {
		t.Fatalf("after DEL: %v", err)
	}
}

func TestJavaSessionReplays(t *testing.T) {
	s := servertest.Start(t)
	rc := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr()})
	t.Cleanup(func() { rc.Close() })
	t.Run("Spring RedisIndexedSessionRepository", func(t *testing.T) { springIndexedSession(t, rc, rc) })
	t.Run("Redisson", func(t *testing.T) { redissonSession(t, rc) })
}

// On a cluster, Spring writes through one node while its subscriber sits
// on another; the leader is killed first, so both run on the new
// configuration.
func TestJavaSessionReplaysAcrossFailover(t *testing.T) {
	c := clustertest.Start(t, 3)
	leader := c.Leader()
	others := c.Others(leader)
	ctx := context.Background()
	if err := others[0].Client().HSet(ctx, "spring:session:sessions:before", "sessionAttr:user", "bob").Err(); err != nil {
		t.Fatal(err)
	}
	leader.Kill()
	if got, err := others[1].Client().HGet(ctx, "spring:session:sessions:before", "sessionAttr:user").Result(); err != nil || got != "bob" {
		t.Fatalf("session written before the kill: %q %v", got, err)
	}
	t.Run("Spring RedisIndexedSessionRepository", func(t *testing.T) {
		springIndexedSession(t, others[0].Client(), others[1].Client())
	})
	t.Run("Redisson", func(t *testing.T) { redissonSession(t, others[1].Client()) })
}

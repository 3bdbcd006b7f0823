package session_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/clustertest"
	"github.com/hatcheck/hatcheck/session"
)

// TestRedisStoreThroughFailover runs the library on RedisStore over
// go-redis's Sentinel client against a three-node hatcheck cluster, kills
// the leader, and checks that the user stays logged in and no increment
// acknowledged before or after the kill is lost.
func TestRedisStoreThroughFailover(t *testing.T) {
	c := clustertest.Start(t, 3)
	var sentinels []string
	for _, n := range c.Nodes {
		sentinels = append(sentinels, n.Cfg.RedisAddr)
	}
	client := goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: "hatcheck", SentinelAddrs: sentinels, Protocol: 2})
	defer client.Close()
	st := session.RedisStore(client, session.Prefix("app1:"))
	m := session.NewManager(st)
	b := newBrowser(t, app(m))
	b.get("/login?user=alice")
	for range 3 {
		b.get("/incr")
	}
	// The session is a plain string with a time to live, under the prefix.
	ctx := clustertest.Ctx(t, 60*time.Second)
	if ttl, err := client.PTTL(ctx, "app1:"+b.token()).Result(); err != nil || ttl < 23*time.Hour || ttl > 24*time.Hour {
		t.Fatalf("PTTL of the stored session = %v, %v; want about 24h", ttl, err)
	}

	c.Leader().Kill()
	acked := 3
	deadline := time.Now().Add(20 * time.Second)
	for acked < 8 {
		resp, err := b.c.Get(b.url + "/incr")
		if err == nil {
			resp.Body.Close()
		}
		if err == nil && resp.StatusCode == 200 {
			acked++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("increments still failing 20s after the leader was killed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, _ := b.get("/get?k=user"); got != "alice" {
		t.Fatalf("user after failover = %q: logged out", got)
	}
	got, _ := b.get("/incr")
	if got != fmt.Sprint(acked+1) {
		t.Fatalf("counter = %s after %d acknowledged increments (+1), want %d: increments lost or doubled", got, acked, acked+1)
	}
}

func TestRedisStoreLocks(t *testing.T) {
	c := clustertest.Start(t, 1)
	st := session.RedisStore(c.Nodes[0].Client())
	l, ok := st.(session.Locker)
	if !ok {
		t.Fatal("RedisStore is not a Locker")
	}
	ctx := clustertest.Ctx(t, 30*time.Second)
	unlock, ok, err := l.TryLock(ctx, "tok", time.Minute)
	if !ok || err != nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	if _, ok, err := l.TryLock(ctx, "tok", time.Minute); ok || err != nil {
		t.Fatalf("second TryLock = %v, %v; want false", ok, err)
	}
	// A lock that expired and was taken by another holder is not released
	// by the first one's unlock.
	if err := c.Nodes[0].Client().Set(ctx, "session:lock:tok", "someone else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Nodes[0].Client().Get(ctx, "session:lock:tok").Result(); v != "someone else" {
		t.Fatalf("unlock removed another holder's lock (now %q)", v)
	}
}

// TestSCSApplicationSwitchesWithOneLine keeps an scs application as it is
// and points its Store at hatcheck.
func TestSCSApplicationSwitchesWithOneLine(t *testing.T) {
	var _ scs.Store = session.SCS(nil)
	var _ scs.CtxStore = session.SCS(nil)

	sm := scs.New()
	sm.Store = session.SCS(session.EmbeddedStore(node)) // the one line
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) { sm.Put(r.Context(), "user", "alice") })
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, sm.GetString(r.Context(), "user")) })
	b := newBrowser(t, sm.LoadAndSave(mux))
	b.get("/put")
	if got, _ := b.get("/get"); got != "alice" {
		t.Fatalf("scs over hatcheck: get = %q", got)
	}
	u, _ := url.Parse(b.url)
	var token string
	for _, c := range b.c.Jar.Cookies(u) {
		token = c.Value
	}
	if _, ok, err := node.Get(context.Background(), "session:"+token); !ok || err != nil {
		t.Fatalf("scs's session is not in hatcheck: %v %v", ok, err)
	}
	// scs's context-free methods reach the same data.
	if _, found, err := session.SCS(session.EmbeddedStore(node)).Find(token); !found || err != nil {
		t.Fatalf("SCSStore.Find = %v, %v", found, err)
	}
}

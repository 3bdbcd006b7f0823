package compat

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
)

// CLIENT PAUSE WRITE / UNPAUSE and CLIENT UNBLOCK as go-redis uses them
// (ClientUnpause, ClientUnblock, ClientUnblockWithError), over RESP3.
func TestGoRedisClientPauseAndUnblock(t *testing.T) {
	s := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := func() *goredis.Client {
		c := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr(), Protocol: 3, ReadTimeout: -1})
		t.Cleanup(func() { c.Close() })
		return c
	}
	admin, worker := client(), client()
	blocked := func(n string) {
		t.Helper()
		for {
			info, err := admin.Info(ctx, "clients").Result()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(info, "blocked_clients:"+n+"\r\n") {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("blocked_clients never %s: %q", n, info)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}

	// UNBLOCK: a BLPOP ends as at its timeout (redis.Nil), or with the
	// UNBLOCKED error.
	conn := worker.Conn()
	defer conn.Close()
	id, err := conn.ClientID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, withError := range []bool{false, true} {
		done := make(chan error, 1)
		go func() { done <- conn.BLPop(ctx, 0, "q").Err() }()
		blocked("1")
		unblock := admin.ClientUnblock
		if withError {
			unblock = admin.ClientUnblockWithError
		}
		if n, err := unblock(ctx, id).Result(); err != nil || n != 1 {
			t.Fatalf("CLIENT UNBLOCK = %v, %v", n, err)
		}
		err := <-done
		switch {
		case !withError && err != goredis.Nil:
			t.Fatalf("BLPOP unblocked: %v, want redis.Nil", err)
		case withError && (err == nil || err.Error() != "UNBLOCKED client unblocked via CLIENT UNBLOCK"):
			t.Fatalf("BLPOP unblocked with an error: %v", err)
		}
	}
	if n, err := admin.ClientUnblock(ctx, id).Result(); err != nil || n != 0 {
		t.Fatalf("CLIENT UNBLOCK of a client not blocked = %v, %v", n, err)
	}

	// PAUSE WRITE: a SET waits for UNPAUSE, a GET does not.
	if err := admin.Set(ctx, "k", "old", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "CLIENT", "PAUSE", 600000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	set := make(chan error, 1)
	go func() { set <- worker.Set(ctx, "k", "new", 0).Err() }()
	blocked("1")
	if v, err := admin.Get(ctx, "k").Result(); err != nil || v != "old" {
		t.Fatalf("GET while the SET is held = %q, %v", v, err)
	}
	if ok, err := admin.ClientUnpause(ctx).Result(); err != nil || !ok {
		t.Fatalf("CLIENT UNPAUSE = %v, %v", ok, err)
	}
	if err := <-set; err != nil {
		t.Fatal(err)
	}
	if v, err := admin.Get(ctx, "k").Result(); err != nil || v != "new" {
		t.Fatalf("GET after UNPAUSE = %q, %v", v, err)
	}
}

package compat

import (
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/clustertest"
)

// A sessionRunner runs one request of an application that uses a real
// session handler: ACTION [ID] with the actions of php/session.php
// (create, read, incr, regenerate, destroy). read prints the session as
// JSON with sorted keys, or [] when there is none. short sessions live
// shortTTL seconds.
// shortTTL is the lifetime of a short session, in seconds.
const shortTTL = 5

type sessionRunner interface {
	run(short bool, args ...string) string
	// locks reports whether the handler serializes concurrent requests
	// on one session.
	locks() bool
	// expires reports whether the handler gives sessions a lifetime.
	expires() bool
	// stored is the part of the session's key that names it (the id
	// itself, or what the handler derives from it).
	stored(id string) string
}

// testSessionLife runs a session's whole life through a handler: create,
// read from a new process, concurrent requests (serialized by the
// handler's lock, or one after another for handlers without one), id
// regeneration, destroy, and expiry. The keys are checked through the
// Redis protocol.
func testSessionLife(t *testing.T, p sessionRunner, rc *goredis.Client) {
	id := p.run(false, "create")
	if len(id) < 16 {
		t.Fatalf("create printed %q, want a session id", id)
	}
	if keys := sessionKeys(t, rc, p.stored(id)); len(keys) != 1 {
		t.Fatalf("after create, keys for %s: %v", id, keys)
	}
	if got := p.run(false, "read", id); got != `{"n":0,"user":"alice"}` {
		t.Fatalf("read from a new process: %s", got)
	}

	// Each request reads n, waits, writes n+1: only the handler's lock
	// keeps the increments from overwriting each other.
	const requests = 6
	var wg sync.WaitGroup
	for i := 0; i < requests; i++ {
		if !p.locks() {
			p.run(false, "incr", id)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(false, "incr", id)
		}()
	}
	wg.Wait()
	if got := p.run(false, "read", id); got != `{"n":6,"user":"alice"}` {
		t.Fatalf("after %d concurrent requests: %s", requests, got)
	}

	newID := p.run(false, "regenerate", id)
	if newID == id || len(newID) < 16 {
		t.Fatalf("regenerate printed %q (old id %q)", newID, id)
	}
	if keys := sessionKeys(t, rc, p.stored(id)); len(keys) != 0 {
		t.Fatalf("old id still stored after session_regenerate_id(true): %v", keys)
	}
	if got := p.run(false, "read", newID); got != `{"n":6,"user":"alice"}` {
		t.Fatalf("read under the new id: %s", got)
	}

	p.run(false, "destroy", newID)
	if keys := sessionKeys(t, rc, p.stored(newID)); len(keys) != 0 {
		t.Fatalf("session still stored after destroy: %v", keys)
	}
	if got := p.run(false, "read", newID); got != `[]` {
		t.Fatalf("read after destroy: %s", got)
	}

	if !p.expires() {
		return
	}

	// A short session is readable, then gone. shortTTL leaves room for a
	// slow process start on a loaded machine between create and read
	// (pecl memcache stores an absolute Unix time in whole seconds).
	exp := p.run(true, "create")
	if got := p.run(true, "read", exp); got != `{"n":0,"user":"alice"}` {
		t.Fatalf("read before expiry: %s", got)
	}
	time.Sleep((shortTTL + 1) * time.Second)
	if got := p.run(true, "read", exp); got != `[]` {
		t.Fatalf("read after expiry: %s", got)
	}
}

// testFailoverLife starts a three-node cluster and points a handler at one
// follower (runner builds it for that node); it writes a session, kills
// the leader, reads the session back, then runs the whole life on the
// surviving nodes.
func testFailoverLife(t *testing.T, runner func(via *clustertest.Node) sessionRunner) {
	c := clustertest.Start(t, 3)
	leader := c.Leader()
	via := c.Others(leader)[0]
	p := runner(via)
	id := p.run(false, "create")
	p.run(false, "incr", id)
	leader.Kill()
	if got := p.run(false, "read", id); got != `{"n":1,"user":"alice"}` {
		t.Fatalf("read after the leader was killed: %s", got)
	}
	testSessionLife(t, p, via.Client())
}

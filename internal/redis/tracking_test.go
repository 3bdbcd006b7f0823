package redis_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
)

// idOf returns the connection's CLIENT ID as text.
func (w *wireConn) idOf() string {
	w.t.Helper()
	return strings.TrimSuffix(strings.TrimPrefix(w.do("CLIENT ID"), ":"), "\r\n")
}

// Tracking across connections, each reply as redis-server 7.0 gives it
// (checked against it by hand, see the transcript tracking.txt for the
// one-connection cases): RESP2 invalidations through REDIRECT to a
// connection subscribed to __redis__:invalidate, a flush as a null, a
// redirect to a connection that has gone, and other connections' writes.
func TestTrackingAcrossConnections(t *testing.T) {
	srv := servertest.Start(t)
	addr := srv.RedisAddr()
	w := dialWire(t, addr) // the writer

	b := dialWire(t, addr)
	bid := b.idOf()
	b.do("SUBSCRIBE __redis__:invalidate")
	a := dialWire(t, addr)
	if got := a.do("CLIENT TRACKING ON REDIRECT " + bid); got != "+OK\r\n" {
		t.Fatalf("CLIENT TRACKING ON REDIRECT: %q", got)
	}
	a.do("GET k")
	w.do("SET k 1")
	if got, want := b.Next(), "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n"; got != want {
		t.Fatalf("redirected invalidation %q, want %q", got, want)
	}
	w.do("FLUSHALL")
	if got, want := b.Next(), "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n"; got != want {
		t.Fatalf("redirected flush %q, want %q", got, want)
	}
	if got := a.do("CLIENT GETREDIR"); got != ":"+bid+"\r\n" {
		t.Fatalf("CLIENT GETREDIR %q", got)
	}
	if got := a.do("CLIENT INFO"); !strings.Contains(got, " flags=t ") || !strings.Contains(got, " redir="+bid+" ") {
		t.Fatalf("CLIENT INFO %q", got)
	}

	// Default mode: one push per key, and a key is reported once until
	// it is read again.
	c := dialWire(t, addr)
	c.do("HELLO 3")
	c.do("CLIENT TRACKING ON")
	c.do("MGET x y")
	w.do("MSET x 1 y 2")
	for _, k := range []string{"x", "y"} {
		if got, want := c.Next(), ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\n"+k+"\r\n"; got != want {
			t.Fatalf("invalidation %q, want %q", got, want)
		}
	}
	w.do("MSET x 3 y 4")
	c.do("GET z") // not tracked before; also shows no push waits before its reply
	w.do("SET z 1")
	if got, want := c.Next(), ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nz\r\n"; got != want {
		t.Fatalf("invalidation %q, want %q", got, want)
	}

	// BCAST: one push per prefix, the empty prefix first; NOLOOP leaves
	// out the connection's own writes.
	d := dialWire(t, addr)
	d.do("HELLO 3")
	d.do("CLIENT TRACKING ON BCAST PREFIX p PREFIX q")
	if got := d.do("CLIENT TRACKING ON BCAST NOLOOP"); got != "+OK\r\n" {
		t.Fatalf("%q", got)
	}
	w.do("MSET p1 1 p2 2 q1 3 z 4")
	for _, want := range []string{
		">2\r\n$10\r\ninvalidate\r\n*4\r\n$2\r\np1\r\n$2\r\np2\r\n$2\r\nq1\r\n$1\r\nz\r\n",
		">2\r\n$10\r\ninvalidate\r\n*2\r\n$2\r\np1\r\n$2\r\np2\r\n",
		">2\r\n$10\r\ninvalidate\r\n*1\r\n$2\r\nq1\r\n",
	} {
		if got := d.Next(); got != want {
			t.Fatalf("BCAST invalidation %q, want %q", got, want)
		}
	}
	d.do("MSET p1 5 q2 6")
	if got := d.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("after its own write: %q (NOLOOP)", got)
	}

	// A redirect to a connection that has gone: RESP3 clients are told.
	e := dialWire(t, addr)
	eid := e.idOf()
	f := dialWire(t, addr)
	f.do("HELLO 3")
	f.do("CLIENT TRACKING ON REDIRECT " + eid)
	f.do("GET r")
	e.c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Contains(w.do("CLIENT LIST"), "id="+eid+" ") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	w.do("SET r 1")
	if got, want := f.Next(), ">2\r\n$21\r\ntracking-redir-broken\r\n:"+eid+"\r\n"; got != want {
		t.Fatalf("broken redirect %q, want %q", got, want)
	}
	if got := f.do("CLIENT INFO"); !strings.Contains(got, " flags=tR ") {
		t.Fatalf("CLIENT INFO %q", got)
	}
}

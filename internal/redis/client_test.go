package redis_test

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/testbin"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// clientFields70 are redis-server 7.0's CLIENT INFO fields, in order.
var clientFields70 = []string{"id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db", "sub", "psub",
	"ssub", "multi", "qbuf", "qbuf-free", "argv-mem", "multi-mem", "rbs", "rbp", "obl", "oll", "omem", "tot-mem",
	"events", "cmd", "user", "redir", "resp"}

// wireConn is a raw client whose requests are written as inline lines
// (split on spaces).
type wireConn struct {
	*testbin.RESPConn
	t *testing.T
	c net.Conn
}

func dialWire(t *testing.T, addr string) *wireConn {
	t.Helper()
	rc := testbin.DialRESP(t, addr)
	return &wireConn{rc, t, rc.Conn}
}

// do sends one request, its words separated by spaces, and returns its
// raw reply.
func (w *wireConn) do(req string) string {
	w.t.Helper()
	return w.Do(strings.Fields(req)...)
}

// clientFields parses a CLIENT INFO reply (bulk or verbatim) into its
// field names, in order, and values.
func clientFields(t *testing.T, reply string) ([]string, map[string]string) {
	t.Helper()
	_, body, ok := strings.Cut(reply, "\r\n")
	if !ok {
		t.Fatalf("reply %q", reply)
	}
	body = strings.TrimPrefix(strings.TrimSuffix(body, "\n\r\n"), "txt:")
	var names []string
	vals := map[string]string{}
	for _, f := range strings.Split(body, " ") {
		k, v, _ := strings.Cut(f, "=")
		names = append(names, k)
		vals[k] = v
	}
	return names, vals
}

// CLIENT INFO has redis-server 7.0's fields in its order, then 7.2's
// lib-name and lib-ver (hatcheck takes CLIENT SETINFO); values that differ
// by nature (fd, buffer sizes) are not compared. Where redis-server is
// installed, its field list is checked too.
func TestClientInfoFields(t *testing.T) {
	if bin := transcript.Reference(t, "redis-server", "redis-server", false); bin != "" {
		w := dialWire(t, startRedisServer(t, bin, ""))
		names, _ := clientFields(t, w.do("CLIENT INFO"))
		if !slices.Equal(names, clientFields70) {
			t.Fatalf("redis-server's CLIENT INFO fields\n %v\nwant\n %v", names, clientFields70)
		}
	}
	srv := servertest.Start(t)
	a := dialWire(t, srv.RedisAddr())
	a.do("CLIENT SETNAME alice")
	a.do("CLIENT SETINFO lib-name mylib")
	names, vals := clientFields(t, a.do("CLIENT INFO"))
	if want := append(slices.Clone(clientFields70), "lib-name", "lib-ver"); !slices.Equal(names, want) {
		t.Fatalf("CLIENT INFO fields\n %v\nwant\n %v", names, want)
	}
	for k, want := range map[string]string{"name": "alice", "flags": "N", "db": "0", "sub": "0", "multi": "-1",
		"cmd": "client|info", "user": "default", "redir": "-1", "resp": "2", "lib-name": "mylib", "addr": a.c.LocalAddr().String()} {
		if vals[k] != want {
			t.Errorf("CLIENT INFO %s=%q, want %q", k, vals[k], want)
		}
	}

	// Another connection sees a's state as a's driver published it.
	a.do("SUBSCRIBE ch")
	a.do("PSUBSCRIBE p*")
	b := dialWire(t, srv.RedisAddr())
	b.do("HELLO 3")
	b.do("SELECT 2")
	b.do("MULTI")
	b.do("GET x")
	d := dialWire(t, srv.RedisAddr())
	list := d.do("CLIENT LIST")
	var aLine, bLine string
	for _, line := range strings.Split(strings.TrimPrefix(list[strings.Index(list, "\r\n")+2:], "txt:"), "\n") {
		switch {
		case strings.Contains(line, " name=alice "):
			aLine = line
		case strings.Contains(line, " db=2 "):
			bLine = line
		}
	}
	_, av := clientFields(t, "x\r\n"+aLine)
	_, bv := clientFields(t, "x\r\n"+bLine)
	if av["flags"] != "P" || av["sub"] != "1" || av["psub"] != "1" || av["cmd"] != "psubscribe" {
		t.Errorf("a as b sees it: %q", aLine)
	}
	if bv["flags"] != "x" || bv["multi"] != "1" || bv["resp"] != "3" {
		t.Errorf("b: %q", bLine)
	}
	if got := d.do("CLIENT LIST TYPE pubsub"); !strings.Contains(got, "name=alice") || strings.Contains(got, "db=2") {
		t.Errorf("CLIENT LIST TYPE pubsub: %q", got)
	}

	// CLIENT KILL closes another connection at once.
	if got := d.do("CLIENT KILL TYPE pubsub"); got != ":1\r\n" {
		t.Fatalf("CLIENT KILL TYPE pubsub = %q", got)
	}
	_ = a.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.R.ReadByte(); err == nil {
		t.Fatal("killed connection still open")
	}
}

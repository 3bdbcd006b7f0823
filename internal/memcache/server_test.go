package memcache_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
)

// TestMemccapable runs libmemcached's protocol conformance suite, every
// ASCII and binary test, against hatcheck.
func TestMemccapable(t *testing.T) {
	bin, err := exec.LookPath("memccapable")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("memccapable not installed; .ci/run must install libmemcached-tools")
		}
		t.Skip("memccapable not installed (Debian libmemcached-tools)")
	}
	s := servertest.Start(t)
	host, port, _ := net.SplitHostPort(s.MemcacheAddr())
	out, err := exec.Command(bin, "-h", host, "-p", port, "-t", "10").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "All tests passed") {
		t.Fatalf("memccapable: %v\n%s", err, out)
	}
	// Both halves of the suite ran.
	for _, want := range []string{"ascii cas ", "binary getkq ", "binary stat "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("memccapable output lacks %q:\n%s", want, out)
		}
	}
}

// exchange sends req on c and reads until the reply ends with suffix.
func exchange(t *testing.T, c net.Conn, req, suffix string) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 4096)
	for !strings.HasSuffix(string(got), suffix) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("%q: read: %v (have %q)", req, err, got)
		}
	}
	return string(got)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectClose checks that the server closes c.
func expectClose(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("want the server to close the connection, got %v", err)
	}
}

func TestTextLogin(t *testing.T) {
	s := servertest.Start(t, func(c *servertest.Config) { c.RequirePass = "s3cret" })
	c := dial(t, s.MemcacheAddr())
	for _, step := range []struct{ req, want string }{
		{"get a\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		{"set a 0 0 8\r\nu wrong!\r\n", "CLIENT_ERROR authentication failure\r\n"},
		{"version\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		{"set a 0 0 8\r\nu s3cret\r\n", "STORED\r\n"},
		{"set a 0 0 1\r\nx\r\n", "STORED\r\n"},
		{"get a\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n"},
	} {
		if got := exchange(t, c, step.req, "\r\n"); got != step.want {
			t.Errorf("%q: got %q, want %q", step.req, got, step.want)
		}
	}
}

// binExchange sends one binary request and reads one response.
func binExchange(t *testing.T, c net.Conn, req []byte) (status uint16, body []byte) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	var h [24]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		t.Fatal(err)
	}
	body = make([]byte, binary.BigEndian.Uint32(h[8:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint16(h[6:]), body
}

func TestSASLPlain(t *testing.T) {
	s := servertest.Start(t, func(c *servertest.Config) { c.RequirePass = "s3cret" })
	c := dial(t, s.MemcacheAddr())
	if st, body := binExchange(t, c, binRequest(0x20, nil, nil, nil, 0, 1)); st != 0 || string(body) != "PLAIN" {
		t.Fatalf("SASL_LIST_MECHS: %#x %q", st, body)
	}
	if st, body := binExchange(t, c, binRequest(0x21, []byte("PLAIN"), nil, []byte("\x00u\x00nope"), 0, 2)); st != 0x20 || string(body) != "Auth failure." {
		t.Fatalf("SASL_AUTH with a wrong password: %#x %q", st, body)
	}
	if st, body := binExchange(t, c, binRequest(0x21, []byte("PLAIN"), nil, []byte("\x00u\x00s3cret"), 0, 3)); st != 0 || string(body) != "Authenticated" {
		t.Fatalf("SASL_AUTH: %#x %q", st, body)
	}
	set := binRequest(0x01, []byte("k"), make([]byte, 8), []byte("v"), 0, 4)
	if st, _ := binExchange(t, c, set); st != 0 {
		t.Fatalf("SET after auth: %#x", st)
	}

	// A connection that skips authentication is answered 0x20 and closed.
	c2 := dial(t, s.MemcacheAddr())
	if st, _ := binExchange(t, c2, binRequest(0x00, []byte("k"), nil, nil, 0, 5)); st != 0x20 {
		t.Fatalf("GET before auth: status %#x, want 0x20", st)
	}
	expectClose(t, c2)
}

// TestSASLWithACLUsers: SASL PLAIN (binary) and the text login check an
// ACL user's password (the user must be on); a name that is no user's
// means the default user.
func TestSASLWithACLUsers(t *testing.T) {
	s := servertest.Start(t, func(c *servertest.Config) { c.RequirePass = "s3cret" })
	rc := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr(), Password: "s3cret"})
	defer rc.Close()
	ctx := context.Background()
	for _, rules := range [][]any{{"app1", "on", ">pw1", "~*", "+@all"}, {"off1", "off", ">pw2", "~*", "+@all"}} {
		if err := rc.Do(ctx, append([]any{"ACL", "SETUSER"}, rules...)...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	sasl := func(plain string) uint16 {
		c := dial(t, s.MemcacheAddr())
		st, _ := binExchange(t, c, binRequest(0x21, []byte("PLAIN"), nil, []byte(plain), 0, 1))
		return st
	}
	for _, tc := range []struct {
		plain string
		ok    bool
	}{
		{"\x00app1\x00pw1", true},
		{"\x00app1\x00s3cret", false}, // another user's password
		{"\x00off1\x00pw2", false},    // a disabled user
		{"\x00default\x00s3cret", true},
		{"\x00someone\x00s3cret", true}, // no such user: the default user
		{"\x00someone\x00pw1", false},
	} {
		if st := sasl(tc.plain); (st == 0) != tc.ok {
			t.Errorf("SASL PLAIN %q: status %#x, want ok %v", tc.plain, st, tc.ok)
		}
	}
	c := dial(t, s.MemcacheAddr())
	if got := exchange(t, c, "set x 0 0 8\r\napp1 bad\r\n", "\r\n"); got != "CLIENT_ERROR authentication failure\r\n" {
		t.Fatalf("text login with a wrong password: %q", got)
	}
	if got := exchange(t, c, "set x 0 0 8\r\napp1 pw1\r\n", "\r\n"); got != "STORED\r\n" {
		t.Fatalf("text login as app1: %q", got)
	}
	if got := exchange(t, c, "set k 0 0 1\r\nv\r\n", "\r\n"); got != "STORED\r\n" {
		t.Fatalf("set after login: %q", got)
	}
}

// TestSharedKeyspace: memcached and Redis clients see the same database 0.
func TestSharedKeyspace(t *testing.T) {
	s := servertest.Start(t)
	rc := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr()})
	defer rc.Close()
	ctx := context.Background()
	c := dial(t, s.MemcacheAddr())
	if got := exchange(t, c, "set from-mc 5 100 5\r\nhello\r\n", "\r\n"); got != "STORED\r\n" {
		t.Fatal(got)
	}
	if v, err := rc.Get(ctx, "from-mc").Result(); err != nil || v != "hello" {
		t.Fatalf("redis GET of a memcached item: %q %v", v, err)
	}
	if ttl, err := rc.TTL(ctx, "from-mc").Result(); err != nil || ttl <= 90*time.Second || ttl > 100*time.Second {
		t.Fatalf("redis TTL of a memcached item with exptime 100: %v %v", ttl, err)
	}
	if err := rc.Set(ctx, "from-redis", "world", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := exchange(t, c, "get from-redis\r\n", "END\r\n"); got != "VALUE from-redis 0 5\r\nworld\r\nEND\r\n" {
		t.Fatalf("memcached get of a redis value: %q", got)
	}
	// A hash is not a memcached item: absent to get, refused by incr.
	if err := rc.HSet(ctx, "h", "f", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if got := exchange(t, c, "get h\r\n", "END\r\n"); got != "END\r\n" {
		t.Fatalf("get of a hash: %q", got)
	}
	if got := exchange(t, c, "incr h 1\r\n", "\r\n"); got != "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n" {
		t.Fatalf("incr of a hash: %q", got)
	}
	// Redis writes change the item's CAS value.
	gets := exchange(t, c, "gets from-redis\r\n", "END\r\n")
	if err := rc.Set(ctx, "from-redis", "again", 0).Err(); err != nil {
		t.Fatal(err)
	}
	cas := strings.Fields(strings.SplitN(gets, "\r\n", 2)[0])[4]
	if got := exchange(t, c, "cas from-redis 0 0 1 "+cas+"\r\nx\r\n", "\r\n"); got != "EXISTS\r\n" {
		t.Fatalf("cas after a redis SET: %q", got)
	}
}

func TestLongLineClosesConnection(t *testing.T) {
	s := servertest.Start(t)
	c := dial(t, s.MemcacheAddr())
	if _, err := c.Write(bytes.Repeat([]byte("x"), 4096)); err != nil {
		t.Fatal(err)
	}
	expectClose(t, c)

	// A long multi-key get is allowed, as in memcached.
	c = dial(t, s.MemcacheAddr())
	var req strings.Builder
	req.WriteString("get")
	for i := 0; i < 500; i++ {
		req.WriteString(" key" + strconv.Itoa(i))
	}
	if got := exchange(t, c, req.String()+"\r\n", "END\r\n"); got != "END\r\n" {
		t.Fatalf("long get: %q", got)
	}
}

func TestBinaryBodyTooLargeIsNotBuffered(t *testing.T) {
	s := servertest.Start(t, func(c *servertest.Config) { c.MaxItemSize = 4096 })
	c := dial(t, s.MemcacheAddr())
	// A header announcing a 1 GB body: answered at once, before any of it
	// is sent, so nothing was allocated for it.
	h := binRequest(0x01, []byte("k"), make([]byte, 8), nil, 0, 7)
	binary.BigEndian.PutUint32(h[8:], 1<<30)
	if st, body := binExchange(t, c, h); st != 0x03 || string(body) != "Too large." {
		t.Fatalf("status %#x %q, want 0x03 Too large.", st, body)
	}
}

func TestMaxClientsAndIdleTimeout(t *testing.T) {
	s := servertest.Start(t, func(c *servertest.Config) { c.MaxClients = 1; c.Timeout = 1 })
	c := dial(t, s.MemcacheAddr())
	if got := exchange(t, c, "version\r\n", "\r\n"); !strings.HasPrefix(got, "VERSION ") {
		t.Fatal(got)
	}
	c2 := dial(t, s.MemcacheAddr())
	r := bufio.NewReader(c2)
	_ = c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, _ := r.ReadString('\n'); line != "SERVER_ERROR Too many open connections\r\n" {
		t.Fatalf("second client: %q", line)
	}
	// The first client, idle past --timeout, is closed.
	expectClose(t, c)
}

func TestMetrics(t *testing.T) {
	s := servertest.Start(t)
	c := dial(t, s.MemcacheAddr())
	exchange(t, c, "set a 0 0 1\r\nx\r\n", "\r\n")
	exchange(t, c, "get a b\r\n", "END\r\n")
	resp, err := http.Get("http://" + s.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`hatcheck_command_duration_seconds_count{command="set",protocol="memcache"} 1`,
		`hatcheck_command_duration_seconds_count{command="get",protocol="memcache"} 1`,
		`hatcheck_lookups_total{protocol="memcache",result="hit"} 1`,
		`hatcheck_lookups_total{protocol="memcache",result="miss"} 1`,
		`hatcheck_connected_clients{protocol="memcache"} 1`,
		`hatcheck_network_bytes_total{direction="read",protocol="memcache"} 25`,
		`hatcheck_network_bytes_total{direction="written",protocol="memcache"} 29`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestStats(t *testing.T) {
	s := servertest.Start(t)
	c := dial(t, s.MemcacheAddr())
	exchange(t, c, "set a 0 0 1\r\nx\r\n", "\r\n")
	exchange(t, c, "get a\r\n", "END\r\n")
	got := exchange(t, c, "stats\r\n", "END\r\n")
	for _, want := range []string{"STAT version 1.6.18\r\n", "STAT cmd_get 1\r\n", "STAT cmd_set 1\r\n", "STAT get_hits 1\r\n", "STAT curr_connections 1\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("stats lacks %q:\n%s", want, got)
		}
	}
}

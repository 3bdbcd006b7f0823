package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/server"
	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/testcert"
)

// tlsClient is a go-redis client of the TLS Redis port, trusting ca and
// presenting cert if one is given.
func tlsClient(t *testing.T, s *server.Server, ca *testcert.CA, cert ...testcert.Pair) *goredis.Client {
	conf := ca.ClientConfig(cert...)
	conf.ServerName = "localhost"
	c := goredis.NewClient(&goredis.Options{Addr: s.TLSRedisAddr(), TLSConfig: conf, MaxRetries: -1, PoolSize: 1})
	t.Cleanup(func() { c.Close() })
	return c
}

// memcacheTLS speaks memcached's text protocol over TLS: memcached 1.6's
// TLS, which no memcached client in Debian speaks (libmemcached is built
// without it).
func memcacheTLS(t *testing.T, addr string, conf *tls.Config) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func ask(t *testing.T, c net.Conn, r *bufio.Reader, req string, lines int) string {
	t.Helper()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for range lines {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%q: %v after %q", req, err, b.String())
		}
		b.WriteString(l)
	}
	return b.String()
}

// TestTLSOnEveryPort: the Redis, memcached and HTTP protocols over TLS,
// beside the plain ports or instead of them, one keyspace behind all.
func TestTLSOnEveryPort(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	withTLS, _ := servertest.TLS(t, ca)
	s := servertest.Start(t, withTLS, func(c *servertest.Config) { c.RedisAddr, c.HTTPAddr = "", "" })
	if s.RedisAddr() != "" || s.HTTPAddr() != "" || s.TLSRedisAddr() == "" || s.TLSMemcacheAddr() == "" || s.TLSHTTPAddr() == "" {
		t.Fatalf("addresses: redis %q http %q, TLS: redis %q memcache %q http %q", s.RedisAddr(), s.HTTPAddr(), s.TLSRedisAddr(), s.TLSMemcacheAddr(), s.TLSHTTPAddr())
	}
	banner := strings.Join(s.Listeners(), "\n")
	for _, want := range []string{"redis protocol over TLS on " + s.TLSRedisAddr(), "memcached protocol (text and binary) on " + s.MemcacheAddr(),
		"memcached protocol (text and binary) over TLS on " + s.TLSMemcacheAddr(), "on https://" + s.TLSHTTPAddr()} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if strings.Contains(banner, "redis protocol on") || strings.Contains(banner, "http://") {
		t.Errorf("banner names a port that is off:\n%s", banner)
	}

	ctx := context.Background()
	rc := tlsClient(t, s, ca)
	if err := rc.Set(ctx, "greeting", "hello", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	// Sentinel discovery hands out the TLS port when the plain one is off.
	if addr, err := rc.Do(ctx, "SENTINEL", "get-master-addr-by-name", "hatcheck").StringSlice(); err != nil || len(addr) != 2 || net.JoinHostPort(addr[0], addr[1]) != s.TLSRedisAddr() {
		t.Errorf("SENTINEL get-master-addr-by-name: %v %v, want %s", addr, err, s.TLSRedisAddr())
	}

	conf := ca.ClientConfig()
	conf.ServerName = "127.0.0.1"
	mc, mr := memcacheTLS(t, s.TLSMemcacheAddr(), conf)
	if got := ask(t, mc, mr, "get greeting\r\n", 3); got != "VALUE greeting 0 5\r\nhello\r\nEND\r\n" {
		t.Fatalf("memcached get over TLS: %q", got)
	}
	if got := ask(t, mc, mr, "set m 0 0 2\r\nhi\r\n", 1); got != "STORED\r\n" {
		t.Fatalf("memcached set over TLS: %q", got)
	}
	if v, err := rc.Get(ctx, "m").Result(); err != nil || v != "hi" {
		t.Fatalf("the memcached write read over Redis TLS: %q %v", v, err)
	}

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 10 * time.Second}
	resp, err := hc.Get("https://" + s.TLSHTTPAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("/healthz over TLS: %d %q", resp.StatusCode, body)
	}

	// A plain client on a TLS port gets nowhere.
	plain := goredis.NewClient(&goredis.Options{Addr: s.TLSRedisAddr(), MaxRetries: -1, ReadTimeout: time.Second})
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("a plain client was served on the TLS port")
	}
}

// TestTLSAuthClients: with --tls-auth-clients yes, a client needs a
// certificate of the CA.
func TestTLSAuthClients(t *testing.T) {
	ca, other := testcert.NewCA(t, "ca"), testcert.NewCA(t, "other")
	withTLS, _ := servertest.TLS(t, ca)
	s := servertest.Start(t, withTLS, func(c *servertest.Config) { c.TLSAuthClients = "yes" })
	ctx := context.Background()
	if err := tlsClient(t, s, ca).Ping(ctx).Err(); err == nil {
		t.Error("a client without a certificate was served")
	}
	if err := tlsClient(t, s, ca, other.Issue(t, "stranger")).Ping(ctx).Err(); err == nil {
		t.Error("a client with another CA's certificate was served")
	}
	if err := tlsClient(t, s, ca, ca.Issue(t, "app")).Ping(ctx).Err(); err != nil {
		t.Errorf("a client with a certificate of the CA: %v", err)
	}
}

// TestReloadKeepsConnections: after the files are replaced and Reload
// runs, a new connection gets the new certificate and one opened before
// goes on.
func TestReloadKeepsConnections(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	withTLS, files := servertest.TLS(t, ca)
	dir := filepath.Dir(files.Cert)
	ca.WriteFiles(t, dir, "node", ca.Issue(t, "A"))
	s := servertest.Start(t, withTLS)

	conf := ca.ClientConfig()
	conf.ServerName = "localhost"
	// served is the name on the certificate a new connection is shown.
	served := func() string {
		c, err := tls.Dial("tcp", s.TLSRedisAddr(), conf)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "A" {
		t.Fatalf("before reload: certificate %q", got)
	}
	old, or := memcacheTLS(t, s.TLSRedisAddr(), conf)
	if got := ask(t, old, or, "PING\r\n", 1); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	ca.WriteFiles(t, dir, "node", ca.Issue(t, "B"))
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != "B" {
		t.Fatalf("after reload: certificate %q", got)
	}
	if got := ask(t, old, or, "ECHO still\r\n", 2); got != "$5\r\nstill\r\n" {
		t.Fatalf("the connection opened before the reload: %q", got)
	}
}

// TestPeersOverTLS: two nodes with --tls-peers form a cluster and
// replicate.
func TestPeersOverTLS(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	peers := func(c *servertest.Config) { c.TLSPeers = true }
	tls1, _ := servertest.TLS(t, ca)
	tls2, _ := servertest.TLS(t, ca)
	first := servertest.Start(t, tls1, peers)
	second := servertest.Start(t, tls2, peers, func(c *servertest.Config) { c.Join = first.PeerAddr() })
	if !strings.Contains(strings.Join(first.Listeners(), "\n"), "peer (raft) over mutual TLS on "+first.PeerAddr()) {
		t.Errorf("banner: %v", first.Listeners())
	}
	ctx := context.Background()
	if err := newClient(t, second).Set(ctx, "k", "via second", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := newClient(t, first).Get(ctx, "k").Result(); err != nil || v != "via second" {
		t.Fatalf("read on the first node: %q %v", v, err)
	}
}

package compat

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/testcert"
)

// TestPythonClientsOverTLS: redis-py with ssl=True on the TLS Redis port
// and pymemcache with a TLS context on the TLS memcached port (Debian
// python3-redis, python3-pymemcache: no memcached client in Debian built
// on libmemcached speaks TLS), without and with a client certificate
// (--tls-auth-clients yes). Their writes are read on the plain port.
func TestPythonClientsOverTLS(t *testing.T) {
	py := python(t)
	for mod, pkg := range map[string]string{"redis": "python3-redis", "pymemcache": "python3-pymemcache"} {
		if err := exec.Command(py, "-c", "import "+mod).Run(); err != nil {
			missing(t, "python module "+mod, pkg)
		}
	}
	ca := testcert.NewCA(t, "ca")
	for _, auth := range []string{"no", "yes"} {
		t.Run("tls-auth-clients "+auth, func(t *testing.T) {
			withTLS, files := servertest.TLS(t, ca)
			s := servertest.Start(t, withTLS, func(c *servertest.Config) { c.TLSAuthClients = auth })
			var client []string
			if auth == "yes" {
				f := ca.WriteFiles(t, t.TempDir(), "client", ca.Issue(t, "app"))
				client = []string{f.Cert, f.Key}
			}
			rc := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr()})
			t.Cleanup(func() { rc.Close() })
			for kind, addr := range map[string]string{"redis": s.TLSRedisAddr(), "memcache": s.TLSMemcacheAddr()} {
				host, port, _ := net.SplitHostPort(addr)
				args := append([]string{"python/tls_clients.py", kind, host, port, files.CA}, client...)
				out, err := exec.Command(py, args...).CombinedOutput()
				if err != nil || strings.TrimSpace(string(out)) != "over tls" {
					t.Fatalf("%s client over TLS: %v\n%s", kind, err, out)
				}
				if v, err := rc.Get(context.Background(), "py-"+kind).Result(); err != nil || v != "over tls" {
					t.Fatalf("the %s client's write, read on the plain port: %q %v", kind, v, err)
				}
				if auth == "yes" {
					// Without its certificate the client is refused.
					out, err := exec.Command(py, args[:5]...).CombinedOutput()
					if err == nil {
						t.Fatalf("%s client without a certificate was served:\n%s", kind, out)
					}
				}
			}
		})
	}
}

// TestPHPRedisSessionsOverTLS runs phpredis's session handler with a
// tls:// save_path and a password, verifying the server against the CA,
// through a session's whole life. phpredis 5.3 (Debian 12) takes no stream options
// from a session save_path, so the CA is PHP's openssl.cafile (or the
// system's store).
func TestPHPRedisSessionsOverTLS(t *testing.T) {
	need(t, "php", "php-cli")
	if !strings.Contains(phpModules(t), "\nredis\n") {
		missing(t, "PHP extension redis", "php-redis")
	}
	withTLS, files := servertest.TLS(t, testcert.NewCA(t, "ca"))
	s := servertest.Start(t, withTLS, func(c *servertest.Config) { c.RequirePass = "s3cret" })
	_, port, _ := net.SplitHostPort(s.TLSRedisAddr())
	rc := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr(), Password: "s3cret"})
	t.Cleanup(func() { rc.Close() })
	testSessionLife(t, phpRunner{t: t, ini: []string{"openssl.cafile=" + files.CA,
		"session.save_handler=redis", `session.save_path="tls://localhost:` + port + `?auth=s3cret"`,
		"redis.session.locking_enabled=1", "redis.session.lock_retries=-1", "redis.session.lock_wait_time=20000"}}, rc)
	// Without the CA the handler refuses the server.
	out, err := exec.Command("php", "-d", "session.save_handler=redis", "-d", `session.save_path="tls://localhost:`+port+`?auth=s3cret"`,
		"php/session.php", "create").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate verify failed") {
		t.Fatalf("phpredis without the CA: %v\n%s", err, out)
	}
}

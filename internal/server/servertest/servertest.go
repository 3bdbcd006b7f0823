// Package servertest starts real hatcheck servers in-process for tests, on
// loopback ports chosen at run time and a temporary data directory.
package servertest

import (
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/server"
	"github.com/hatcheck/hatcheck/internal/testcert"
)

// Config is the server configuration tests may adjust.
type Config = config.Config

// Options returns a test configuration: loopback port 0 everywhere and a
// fresh data directory.
func Options(t testing.TB) Config {
	c := config.Default()
	c.DataDir = t.TempDir()
	c.RedisAddr = "127.0.0.1:0"
	c.MemcacheAddr = "127.0.0.1:0"
	c.HTTPAddr = "127.0.0.1:0"
	c.PeerAddr = "127.0.0.1:0"
	c.ShutdownTimeout = 5 * time.Second
	return c
}

// Start starts a server with Options adjusted by each opt, waits until it
// is ready and closes it when the test ends.
func Start(t testing.TB, opts ...func(*Config)) *server.Server {
	t.Helper()
	c := Options(t)
	for _, o := range opts {
		o(&c)
	}
	return StartConfig(t, c)
}

// StartConfig starts a server with exactly c and waits until it is ready.
func StartConfig(t testing.TB, c Config) *server.Server {
	t.Helper()
	s, err := server.Start(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !s.Node().Ready() {
		if time.Now().After(deadline) {
			t.Fatal("server not ready after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s
}

// TLS serves the Redis, memcached and HTTP protocols over TLS too, on
// loopback port 0, with a certificate of ca for 127.0.0.1 and localhost,
// written with ca's certificate into a temporary directory; it returns the
// option and the files.
func TLS(t testing.TB, ca *testcert.CA) (func(*Config), testcert.Files) {
	t.Helper()
	f := ca.WriteFiles(t, t.TempDir(), "node", ca.Issue(t, "node"))
	return func(c *Config) {
		c.TLSRedisAddr, c.TLSMemcacheAddr, c.TLSHTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		c.TLSCertFile, c.TLSKeyFile, c.TLSCACertFile = f.Cert, f.Key, f.CA
	}, f
}

package netserve

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/testcert"
)

// One server serves a plain and a TLS listener: both run sessions (the TLS
// ones on the goroutine driver), the client limit counts both, and Close
// stops both, letting a TLS client's request in flight finish.
func TestPlainAndTLSListeners(t *testing.T) {
	drivers(t, func(t *testing.T, loops *Loops) {
		ca := testcert.NewCA(t, "ca")
		s := New[*echoSession](Config{Loops: loops, MaxClients: func() int { return 2 }, Refusal: []byte("full\n")})
		plain, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tcp, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		secure := tls.NewListener(tcp, testcert.ServerConfig(ca.Issue(t, "server"), nil))
		done := make(chan error, 2)
		go func() { done <- s.Serve(plain, newEcho) }()
		go func() { done <- s.Serve(secure, newEcho) }()

		p, pr := dial(t, plain.Addr().String())
		if got := roundTrip(t, p, pr, "plain\n"); got != "plain\n" {
			t.Fatalf("plain echo: %q", got)
		}
		dialTLS := func() (*tls.Conn, *bufio.Reader) {
			conf := ca.ClientConfig()
			conf.ServerName = "localhost"
			c, err := tls.Dial("tcp", tcp.Addr().String(), conf)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			return c, bufio.NewReader(c)
		}
		c, cr := dialTLS()
		if got := roundTrip(t, c, cr, "secure\n"); got != "secure\n" {
			t.Fatalf("TLS echo: %q", got)
		}
		if got := roundTrip(t, c, cr, "push\n"); got != "pushed\n" {
			t.Fatalf("TLS push: %q", got)
		}
		over, _ := dialTLS()
		if got, _ := io.ReadAll(over); string(got) != "full\n" {
			t.Fatalf("a third client, over TLS, got %q", got)
		}

		if _, err := c.Write([]byte("slow\n")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "slow request not in flight", func() bool {
			busy := false
			s.Each(func(e *echoSession) { busy = busy || e.Busy() })
			return busy
		})
		closed := make(chan error, 1)
		go func() { closed <- s.Close(context.Background()) }()
		if got, _ := cr.ReadString('\n'); got != "slow\n" {
			t.Fatalf("request in flight at Close: %q", got)
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-done; err != nil {
				t.Fatalf("Serve after Close: %v", err)
			}
		}
		if _, err := net.Dial("tcp", tcp.Addr().String()); err == nil {
			t.Fatal("the TLS listener still accepts after Close")
		}
	})
}

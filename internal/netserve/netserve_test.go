package netserve

import (
	"bufio"
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// echoConn answers each line with the same line; a line "panic" panics.
type echoConn struct {
	nc       net.Conn
	stopping atomic.Bool
}

func (c *echoConn) Serve() {
	defer c.nc.Close()
	r := bufio.NewReader(c.nc)
	for !c.stopping.Load() {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if line == "panic\n" {
			panic("boom")
		}
		_, _ = c.nc.Write([]byte(line))
	}
}
func (c *echoConn) Shutdown()    { c.stopping.Store(true); _ = c.nc.SetReadDeadline(time.Now()) }
func (c *echoConn) Close() error { return c.nc.Close() }

func start(t *testing.T, max int) (*Server[*echoConn], string) {
	t.Helper()
	s := New[*echoConn](Config{MaxClients: func() int { return max }, Refusal: []byte("full\n")})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln, func(nc net.Conn) *echoConn { return &echoConn{nc: nc} }) }()
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
	})
	return s, ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, line string) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	got, _ := bufio.NewReader(c).ReadString('\n')
	return got
}

func TestClientLimitAndPanic(t *testing.T) {
	s, addr := start(t, 1)
	a, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := roundTrip(t, a, "hi\n"); got != "hi\n" {
		t.Fatalf("echo: %q", got)
	}
	b, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_ = b.SetDeadline(time.Now().Add(5 * time.Second))
	if got, _ := io.ReadAll(b); string(got) != "full\n" {
		t.Fatalf("client over the limit got %q", got)
	}
	if s.Rejected() != 1 || s.Accepted() != 2 || s.Len() != 1 {
		t.Fatalf("rejected %d accepted %d len %d", s.Rejected(), s.Accepted(), s.Len())
	}
	// A panicking connection is dropped and forgotten; the server goes on.
	if got := roundTrip(t, a, "panic\n"); got != "" {
		t.Fatalf("panicking connection answered %q", got)
	}
	for i := 0; s.Len() != 0; i++ {
		if i > 500 {
			t.Fatal("panicked connection still counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := roundTrip(t, c, "again\n"); got != "again\n" {
		t.Fatalf("after a panic: %q", got)
	}
}

func TestCloseWaitsForConnections(t *testing.T) {
	s := New[*echoConn](Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln, func(nc net.Conn) *echoConn { return &echoConn{nc: nc} }) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := roundTrip(t, c, "x\n"); got != "x\n" {
		t.Fatal(got)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 {
		t.Fatalf("%d connections left after Close", s.Len())
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if err := s.Serve(ln, nil); err != ErrClosed {
		t.Fatalf("Serve after Close: %v", err)
	}
}

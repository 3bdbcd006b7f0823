package testbin

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/resp"
)

// RESPConn is a raw Redis-protocol connection for tests that compare
// replies byte for byte, or read what a client library keeps to itself
// (RESP3 pushes, pub/sub messages after a reply).
type RESPConn struct {
	t    testing.TB
	Conn net.Conn
	R    *bufio.Reader
}

// DialRESP connects to addr; the connection is closed when the test ends.
func DialRESP(t testing.TB, addr string) *RESPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &RESPConn{t: t, Conn: c, R: bufio.NewReader(c)}
}

// Do sends one request and returns its reply's raw bytes.
func (c *RESPConn) Do(args ...string) string {
	c.t.Helper()
	req := resp.AppendArray(nil, len(args))
	for _, a := range args {
		req = resp.AppendBulkString(req, a)
	}
	if _, err := c.Conn.Write(req); err != nil {
		c.t.Fatal(err)
	}
	return c.Next()
}

// Next reads one more reply or push, waiting up to 10 s.
func (c *RESPConn) Next() string {
	c.t.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, err := resp.ReadReply(c.R)
	if err != nil {
		c.t.Fatalf("reading a reply: %v", err)
	}
	return string(reply)
}

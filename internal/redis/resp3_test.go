package redis

import (
	"io"
	"strconv"
	"strings"
	"testing"
)

// The RESP3 replies whose content is not deterministic, so that the golden
// transcripts (testdata/transcripts/resp3*.txt) cannot hold them: INFO and
// CLIENT INFO are verbatim strings of format "txt", COMMAND INFO's flags
// and categories are sets.
func TestRESP3Verbatim(t *testing.T) {
	_, addr := serve(t, testConfig(), nil)
	c := dial(t, addr)
	c.send("HELLO 3\r\nPING\r\n")
	c.skipPast("+PONG\r\n")
	for _, tc := range []struct{ req, prefix string }{
		{"INFO server\r\n", "txt:# Server\r\nredis_version:7.0.15\r\n"},
		{"CLIENT INFO\r\n", "txt:id="},
		{"CLIENT LIST\r\n", "txt:id="},
	} {
		c.send(tc.req)
		line, _ := c.r.ReadString('\n')
		if !strings.HasPrefix(line, "=") {
			t.Fatalf("%q: reply %q, want a verbatim string", tc.req, line)
		}
		n, _ := strconv.Atoi(line[1 : len(line)-2])
		body := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, body); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(body), tc.prefix) {
			t.Fatalf("%q: body %q, want prefix %q", tc.req, body, tc.prefix)
		}
		if tc.req == "CLIENT INFO\r\n" && !strings.Contains(string(body), " resp=3 ") {
			t.Fatalf("CLIENT INFO %q: want resp=3", body)
		}
	}
	c.send("COMMAND INFO get nosuch\r\n")
	c.expect("*2\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n~3\r\n+@read\r\n+@string\r\n+@fast\r\n~0\r\n~0\r\n~0\r\n_\r\n")
}

// Pub/sub messages, keyspace notifications among them, are pushes for a
// RESP3 subscriber and arrays for a RESP2 one; channel subscribers first,
// then patterns, as redis-server sends them.
func TestRESP3Messages(t *testing.T) {
	_, addr := serve(t, testConfig(), nil)
	sub3, sub2, pub := dial(t, addr), dial(t, addr), dial(t, addr)
	sub3.send("HELLO 3\r\nSUBSCRIBE ch\r\nPSUBSCRIBE c*\r\nPING\r\n")
	sub3.skipPast("+PONG\r\n")
	sub2.send("SUBSCRIBE ch\r\n")
	sub2.expect("*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
	pub.send("PUBLISH ch hi\r\n")
	pub.expect(":3\r\n")
	sub3.expect(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n>4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$2\r\nhi\r\n")
	sub2.expect("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n")
}

// The tracking table holds at most maxKeys keys: past it a key is dropped
// and its readers told to drop it too, as redis does past
// tracking-table-max-keys.
func TestTrackingTableLimit(t *testing.T) {
	s, addr := serve(t, testConfig(), nil)
	s.track.maxKeys.Store(2)
	c := dial(t, addr)
	c.send("HELLO 3\r\nCLIENT TRACKING ON\r\nGET a\r\nGET b\r\nPING\r\n")
	c.skipPast("+PONG\r\n")
	c.send("GET c\r\n")
	c.expect("_\r\n")
	line, _ := c.r.ReadString('\n')
	if line != ">2\r\n" {
		t.Fatalf("after a third key: %q, want an invalidation push", line)
	}
	c.expect("$10\r\ninvalidate\r\n*1\r\n$1\r\n")
	if k, _ := c.r.ReadString('\n'); k != "a\r\n" && k != "b\r\n" {
		t.Fatalf("evicted %q", k)
	}
	if n, _, _ := s.track.totals(); n != 2 {
		t.Fatalf("%d keys tracked, want 2", n)
	}
}

// skipPast reads lines up to and including line (the replies of a
// handshake the test does not check).
func (c *client) skipPast(line string) {
	c.t.Helper()
	for got := ""; got != line; {
		var err error
		if got, err = c.r.ReadString('\n'); err != nil {
			c.t.Fatal(err)
		}
	}
}

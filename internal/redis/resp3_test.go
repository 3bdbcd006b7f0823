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
	for line := ""; line != "+PONG\r\n"; {
		var err error
		if line, err = c.r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
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

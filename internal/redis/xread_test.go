package redis

import (
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/resp"
)

// waitXReads waits until n clients wait in XREAD BLOCK.
func waitXReads(t *testing.T, s *Server, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.xreads.n.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients in XREAD BLOCK, want %d", s.xreads.n.Load(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// XREAD BLOCK waits for an XADD to one of its streams ("$": entries added
// after it started), is not woken by other keys, times out with a null
// array, and a closed client leaves the registry.
func TestXReadBlockWokenByXAdd(t *testing.T) {
	s, addr := serveNode(t, testConfig(), nil, newMemNode())
	p := dial(t, addr)
	p.send("XADD s1 1-1 old 1\r\n")
	p.expect("$3\r\n1-1\r\n")
	a := dial(t, addr)
	a.send("XREAD BLOCK 0 STREAMS s1 s2 $ $\r\n")
	b := dial(t, addr)
	b.send("XREAD COUNT 1 BLOCK 0 STREAMS s2 0-0\r\n")
	waitXReads(t, s, 2)
	p.send("XADD other 1-1 f v\r\nSET s3 x\r\n")
	p.expect("$3\r\n1-1\r\n+OK\r\n")
	p.send("XADD s2 5-1 f v\r\n")
	p.expect("$3\r\n5-1\r\n")
	a.expect("*1\r\n*2\r\n$2\r\ns2\r\n*1\r\n*2\r\n$3\r\n5-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n")
	b.expect("*1\r\n*2\r\n$2\r\ns2\r\n*1\r\n*2\r\n$3\r\n5-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n")
	waitXReads(t, s, 0)
	a.send("PING\r\n")
	a.expect("+PONG\r\n")

	// A wrong type while waiting: the read answers WRONGTYPE.
	a.send("XREAD BLOCK 0 STREAMS s4 $\r\n")
	waitXReads(t, s, 1)
	p.send("SET s4 x\r\n")
	p.expect("+OK\r\n")
	a.expect("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")

	// RESP3: a map.
	a.send("HELLO 3\r\n")
	if _, err := resp.ReadReply(a.r); err != nil {
		t.Fatal(err)
	}
	a.send("XREAD BLOCK 0 STREAMS s1 1-1\r\n")
	waitXReads(t, s, 1)
	p.send("XADD s1 2-1 g h\r\n")
	p.expect("$3\r\n2-1\r\n")
	a.expect("%1\r\n$2\r\ns1\r\n*1\r\n*2\r\n$3\r\n2-1\r\n*2\r\n$1\r\ng\r\n$1\r\nh\r\n")

	a.send("XREAD BLOCK 100 STREAMS s1 $\r\n")
	a.expect("_\r\n")
	waitXReads(t, s, 0)

	c := dial(t, addr)
	c.send("XREAD BLOCK 0 STREAMS s9 $\r\n")
	waitXReads(t, s, 1)
	c.c.Close()
	waitXReads(t, s, 0)
}

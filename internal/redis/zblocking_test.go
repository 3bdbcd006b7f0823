package redis

import (
	"testing"
	"time"
)

// Blocking sorted set pops wait in the lists' registry: woken by a ZADD,
// in arrival order, timing out with a null array.
func TestBZPOPWokenByZAdd(t *testing.T) {
	s, addr := serveNode(t, testConfig(), nil, newMemNode())
	a := blockedClient(t, s, addr, "BZPOPMIN z1 z2 0", 1)
	b := blockedClient(t, s, addr, "BZMPOP 0 1 z2 MAX COUNT 5", 2)
	p := dial(t, addr)
	p.send("ZADD z2 1 x 2 y 3 z\r\n")
	p.expect(":3\r\n")
	a.expect("*3\r\n$2\r\nz2\r\n$1\r\nx\r\n$1\r\n1\r\n")
	b.expect("*2\r\n$2\r\nz2\r\n*2\r\n*2\r\n$1\r\nz\r\n$1\r\n3\r\n*2\r\n$1\r\ny\r\n$1\r\n2\r\n")
	waitBlocked(t, s, 0)
	p.send("EXISTS z2\r\n")
	p.expect(":0\r\n")
	c := blockedClient(t, s, addr, "BZPOPMAX z3 0", 1)
	p.send("SET z3 str\r\n")
	p.expect("+OK\r\n")
	waitArmed(t, s)
	p.send("DEL z3\r\nZADD z3 1.5 m\r\n")
	p.expect(":1\r\n:1\r\n")
	c.expect("*3\r\n$2\r\nz3\r\n$1\r\nm\r\n$3\r\n1.5\r\n")
	for _, req := range []string{"BZPOPMIN q 0.2", "BZPOPMAX q r 0.2", "BZMPOP 0.2 2 q r MIN"} {
		start := time.Now()
		p.send(req + "\r\n")
		p.expect("*-1\r\n")
		if d := time.Since(start); d < 190*time.Millisecond || d > 2*time.Second {
			t.Errorf("%s answered after %v", req, d)
		}
	}
	waitBlocked(t, s, 0)
}

// A try whose outcome was lost puts back what it took, score and all.
func TestLostZPopTryIsPushedBack(t *testing.T) {
	node := &lossyNode{memNode: newMemNode()}
	s, addr := serveNode(t, testConfig(), nil, node)
	node.memNode.mu.Lock()
	node.ks.SetEvents(s)
	node.memNode.mu.Unlock()
	a, p := blockedClient(t, s, addr, "BZPOPMIN z 0", 1), dial(t, addr)
	node.mu.Lock()
	node.loses = 1
	node.mu.Unlock()
	p.send("ZADD z 0.1 e1 2 e2\r\n")
	p.expect(":2\r\n")
	got := readReply(t, a)
	var rest string
	switch got {
	case "*3\r\n$1\r\nz\r\n$2\r\ne1\r\n$19\r\n0.10000000000000001\r\n":
		rest = "*2\r\n$2\r\ne2\r\n$1\r\n2\r\n"
	case "*3\r\n$1\r\nz\r\n$2\r\ne2\r\n$1\r\n2\r\n":
		rest = "*2\r\n$2\r\ne1\r\n$19\r\n0.10000000000000001\r\n"
	default:
		t.Fatalf("popped %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.send("ZRANGE z 0 -1 WITHSCORES\r\n")
		reply := readReply(t, p)
		if reply == rest {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sorted set holds %q, want %q", reply, rest)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitBlocked(t, s, 0)
}

// A RESP3 client woken in a blocking pop gets the score as a double, as
// one served at once does (testdata/transcripts/resp3_zsets.txt).
func TestBZPOPWokenRESP3(t *testing.T) {
	s, addr := serveNode(t, testConfig(), nil, newMemNode())
	a := blockedClient(t, s, addr, "HELLO 3\r\nBZPOPMIN z1 z2 0", 1)
	b := blockedClient(t, s, addr, "HELLO 3\r\nBZMPOP 0 1 z2 MAX COUNT 5", 2)
	a.skipPast("*0\r\n")
	b.skipPast("*0\r\n")
	p := dial(t, addr)
	p.send("ZADD z2 1 x 2.5 y inf z\r\n")
	p.expect(":3\r\n")
	a.expect("*3\r\n$2\r\nz2\r\n$1\r\nx\r\n,1\r\n")
	b.expect("*2\r\n$2\r\nz2\r\n*2\r\n*2\r\n$1\r\nz\r\n,inf\r\n*2\r\n$1\r\ny\r\n,2.5\r\n")
}

package redis

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// waitBlocked waits until n clients are registered as blocked.
func waitBlocked(t *testing.T, s *Server, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.blocking.n.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients blocked, want %d", s.blocking.n.Load(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitArmed waits until every blocked client has no try in flight.
func waitArmed(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.blocking.mu.Lock()
		busy := false
		for _, q := range s.blocking.queues {
			for _, b := range q.clients {
				busy = busy || b.trying
			}
		}
		s.blocking.mu.Unlock()
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a try is still in flight")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// blockedClient connects and sends a blocking request req; it returns
// once the request waits, armed, as the nth blocked client.
func blockedClient(t *testing.T, s *Server, addr, req string, n int64) *client {
	t.Helper()
	c := dial(t, addr)
	c.send(req + "\r\n")
	waitBlocked(t, s, n)
	waitArmed(t, s)
	return c
}

func TestBLPOPWokenByPush(t *testing.T) {
	s, addr := serveNode(t, testConfig(), nil, newMemNode())
	a, b := blockedClient(t, s, addr, "BLPOP q1 q2 0", 1), dial(t, addr)
	b.send("RPUSH q2 x y\r\n")
	b.expect(":2\r\n")
	a.expect("*2\r\n$2\r\nq2\r\n$1\r\nx\r\n")
	b.send("LRANGE q2 0 -1\r\n")
	b.expect("*1\r\n$1\r\ny\r\n")
	waitBlocked(t, s, 0)
	// The connection goes on after its wait.
	a.send("PING\r\n")
	a.expect("+PONG\r\n")
}

// Clients waiting on one key are served in the order they arrived.
func TestBlockedClientsServedInArrivalOrder(t *testing.T) {
	s, addr := serveNode(t, testConfig(), nil, newMemNode())
	var cs []*client
	for i := range 3 {
		cs = append(cs, blockedClient(t, s, addr, "BRPOP q 0", int64(i+1)))
	}
	p := dial(t, addr)
	for i, c := range cs {
		v := strconv.Itoa(i)
		p.send("LPUSH q " + v + "\r\n")
		p.expect(":1\r\n")
		c.expect("*2\r\n$1\r\nq\r\n$1\r\n" + v + "\r\n")
	}
	// Two elements at once serve two clients, in order.
	a := blockedClient(t, s, addr, "BLMPOP 0 1 q LEFT COUNT 1", 1)
	b := blockedClient(t, s, addr, "BLMOVE q dst LEFT LEFT 0", 2)
	p.send("RPUSH q e1 e2\r\n")
	p.expect(":2\r\n")
	a.expect("*2\r\n$1\r\nq\r\n*1\r\n$2\r\ne1\r\n")
	b.expect("$2\r\ne2\r\n")
	p.send("LRANGE dst 0 -1\r\nEXISTS q\r\n")
	p.expect("*1\r\n$2\r\ne2\r\n:0\r\n")
}

func TestBlockingTimeout(t *testing.T) {
	s, addr := serveNode(t, testConfig(), nil, newMemNode())
	c := dial(t, addr)
	for _, req := range []string{"BLPOP q 0.2", "BRPOPLPUSH q d 0.2", "BLMPOP 0.2 2 q r RIGHT"} {
		start := time.Now()
		c.send(req + "\r\n")
		c.expect("*-1\r\n")
		if d := time.Since(start); d < 190*time.Millisecond || d > 2*time.Second {
			t.Errorf("%s answered after %v", req, d)
		}
	}
	waitBlocked(t, s, 0)
}

// A key of another type does not serve a waiting client, which waits on
// until the key holds a list (as in redis).
func TestBlockedClientWaitsThroughOtherType(t *testing.T) {
	s, addr := serveNode(t, testConfig(), nil, newMemNode())
	a, p := blockedClient(t, s, addr, "BLPOP q 0", 1), dial(t, addr)
	p.send("SET q str\r\n")
	p.expect("+OK\r\n")
	waitArmed(t, s)
	p.send("DEL q\r\nRPUSH q v\r\n")
	p.expect(":1\r\n:1\r\n")
	a.expect("*2\r\n$1\r\nq\r\n$1\r\nv\r\n")
}

// A client that disconnects while it waits leaves the registry, and a
// later push stays in the list.
func TestBlockedClientDisconnects(t *testing.T) {
	s, addr := serveNode(t, testConfig(), nil, newMemNode())
	a, p := blockedClient(t, s, addr, "BLPOP q 0", 1), dial(t, addr)
	a.c.Close()
	waitBlocked(t, s, 0)
	p.send("RPUSH q v\r\nLLEN q\r\n")
	p.expect(":1\r\n:1\r\n")
}

// At shutdown a waiting client's connection is closed with no reply.
func TestBlockedClientAtShutdown(t *testing.T) {
	s, addr := serveNode(t, testConfig(), nil, newMemNode())
	a := blockedClient(t, s, addr, "BLPOP q 0", 1)
	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
		close(done)
	}()
	a.expectClosed()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the blocked client")
	}
}

// lossyNode applies writes but, for the first tries of blocked clients,
// answers "outcome unknown" at once and applies the try only afterwards,
// as a leader that dies holding a write whose entry a new leader then
// commits. The element such a try took must be pushed back, not lost.
type lossyNode struct {
	*memNode
	mu    sync.Mutex
	loses int // tries still to lose
}

func (n *lossyNode) WriteAsync(tx command.Tx, done func(command.TxResult, error)) {
	n.mu.Lock()
	lose := n.loses > 0 && tx[0].Has(command.FlagServe)
	if lose {
		n.loses--
	}
	n.mu.Unlock()
	if !lose {
		n.memNode.WriteAsync(tx, done)
		return
	}
	done(command.TxResult{}, fmt.Errorf("%w: the write may or may not have been applied", command.ErrNoLeader))
	time.Sleep(10 * time.Millisecond)
	n.memNode.WriteAsync(tx, func(command.TxResult, error) {})
}

func TestLostTryIsPushedBack(t *testing.T) {
	node := &lossyNode{memNode: newMemNode()}
	s, addr := serveNode(t, testConfig(), nil, node)
	node.memNode.mu.Lock()
	node.ks.SetEvents(s) // serveNode sets it for a *memNode only
	node.memNode.mu.Unlock()
	a, p := blockedClient(t, s, addr, "BLPOP q 0", 1), dial(t, addr)
	node.mu.Lock()
	node.loses = 1
	node.mu.Unlock()
	p.send("RPUSH q e1 e2\r\n")
	p.expect(":2\r\n")
	a.expect("*2\r\n$1\r\nq\r\n$2\r\n")
	got, _ := a.r.ReadString('\n')
	// Whichever element the client got, the other is in the list: e1
	// pushed back to the head, or never taken.
	var rest string
	switch got {
	case "e1\r\n":
		rest = "e2"
	case "e2\r\n":
		rest = "e1"
	default:
		t.Fatalf("popped %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.send("LRANGE q 0 -1\r\n")
		reply := readReply(t, p)
		if reply == "*1\r\n$2\r\n"+rest+"\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list holds %q, want only %s", reply, rest)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitBlocked(t, s, 0)
	s.blocking.mu.Lock()
	defer s.blocking.mu.Unlock()
	if n := len(s.blocking.tries); n != 0 || node.loses != 0 {
		t.Fatalf("%d tries remembered, %d still to lose", n, node.loses)
	}
}

func readReply(t *testing.T, c *client) string {
	t.Helper()
	var out []byte
	var read func()
	read = func() {
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, line...)
		n, _ := strconv.Atoi(line[1 : len(line)-2])
		switch line[0] {
		case '*':
			for range n {
				read()
			}
		case '$':
			if n >= 0 {
				b := make([]byte, n+2)
				if _, err := io.ReadFull(c.r, b); err != nil {
					t.Fatal(err)
				}
				out = append(out, b...)
			}
		}
	}
	read()
	return string(out)
}

// Under concurrent pushes and blocking pops every element is popped
// exactly once.
func TestBlockingPopsLoseAndDuplicateNothing(t *testing.T) {
	s, addr := serveNode(t, testConfig(), nil, newMemNode())
	ctx := context.Background()
	const consumers, producers, each = 6, 3, 100
	popped := make(chan string, producers*each)
	var wg sync.WaitGroup
	for i := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1, Protocol: 2})
			defer cl.Close()
			for {
				var v []string
				var err error
				if i%2 == 0 {
					v, err = cl.BLPop(ctx, 500*time.Millisecond, "q").Result()
				} else {
					v, err = cl.BRPop(ctx, 500*time.Millisecond, "q", "q2").Result()
				}
				if err != nil {
					if err != goredis.Nil {
						t.Error(err)
					}
					return // drained
				}
				popped <- v[1]
			}
		}()
	}
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1, Protocol: 2})
			defer cl.Close()
			for i := range each {
				if err := cl.RPush(ctx, "q", fmt.Sprintf("%d-%d", p, i)).Err(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(popped)
	seen := map[string]bool{}
	for v := range popped {
		if seen[v] {
			t.Errorf("%s popped twice", v)
		}
		seen[v] = true
	}
	p := dial(t, addr)
	p.send("LLEN q\r\n")
	left := readReply(t, p)
	n, _ := strconv.Atoi(left[1 : len(left)-2])
	if len(seen)+n != producers*each {
		t.Errorf("%d popped and %d left of %d pushed", len(seen), n, producers*each)
	}
	waitBlocked(t, s, 0)
}

var (
	_ keyspace.PopWatcher     = (*Server)(nil)
	_ keyspace.ReplaceWatcher = (*Server)(nil)
)

// SWAPDB serves a client blocked on a key that exists after the swap (as
// redis's scanDatabaseForReadyKeys does); the client stays in the database
// it selected.
func TestBlockedClientServedAfterSwapDB(t *testing.T) {
	s, addr := serveNode(t, testConfig(), nil, newMemNode())
	a := dial(t, addr)
	a.send("SELECT 1\r\n")
	a.expect("+OK\r\n")
	a.send("BLPOP q 0\r\n")
	waitBlocked(t, s, 1)
	waitArmed(t, s)
	b := dial(t, addr)
	b.send("RPUSH q x y\r\n")
	b.expect(":2\r\n")
	b.send("SWAPDB 0 1\r\n")
	b.expect("+OK\r\n")
	a.expect("*2\r\n$1\r\nq\r\n$1\r\nx\r\n")
	a.send("LRANGE q 0 -1\r\n")
	a.expect("*1\r\n$1\r\ny\r\n")
	b.send("EXISTS q\r\n")
	b.expect(":0\r\n")
	waitBlocked(t, s, 0)
}

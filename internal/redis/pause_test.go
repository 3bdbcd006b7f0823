package redis

import (
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitHeld waits until n connections are held by CLIENT PAUSE.
func waitHeld(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.pause.heldCount() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections held, want %d", s.pause.heldCount(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// CLIENT PAUSE WRITE holds writes (and EVAL, PUBLISH, a transaction that
// queued a write) but lets reads through; the held commands run, in each
// connection's order, at CLIENT UNPAUSE. Other connections are not held
// up by a held one.
func TestClientPauseWrite(t *testing.T) {
	s, addr := serveNode(t, testConfig(), nil, newMemNode())
	admin, w, r := dial(t, addr), dial(t, addr), dial(t, addr)
	admin.send("SET k old\r\nCLIENT PAUSE 1000000 WRITE\r\n")
	admin.expect("+OK\r\n+OK\r\n")
	// A pipeline: the write is held, and the read after it waits its turn.
	w.send("SET k new\r\nGET k\r\n")
	waitHeld(t, s, 1)
	r.expectBlockedClients(1)
	r.send("GET k\r\nEVAL_RO \"return 1\" 0\r\nMULTI\r\nGET k\r\nEXEC\r\n")
	r.expect("$3\r\nold\r\n:1\r\n+OK\r\n+QUEUED\r\n*1\r\n$3\r\nold\r\n")
	for _, req := range []string{"EVAL \"return 1\" 0", "PUBLISH ch m", "FUNCTION FLUSH"} {
		o := dial(t, addr)
		o.send(req + "\r\n")
		waitHeld(t, s, 2)
		o.c.Close()
		waitHeld(t, s, 1) // a held connection that closes is let go
	}
	// Queuing a write in MULTI is held (redis checks the pause before
	// it queues).
	m := dial(t, addr)
	m.send("MULTI\r\nSET k tx\r\n")
	m.expect("+OK\r\n")
	waitHeld(t, s, 2)
	r.send("GET k\r\n")
	r.expect("$3\r\nold\r\n")
	admin.send("CLIENT UNPAUSE\r\n")
	admin.expect("+OK\r\n")
	w.expect("+OK\r\n$3\r\nnew\r\n")
	m.expect("+QUEUED\r\n")
	m.send("EXEC\r\n")
	m.expect("*1\r\n+OK\r\n")
	waitHeld(t, s, 0)
	// EXEC of a transaction that queued a write before the pause is held.
	m.send("MULTI\r\nSET k tx2\r\n")
	m.expect("+OK\r\n+QUEUED\r\n")
	admin.send("CLIENT PAUSE 1000000 WRITE\r\n")
	admin.expect("+OK\r\n")
	m.send("EXEC\r\n")
	waitHeld(t, s, 1)
	admin.send("CLIENT UNPAUSE\r\n")
	admin.expect("+OK\r\n")
	m.expect("*1\r\n+OK\r\n")
	admin.send("GET k\r\n")
	admin.expect("$3\r\ntx2\r\n")
}

// CLIENT PAUSE ALL holds every command of every client, the one that
// paused included and CLIENT UNPAUSE too, until the timeout; commands
// refused anyway are answered at once. A second pause keeps the stricter
// mode and the later end.
func TestClientPauseAll(t *testing.T) {
	s, addr := serveNode(t, testConfig(), nil, newMemNode())
	admin, a, b := dial(t, addr), dial(t, addr), dial(t, addr)
	admin.send("SET k v\r\nCLIENT PAUSE 1000000 WRITE\r\nCLIENT PAUSE 10 ALL\r\n")
	admin.expect("+OK\r\n+OK\r\n+OK\r\n")
	if s.pause.mode.Load() != pauseAll {
		t.Fatal("a second pause did not make it ALL")
	}
	s.pause.mu.Lock()
	left := time.Until(s.pause.end)
	s.pause.mu.Unlock()
	if left < time.Minute {
		t.Fatalf("the pause ends in %v: a shorter second pause moved its end", left)
	}
	a.send("GET k\r\n")
	waitHeld(t, s, 1)
	admin.send("CLIENT UNPAUSE\r\n")
	waitHeld(t, s, 2)
	b.send("NOSUCH\r\nGET\r\nPING\r\n")
	b.expect("-ERR unknown command 'NOSUCH', with args beginning with: \r\n-ERR wrong number of arguments for 'get' command\r\n")
	waitHeld(t, s, 3)
	s.pause.expireNow(t)
	a.expect("$1\r\nv\r\n")
	admin.expect("+OK\r\n")
	b.expect("+PONG\r\n")
	// A timeout ends it by itself.
	admin.send("CLIENT PAUSE 50\r\nPING\r\n")
	admin.expect("+OK\r\n+PONG\r\n")
}

// expireNow ends the pause as its timeout would.
func (p *pause) expireNow(t *testing.T) {
	p.mu.Lock()
	p.end = time.Now()
	p.mu.Unlock()
	p.expire()
}

// CLIENT UNBLOCK ends a blocking command's wait as its timeout would, or
// with the UNBLOCKED error; :0 for a client that does not wait.
func TestClientUnblock(t *testing.T) {
	s, addr := serveNode(t, testConfig(), nil, newMemNode())
	admin, b := dial(t, addr), dial(t, addr)
	b.send("CLIENT ID\r\n")
	line, _ := b.r.ReadString('\n')
	id := strings.TrimSuffix(strings.TrimPrefix(line, ":"), "\r\n")
	if _, err := strconv.Atoi(id); err != nil {
		t.Fatalf("CLIENT ID: %q", line)
	}
	admin.send("CLIENT UNBLOCK " + id + "\r\n")
	admin.expect(":0\r\n")
	for _, tc := range []struct{ req, reason, reply string }{
		{"BLPOP q 0", "", "*-1\r\n"},
		{"BLPOP q 0", " TIMEOUT", "*-1\r\n"},
		{"BRPOPLPUSH q d 0", " timeout", "*-1\r\n"},
		{"BZPOPMIN z 0", " ERROR", "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"},
		{"BLMPOP 0 1 q LEFT", " error", "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"},
		{"HELLO 3\r\nBLPOP q 0", "", "_\r\n"},
	} {
		b.send(tc.req + "\r\n")
		if strings.HasPrefix(tc.req, "HELLO") {
			b.skipPast("*0\r\n")
		}
		waitBlocked(t, s, 1)
		waitArmed(t, s)
		admin.expectBlockedClients(1)
		admin.send("CLIENT UNBLOCK " + id + tc.reason + "\r\n")
		admin.expect(":1\r\n")
		b.expect(tc.reply)
		waitBlocked(t, s, 0)
		admin.send("CLIENT UNBLOCK " + id + tc.reason + "\r\n")
		admin.expect(":0\r\n")
	}
	// The connection goes on, and nothing was popped.
	admin.send("RPUSH q x\r\n")
	admin.expect(":1\r\n")
	b.send("LPOP q\r\n")
	b.expect("$1\r\nx\r\n")
}

// expectBlockedClients checks INFO clients' blocked_clients.
func (c *client) expectBlockedClients(n int) {
	c.t.Helper()
	c.send("INFO clients\r\n")
	line, _ := c.r.ReadString('\n')
	size, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil {
		c.t.Fatalf("INFO: %q", line)
	}
	body := make([]byte, size+2)
	if _, err := io.ReadFull(c.r, body); err != nil {
		c.t.Fatal(err)
	}
	if want := "blocked_clients:" + strconv.Itoa(n) + "\r\n"; !strings.Contains(string(body), want) {
		c.t.Fatalf("INFO clients %q, want %q", body, want)
	}
}

// A connection that the server's shutdown has already let go (Shutdown
// ran pause.release) is not held again by a command it was about to run
// (its driver was past the closing check, or a held command's
// continuation found a new pause): it would stay busy, its driver waiting
// for a wake that never comes, and the server's Close would wait for it
// for as long as the pause lasts.
func TestClientPauseDoesNotHoldAClosingConnection(t *testing.T) {
	p := newPause()
	p.start(time.Hour, pauseAll)
	defer p.stop()
	c := &conn{}
	c.closing.Store(true) // Shutdown: closing, then release (nothing held yet)
	p.release(c)
	let, ran := false, false
	p.wait(c, func(int32) bool { return true }, func(k func()) { let = true; k() }, func() { ran = true })
	if p.heldCount() != 0 || !let {
		t.Fatalf("a closing connection is held (held %d, let go %v)", p.heldCount(), let)
	}
	if ran {
		t.Fatal("a closing connection's held command ran")
	}
}

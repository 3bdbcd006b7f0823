package redis

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// memNode runs the real executor over an in-memory keyspace with no Raft,
// the "in-memory node" the design gives front ends for their own tests.
type memNode struct {
	mu     sync.RWMutex
	ks     *keyspace.Keyspace
	exec   *command.Executor
	maxmem int64
	policy command.Policy
	topo   Topology
	role   string // "" = master
	// slowReads makes every read wait for its callback (ReadNow refuses).
	slowReads atomic.Bool
	// slowView makes discovery commands fetch the view off the loop.
	slowView atomic.Bool
}

func (m *memNode) Topology(context.Context) Topology {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.topo
}

// setTopology changes the topology while the server runs.
func (m *memNode) setTopology(t Topology) {
	m.mu.Lock()
	m.topo = t
	m.mu.Unlock()
}

func newMemNode() *memNode {
	return &memNode{ks: keyspace.New(16), exec: command.NewExecutor(ScriptCalls())}
}

// WriteAsync applies tx and answers from another goroutine, as the real
// node answers from its apply thread: the front end's wait-and-wake path
// runs in every test.
func (m *memNode) WriteAsync(tx command.Tx, done func(command.TxResult, error)) {
	m.mu.Lock()
	res := m.exec.Apply(m.ks, command.Header{Now: time.Now().UnixMilli(), MaxMemory: m.maxmem, Policy: m.policy}, tx)
	m.mu.Unlock()
	go done(res, nil)
}

// ReadAsync answers from another goroutine, as the real node does after
// a read barrier; ReadNow answers at once, as the real node does on a
// sole-voter leader. The front end tries ReadNow first, so the callback
// path runs when m.slowReads is set.
func (m *memNode) ReadAsync(c *command.Cmd, done func(command.Result, error)) {
	r := m.read(c)
	go done(r, nil)
}

func (m *memNode) ReadNow(c *command.Cmd) (command.Result, bool) {
	if m.slowReads.Load() {
		return command.Result{}, false
	}
	return m.read(c), true
}

func (m *memNode) read(c *command.Cmd) command.Result {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.exec.Read(m.ks, time.Now().UnixMilli(), c)
}

func (m *memNode) MaxMemory() (int64, command.Policy) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.maxmem, m.policy
}
func (m *memNode) SetMaxMemory(b int64, p command.Policy) {
	m.mu.Lock()
	m.maxmem, m.policy = b, p
	m.mu.Unlock()
}
func (m *memNode) Role() string { return m.Info().Role }

// ViewNow answers at once unless m.slowView is set (then the front end
// asks with Info and Topology, off its loop).
func (m *memNode) ViewNow() (NodeInfo, Topology, bool) {
	if m.slowView.Load() {
		return NodeInfo{}, Topology{}, false
	}
	return m.Info(), m.Topology(context.Background()), true
}

func (m *memNode) Info() NodeInfo {
	m.mu.RLock()
	role, leader := m.role, m.topo.Leader
	m.mu.RUnlock()
	if role == "" {
		role = "master"
	}
	return NodeInfo{Role: role, LeaderAddr: leader, Keys: make([]int, 16), Volatile: make([]int, 16)}
}

func testConfig() Config {
	return Config{
		MaxClients: 100, MaxBulk: 512 << 20, MaxMultibulk: 1 << 20, MaxInline: 64 << 10,
		QueryBufLimit: 1 << 30, MaxKeySize: 1 << 16, MaxValueSize: 512 << 20, Databases: 16,
		Logger: slog.New(slog.DiscardHandler),
	}
}

// serve starts a front end on a loopback port; wrap may replace the
// listener (to present another client address).
func serve(t testing.TB, cfg Config, wrap func(net.Listener) net.Listener) (*Server, string) {
	t.Helper()
	return serveNode(t, cfg, wrap, newMemNode())
}

// serveNode is serve with a given node.
func serveNode(t testing.TB, cfg Config, wrap func(net.Listener) net.Listener, node Node) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	s := New(cfg, node)
	if m, ok := node.(*memNode); ok {
		m.ks.SetEvents(s)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, addr
}

type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.c.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads exactly len(want) bytes and compares.
func (c *client) expect(want string) {
	c.t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c.r, got); err != nil {
		c.t.Fatalf("reading %q: got %q, %v", want, got, err)
	}
	if string(got) != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

// expectClosed checks that the server closed the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	b, err := c.r.ReadByte()
	if err == nil {
		rest, _ := c.r.Peek(c.r.Buffered())
		c.t.Fatalf("connection still open; read %q%q", b, rest)
	}
}

func TestMaxClients(t *testing.T) {
	cfg := testConfig()
	cfg.MaxClients = 2
	_, addr := serve(t, cfg, nil)
	a, b := dial(t, addr), dial(t, addr)
	a.send("PING\r\n")
	a.expect("+PONG\r\n")
	b.send("PING\r\n")
	b.expect("+PONG\r\n")
	c := dial(t, addr)
	c.expect("-ERR max number of clients reached\r\n")
	c.expectClosed()
	a.c.Close()
	// The slot frees once the server has seen the close.
	deadline := time.Now().Add(5 * time.Second)
	for {
		d := dial(t, addr)
		d.send("PING\r\n")
		line, _ := d.r.ReadString('\n')
		if line == "+PONG\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed: %q", line)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestIdleTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.Timeout = 300 * time.Millisecond
	_, addr := serve(t, cfg, nil)
	c := dial(t, addr)
	c.send("PING\r\n")
	c.expect("+PONG\r\n")
	c.expectClosed() // blocks until the idle timeout closes it
	busy := dial(t, addr)
	for i := 0; i < 5; i++ {
		time.Sleep(100 * time.Millisecond)
		busy.send("PING\r\n")
		busy.expect("+PONG\r\n")
	}
}

func TestQueryBufferLimit(t *testing.T) {
	cfg := testConfig()
	cfg.QueryBufLimit = 64 << 10
	_, addr := serve(t, cfg, nil)
	c := dial(t, addr)
	c.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000\r\n")
	chunk := strings.Repeat("x", 16<<10)
	for i := 0; i < 10; i++ {
		if _, err := c.c.Write([]byte(chunk)); err != nil {
			break // closed by the server: what we want
		}
	}
	c.expectClosed()
	ok := dial(t, addr)
	ok.send("PING\r\n")
	ok.expect("+PONG\r\n")
}

func TestBulkAndMultibulkLimits(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBulk = 1024
	cfg.MaxMultibulk = 8
	_, addr := serve(t, cfg, nil)
	c := dial(t, addr)
	c.send("*1\r\n$1025\r\n")
	c.expect("-ERR Protocol error: invalid bulk length\r\n")
	c.expectClosed()
	c = dial(t, addr)
	c.send("*9\r\n")
	c.expect("-ERR Protocol error: invalid multibulk length\r\n")
	c.expectClosed()
	c = dial(t, addr)
	c.send("PING " + strings.Repeat("x", 70<<10) + "\r\n")
	c.expect("-ERR Protocol error: too big inline request\r\n")
	c.expectClosed()
}

func TestUnauthenticatedFrames(t *testing.T) {
	cfg := testConfig()
	cfg.RequirePass = "pw"
	_, addr := serve(t, cfg, nil)
	c := dial(t, addr)
	c.send("*2\r\n$4\r\nAUTH\r\n$16385\r\n")
	c.expect("-ERR Protocol error: unauthenticated bulk length\r\n")
	c.expectClosed()
	// After AUTH the normal limits apply.
	c = dial(t, addr)
	c.send("AUTH pw\r\n")
	c.expect("+OK\r\n")
	big := strings.Repeat("v", 20000)
	c.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n" + big + "\r\n")
	c.expect("+OK\r\n")
}

func TestKeyAndValueSizeLimits(t *testing.T) {
	cfg := testConfig()
	cfg.MaxKeySize = 8
	cfg.MaxValueSize = 16
	_, addr := serve(t, cfg, nil)
	c := dial(t, addr)
	c.send("SET 123456789 v\r\n")
	c.expect("-ERR key is too large (max-key-size is 8 bytes)\r\n")
	c.send("SET k 12345678901234567\r\n")
	c.expect("-ERR value is too large (max-value-size is 16 bytes)\r\n")
	c.send("HSET h f 12345678901234567\r\n")
	c.expect("-ERR value is too large (max-value-size is 16 bytes)\r\n")
	c.send("SET k 1234567890123456\r\n")
	c.expect("+OK\r\n")
	// In a transaction the limit is checked when EXEC runs the command, as
	// redis checks a command's own arguments: its slot of the reply.
	c.send("MULTI\r\nSET 123456789 v\r\nSET k ok\r\nEXEC\r\n")
	c.expect("+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n-ERR key is too large (max-key-size is 8 bytes)\r\n+OK\r\n")
}

// fakeRemote presents every accepted connection as coming from another host.
type fakeRemote struct{ net.Listener }

type remoteConn struct{ net.Conn }

func (remoteConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 5555} }

func (f fakeRemote) Accept() (net.Conn, error) {
	c, err := f.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c}, nil
}

func TestProtectedMode(t *testing.T) {
	wrap := func(ln net.Listener) net.Listener { return fakeRemote{ln} }
	_, addr := serve(t, testConfig(), wrap)
	c := dial(t, addr)
	c.expect("-DENIED hatcheck is running in protected mode")
	line, _ := c.r.ReadString('\n')
	if !strings.HasSuffix(line, "\r\n") {
		t.Fatalf("reply not terminated: %q", line)
	}
	c.expectClosed()

	cfg := testConfig()
	cfg.RequirePass = "pw"
	_, addr = serve(t, cfg, wrap)
	c = dial(t, addr)
	c.send("PING\r\n")
	c.expect("-NOAUTH Authentication required.\r\n")
	c.send("AUTH pw\r\nPING\r\n")
	c.expect("+OK\r\n+PONG\r\n")
}

func TestHello(t *testing.T) {
	cfg := testConfig()
	cfg.RequirePass = "pw"
	_, addr := serve(t, cfg, nil)
	c := dial(t, addr)
	c.send("HELLO 4 AUTH default pw\r\n")
	c.expect("-NOPROTO unsupported protocol version\r\n")
	c.send("HELLO 2 AUTH default wrong\r\n")
	c.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n")
	// What go-redis and Lettuce send first: RESP3, the password and a name
	// in one request; the reply is a map.
	c.send("HELLO 3 AUTH default pw SETNAME app1\r\n")
	c.expect("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:")
	line, _ := c.r.ReadString('\n')
	if line != "1\r\n" {
		t.Fatalf("id %q", line)
	}
	c.expect("$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n")
	c.send("CLIENT GETNAME\r\nGET nosuch\r\n")
	c.expect("$4\r\napp1\r\n_\r\n")
	c.send("HELLO 2\r\nGET nosuch\r\n")
	c.expect("*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:1\r\n")
	c.expect("$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n$-1\r\n")
}

func TestPipelinedRepliesInOrder(t *testing.T) {
	_, addr := serve(t, testConfig(), nil)
	c := dial(t, addr)
	var req, want strings.Builder
	for i := 0; i < 1000; i++ {
		req.WriteString("INCR n\r\n")
		want.WriteString(":" + itoa(i+1) + "\r\n")
	}
	c.send(req.String())
	c.expect(want.String())
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestGracefulCloseFinishesRunningCommand(t *testing.T) {
	s, addr := serve(t, testConfig(), nil)
	c := dial(t, addr)
	c.send("SET k v\r\n")
	c.expect("+OK\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still accepting after Close")
	}
}

func TestClientListWhileOthersChangeState(t *testing.T) {
	_, addr := serve(t, testConfig(), nil)
	w := dial(t, addr)
	done := make(chan error, 1)
	go func() {
		want := "+OK\r\n+OK\r\n+OK\r\n"
		for i := 0; i < 200; i++ {
			if _, err := w.c.Write([]byte("SELECT 3\r\nCLIENT SETINFO lib-name x\r\nSELECT 0\r\n")); err != nil {
				done <- err
				return
			}
			got := make([]byte, len(want))
			if _, err := io.ReadFull(w.r, got); err != nil || string(got) != want {
				done <- fmt.Errorf("got %q, %v", got, err)
				return
			}
		}
		done <- nil
	}()
	r := dial(t, addr)
	for i := 0; i < 200; i++ {
		r.send("CLIENT LIST\r\n")
		hdr, err := r.r.ReadString('\n')
		if err != nil || hdr[0] != '$' {
			t.Fatalf("CLIENT LIST header %q %v", hdr, err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(hdr[1:]))
		body := make([]byte, n+2)
		if _, err := io.ReadFull(r.r, body); err != nil || strings.Count(string(body), "id=") != 2 {
			t.Fatalf("CLIENT LIST body %q %v", body, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

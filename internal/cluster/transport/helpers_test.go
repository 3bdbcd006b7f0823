package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// recorder is a Handler that keeps everything it is given.
type recorder struct {
	mu          sync.Mutex
	msgs        []raftpb.Message
	calls       int // Receive calls
	unreachable map[uint64]int
	snaps       []snapReport
	changed     chan struct{} // capacity 1, poked on every call

	// receiveSnapshot, if set, handles snapshots; the default reads all
	// the data into snapData.
	receiveSnapshot func(m raftpb.Message, data io.Reader) error
	snapData        [][]byte
	snapErrs        []error
}

type snapReport struct {
	id uint64
	ok bool
}

func newRecorder() *recorder {
	return &recorder{unreachable: map[uint64]int{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) Receive(msgs []raftpb.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, msgs...)
	r.calls++
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) ReceiveSnapshot(m raftpb.Message, data io.Reader) error {
	var err error
	if r.receiveSnapshot != nil {
		err = r.receiveSnapshot(m, data)
	} else {
		var b []byte
		b, err = io.ReadAll(data)
		r.mu.Lock()
		r.snapData = append(r.snapData, b)
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.snapErrs = append(r.snapErrs, err)
	r.mu.Unlock()
	r.poke()
	return err
}

func (r *recorder) ReportUnreachable(id uint64) {
	r.mu.Lock()
	r.unreachable[id]++
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) ReportSnapshot(id uint64, ok bool) {
	r.mu.Lock()
	r.snaps = append(r.snaps, snapReport{id, ok})
	r.mu.Unlock()
	r.poke()
}

// waitFor polls cond (under r.mu) until it holds or d passes.
func (r *recorder) waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// received returns a copy of the messages received so far.
func (r *recorder) received() []raftpb.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]raftpb.Message(nil), r.msgs...)
}

// snapReports returns a copy of the snapshot reports so far.
func (r *recorder) snapReports() []snapReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]snapReport(nil), r.snaps...)
}

func (r *recorder) unreachableCount(id uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unreachable[id]
}

// node is a transport with a real TCP listener serving it.
type node struct {
	id    uint64
	tr    *Transport
	h     *recorder
	ln    net.Listener
	addr  string
	hello bool          // read a hello before Serve
	done  chan struct{} // closed when the accept loop ends
}

// tcpDial dials without a hello: tests stand in for the peer port.
func tcpDial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// startNode starts a transport for id listening on addr ("" for a free
// loopback port). cfg's ID, Handler and (if unset) Dial are filled in.
func startNode(t testing.TB, id uint64, addr string, cfg Config) *node {
	t.Helper()
	return start(t, id, addr, cfg, false)
}

// startHelloNode is startNode for a node behind a faultproxy: its accept
// loop reads the peer port's hello before Serve, as the mux does.
func startHelloNode(t testing.TB, id uint64, cfg Config) *node {
	t.Helper()
	return start(t, id, "", cfg, true)
}

func start(t testing.TB, id uint64, addr string, cfg Config, hello bool) *node {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{id: id, h: newRecorder(), ln: ln, addr: ln.Addr().String(), hello: hello, done: make(chan struct{})}
	cfg.ID, cfg.Handler = id, n.h
	if cfg.Dial == nil {
		cfg.Dial = tcpDial
	}
	n.tr = New(cfg)
	go n.serve()
	t.Cleanup(n.stop)
	return n
}

func (n *node) serve() {
	defer close(n.done)
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			if n.hello && readHello(c) != nil {
				c.Close()
				return
			}
			n.tr.Serve(c)
		}()
	}
}

// hello is the peer port's hello (internal/cluster's mux.go) for node id,
// without a secret.
func hello(id string) []byte {
	return append(append([]byte{'T', byte(len(id))}, id...), 0)
}

func readHello(r io.Reader) error {
	b := make([]byte, 2)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	rest := make([]byte, int(b[1])+1)
	if _, err := io.ReadFull(r, rest); err != nil {
		return err
	}
	_, err := io.ReadFull(r, make([]byte, rest[len(rest)-1]))
	return err
}

// helloDial dials addr and says hello as node id.
func helloDial(id string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := tcpDial(ctx, addr)
		if err != nil {
			return nil, err
		}
		if _, err := c.Write(hello(id)); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
}

// stop closes the listener and the transport; it may be called twice.
func (n *node) stop() {
	n.ln.Close()
	<-n.done
	n.tr.Close()
}

// app returns a MsgApp from 1 to 2 carrying entries of size bytes each,
// whose contents depend on index.
func app(index uint64, entries, size int) raftpb.Message {
	m := raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Term: 3, LogTerm: 3, Index: index, Commit: index}
	for i := range entries {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(int(index) + i + j)
		}
		m.Entries = append(m.Entries, raftpb.Entry{Term: 3, Index: index + uint64(i) + 1, Data: data})
	}
	return m
}

func marshal(t testing.TB, m *raftpb.Message) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// countingConn counts Write calls on a message stream.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// rawStream opens a message stream to addr by hand, as peer from to to.
func rawStream(t *testing.T, addr string, kind byte, from, to uint64) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(appendHeader(nil, kind, from, to)); err != nil {
		t.Fatal(err)
	}
	return c
}

// frame encodes one frame as the wire carries it.
func frame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// closedByPeer reports whether the other end closed c within d.
func closedByPeer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return err == io.EOF || (err != nil && !isTimeout(err))
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// sameMessages fails t unless got and want marshal identically, in order.
func sameMessages(t *testing.T, got, want []raftpb.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(marshal(t, &got[i]), marshal(t, &want[i])) {
			t.Fatalf("message %d differs: got %s, want %s", i, got[i].Type, want[i].Type)
		}
	}
}

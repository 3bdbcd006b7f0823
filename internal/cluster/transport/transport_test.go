package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/hatcheck/hatcheck/internal/faultproxy"
)

// Messages arrive intact and in order, many per write. The comparison is
// made after everything has arrived, so it also checks that received
// messages do not share memory with the receiver's reused read buffer.
func TestMessagesArriveInOrderBatched(t *testing.T) {
	b := startNode(t, 2, "", Config{})

	// The dial waits for the gate, so every message is queued before the
	// connection exists and the batching is deterministic.
	gate := make(chan struct{})
	var writes atomic.Int64
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c, err := tcpDial(ctx, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, &writes}, nil
	}
	a := startNode(t, 1, "", Config{Dial: dial, DialTimeout: 10 * time.Second})
	a.tr.SetPeer(2, b.addr)

	var want []raftpb.Message
	frameBytes := 0
	for i := range 2000 {
		var m raftpb.Message
		switch {
		case i%100 == 0:
			m = raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 3, Commit: uint64(i), Context: []byte("read-index ctx")}
		case i%10 == 0:
			m = app(uint64(i), 10, 1024) // ten 1 KB entries
		default:
			m = app(uint64(i), 1, 1024)
		}
		want = append(want, m)
		frameBytes += 4 + m.Size()
	}
	for i := 0; i < len(want); i += 100 { // as a raft loop would, one Ready at a time
		a.tr.Send(want[i : i+100])
	}
	if st := a.tr.Stats(); st.Peers[0].Queued != len(want) {
		t.Fatalf("queued %d, want %d", st.Peers[0].Queued, len(want))
	}
	close(gate)

	b.h.waitFor(t, 10*time.Second, "all messages", func() bool { return len(b.h.msgs) >= len(want) })
	got := b.h.received()
	b.h.mu.Lock()
	calls := b.h.calls
	b.h.mu.Unlock()
	sameMessages(t, got, want)

	// One write for the stream header, then one per MaxBatchBytes (1 MiB).
	maxWrites := 1 + frameBytes/(1<<20) + 1
	if n := writes.Load(); n > int64(maxWrites) {
		t.Errorf("%d writes for %d messages (%d bytes), want at most %d", n, len(want), frameBytes, maxWrites)
	}
	// The receiver hands on every frame it has buffered in one call.
	if calls > len(want)/4 {
		t.Errorf("%d Receive calls for %d messages", calls, len(want))
	}
	if st := a.tr.Stats(); st.Peers[0].Dropped != 0 || !st.Peers[0].Connected {
		t.Errorf("stats %+v", st.Peers[0])
	}
	t.Logf("%d messages, %d bytes: %d writes, %d Receive calls", len(want), frameBytes, writes.Load(), calls)
}

// A peer that goes away is reported unreachable; Send does not block while
// it is gone; when it is back on the same address, messages flow again.
func TestReconnectAfterRestart(t *testing.T) {
	b := startNode(t, 2, "", Config{})
	a := startNode(t, 1, "", Config{})
	a.tr.SetPeer(2, b.addr)
	a.tr.Send([]raftpb.Message{app(1, 1, 1024)})
	b.h.waitFor(t, 5*time.Second, "first message", func() bool { return len(b.h.msgs) == 1 })

	b.stop()
	a.h.waitFor(t, 5*time.Second, "ReportUnreachable", func() bool { return a.h.unreachable[2] > 0 })

	// 100k messages to a dead peer, one Send each, as a busy loop would.
	hb := raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 3}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100_000 {
			a.tr.Send([]raftpb.Message{hb})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Send blocked on a dead peer")
	}
	elapsed := time.Since(start)
	if elapsed > 2*time.Second {
		t.Errorf("100k Sends to a dead peer took %v", elapsed)
	}
	st := a.tr.Stats().Peers[0]
	if st.Connected || st.Dropped == 0 {
		t.Errorf("stats while the peer is down: %+v", st)
	}

	b2 := startNode(t, 2, b.addr, Config{})
	var next uint64 = 1000
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.tr.Send([]raftpb.Message{app(next, 1, 100)})
		next++
		if len(b2.h.received()) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("messages do not flow after the peer came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := b2.h.received()
	for i, m := range got {
		if m.Type != raftpb.MsgApp {
			t.Fatalf("a %s sent while the peer was down was delivered late", m.Type)
		}
		if i > 0 && m.Index <= got[i-1].Index {
			t.Errorf("reordered after reconnect: %d after %d", m.Index, got[i-1].Index)
		}
	}
	// Reported once per failure (dial attempt), not once per message.
	if n := a.h.unreachableCount(2); n > 30 {
		t.Errorf("ReportUnreachable called %d times for one outage", n)
	}
	t.Logf("100k Sends in %v; %d dropped; %d unreachable reports; reconnected after %v",
		elapsed, st.Dropped, a.h.unreachableCount(2), time.Since(start))
}

// A link cut by the fault proxy (which accepts, then hangs up) is reported,
// nothing sent while it is cut arrives, and the link heals.
func TestCutLinkWithFaultProxy(t *testing.T) {
	nw := faultproxy.New()
	t.Cleanup(nw.Close)
	b := startHelloNode(t, 2, Config{})
	pb, err := nw.Listen("2")
	if err != nil {
		t.Fatal(err)
	}
	pb.SetTarget(b.addr)
	a := startNode(t, 1, "", Config{Dial: helloDial("1")})
	a.tr.SetPeer(2, pb.Addr())

	a.tr.Send([]raftpb.Message{app(1, 1, 1024)})
	b.h.waitFor(t, 5*time.Second, "a message through the proxy", func() bool { return len(b.h.msgs) == 1 })

	nw.Cut("1", "2")
	a.h.waitFor(t, 5*time.Second, "ReportUnreachable", func() bool { return a.h.unreachable[2] > 0 })
	for i := range 20 {
		a.tr.Send([]raftpb.Message{app(uint64(100+i), 1, 100)})
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(b.h.received()); n != 1 {
		t.Fatalf("%d messages crossed a cut link", n-1)
	}

	nw.Heal()
	deadline := time.Now().Add(10 * time.Second)
	for i := uint64(1000); ; i++ {
		a.tr.Send([]raftpb.Message{app(i, 1, 100)})
		if len(b.h.received()) > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("link did not heal")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stallListener accepts connections and never reads from them.
func stallListener(t *testing.T) (addr string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int64)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			accepted.Add(1)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String(), accepted
}

// A peer that never reads: the queue fills, further messages are dropped
// and counted, the peer is reported unreachable once, and Send stays
// non-blocking.
func TestBackPressure(t *testing.T) {
	addr, _ := stallListener(t)
	const queue = 64
	a := startNode(t, 1, "", Config{QueueSize: queue, MaxBatchBytes: 64 << 10, WriteTimeout: time.Minute})
	a.tr.SetPeer(2, addr)
	a.h.waitFor(t, 5*time.Second, "connected", func() bool { return a.tr.Stats().Peers[0].Connected })

	// 2000 × 64 KiB is far more than the socket buffers hold.
	m := app(1, 1, 64<<10)
	start := time.Now()
	for range 2000 {
		a.tr.Send([]raftpb.Message{m})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("2000 Sends to a stalled peer took %v", d)
	}
	a.h.waitFor(t, 5*time.Second, "ReportUnreachable", func() bool { return a.h.unreachable[2] > 0 })

	// An episode ends when the writer makes progress, so there may have
	// been a few while the socket buffers filled. Wait until the writer is
	// stuck: then no number of further drops is a new episode.
	deadline := time.Now().Add(10 * time.Second)
	for {
		before := a.h.unreachableCount(2)
		for range 100 {
			a.tr.Send([]raftpb.Message{m})
		}
		time.Sleep(200 * time.Millisecond)
		if a.h.unreachableCount(2) == before && a.tr.Stats().Peers[0].Queued == queue {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer never got stuck")
		}
	}
	reports := a.h.unreachableCount(2)
	for range 10_000 {
		a.tr.Send([]raftpb.Message{m})
	}
	time.Sleep(100 * time.Millisecond)
	st := a.tr.Stats().Peers[0]
	if st.Queued != queue || st.Dropped < 10_000 || !st.Connected {
		t.Errorf("stats %+v, want a full queue of %d, most messages dropped, still connected", st, queue)
	}
	if n := a.h.unreachableCount(2); n != reports {
		t.Errorf("ReportUnreachable called %d times, %d before the last 10000 drops", n, reports)
	}
	t.Logf("%d messages dropped, %d unreachable reports", st.Dropped, reports)
}

// A write that does not finish within WriteTimeout closes the connection;
// the peer is reported and redialed.
func TestWriteTimeoutClosesStuckConnection(t *testing.T) {
	addr, accepted := stallListener(t)
	a := startNode(t, 1, "", Config{QueueSize: 64, WriteTimeout: 200 * time.Millisecond})
	a.tr.SetPeer(2, addr)
	m := app(1, 1, 64<<10)
	deadline := time.Now().Add(10 * time.Second)
	for accepted.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("a stuck connection was never closed and redialed")
		}
		for range 10 {
			a.tr.Send([]raftpb.Message{m})
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a.h.unreachableCount(2) == 0 {
		t.Error("write timeout not reported unreachable")
	}
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// logged returns the JSON records logged at level warn.
func (s *syncBuffer) warnings(t *testing.T) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(s.b.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["level"] == "WARN" {
			out = append(out, rec)
		}
	}
	return out
}

// A bad frame (too long, or not a message) or stream header closes that
// connection with a warning, and harms nothing else.
func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	var logs syncBuffer
	b := startNode(t, 2, "", Config{MaxFrameBytes: 1 << 20, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	a := startNode(t, 1, "", Config{})
	a.tr.SetPeer(2, b.addr)
	a.tr.Send([]raftpb.Message{app(1, 1, 1024)})
	b.h.waitFor(t, 5*time.Second, "first message", func() bool { return len(b.h.msgs) == 1 })

	tooLong := rawStream(t, b.addr, kindMessages, 9, 2)
	_, _ = tooLong.Write([]byte{0, 0x20, 0, 0}) // 2 MiB
	garbage := rawStream(t, b.addr, kindMessages, 8, 2)
	_, _ = garbage.Write(frame([]byte{0xff, 0xff, 0xff, 0xff, 0xff}))
	wrongNode := rawStream(t, b.addr, kindMessages, 7, 5)
	badKind := rawStream(t, b.addr, 'x', 6, 2)
	for name, c := range map[string]net.Conn{"too long": tooLong, "garbage": garbage, "wrong node": wrongNode, "bad kind": badKind} {
		if !closedByPeer(c, 5*time.Second) {
			t.Errorf("%s: connection not closed", name)
		}
	}

	a.tr.Send([]raftpb.Message{app(2, 1, 1024)})
	b.h.waitFor(t, 5*time.Second, "a message after the bad frames", func() bool { return len(b.h.msgs) == 2 })
	if n := a.h.unreachableCount(2); n != 0 {
		t.Errorf("the good connection was disturbed: %d unreachable reports", n)
	}
	want := map[float64]error{9: ErrFrameTooLarge, 8: ErrBadFrame, 7: ErrWrongNode, 6: ErrBadFrame}
	for _, rec := range logs.warnings(t) {
		peer, _ := rec["peer"].(float64)
		msg, _ := rec["err"].(string)
		if werr, ok := want[peer]; ok && strings.Contains(msg, werr.Error()) {
			delete(want, peer)
		}
	}
	if len(want) > 0 {
		t.Errorf("no warning with keys peer and err for %v; logs:\n%s", want, logs.b.String())
	}
}

// A new message stream from a peer closes the old one: one connection per
// peer, and the old one's messages are handed on first.
func TestNewStreamReplacesOld(t *testing.T) {
	b := startNode(t, 2, "", Config{})
	hb := raftpb.Message{Type: raftpb.MsgHeartbeat, From: 5, To: 2, Term: 1}
	old := rawStream(t, b.addr, kindMessages, 5, 2)
	_, _ = old.Write(frame(marshal(t, &hb)))
	b.h.waitFor(t, 5*time.Second, "a message on the old stream", func() bool { return len(b.h.msgs) == 1 })

	cur := rawStream(t, b.addr, kindMessages, 5, 2)
	if !closedByPeer(old, 5*time.Second) {
		t.Fatal("old stream still open")
	}
	_, _ = cur.Write(frame(marshal(t, &hb)))
	b.h.waitFor(t, 5*time.Second, "a message on the new stream", func() bool { return len(b.h.msgs) == 2 })
}

// SetPeer with a new address moves the connection; RemovePeer forgets the
// peer; messages to unknown peers are dropped and counted, and a snapshot
// to one is reported failed.
func TestPeerChanges(t *testing.T) {
	b1 := startNode(t, 2, "", Config{})
	b2 := startNode(t, 2, "", Config{})
	a := startNode(t, 1, "", Config{})
	a.tr.SetPeer(2, b1.addr)
	a.tr.Send([]raftpb.Message{app(1, 1, 10)})
	b1.h.waitFor(t, 5*time.Second, "message at the first address", func() bool { return len(b1.h.msgs) == 1 })

	a.tr.SetPeer(2, b2.addr)
	a.tr.Send([]raftpb.Message{app(2, 1, 10)})
	b2.h.waitFor(t, 5*time.Second, "message at the new address", func() bool { return len(b2.h.msgs) == 1 })

	a.tr.RemovePeer(2)
	a.tr.Send([]raftpb.Message{
		app(3, 1, 10),
		{Type: raftpb.MsgSnap, From: 1, To: 3, Snapshot: &raftpb.Snapshot{}},
	})
	st := a.tr.Stats()
	if len(st.Peers) != 0 || st.DroppedUnknown != 2 {
		t.Errorf("stats after RemovePeer: %+v", st)
	}
	a.h.waitFor(t, 5*time.Second, "snapshot to an unknown peer reported failed", func() bool {
		return len(a.h.snaps) == 1 && a.h.snaps[0] == snapReport{3, false}
	})
}

// Close returns promptly while a peer is unreachable and a snapshot is
// stuck, reports the snapshot failed before returning, and afterwards Send
// and Serve do nothing.
func TestClose(t *testing.T) {
	b := startNode(t, 2, "", Config{})
	release := make(chan struct{})
	b.h.receiveSnapshot = func(raftpb.Message, io.Reader) error {
		<-release
		return errors.New("released")
	}
	t.Cleanup(func() { close(release) })

	a := startNode(t, 1, "", Config{})
	a.tr.SetPeer(2, b.addr)
	a.tr.SetPeer(3, "127.0.0.1:1") // nothing listens there
	a.tr.Send([]raftpb.Message{{Type: raftpb.MsgSnap, From: 1, To: 2, Snapshot: &raftpb.Snapshot{Data: make([]byte, 1<<20)}}})
	a.h.waitFor(t, 5*time.Second, "peer 3 unreachable", func() bool { return a.h.unreachable[3] > 0 })

	start := time.Now()
	a.stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	a.h.mu.Lock()
	snaps := append([]snapReport(nil), a.h.snaps...)
	a.h.mu.Unlock()
	if len(snaps) != 1 || snaps[0] != (snapReport{2, false}) {
		t.Errorf("snapshot reports at Close: %v", snaps)
	}

	a.tr.Send([]raftpb.Message{app(1, 1, 10)}) // dropped, no panic
	c1, c2 := net.Pipe()
	defer c2.Close()
	a.tr.Serve(c1) // returns at once
	if !closedByPeer(c2, time.Second) {
		t.Error("Serve after Close left the connection open")
	}
}

// A message longer than the sender's MaxFrameBytes is dropped and counted
// by the sender; the connection and the messages around it are unharmed.
func TestOversizeMessageDroppedBySender(t *testing.T) {
	b := startNode(t, 2, "", Config{})
	a := startNode(t, 1, "", Config{MaxFrameBytes: 10 << 10})
	a.tr.SetPeer(2, b.addr)
	a.tr.Send([]raftpb.Message{app(1, 1, 100), app(2, 1, 20<<10), app(3, 1, 100)})
	b.h.waitFor(t, 5*time.Second, "the small messages", func() bool { return len(b.h.msgs) == 2 })
	got := b.h.received()
	if got[0].Index != 1 || got[1].Index != 3 {
		t.Errorf("received indexes %d, %d", got[0].Index, got[1].Index)
	}
	if st := a.tr.Stats().Peers[0]; st.Dropped != 1 || !st.Connected || a.h.unreachableCount(2) != 0 {
		t.Errorf("stats %+v, %d unreachable reports", st, a.h.unreachableCount(2))
	}
}

// OnConnection hears each change of a peer's stream once: up, down when
// the peer dies (not again for each failed redial), up when it is back.
func TestConnectionReports(t *testing.T) {
	var mu sync.Mutex
	var got []bool
	b := startNode(t, 2, "", Config{})
	a := startNode(t, 1, "", Config{OnConnection: func(peer uint64, up bool, err error) {
		if peer != 2 || up != (err == nil) {
			t.Errorf("OnConnection(%d, %v, %v)", peer, up, err)
		}
		mu.Lock()
		got = append(got, up)
		mu.Unlock()
	}})
	reports := func() []bool {
		mu.Lock()
		defer mu.Unlock()
		return append([]bool(nil), got...)
	}
	a.tr.SetPeer(2, b.addr)
	a.tr.Send([]raftpb.Message{app(1, 1, 10)})
	b.h.waitFor(t, 5*time.Second, "first message", func() bool { return len(b.h.msgs) == 1 })
	b.stop()
	a.h.waitFor(t, 5*time.Second, "redials", func() bool { return a.h.unreachable[2] >= 3 })
	b2 := startNode(t, 2, b.addr, Config{})
	deadline := time.Now().Add(10 * time.Second)
	for len(b2.h.received()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no message after the peer came back")
		}
		a.tr.Send([]raftpb.Message{app(2, 1, 10)})
		time.Sleep(20 * time.Millisecond)
	}
	if r := reports(); len(r) != 3 || !r[0] || r[1] || !r[2] {
		t.Fatalf("reports %v, want [true false true]", r)
	}
}

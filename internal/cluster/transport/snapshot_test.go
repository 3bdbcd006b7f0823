package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// snapshotData is n deterministic pseudo-random bytes.
func snapshotData(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func msgSnap(index uint64) raftpb.Message {
	return raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 2, Term: 3, Snapshot: &raftpb.Snapshot{
		Metadata: raftpb.SnapshotMetadata{Index: index, Term: 3, ConfState: raftpb.ConfState{Voters: []uint64{1, 2}}},
	}}
}

// source is a SnapshotSource over data. After gateAt bytes its reader waits
// for gate (if set); it records the largest read it was asked for.
type source struct {
	data   []byte
	gateAt int
	gate   chan struct{}

	mu      sync.Mutex
	maxRead int
	opened  int
}

func (s *source) OpenSnapshot(meta raftpb.SnapshotMetadata) (io.ReadCloser, int64, error) {
	s.mu.Lock()
	s.opened++
	s.mu.Unlock()
	return io.NopCloser(&sourceReader{s: s, r: bytes.NewReader(s.data)}), int64(len(s.data)), nil
}

type sourceReader struct {
	s   *source
	r   *bytes.Reader
	pos int
}

func (r *sourceReader) Read(p []byte) (int, error) {
	r.s.mu.Lock()
	r.s.maxRead = max(r.s.maxRead, len(p))
	r.s.mu.Unlock()
	if r.s.gate != nil && r.pos >= r.s.gateAt {
		select {
		case <-r.s.gate:
		case <-time.After(10 * time.Second):
			return 0, errors.New("gate never opened")
		}
	}
	if r.s.gate != nil && r.pos < r.s.gateAt {
		p = p[:min(len(p), r.s.gateAt-r.pos)]
	}
	n, err := r.r.Read(p)
	r.pos += n
	return n, err
}

// A snapshot several chunks long arrives byte-identical, through
// ReceiveSnapshot and not Receive, and is reported sent. It is streamed: the
// receiver starts reading before the sender has read the whole source (the
// source waits for that), and the sender reads it a chunk at a time.
func TestSnapshotStreamed(t *testing.T) {
	data := snapshotData(5<<20 + 12345)
	src := &source{data: data, gateAt: 1 << 20, gate: make(chan struct{})}
	b := startNode(t, 2, "", Config{})
	var got []byte
	var gotMsg raftpb.Message
	b.h.receiveSnapshot = func(m raftpb.Message, r io.Reader) error {
		gotMsg = m
		var first [1]byte
		if _, err := io.ReadFull(r, first[:]); err != nil {
			return err
		}
		close(src.gate)
		rest, err := io.ReadAll(r)
		got = append(first[:], rest...)
		return err
	}
	a := startNode(t, 1, "", Config{Snapshots: src})
	a.tr.SetPeer(2, b.addr)
	a.tr.Send([]raftpb.Message{msgSnap(42)})

	a.h.waitFor(t, 20*time.Second, "snapshot report", func() bool { return len(a.h.snaps) == 1 })
	if r := a.h.snapReports(); r[0] != (snapReport{2, true}) {
		t.Fatalf("report %+v", r)
	}
	b.h.mu.Lock()
	defer b.h.mu.Unlock()
	if !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes, not the %d sent", len(got), len(data))
	}
	if err := b.h.snapErrs[0]; err != nil {
		t.Fatal(err)
	}
	if gotMsg.Type != raftpb.MsgSnap || gotMsg.From != 1 || gotMsg.Snapshot.Metadata.Index != 42 ||
		len(gotMsg.Snapshot.Metadata.ConfState.Voters) != 2 || len(gotMsg.Snapshot.Data) != 0 {
		t.Errorf("header %+v", gotMsg)
	}
	if len(b.h.msgs) != 0 {
		t.Errorf("MsgSnap went through the message stream")
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.maxRead > chunkSize {
		t.Errorf("source read %d bytes at once, more than a chunk", src.maxRead)
	}
}

// faultyConn damages the snapshot streams the test's Dial opens: it cuts
// the connection after cutAt bytes, or flips the byte at flipAt.
type faultyConn struct {
	net.Conn
	cutAt, flipAt int
	snapshot      bool
	n             int
}

func faultyDial(cutAt, flipAt int) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := tcpDial(ctx, addr)
		if err != nil {
			return nil, err
		}
		return &faultyConn{Conn: c, cutAt: cutAt, flipAt: flipAt}, nil
	}
}

func (c *faultyConn) Write(b []byte) (int, error) {
	if c.n == 0 && len(b) > 0 {
		c.snapshot = b[0] == kindSnapshot
	}
	if !c.snapshot {
		return c.Conn.Write(b)
	}
	if c.cutAt > 0 && c.n+len(b) > c.cutAt {
		k, _ := c.Conn.Write(b[:c.cutAt-c.n])
		c.n += k
		c.Conn.Close()
		return k, errors.New("cut by the test")
	}
	if c.flipAt > 0 && c.n <= c.flipAt && c.flipAt < c.n+len(b) {
		b = bytes.Clone(b)
		b[c.flipAt-c.n] ^= 0x40
	}
	k, err := c.Conn.Write(b)
	c.n += k
	return k, err
}

// A stream cut in the middle makes the receiver's reader fail (not end
// cleanly), and the sender reports the snapshot failed.
func TestSnapshotCut(t *testing.T) {
	b := startNode(t, 2, "", Config{})
	a := startNode(t, 1, "", Config{Dial: faultyDial(1<<20+1000, 0), Snapshots: &source{data: snapshotData(3 << 20)}})
	a.tr.SetPeer(2, b.addr)
	a.tr.Send([]raftpb.Message{msgSnap(7)})

	a.h.waitFor(t, 10*time.Second, "snapshot report", func() bool { return len(a.h.snaps) == 1 })
	if r := a.h.snapReports(); r[0] != (snapReport{2, false}) {
		t.Fatalf("report %+v", r)
	}
	var err error
	b.h.waitFor(t, 10*time.Second, "receiver's outcome", func() bool {
		if len(b.h.snapErrs) == 1 {
			err = b.h.snapErrs[0]
		}
		return len(b.h.snapErrs) == 1
	})
	if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("receiver's reader returned %v, want ErrTruncated", err)
	}
}

// A corrupted chunk fails the checksum: the receiver's reader fails, and
// the receiver's answer makes the sender report failure.
func TestSnapshotCorrupted(t *testing.T) {
	b := startNode(t, 2, "", Config{})
	a := startNode(t, 1, "", Config{Dial: faultyDial(0, 100_000), Snapshots: &source{data: snapshotData(1 << 20)}})
	a.tr.SetPeer(2, b.addr)
	a.tr.Send([]raftpb.Message{msgSnap(7)})

	a.h.waitFor(t, 10*time.Second, "snapshot report", func() bool { return len(a.h.snaps) == 1 })
	if r := a.h.snapReports(); r[0] != (snapReport{2, false}) {
		t.Fatalf("report %+v", r)
	}
	b.h.mu.Lock()
	defer b.h.mu.Unlock()
	if len(b.h.snapErrs) != 1 || !errors.Is(b.h.snapErrs[0], ErrChecksum) {
		t.Fatalf("receiver's errors %v, want ErrChecksum", b.h.snapErrs)
	}
}

// One snapshot in flight per peer: a second MsgSnap while one is being sent
// is reported failed at once, and the first completes.
func TestSnapshotOneInFlight(t *testing.T) {
	src := &source{data: snapshotData(1 << 20), gateAt: 1000, gate: make(chan struct{})}
	b := startNode(t, 2, "", Config{})
	a := startNode(t, 1, "", Config{Snapshots: src})
	a.tr.SetPeer(2, b.addr)
	a.tr.Send([]raftpb.Message{msgSnap(7)})
	a.tr.Send([]raftpb.Message{msgSnap(8)})
	a.h.waitFor(t, 5*time.Second, "second snapshot refused", func() bool { return len(a.h.snaps) == 1 })
	if r := a.h.snapReports(); r[0] != (snapReport{2, false}) {
		t.Fatalf("report %+v", r)
	}
	close(src.gate)
	a.h.waitFor(t, 10*time.Second, "first snapshot sent", func() bool { return len(a.h.snaps) == 2 })
	if r := a.h.snapReports(); r[1] != (snapReport{2, true}) {
		t.Fatalf("report %+v", r)
	}
	src.mu.Lock()
	opened := src.opened
	src.mu.Unlock()
	if opened != 1 {
		t.Errorf("source opened %d times", opened)
	}
	if d := a.tr.Stats().Peers[0].Dropped; d != 1 {
		t.Errorf("dropped %d, want 1", d)
	}
}

// A Handler that returns nil without reading the data to io.EOF has not
// verified it: the snapshot is answered as failed.
func TestSnapshotNotDrained(t *testing.T) {
	b := startNode(t, 2, "", Config{})
	b.h.receiveSnapshot = func(raftpb.Message, io.Reader) error { return nil }
	a := startNode(t, 1, "", Config{Snapshots: &source{data: snapshotData(1 << 20)}})
	a.tr.SetPeer(2, b.addr)
	a.tr.Send([]raftpb.Message{msgSnap(7)})
	a.h.waitFor(t, 10*time.Second, "snapshot report", func() bool { return len(a.h.snaps) == 1 })
	if r := a.h.snapReports(); r[0] != (snapReport{2, false}) {
		t.Fatalf("report %+v", r)
	}
}

package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/cluster/group"
	"github.com/hatcheck/hatcheck/internal/command"
)

// startCluster starts n nodes: the first bootstraps, the others join it,
// and it waits until all are voters.
func startCluster(t *testing.T, size int, tweak func(*Config)) []*Node {
	t.Helper()
	var nodes []*Node
	for i := 0; i < size; i++ {
		cfg := Config{DataDir: t.TempDir(), PeerAddr: "127.0.0.1:0", NodeID: fmt.Sprintf("n%d", i+1)}
		if i > 0 {
			cfg.Join = []string{nodes[0].PeerAddr()}
		}
		if tweak != nil {
			tweak(&cfg)
		}
		n, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
	}
	waitVoters(t, nodes[0], size)
	return nodes
}

func waitVoters(t *testing.T, n *Node, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ms, err := n.Members(context.Background())
		voters := 0
		for _, m := range ms {
			if m.Voter {
				voters++
			}
		}
		if err == nil && voters == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d voters, have %+v (%v)", want, ms, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestThreeNodesAnyNodeServes(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		w, r := nodes[i%3], nodes[(i+1)%3]
		key := fmt.Sprint("k", i)
		res, err := w.Write(ctx, set(key, fmt.Sprint(i)))
		if err != nil || res.Err != nil {
			t.Fatalf("write via %s: %+v %v", w.ID(), res, err)
		}
		got, err := r.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte(key)})
		if err != nil || string(got.Bulk) != fmt.Sprint(i) {
			t.Fatalf("read via %s after write via %s: %q %v", r.ID(), w.ID(), got.Bulk, err)
		}
	}
	// Conditional results travel back through the forwarder.
	res, err := nodes[1].Write(ctx, command.Tx{{Op: command.OpSet, Flags: command.FlagNX, Key: []byte("k0"), Args: [][]byte{[]byte("x")}}})
	if err != nil || res.Results[0].Kind != command.KindNil {
		t.Fatalf("SET NX of an existing key via a follower: %+v %v", res, err)
	}
	res, err = nodes[2].Write(ctx, command.Tx{{Op: command.OpIncrBy, N: 1, Key: []byte("k0")}, {Op: command.OpHSet, Key: []byte("k0"), Args: [][]byte{[]byte("f"), []byte("v")}}})
	if err != nil || res.Results[0].Int != 1 || res.Results[1].Kind != command.KindError {
		t.Fatalf("transaction via a follower: %+v %v", res, err)
	}
}

func TestLeaderHandsOverOnClose(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	var leader *Node
	for _, n := range nodes {
		if n.IsLeader() {
			leader = n
		}
	}
	if leader == nil {
		t.Fatal("no leader")
	}
	ctx := context.Background()
	if _, err := leader.Write(ctx, set("before", "1")); err != nil {
		t.Fatal(err)
	}
	if err := leader.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n == leader {
			continue
		}
		if _, err := n.Write(ctx, set("after", n.ID())); err != nil {
			t.Fatalf("write via %s after the leader's planned shutdown: %v", n.ID(), err)
		}
		if r, err := n.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte("before")}); err != nil || string(r.Bulk) != "1" {
			t.Fatalf("read via %s: %q %v", n.ID(), r.Bulk, err)
		}
	}
}

// TestPeerPortChecksSecret: a peer connection must present the cluster
// secret; the RPC accept byte comes only after a correct hello.
func TestPeerPortChecksSecret(t *testing.T) {
	n, err := Open(Config{DataDir: t.TempDir(), PeerAddr: "127.0.0.1:0", Secret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	hello := func(secret string) []byte {
		b := []byte{connRPC, 2, 'x', 'y', byte(len(secret))}
		return append(b, secret...)
	}
	for _, tc := range []struct {
		secret string
		ok     bool
	}{{"s3cret", true}, {"wrong", false}, {"", false}} {
		c, err := net.Dial("tcp", n.PeerAddr())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(hello(tc.secret))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var b [1]byte
		_, err = io.ReadFull(c, b[:])
		c.Close()
		if got := err == nil && b[0] == rpcAccepted; got != tc.ok {
			t.Fatalf("secret %q: accepted = %v (%v), want %v", tc.secret, got, err, tc.ok)
		}
	}
	// A node with the wrong secret cannot join.
	other, err := Open(Config{DataDir: t.TempDir(), PeerAddr: "127.0.0.1:0", Secret: "wrong", Join: []string{n.PeerAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.joinOnce(controlRequest{Op: "join", ID: other.ID(), Addr: other.PeerAddr(), Fresh: true}); err == nil {
		t.Fatal("a node with the wrong secret joined")
	}
}

// TestRPCRejectsMalformedRequests: a peer sending garbage gets an error
// reply, and the node keeps serving.
func TestRPCRejectsMalformedRequests(t *testing.T) {
	nodes := startCluster(t, 1, nil)
	n := nodes[0]
	for _, tc := range []struct {
		typ     byte
		payload []byte
	}{
		{rpcWrite, []byte("garbage")},
		{rpcWrite, command.EncodeBatch(nil, command.Header{}, []command.Tx{set("a", "b"), set("c", "d")})},
		{rpcControl, []byte("{not json")},
		{'?', nil},
	} {
		st, body := n.handleRPC(context.Background(), tc.typ, tc.payload)
		if st != rpcError {
			t.Fatalf("type %q: status %d, want an error", tc.typ, st)
		}
		if res, err := command.DecodeTxResult(body); err != nil || res.Err == nil {
			t.Fatalf("type %q: error reply %q does not decode to an error: %v", tc.typ, body, err)
		}
	}
	if _, err := n.Write(context.Background(), set("still", "fine")); err != nil {
		t.Fatal(err)
	}
}

// fakePeer accepts peer RPC connections on loopback and hands each
// request's type to answer, which decides what happens next.
func fakePeer(t *testing.T, accept bool, answer func(c net.Conn, typ byte)) (addr string, requests *int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, _, _, err := readHello(c); err != nil || !accept {
					return
				}
				_, _ = c.Write([]byte{rpcAccepted})
				var hdr [13]byte
				for {
					if _, err := io.ReadFull(c, hdr[:]); err != nil {
						return
					}
					body := make([]byte, binary.BigEndian.Uint32(hdr[:4])-9)
					if _, err := io.ReadFull(c, body); err != nil {
						return
					}
					atomic.AddInt32(&n, 1)
					answer(c, hdr[12])
				}
			}()
		}
	}()
	return ln.Addr().String(), &n
}

// answerRetry is a fake peer's reply to call 1: "retry", this node did
// nothing with it.
func answerRetry(c net.Conn, _ byte) {
	var f [13]byte
	binary.BigEndian.PutUint32(f[:4], 9)
	binary.BigEndian.PutUint64(f[4:12], 1)
	f[12] = rpcRetry
	_, _ = c.Write(f[:])
}

// TestForwardedWriteIsNeverSentTwice: a forwarded write is retried only
// when the peer certainly did nothing with it.
func TestForwardedWriteIsNeverSentTwice(t *testing.T) {
	nodes := startCluster(t, 1, nil)
	n := nodes[0]
	ctx := context.Background()
	tx := set("k", "v")

	// The connection drops after the request arrived: outcome unknown.
	addr, reqs := fakePeer(t, true, func(c net.Conn, _ byte) { c.Close() })
	_, err := n.forwardWrite(ctx, addr, n.leaderChange(), tx)
	if err == nil || errors.Is(err, errRetry) || !errors.Is(err, ErrNoLeader) {
		t.Fatalf("write lost in flight: err = %v, want a no-leader error that is not retried", err)
	}
	if got := atomic.LoadInt32(reqs); got != 1 {
		t.Fatalf("peer saw %d requests, want 1", got)
	}

	// The peer says it does not lead: safe to send elsewhere.
	addr, _ = fakePeer(t, true, answerRetry)
	if _, err := n.forwardWrite(ctx, addr, n.leaderChange(), tx); !errors.Is(err, errRetry) {
		t.Fatalf("peer answered retry: err = %v, want errRetry", err)
	}

	// Something listens but is not a node (no accept byte): never sent.
	addr, reqs = fakePeer(t, false, nil)
	if _, err := n.forwardWrite(ctx, addr, n.leaderChange(), tx); !errors.Is(err, errRetry) {
		t.Fatalf("peer did not accept: err = %v, want errRetry", err)
	}
	if got := atomic.LoadInt32(reqs); got != 0 {
		t.Fatalf("peer that did not accept saw %d requests", got)
	}

}

// A leader skips the quorum round of a read while it is the only voter; it
// caches that answer, and must drop it when a member becomes a voter, or it
// could serve reads while another node leads.
func TestSoleVoterAnswerFollowsMembership(t *testing.T) {
	n1 := startCluster(t, 1, nil)[0]
	ctx := context.Background()
	if _, err := n1.Write(ctx, command.Tx{{Op: command.OpSet, Key: []byte("k"), Args: [][]byte{[]byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	if !n1.soleVoter() {
		t.Fatal("a one-node cluster: soleVoter is false")
	}
	n2, err := Open(Config{DataDir: t.TempDir(), PeerAddr: "127.0.0.1:0", NodeID: "n2", Join: []string{n1.PeerAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n2.Close() })
	waitVoters(t, n1, 2)
	if n1.soleVoter() {
		t.Fatal("n2 is a voter, yet n1 still answers soleVoter from its cache")
	}
	if r, err := n1.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte("k")}); err != nil || string(r.Bulk) != "v" {
		t.Fatalf("read after the join: %+v %v", r, err)
	}
}

// A removed node stops serving and says why, on every path a client or an
// operator meets; restarted with its data and --join, it stays out.
func TestRemovedNodeStopsServing(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	ctx := context.Background()
	victim, other := followerAndOther(nodes)
	if err := other.Remove(ctx, victim.ID()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for victim.Healthy() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the removed node still says it is healthy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(victim.Healthy(), ErrRemoved) || victim.Ready() {
		t.Fatalf("removed node: healthy %v, ready %v", victim.Healthy(), victim.Ready())
	}
	if _, err := victim.Write(ctx, set("k", "v")); !errors.Is(err, ErrRemoved) {
		t.Fatalf("write on a removed node: %v", err)
	}
	if _, err := victim.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte("k")}); !errors.Is(err, ErrRemoved) {
		t.Fatalf("read on a removed node: %v", err)
	}
	if _, err := other.Write(ctx, set("k", "v")); err != nil {
		t.Fatalf("the rest of the cluster: %v", err)
	}
	// Restarted with its data dir and its --join, it is refused, and
	// knows why.
	cfg := victim.cfg
	victim.Close()
	again, err := Open(Config{DataDir: cfg.DataDir, PeerAddr: "127.0.0.1:0", NodeID: cfg.NodeID, Join: []string{other.PeerAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	deadline = time.Now().Add(10 * time.Second)
	for again.Healthy() == nil {
		if time.Now().After(deadline) {
			t.Fatal("a removed node restarted with its data was taken back or not told why")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, m := range other.Servers() {
		if m.ID == cfg.NodeID {
			t.Fatalf("the removed node is a member again: %+v", other.Servers())
		}
	}
}

// settledNode starts a one-node cluster and waits until it leads: its own
// election is a leadership change too, and must be over before a test
// makes one.
func settledNode(t *testing.T) *Node {
	t.Helper()
	n := startCluster(t, 1, nil)[0]
	for deadline := time.Now().Add(10 * time.Second); !n.Ready(); {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return n
}

// A write forwarded to a leader that then stops answering (paused, cut
// off) ends once another leader is elected and the old one has had an
// election timeout to answer: its outcome is unknown, so it fails as
// CLUSTERDOWN and is not sent again. Before, it waited for the client to
// give up.
func TestForwardedWriteEndsWhenLeadershipMoves(t *testing.T) {
	n := settledNode(t)
	addr, reqs := fakePeer(t, true, func(net.Conn, byte) {}) // takes it, never answers
	done := make(chan error, 1)
	go func() {
		_, err := n.forwardWrite(context.Background(), addr, n.leaderChange(), set("k", "v"))
		done <- err
	}()
	endsWhenLeadershipMoves(t, n, done, reqs)
}

// A restarted node rebuilds its member table from its log only as fast as
// the leader lets it commit, and hears from the leader first: the address
// the leader gave in its hello must survive the table's updates until the
// table names it, or the node cannot answer (TestFailoverTime caught it
// waiting out --failover-wait after a restart).
func TestLearnedPeerOutlivesMemberTableUpdates(t *testing.T) {
	n := startCluster(t, 1, nil)[0]
	n.learnPeer("n9", "127.0.0.1:9")
	n.syncPeers(n.group.Members()) // a table that does not name n9 yet
	if addr, ok := n.peerAddr(raftID("n9")); !ok || addr != "127.0.0.1:9" {
		t.Fatalf("learned address after a member table update: %q %v", addr, ok)
	}
	// A member that leaves the table is forgotten.
	n.syncPeers(append(n.group.Members(), group.Member{ID: raftID("n8"), Name: "n8", Addr: "127.0.0.1:8"}))
	if _, ok := n.peerAddr(raftID("n8")); !ok {
		t.Fatal("a member's address is unknown")
	}
	n.syncPeers(n.group.Members())
	if _, ok := n.peerAddr(raftID("n8")); ok {
		t.Fatal("a member that left the table is still known")
	}
}

// A node whose data dir was lost rejoins under its old name: the leader
// removes its former self and adds it anew, and it replays both. It must
// end up serving, not believing itself removed.
func TestRejoinUnderTheSameNameServes(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	ctx := context.Background()
	victim, other := followerAndOther(nodes)
	if _, err := other.Write(ctx, set("before", "loss")); err != nil {
		t.Fatal(err)
	}
	cfg := victim.cfg
	victim.Abort()
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	again, err := Open(Config{DataDir: cfg.DataDir, PeerAddr: "127.0.0.1:0", NodeID: cfg.NodeID, Join: []string{other.PeerAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	waitVoters(t, other, 3)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := again.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte("before")})
		if err == nil && string(r.Bulk) == "loss" && again.Healthy() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rejoined node does not serve: %q %v, healthy: %v", r.Bulk, err, again.Healthy())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// followerAndOther picks a follower and another node.
func followerAndOther(nodes []*Node) (follower, other *Node) {
	for _, n := range nodes {
		if !n.IsLeader() && follower == nil {
			follower = n
		} else if other == nil {
			other = n
		}
	}
	return follower, other
}

// endsWhenLeadershipMoves checks that a forwarded write whose outcome
// arrives on done, held by a peer that never answers (reqs counts what it
// received), waits while nothing changes and ends, as of unknown outcome,
// once leadership moves.
func endsWhenLeadershipMoves(t *testing.T, n *Node, done <-chan error, reqs *int32) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("the forwarded write ended while nothing changed: %v", err)
	case <-time.After(2 * n.cfg.ElectionTimeout):
	}
	n.leaderChanged(0, 0) // another node was elected
	select {
	case err := <-done:
		if !errors.Is(err, ErrNoLeader) || errors.Is(err, errRetry) {
			t.Fatalf("err = %v, want a no-leader error that is not retried", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting for a leader that no longer leads")
	}
	if got := atomic.LoadInt32(reqs); got != 1 {
		t.Fatalf("the peer saw %d requests, want 1", got)
	}
}

// forwardAsyncWait runs forwardAsync to addr and waits for its outcome.
func forwardAsyncWait(t *testing.T, n *Node, addr string, epoch uint64) error {
	t.Helper()
	if _, err := n.peers.get(addr); err != nil {
		t.Fatalf("connecting to the peer: %v", err)
	}
	done := make(chan error, 1)
	if !n.forwardAsync(addr, epoch, set("k", "v"), func(_ command.TxResult, err error) { done <- err }) {
		t.Fatal("forwardAsync did not send over an open connection")
	}
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no outcome")
		return nil
	}
}

// The event loops' forwarding keeps TestForwardedWriteIsNeverSentTwice's
// rules: retried only when the peer certainly did nothing.
func TestAsyncForwardedWriteIsNeverSentTwice(t *testing.T) {
	n := startCluster(t, 1, nil)[0]
	addr, reqs := fakePeer(t, true, func(c net.Conn, _ byte) { c.Close() })
	if err := forwardAsyncWait(t, n, addr, n.leaderEpoch()); err == nil || errors.Is(err, errRetry) || !errors.Is(err, ErrNoLeader) {
		t.Fatalf("write lost in flight: err = %v, want a no-leader error that is not retried", err)
	}
	if got := atomic.LoadInt32(reqs); got != 1 {
		t.Fatalf("peer saw %d requests, want 1", got)
	}
	addr, _ = fakePeer(t, true, answerRetry)
	if err := forwardAsyncWait(t, n, addr, n.leaderEpoch()); !errors.Is(err, errRetry) {
		t.Fatalf("peer answered retry: err = %v, want errRetry", err)
	}
	// No open connection: nothing is sent, the caller takes the path
	// that dials.
	addr, reqs = fakePeer(t, true, nil)
	if n.forwardAsync(addr, n.leaderEpoch(), set("k", "v"), func(command.TxResult, error) { t.Error("called back") }) {
		t.Fatal("forwardAsync sent without an open connection")
	}
	if got := atomic.LoadInt32(reqs); got != 0 {
		t.Fatalf("peer saw %d requests", got)
	}
}

// As TestForwardedWriteEndsWhenLeadershipMoves, for the event loops'
// forwarding; and a change before the write was sent (the epoch it was
// routed in is gone) counts too.
func TestAsyncForwardedWriteEndsWhenLeadershipMoves(t *testing.T) {
	n := settledNode(t)
	addr, reqs := fakePeer(t, true, func(net.Conn, byte) {}) // takes it, never answers
	if _, err := n.peers.get(addr); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if !n.forwardAsync(addr, n.leaderEpoch(), set("k", "v"), func(_ command.TxResult, err error) { done <- err }) {
		t.Fatal("not sent")
	}
	endsWhenLeadershipMoves(t, n, done, reqs)
	stale := n.leaderEpoch()
	n.leaderChanged(0, 0)
	if err := forwardAsyncWait(t, n, addr, stale); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("routed before a change: err = %v, want a no-leader error", err)
	}
}

// MetaCached tells what Meta would answer only when no member must be
// asked: the event loops use it to answer discovery commands inline.
func TestMetaCachedAsksNobody(t *testing.T) {
	nodes := startCluster(t, 2, func(c *Config) { c.Meta = map[string]string{"redis": c.NodeID + ":6379"} })
	a := nodes[0]
	if m, known := a.MetaCached("n1"); !known || m["redis"] != "n1:6379" {
		t.Fatalf("own metadata: %v %v", m, known)
	}
	if _, known := a.MetaCached("n2"); known {
		// Members() in waitVoters may have asked already; then it is cached.
		if m, _ := a.MetaCached("n2"); m["redis"] != "n2:6379" {
			t.Fatalf("n2 known without its metadata: %v", m)
		}
	}
	if m, err := a.Meta(context.Background(), "n2"); err != nil || m["redis"] != "n2:6379" {
		t.Fatalf("Meta: %v %v", m, err)
	}
	if m, known := a.MetaCached("n2"); !known || m["redis"] != "n2:6379" {
		t.Fatalf("after Meta: %v %v", m, known)
	}
	if m, known := a.MetaCached("nobody"); !known || m != nil {
		t.Fatalf("a non-member: %v %v", m, known)
	}
}

// A member restarted with another peer address is told why it cannot
// serve, and how to fix it; restarted with its address, it serves again.
func TestChangedPeerAddrIsExplained(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	victim, other := followerAndOther(nodes)
	cfg := victim.cfg
	oldAddr := victim.PeerAddr()
	victim.Close()
	moved, err := Open(Config{DataDir: cfg.DataDir, PeerAddr: "127.0.0.1:0", NodeID: cfg.NodeID})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !errors.Is(moved.Healthy(), ErrPeerAddrChanged) {
		if time.Now().After(deadline) {
			t.Fatalf("restarted at %s instead of %s: Healthy = %v", moved.PeerAddr(), oldAddr, moved.Healthy())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if msg := moved.Healthy().Error(); !strings.Contains(msg, "--peer-addr (or --peer-advertise) "+oldAddr) {
		t.Fatalf("the error does not say which address to use: %s", msg)
	}
	if _, err := moved.Write(context.Background(), set("k", "v")); !errors.Is(err, ErrPeerAddrChanged) {
		t.Fatalf("write on the moved node: %v", err)
	}
	moved.Close()
	back, err := Open(Config{DataDir: cfg.DataDir, PeerAddr: oldAddr, NodeID: cfg.NodeID})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := other.Write(ctx, set("after", "move")); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := back.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte("after")})
		if err == nil && string(r.Bulk) == "move" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("restarted at its own address, it does not serve: %v %v", r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A cluster of one restarted on another peer address records the new one,
// so that nodes joining later reach it.
func TestSoleNodeRecordsItsNewPeerAddr(t *testing.T) {
	dir := t.TempDir()
	n, err := Open(Config{DataDir: dir, PeerAddr: "127.0.0.1:0", NodeID: "solo"})
	if err != nil {
		t.Fatal(err)
	}
	waitVoters(t, n, 1)
	n.Close()
	n, err = Open(Config{DataDir: dir, PeerAddr: "127.0.0.1:0", NodeID: "solo"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ms := n.Servers()
		if len(ms) == 1 && ms[0].PeerAddr == n.PeerAddr() && n.Healthy() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("configuration %+v, node at %s, healthy: %v", ms, n.PeerAddr(), n.Healthy())
		}
		time.Sleep(10 * time.Millisecond)
	}
	joiner, err := Open(Config{DataDir: t.TempDir(), PeerAddr: "127.0.0.1:0", NodeID: "second", Join: []string{n.PeerAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer joiner.Close()
	waitVoters(t, n, 2)
}

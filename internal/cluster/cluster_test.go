package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

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
			cfg.Join = nodes[0].PeerAddr()
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

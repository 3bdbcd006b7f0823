package memcache_test

import (
	"bufio"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/server"
	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// startCluster starts three nodes, the first leading and the others
// joining it, and returns them leader first once every node knows all
// three. They are stopped as by a crash when the test ends: a graceful
// close of the last node, which hands leadership over to nodes already
// gone, waits for its whole shutdown timeout.
func startCluster(t *testing.T, opts ...func(*servertest.Config)) []*server.Server {
	t.Helper()
	start := func(extra ...func(*servertest.Config)) *server.Server {
		c := servertest.Options(t)
		for _, o := range append(append([]func(*servertest.Config){}, opts...), extra...) {
			o(&c)
		}
		s, err := server.Start(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Abort() })
		return s
	}
	first := start()
	nodes := []*server.Server{first}
	for range 2 {
		nodes = append(nodes, start(func(c *servertest.Config) { c.Join = first.PeerAddr() }))
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		for len(n.Node().Servers()) < 3 || !n.Node().Ready() {
			if time.Now().After(deadline) {
				t.Fatal("the cluster did not form")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nodes
}

// follower is a node of nodes that does not lead.
func follower(t *testing.T, nodes []*server.Server) *server.Server {
	t.Helper()
	for _, n := range nodes {
		if !n.Node().IsLeader() {
			return n
		}
	}
	t.Fatal("no follower")
	return nil
}

// The transcripts with "#! cluster" replayed through a follower of a
// three-node cluster: an mg that wins or creates, md I and ms I run
// through the log from there, and the reads that follow on the follower
// see their result.
func TestTranscriptsThroughFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster per transcript")
	}
	files, _ := filepath.Glob("testdata/transcripts/*.txt")
	keep := func(l string) ([]byte, error) { return []byte(l), nil }
	ran := 0
	for _, path := range files {
		f := transcript.Load(t, path, keep)
		if _, ok := f.Directives["cluster"]; !ok {
			continue
		}
		ran++
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			nodes := startCluster(t, func(c *servertest.Config) { c.MaxItemSize = config.Size(itemSize(t, f)) })
			want := transcript.ReadGolden(t, strings.TrimSuffix(path, ".txt")+".golden")
			transcript.Compare(t, "hatcheck follower", f.Steps, want, play(t, follower(t, nodes).MemcacheAddr(), isBinary(f), f.Steps))
		})
	}
	if ran == 0 {
		t.Fatal("no transcript has the cluster directive")
	}
}

// Two clients on two nodes race "mg key N30" for the same missing keys:
// for each key exactly one is told it won (W), the other that a win was
// sent (Z) — the win is decided by the log, not by each node.
func TestWinIsGivenOnceAcrossNodes(t *testing.T) {
	nodes := startCluster(t)
	const keys = 50
	conns := []*bufio.ReadWriter{}
	for _, n := range []*server.Server{nodes[0], follower(t, nodes)} {
		c := dial(t, n.MemcacheAddr())
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		conns = append(conns, bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c)))
	}
	replies := make([][]string, len(conns))
	var wg sync.WaitGroup
	for i, rw := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				fmt.Fprintf(rw, "mg race%d N30 c\r\n", k)
				if err := rw.Flush(); err != nil {
					t.Error(err)
					return
				}
				line, err := rw.ReadString('\n')
				if err != nil {
					t.Error(err)
					return
				}
				replies[i] = append(replies[i], strings.TrimSpace(line))
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for k := range keys {
		a, b := replies[0][k], replies[1][k]
		wonA, wonB := strings.HasSuffix(a, " W"), strings.HasSuffix(b, " W")
		if wonA == wonB {
			t.Errorf("race%d: %q and %q: want exactly one W", k, a, b)
			continue
		}
		loser := a
		if wonA {
			loser = b
		}
		if !strings.HasSuffix(loser, " Z") {
			t.Errorf("race%d: the loser got %q, want Z", k, loser)
		}
		// Both saw the same item: the stub the winner created.
		if strings.Fields(a)[1] != strings.Fields(b)[1] {
			t.Errorf("race%d: different CAS values %q %q", k, a, b)
		}
	}
}

// Package clustertest runs an N-node hatcheck cluster in one test process:
// real servers (Redis, memcached, HTTP and peer listeners on loopback
// ports chosen at run time), with every peer link going through a
// faultproxy so tests can partition nodes. Nodes can be stopped
// gracefully, killed (no hand-over, no snapshot), restarted with their data
// or with an empty data dir.
package clustertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/faultproxy"
	"github.com/hatcheck/hatcheck/internal/server"
	"github.com/hatcheck/hatcheck/internal/testbin"
)

// Cluster is a running test cluster.
type Cluster struct {
	t     testing.TB
	Net   *faultproxy.Network
	Nodes []*Node
}

// Node is one member. Its ports and directory stay the same across
// restarts.
type Node struct {
	c     *Cluster
	ID    string
	Cfg   config.Config
	proxy *faultproxy.Proxy
	mu    sync.Mutex
	srv   *server.Server
}

func init() { testbin.QuietRedisLogs() }

// Start starts size nodes: the first bootstraps the cluster, the others
// join it; it returns once every node is a voter. opts adjust every node's
// configuration.
func Start(t testing.TB, size int, opts ...func(*config.Config)) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Net: faultproxy.New()}
	t.Cleanup(func() {
		for _, n := range c.Nodes {
			n.Kill()
		}
		c.Net.Close()
	})
	for i := 0; i < size; i++ {
		id := fmt.Sprintf("n%d", i+1)
		p, err := c.Net.Listen(id)
		if err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.NodeID = id
		cfg.DataDir = t.TempDir()
		cfg.RedisAddr = testbin.FreeAddr(t)
		cfg.MemcacheAddr = testbin.FreeAddr(t)
		cfg.HTTPAddr = testbin.FreeAddr(t)
		cfg.PeerAddr = testbin.FreeAddr(t)
		cfg.PeerAdvertise = p.Addr()
		cfg.ShutdownTimeout = 5 * time.Second
		if i > 0 {
			cfg.Join = c.Nodes[0].proxy.Addr()
		}
		for _, o := range opts {
			o(&cfg)
		}
		n := &Node{c: c, ID: id, Cfg: cfg, proxy: p}
		c.Nodes = append(c.Nodes, n)
		n.startFirst()
	}
	c.WaitVoters(size)
	return c
}

// startFirst starts a new node. Its ports were free when chosen, but other
// tests running meanwhile may have taken one since: then it picks new ones
// (a restart keeps its ports, which the tests and the cluster know).
func (n *Node) startFirst() {
	n.c.t.Helper()
	var err error
	for range 5 {
		n.proxy.SetTarget(n.Cfg.PeerAddr)
		var s *server.Server
		if s, err = server.Start(n.Cfg, n.c.logger(n.ID)); err == nil {
			n.mu.Lock()
			n.srv = s
			n.mu.Unlock()
			return
		}
		if !errors.Is(err, syscall.EADDRINUSE) && !strings.Contains(err.Error(), "address already in use") {
			break
		}
		n.Cfg.RedisAddr = testbin.FreeAddr(n.c.t)
		n.Cfg.MemcacheAddr = testbin.FreeAddr(n.c.t)
		n.Cfg.HTTPAddr = testbin.FreeAddr(n.c.t)
		n.Cfg.PeerAddr = testbin.FreeAddr(n.c.t)
	}
	n.c.t.Fatalf("start %s: %v", n.ID, err)
}

// Start starts the node (again) with its configuration.
func (n *Node) Start() {
	n.c.t.Helper()
	var s *server.Server
	var err error
	// A port freed by a killed node may linger briefly; retry a few times.
	for range 50 {
		if s, err = server.Start(n.Cfg, n.c.logger(n.ID)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		n.c.t.Fatalf("start %s: %v", n.ID, err)
	}
	n.mu.Lock()
	n.srv = s
	n.mu.Unlock()
}

// logger returns a logger for node id: discarded, unless HATCHECK_TEST_LOG
// is set (then debug-level text on stderr).
func (c *Cluster) logger(id string) *slog.Logger {
	if os.Getenv("HATCHECK_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test_node", id)
}

// Server is the running server, nil while stopped.
func (n *Node) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

func (n *Node) take() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.srv
	n.srv = nil
	return s
}

// Stop shuts the node down gracefully (a leader hands over first).
func (n *Node) Stop() {
	if s := n.take(); s != nil {
		if err := s.Close(); err != nil {
			n.c.t.Errorf("stop %s: %v", n.ID, err)
		}
	}
}

// Kill stops the node as a crash would.
func (n *Node) Kill() {
	if s := n.take(); s != nil {
		_ = s.Abort()
	}
}

// Wipe deletes the node's data (it must be stopped); the next Start joins
// the cluster as a fresh member with a new id.
func (n *Node) Wipe() {
	n.Cfg.DataDir = n.c.t.TempDir()
	n.Cfg.NodeID = ""
	for _, o := range n.c.Nodes {
		if o != n && o.Server() != nil {
			n.Cfg.Join = o.proxy.Addr()
			break
		}
	}
}

// Client returns a go-redis client for the node's Redis port.
func (n *Node) Client() *goredis.Client {
	// No client retries (a test must see every failure) and a read timeout
	// longer than --failover-wait (requests wait that long for a leader).
	cl := goredis.NewClient(&goredis.Options{Addr: n.Cfg.RedisAddr, MaxRetries: -1, Protocol: 2,
		ReadTimeout: n.Cfg.FailoverWait + 5*time.Second})
	n.c.t.Cleanup(func() { cl.Close() })
	return cl
}

// Leader waits up to 10 s for a node that leads and is ready.
func (c *Cluster) Leader() *Node {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.Nodes {
			if s := n.Server(); s != nil && s.Node().IsLeader() && s.Node().Ready() {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no leader after 10 s")
	return nil
}

// Followers returns the running nodes other than n.
func (c *Cluster) Others(n *Node) []*Node {
	var out []*Node
	for _, o := range c.Nodes {
		if o != n && o.Server() != nil {
			out = append(out, o)
		}
	}
	return out
}

// WaitVoters waits up to 30 s until the leader's configuration has want
// voters and every running node has applied the leader's commit index.
func (c *Cluster) WaitVoters(want int) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c.settled(want) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster did not settle with %d voters", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) settled(want int) bool {
	var leader *server.Server
	for _, n := range c.Nodes {
		if s := n.Server(); s != nil && s.Node().IsLeader() {
			leader = s
		}
	}
	if leader == nil {
		return false
	}
	voters := 0
	for _, m := range leader.Node().Servers() {
		if m.Voter {
			voters++
		}
	}
	if voters != want {
		return false
	}
	commit := leader.Node().Stats().CommitIndex
	for _, n := range c.Nodes {
		if s := n.Server(); s != nil && s.Node().Info().Applied < commit {
			return false
		}
	}
	return true
}

// Ctx returns a context that ends after d.
func Ctx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

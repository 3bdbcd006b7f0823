package clustertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/history"
)

func TestWriteOnAnyNodeReadOnEveryOther(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 30*time.Second)
	for i := 0; i < 30; i++ {
		w := c.Nodes[i%3].Client()
		key, val := fmt.Sprint("sess:", i), fmt.Sprint("v", i)
		if err := w.Set(ctx, key, val, time.Minute).Err(); err != nil {
			t.Fatalf("SET via %s: %v", c.Nodes[i%3].ID, err)
		}
		for _, n := range c.Nodes {
			if got, err := n.Client().Get(ctx, key).Result(); err != nil || got != val {
				t.Fatalf("GET %s via %s right after SET via %s: %q %v", key, n.ID, c.Nodes[i%3].ID, got, err)
			}
		}
	}
	// memcached clients are served by any node too.
	mc := memcacheRoundTrip(t, c.Nodes[1].Cfg.MemcacheAddr, "set mk 5 0 2\r\nhi\r\n")
	if mc != "STORED\r\n" {
		t.Fatalf("memcached set via a follower: %q", mc)
	}
	if got := memcacheRoundTrip(t, c.Nodes[2].Cfg.MemcacheAddr, "get mk\r\n"); got != "VALUE mk 5 2\r\nhi\r\nEND\r\n" {
		t.Fatalf("memcached get via another follower: %q", got)
	}
}

func TestKilledLeaderFailsOver(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	leader := c.Leader()
	other := c.Others(leader)[0].Client()
	if err := other.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	leader.Kill()
	// A write the follower had already sent to the dying leader has an
	// unknown outcome and fails; later ones wait for the new leader.
	var err error
	for tries := 0; tries < 3; tries++ {
		if err = other.Set(ctx, "after", "2", 0).Err(); err == nil {
			break
		}
		t.Logf("write %d after the kill: %v", tries, err)
	}
	if err != nil {
		t.Fatalf("write after the leader was killed: %v", err)
	}
	t.Logf("a write through a follower succeeded %v after the leader was killed", time.Since(start))
	newLeader := c.Leader()
	if newLeader == leader {
		t.Fatal("killed node still leads")
	}
	// The old leader comes back with its data and follows.
	leader.Start()
	c.WaitVoters(3)
	for _, key := range []string{"before", "after"} {
		if got, err := leader.Client().Get(ctx, key).Result(); err != nil || got == "" {
			t.Fatalf("GET %s via the restarted node: %q %v", key, got, err)
		}
	}
}

// TestRejoinHoldsEveryKey restarts a node killed while writes went on, and
// replaces another's data dir with an empty one; both must end up holding
// every acknowledged key themselves (checked by making each the leader).
func TestRejoinHoldsEveryKey(t *testing.T) {
	c := Start(t, 3, func(cfg *config.Config) {
		// Snapshot often and keep a short log, so the wiped node catches up
		// by snapshot install rather than by log replay.
		cfg.SnapshotThreshold = 64
		cfg.SnapshotInterval = 100 * time.Millisecond
	})
	ctx := Ctx(t, 120*time.Second)
	leader := c.Leader()
	followers := c.Others(leader)
	killed, wiped := followers[0], followers[1]
	w := leader.Client()
	write := func(from, to int) {
		for i := from; i < to; i++ {
			if err := w.Set(ctx, fmt.Sprint("k", i), fmt.Sprint(i), 0).Err(); err != nil {
				t.Fatalf("SET k%d: %v", i, err)
			}
		}
	}
	write(0, 200)
	killed.Kill()
	write(200, 600)
	killed.Start()
	// One fault at a time: with the restarted node still catching up, a
	// second node down would leave no quorum.
	c.WaitVoters(3)
	wiped.Kill()
	wiped.Wipe()
	wiped.Start()
	write(600, 800)
	c.WaitVoters(3)
	for _, n := range []*Node{killed, wiped} {
		if err := leader.Server().Node().TransferLeadership(ctx, n.Server().Node().ID()); err != nil {
			t.Fatalf("transfer leadership to %s: %v", n.ID, err)
		}
		if got := c.Leader(); got != n {
			t.Fatalf("leader is %s, want %s", got.ID, n.ID)
		}
		if keys := n.Server().Node().Stats().Keys[0]; keys != 800 {
			t.Fatalf("%s holds %d keys, want 800", n.ID, keys)
		}
		cl := n.Client()
		for i := 0; i < 800; i++ {
			if got, err := cl.Get(ctx, fmt.Sprint("k", i)).Result(); err != nil || got != fmt.Sprint(i) {
				t.Fatalf("%s as leader: GET k%d = %q %v", n.ID, i, got, err)
			}
		}
		leader = n
	}
	// The wiped node came back under a new id; the old one is gone.
	if got := len(leader.Server().Node().Servers()); got != 3 {
		t.Fatalf("configuration has %d servers, want 3: %+v", got, leader.Server().Node().Servers())
	}
}

func TestPlannedLeaderShutdownFailsNoRequest(t *testing.T) {
	c := Start(t, 3)
	leader := c.Leader()
	var clients []*goredis.Client
	for _, n := range c.Others(leader) {
		clients = append(clients, n.Client())
	}
	ctx, cancel := context.WithCancel(context.Background())
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ctx.Err() == nil; seq++ {
				err := cl.Set(context.Background(), fmt.Sprintf("w%d", i), seq, 0).Err()
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				if _, err := cl.Get(context.Background(), fmt.Sprintf("w%d", i)).Result(); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	leader.Stop()
	time.Sleep(500 * time.Millisecond)
	cancel()
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed during a planned leader shutdown (first: %v); %d succeeded", failed.Load(), firstErr.Load(), ok.Load())
	}
	if ok.Load() == 0 {
		t.Fatal("no request ran")
	}
	t.Logf("%d write+read pairs, none failed, across the leader's planned shutdown", ok.Load())
}

func TestIsolatedLeaderIsReplaced(t *testing.T) {
	c := Start(t, 3, func(cfg *config.Config) { cfg.FailoverWait = 2 * time.Second })
	ctx := Ctx(t, 60*time.Second)
	old := c.Leader()
	c.Net.Isolate(old.ID)
	others := c.Others(old)
	if err := others[0].Client().Set(ctx, "during", "1", 0).Err(); err != nil {
		t.Fatalf("write on the majority side: %v", err)
	}
	// The isolated node cannot serve: it fails after --failover-wait rather
	// than answer from a minority.
	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err := old.Client().Get(short, "during").Err()
	if err == nil || !strings.Contains(err.Error(), "CLUSTERDOWN") {
		t.Fatalf("read on the isolated node: %v, want a CLUSTERDOWN error", err)
	}
	c.Net.Heal()
	c.WaitVoters(3)
	if got, err := old.Client().Get(ctx, "during").Result(); err != nil || got != "1" {
		t.Fatalf("after healing, read via the old leader: %q %v", got, err)
	}
}

func TestSentinelDiscovery(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	leader := c.Leader()
	for _, n := range c.Nodes {
		addr, err := n.Client().Do(ctx, "SENTINEL", "get-master-addr-by-name", "hatcheck").StringSlice()
		if err != nil || strings.Join(addr, ":") != leader.Cfg.RedisAddr {
			t.Fatalf("%s: get-master-addr-by-name = %v %v, want %s", n.ID, addr, err, leader.Cfg.RedisAddr)
		}
		sentinels, err := n.Client().Do(ctx, "SENTINEL", "sentinels", "hatcheck").Slice()
		if err != nil || len(sentinels) != 2 {
			t.Fatalf("%s: SENTINEL sentinels = %v %v, want the 2 other nodes", n.ID, sentinels, err)
		}
		role, err := n.Client().Do(ctx, "ROLE").Slice()
		want := "slave"
		if n == leader {
			want = "master"
		}
		if err != nil || role[0] != want {
			t.Fatalf("%s: ROLE = %v %v, want %s", n.ID, role, err, want)
		}
	}
	if got, err := c.Nodes[0].Client().Do(ctx, "SENTINEL", "get-master-addr-by-name", "other").Result(); !errors.Is(err, goredis.Nil) {
		t.Fatalf("unknown service: %v %v, want a null reply", got, err)
	}

	// A subscriber hears +switch-master when leadership moves.
	sub := c.Nodes[0].Client().Subscribe(ctx, "+switch-master")
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	target := c.Others(leader)[0]
	if err := leader.Server().Node().TransferLeadership(ctx, target.ID); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oh, op, _ := strings.Cut(leader.Cfg.RedisAddr, ":")
	nh, np, _ := strings.Cut(target.Cfg.RedisAddr, ":")
	if want := strings.Join([]string{"hatcheck", oh, op, nh, np}, " "); msg.Payload != want {
		t.Fatalf("+switch-master payload %q, want %q", msg.Payload, want)
	}
}

// TestFailoverClientFollowsTheLeader uses go-redis's Sentinel client with
// every node listed as a sentinel, kills the leader and checks that the
// client keeps working against the new one.
func TestFailoverClientFollowsTheLeader(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	var sentinels []string
	for _, n := range c.Nodes {
		sentinels = append(sentinels, n.Cfg.RedisAddr)
	}
	fc := goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: "hatcheck", SentinelAddrs: sentinels, Protocol: 2})
	defer fc.Close()
	if err := fc.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	old := c.Leader()
	old.Kill()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := fc.Set(ctx, "k", "after", 0).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("failover client still failing 15 s after the leader was killed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	newLeader := c.Leader()
	var role []interface{}
	var err error
	for time.Now().Before(deadline) {
		// The client's connection must now be to the new leader itself.
		if role, err = fc.Do(ctx, "ROLE").Slice(); err == nil && role[0] == "master" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || role[0] != "master" {
		t.Fatalf("failover client talks to a %v (%v), want the new leader %s", role, err, newLeader.ID)
	}
	if got, err := fc.Get(ctx, "k").Result(); err != nil || got != "after" {
		t.Fatalf("GET: %q %v", got, err)
	}
}

// TestCheckerCatchesStaleReads shows that the linearizability check can
// fail: with followers answering reads from their own state (a test-only
// setting), a follower cut off from the leader returns an old value after a
// newer one was acknowledged, and porcupine says Illegal.
func TestCheckerCatchesStaleReads(t *testing.T) {
	c := Start(t, 3, func(cfg *config.Config) { cfg.UnsafeStaleReads = true })
	ctx := Ctx(t, 60*time.Second)
	leader := c.Leader()
	stale := c.Others(leader)[0]
	rec := history.NewRecorder()
	do := func(client int, cl *goredis.Client, in history.Input) history.Output {
		return rec.Do(client, in, func() history.Output { return history.Exec(ctx, cl, in) })
	}
	do(0, leader.Client(), history.Input{Kind: history.Set, Key: "sess:1", Value: "old"})
	c.WaitVoters(3) // the follower has applied "old"
	c.Net.Cut(leader.ID, stale.ID)
	do(0, leader.Client(), history.Input{Kind: history.Set, Key: "sess:1", Value: "new"})
	out := do(1, stale.Client(), history.Input{Kind: history.Get, Key: "sess:1"})
	if out.Value != "old" {
		t.Fatalf("the cut-off follower read %+v; the test needs it to be stale", out)
	}
	if res := rec.Check(10 * time.Second); res != porcupine.Illegal {
		t.Fatalf("porcupine verdict %v for a stale read, want Illegal", res)
	}
	// The same history without the stale read is fine.
	ok := history.NewRecorder()
	ok.Do(0, history.Input{Kind: history.Set, Key: "sess:1", Value: "old"}, func() history.Output { return history.Output{} })
	ok.Do(0, history.Input{Kind: history.Set, Key: "sess:1", Value: "new"}, func() history.Output { return history.Output{} })
	ok.Do(1, history.Input{Kind: history.Get, Key: "sess:1"}, func() history.Output { return history.Output{Exists: true, Value: "new"} })
	if res := ok.Check(10 * time.Second); res != porcupine.Ok {
		t.Fatalf("porcupine verdict %v for a linearizable history, want Ok", res)
	}
}

// memcacheRoundTrip sends req to a memcached-protocol address and returns
// the reply (read until the connection has been quiet for a moment).
func memcacheRoundTrip(t *testing.T, addr, req string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	var out []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := conn.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil && len(out) > 0 && (strings.HasSuffix(string(out), "\r\n")) {
			break
		}
	}
	return string(out)
}

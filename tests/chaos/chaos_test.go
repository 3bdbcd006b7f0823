// Package chaos injects faults into a three-node cluster of real hatcheck
// processes while clients on every node run a session-like workload, then
// checks the recorded history for linearizability (porcupine) and counts
// acknowledged writes lost. Peer links go through a proxy the test
// controls (internal/faultproxy), so partitions need no root.
//
// The short version (each fault ~20 s) runs with the other tests. The long
// version is
//
//	HATCHECK_CHAOS_DURATION=2m go test -v -timeout 60m ./tests/chaos
package chaos

import (
	"context"
	binenc "encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/faultproxy"
	"github.com/hatcheck/hatcheck/internal/history"
	"github.com/hatcheck/hatcheck/internal/testbin"
)

var binary string

// The nodes are built without -race: the suite measures failover times.
func TestMain(m *testing.M) {
	testbin.QuietRedisLogs()
	testbin.Main(m, &binary, "../..")
}

// failoverWait is the nodes' --failover-wait: requests wait this long for
// a leader before failing.
const failoverWait = 3 * time.Second

func duration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("HATCHECK_CHAOS_DURATION")); err == nil && d > 0 {
		return d
	}
	return 20 * time.Second
}

type node struct {
	id, dir, log                 string
	redis, http, peer, advertise string
	join                         string
	extra                        []string // more flags
	smallDisk                    bool     // its data dir is a small tmpfs (see smallDisks)
	cmd                          *exec.Cmd
	exited                       chan struct{}
}

type cluster struct {
	t     *testing.T
	net   *faultproxy.Network
	nodes []*node
}

// clusterOption adjusts a node before its first start.
type clusterOption func(t *testing.T, n *node, i int)

// smallDisks puts the followers' data dirs (n2, n3) on a 64 MB tmpfs of
// their own, with small log segments, so that a test can fill the disk. It
// skips the test where mounting is not allowed.
func smallDisks(t *testing.T, n *node, i int) {
	if i == 0 {
		return
	}
	data := filepath.Join(n.dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", data).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs for a full disk (needs root): %v %s", err, out)
	}
	// Lazily: the node's process may still hold files there when this runs.
	t.Cleanup(func() { _ = exec.Command("umount", "-l", data).Run() })
	n.smallDisk = true
	// The smallest segments: a full disk shows at the next new segment,
	// which even a slow workload needs within a second.
	n.extra = append(n.extra, "--log-segment-size", "64kb")
}

func startCluster(t *testing.T, opts ...clusterOption) *cluster {
	t.Helper()
	c := &cluster{t: t, net: faultproxy.New()}
	// Made before the cleanup below is registered, so removed after it ran:
	// a failed run prints the nodes' logs.
	base := t.TempDir()
	t.Cleanup(func() {
		for _, n := range c.nodes {
			c.kill(n)
		}
		c.net.Close()
		if t.Failed() {
			for _, n := range c.nodes {
				b, _ := os.ReadFile(n.log)
				t.Logf("--- %s log (last 4 KB) ---\n%s", n.id, tail(b, 4096))
			}
		}
	})
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("n%d", i+1)
		p, err := c.net.Listen(id)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(base, id)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		n := &node{id: id, dir: dir, log: filepath.Join(dir, "log"), advertise: p.Addr()}
		if i > 0 {
			n.join = c.nodes[0].advertise
		}
		for _, o := range opts {
			o(t, n, i)
		}
		c.nodes = append(c.nodes, n)
		c.startFirst(n, p)
	}
	c.waitHealthy(60 * time.Second)
	return c
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// startFirst starts a new node on ports that were free when chosen. Other
// tests running meanwhile may take one before the node binds it (a client's
// ephemeral port, another test's server): then it starts again on new ones.
// Restarts keep the ports, which the peers know.
func (c *cluster) startFirst(n *node, p *faultproxy.Proxy) {
	c.t.Helper()
	for range 5 {
		n.redis, n.http, n.peer = testbin.FreeAddr(c.t), testbin.FreeAddr(c.t), testbin.FreeAddr(c.t)
		p.SetTarget(n.peer)
		c.start(n)
		if c.listening(n) {
			return
		}
		b, _ := os.ReadFile(n.log)
		if !strings.Contains(string(b), "address already in use") {
			c.t.Fatalf("%s did not start:\n%s", n.id, tail(b, 4096))
		}
		n.cmd = nil
	}
	c.t.Fatalf("%s found no free ports", n.id)
}

// listening waits until n has bound its ports (its start-up banner, printed
// once every listener is open, is in its log: true) or has exited (false).
func (c *cluster) listening(n *node) bool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			return false
		default:
		}
		if b, _ := os.ReadFile(n.log); strings.Contains(string(b), "redis protocol on ") {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true // running but slow: waitHealthy reports it
}

func (c *cluster) start(n *node) {
	c.t.Helper()
	args := []string{"serve", "--node-id", n.id, "--data-dir", filepath.Join(n.dir, "data"),
		"--redis-addr", n.redis, "--memcache-addr", "", "--http-addr", n.http,
		"--peer-addr", n.peer, "--peer-advertise", n.advertise,
		"--failover-wait", failoverWait.String(), "--log-level", "info"}
	if n.join != "" {
		args = append(args, "--join", n.join)
	}
	args = append(args, n.extra...)
	f, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	n.cmd = exec.Command(binary, args...)
	n.cmd.Stdout, n.cmd.Stderr = f, f
	if err := n.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func() {
		_ = n.cmd.Wait()
		f.Close()
		close(n.exited)
	}()
}

func (c *cluster) kill(n *node) {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGCONT) // a paused process must be able to die
	_ = n.cmd.Process.Kill()
	<-n.exited
	n.cmd = nil
}

func (c *cluster) client(n *node) *goredis.Client {
	// No client retries: the history must record what each request saw.
	cl := goredis.NewClient(&goredis.Options{Addr: n.redis, MaxRetries: -1, Protocol: 2,
		DialTimeout: time.Second, ReadTimeout: failoverWait + 5*time.Second, WriteTimeout: 5 * time.Second})
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// role asks n for its ROLE, quickly.
func (c *cluster) role(n *node) string {
	if n.cmd == nil {
		return ""
	}
	cl := goredis.NewClient(&goredis.Options{Addr: n.redis, MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, Protocol: 2})
	defer cl.Close()
	r, err := cl.Do(context.Background(), "ROLE").Slice()
	if err != nil || len(r) == 0 {
		return ""
	}
	s, _ := r[0].(string)
	return s
}

func (c *cluster) leader() *node {
	for _, n := range c.nodes {
		if c.role(n) == "master" {
			return n
		}
	}
	return nil
}

// waitHealthy waits until every node runs, one leads and all are voters.
func (c *cluster) waitHealthy(d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if l := c.leader(); l != nil {
			out, err := exec.Command(binary, "cluster", "--http-addr", l.http, "status").CombinedOutput()
			if err == nil && strings.Count(string(out), " voter ") == 3 && !strings.Contains(string(out), "unreachable") {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatal("cluster not healthy")
}

type fault struct {
	name string
	// inject runs once the workload is going; it returns when the fault
	// is over (healed, resumed or restarted).
	inject func(c *cluster)
}

// faultOptions are the cluster options a fault needs.
var faultOptions = map[string][]clusterOption{"disk-full-follower-5s": {smallDisks}}

var faults = []fault{
	{"kill-leader", func(c *cluster) {
		c.kill(c.leader())
	}},
	{"kill-follower", func(c *cluster) {
		l := c.leader()
		for _, n := range c.nodes {
			if n != l {
				c.kill(n)
				return
			}
		}
	}},
	{"pause-leader-3s", func(c *cluster) {
		l := c.leader()
		_ = l.cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(3 * time.Second)
		_ = l.cmd.Process.Signal(syscall.SIGCONT)
	}},
	{"isolate-leader-5s", func(c *cluster) {
		c.net.Isolate(c.leader().id)
		time.Sleep(5 * time.Second)
		c.net.Heal()
	}},
	{"isolate-follower-5s", func(c *cluster) {
		l := c.leader()
		for _, n := range c.nodes {
			if n != l {
				c.net.Isolate(n.id)
				break
			}
		}
		time.Sleep(5 * time.Second)
		c.net.Heal()
	}},
	{"restart-killed-leader", func(c *cluster) {
		l := c.leader()
		c.kill(l)
		time.Sleep(3 * time.Second)
		c.start(l)
	}},
	{"one-way-leader-out-5s", func(c *cluster) {
		// The leader's messages no longer reach its followers; theirs
		// still reach it.
		l := c.leader()
		for _, n := range c.nodes {
			if n != l {
				c.net.CutOneWay(l.id, n.id)
			}
		}
		time.Sleep(5 * time.Second)
		c.net.Heal()
	}},
	{"disk-full-follower-5s", func(c *cluster) {
		// A follower's disk fills up: its log write fails, it stops
		// acknowledging and serving, and says why; the others go on.
		// Once there is room again it is restarted and catches up.
		l := c.leader()
		for _, n := range c.nodes {
			if n == l || !n.smallDisk {
				continue
			}
			filler := filepath.Join(n.dir, "data", "filler")
			if err := fillDisk(filler); err != nil {
				c.t.Fatal(err)
			}
			full := time.Now()
			for !c.unhealthy(n) && time.Since(full) < 10*time.Second {
				time.Sleep(50 * time.Millisecond)
			}
			if !c.unhealthy(n) {
				c.t.Errorf("%s's disk has been full for 10 s, yet /healthz says ok", n.id)
			}
			time.Sleep(time.Until(full.Add(5 * time.Second)))
			if err := os.Remove(filler); err != nil {
				c.t.Fatal(err)
			}
			c.kill(n)
			c.start(n)
			return
		}
		c.t.Fatal("no follower on a small disk")
	}},
	{"torn-log-tail-follower", func(c *cluster) {
		// A follower dies in the middle of a log write. It must start
		// again, cut the torn write, and catch up.
		l := c.leader()
		for _, n := range c.nodes {
			if n != l {
				c.kill(n)
				if err := tearLogTail(filepath.Join(n.dir, "data", "raft", "log")); err != nil {
					c.t.Fatal(err)
				}
				c.start(n)
				return
			}
		}
	}},
}

// fillDisk writes zeros to path until the filesystem is full.
func fillDisk(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return err
		}
	}
}

// unhealthy reports whether n's /healthz answers anything but 200.
func (c *cluster) unhealthy(n *node) bool {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get("http://" + n.http + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode != http.StatusOK
}

// tearLogTail leaves in the newest log segment what a crash in the middle
// of a write leaves: the start of a batch (an entry frame header and part of
// its data) with no commit frame after it. What earlier writes made durable,
// and the follower acknowledged, stays. Segments are preallocated, so the
// written part ends at the last non-zero byte; frames are 8-byte aligned
// (raft-wal's segment format: type byte, 3 zero bytes, length).
func tearLogTail(dir string) error {
	segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil || len(segs) == 0 {
		return fmt.Errorf("no log segment in %s: %v", dir, err)
	}
	sort.Strings(segs)
	b, err := os.ReadFile(segs[len(segs)-1])
	if err != nil {
		return err
	}
	end := len(b)
	for end > 0 && b[end-1] == 0 {
		end--
	}
	end = (end + 7) &^ 7
	if end < 64 || end+8+200 > len(b) {
		return fmt.Errorf("%s: no room for a torn write after %d bytes", segs[len(segs)-1], end)
	}
	b[end] = 1                                     // an entry frame
	binenc.LittleEndian.PutUint32(b[end+4:], 1000) // of 1000 bytes
	for i := end + 8; i < end+8+200; i++ {         // of which 200 reached the disk
		b[i] = 0xA5
	}
	return os.WriteFile(segs[len(segs)-1], b, 0o600)
}

func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos runs take minutes")
	}
	d := duration()
	var summary []string
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			c := startCluster(t, faultOptions[f.name]...)
			var clients []goredis.UniversalClient
			for _, n := range c.nodes {
				for range 2 {
					clients = append(clients, c.client(n))
				}
			}
			rec := history.NewRecorder()
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			faultAt := make(chan time.Duration, 1)
			go func() {
				time.Sleep(d / 4)
				if c.leader() == nil {
					faultAt <- -1
					return
				}
				faultAt <- rec.Since()
				f.inject(c)
			}()
			// The loss check reads through a node that stays up: the
			// leader may be the one faulted, so ask whichever leads at the end.
			rep := history.Workload{Keys: 5}.Run(ctx, rec, clients, 2*time.Minute)
			at := <-faultAt
			if at < 0 {
				t.Fatal("no leader to inject the fault into")
			}
			for _, n := range c.nodes {
				if n.cmd == nil {
					c.start(n) // bring killed nodes back for the final check
				}
			}
			c.waitHealthy(60 * time.Second)
			rep.CheckLoss(c.client(c.leader()))
			gap := longestWriteGap(rec.Operations(), at)
			line := fmt.Sprintf("%-22s %s; longest gap without a successful write after the fault %v", f.name, rep, gap.Round(time.Millisecond))
			t.Log(line)
			summary = append(summary, line)
			if rep.Verdict != porcupine.Ok {
				t.Errorf("porcupine verdict %v, want Ok (%s)", rep.Verdict, history.Describe(rec.Operations()))
			}
			if rep.Lost != 0 {
				t.Errorf("%d acknowledged writes lost", rep.Lost)
			}
			if rep.OK == 0 {
				t.Error("no operation succeeded")
			}
		})
	}
	t.Log("summary:\n" + strings.Join(summary, "\n"))
}

// longestWriteGap is the longest interval after from in which no write
// succeeded: the time clients could not write (no leader, or waiting out a
// paused one).
func longestWriteGap(ops []porcupine.Operation, from time.Duration) time.Duration {
	var done []int64
	var end int64
	for _, op := range ops {
		out := op.Output.(history.Output)
		if op.Return > end && !out.Unknown {
			end = op.Return
		}
		if op.Input.(history.Input).Kind != history.Get && !out.Unknown && op.Return >= int64(from) {
			done = append(done, op.Return)
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i] < done[j] })
	prev, gap := int64(from), int64(0)
	for _, r := range done {
		gap = max(gap, r-prev)
		prev = r
	}
	return time.Duration(max(gap, end-prev))
}

// TestFailoverTime measures, five times, how long after SIGKILL of the
// leader a write through a follower succeeds again (the client's request
// waits for the new leader; nothing is retried by the client). It reports
// the figures and asserts only that every round recovers.
func TestFailoverTime(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	c := startCluster(t)
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv("HATCHECK_FAILOVER_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	var times []time.Duration
	for round := 0; round < rounds; round++ {
		l := c.leader()
		if l == nil {
			t.Fatal("no leader")
		}
		var f *node
		for _, n := range c.nodes {
			if n != l {
				f = n
				break
			}
		}
		cl := c.client(f)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := cl.Set(ctx, "warm", round, 0).Err(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.kill(l)
		var err error
		for time.Since(start) < 3*failoverWait {
			// A write already in flight to the dying leader fails (its
			// outcome is unknown); the next one waits for the new leader.
			if err = cl.Set(ctx, "probe", round, 0).Err(); err == nil {
				break
			}
		}
		cancel()
		if err != nil {
			t.Fatalf("round %d: no write succeeded: %v", round, err)
		}
		took := time.Since(start)
		times = append(times, took)
		t.Logf("round %d: write through a follower succeeded %v after SIGKILL of the leader", round, took.Round(time.Millisecond))
		c.start(l)
		c.waitHealthy(60 * time.Second)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	t.Logf("failover (SIGKILL of the leader to the next successful write): min %v, median %v, max %v",
		times[0].Round(time.Millisecond), times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
}

package clustertest

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/config"
)

// waitBlockedOn waits until n clients of node run a blocking command
// (CLIENT LIST's cmd= names the command a client runs or ran last).
func waitBlockedOn(t *testing.T, node *Node, n int) {
	t.Helper()
	cl := node.Client()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := cl.ClientList(context.Background()).Result()
		if err == nil && strings.Count(list, "cmd=blpop")+strings.Count(list, "cmd=brpop")+strings.Count(list, "cmd=blmove") >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d clients blocked, want %d: %v %s", node.ID, strings.Count(list, "cmd=b"), n, err, list)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A client blocked on a follower is woken by a push made through any
// other node, and the pop is replicated: every node sees the list without
// the element.
func TestBLPOPOnFollowerWokenByPushElsewhere(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	leader := c.Leader()
	followers := c.Others(leader)
	for i, pusher := range []*Node{followers[1], leader} {
		key := fmt.Sprint("jobs", i)
		got := make(chan []string, 1)
		go func() {
			v, err := followers[0].Client().BLPop(ctx, 0, key).Result()
			if err != nil {
				t.Error(err)
			}
			got <- v
		}()
		waitBlockedOn(t, followers[0], 1)
		if err := pusher.Client().RPush(ctx, key, "a", "b").Err(); err != nil {
			t.Fatal(err)
		}
		select {
		case v := <-got:
			if fmt.Sprint(v) != "["+key+" a]" {
				t.Fatalf("BLPOP on %s after RPUSH on %s: %q", followers[0].ID, pusher.ID, v)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("BLPOP on %s not woken by RPUSH on %s", followers[0].ID, pusher.ID)
		}
		for _, n := range c.Nodes {
			if l, err := n.Client().LRange(ctx, key, 0, -1).Result(); err != nil || fmt.Sprint(l) != "[b]" {
				t.Fatalf("LRANGE via %s: %q %v", n.ID, l, err)
			}
		}
	}
	// A timeout counts on the node where the client waits.
	start := time.Now()
	if _, err := followers[0].Client().BRPop(ctx, 300*time.Millisecond, "empty").Result(); err != goredis.Nil {
		t.Fatalf("BRPOP timeout: %v", err)
	}
	if d := time.Since(start); d < 290*time.Millisecond || d > 5*time.Second {
		t.Fatalf("BRPOP 0.3 answered after %v", d)
	}
}

// consume pops from key through cl until a pop times out after the
// producers are done, sending each element it got to out.
func consume(ctx context.Context, t *testing.T, cl *goredis.Client, key string, done <-chan struct{}, out chan<- string) {
	for {
		v, err := cl.BLPop(ctx, 500*time.Millisecond, key).Result()
		switch {
		case err == goredis.Nil:
			select {
			case <-done:
				return
			default:
			}
		case err != nil:
			// A failover may fail a pop whose outcome is unknown; the
			// element it took, if any, is pushed back.
			t.Logf("BLPOP: %v", err)
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		default:
			out <- v[1]
		}
	}
}

// consumers runs a consumer per client, popping from key until done is
// closed; wait waits for them to stop and returns what they popped.
func consumers(ctx context.Context, t *testing.T, clients []*goredis.Client, key string, done <-chan struct{}) (wait func() []string) {
	out := make(chan string, 10000)
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			consume(ctx, t, cl, key, done, out)
		}()
	}
	return func() []string {
		wg.Wait()
		close(out)
		var popped []string
		for v := range out {
			popped = append(popped, v)
		}
		return popped
	}
}

// pushes records what producers pushed: acknowledged, or of unknown
// outcome (a failover).
type pushes struct {
	mu           sync.Mutex
	acked, maybe map[string]bool
}

func newPushes() *pushes { return &pushes{acked: map[string]bool{}, maybe: map[string]bool{}} }

// produce pushes name-0, name-1 … onto key through cl, n of them or until
// stop is closed, pausing between pushes.
func (p *pushes) produce(ctx context.Context, cl *goredis.Client, key, name string, n int, stop <-chan struct{}, pause time.Duration) {
	for i := 0; i < n; i++ {
		select {
		case <-stop:
			return
		default:
		}
		v := fmt.Sprintf("%s-%d", name, i)
		err := cl.RPush(ctx, key, v).Err()
		p.mu.Lock()
		if err != nil {
			p.maybe[v] = true
		} else {
			p.acked[v] = true
		}
		p.mu.Unlock()
		time.Sleep(pause)
	}
}

// checkExactlyOnce checks that every acknowledged push was popped once or
// is still in the list, and that nothing was popped twice or popped that
// was never pushed.
func checkExactlyOnce(t *testing.T, popped []string, left []string, acked, maybe map[string]bool) {
	t.Helper()
	seen := map[string]int{}
	for _, v := range append(popped, left...) {
		seen[v]++
	}
	for v, n := range seen {
		if n > 1 {
			t.Errorf("%s popped or left %d times", v, n)
		}
		if !acked[v] && !maybe[v] {
			t.Errorf("%s appeared but was never pushed", v)
		}
	}
	for v := range acked {
		if seen[v] == 0 {
			t.Errorf("%s was pushed (acknowledged) and is lost", v)
		}
	}
	t.Logf("%d popped, %d left, %d pushes acknowledged, %d of unknown outcome", len(popped), len(left), len(acked), len(maybe))
}

// Consumers on every node and producers on every node: every element is
// popped exactly once.
func TestBlockingPopsAcrossNodesExactlyOnce(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 90*time.Second)
	const key, perProducer = "queue", 60
	done := make(chan struct{})
	var clients []*goredis.Client
	for i := range 6 {
		clients = append(clients, c.Nodes[i%3].Client())
	}
	waitConsumers := consumers(ctx, t, clients, key, done)
	pushed := newPushes()
	var producers sync.WaitGroup
	for p := range 3 {
		producers.Add(1)
		go func() {
			defer producers.Done()
			pushed.produce(ctx, c.Nodes[p].Client(), key, fmt.Sprint("p", p), perProducer, nil, 0)
		}()
	}
	producers.Wait()
	close(done)
	popped := waitConsumers()
	left, err := c.Leader().Client().LRange(ctx, key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, popped, left, pushed.acked, pushed.maybe)
}

// Clients blocked on followers keep waiting across the leader's death and
// are served by pushes made after it; pushes and pops going on while the
// leader dies lose and duplicate nothing.
func TestBlockedClientsSurviveLeaderKill(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 120*time.Second)
	leader := c.Leader()
	followers := c.Others(leader)
	const key = "failover-queue"

	// Two clients wait on an empty list on the followers.
	waiting := make(chan string, 2)
	for _, f := range followers {
		go func() {
			for {
				v, err := f.Client().BLPop(ctx, 0, key+"-idle").Result()
				if err != nil {
					t.Logf("idle BLPOP on %s: %v", f.ID, err)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				waiting <- v[1]
				return
			}
		}()
	}
	for _, f := range followers {
		waitBlockedOn(t, f, 1)
	}

	// Meanwhile a queue is busy: producers and consumers on the followers.
	done := make(chan struct{})
	var clients []*goredis.Client
	for i := range 4 {
		clients = append(clients, followers[i%2].Client())
	}
	waitConsumers := consumers(ctx, t, clients, key, done)
	pushed := newPushes()
	var producers sync.WaitGroup
	stopProducing := make(chan struct{})
	for p := range 2 {
		producers.Add(1)
		go func() {
			defer producers.Done()
			pushed.produce(ctx, followers[p].Client(), key, fmt.Sprint("p", p), math.MaxInt, stopProducing, 5*time.Millisecond)
		}()
	}
	time.Sleep(500 * time.Millisecond)
	leader.Kill()
	t.Logf("killed the leader %s", leader.ID)
	c.Leader()
	time.Sleep(1500 * time.Millisecond)
	close(stopProducing)
	producers.Wait()

	// The idle waiters survived the failover: a push after it serves both.
	for i := 0; i < 2; {
		err := followers[0].Client().RPush(ctx, key+"-idle", fmt.Sprint("late", i)).Err()
		if err != nil {
			t.Logf("RPUSH after the failover: %v", err)
			continue
		}
		i++
	}
	got := map[string]bool{}
	for range 2 {
		select {
		case v := <-waiting:
			got[v] = true
		case <-time.After(15 * time.Second):
			t.Fatal("a client blocked before the failover was not served after it")
		}
	}
	if !got["late0"] || !got["late1"] {
		t.Fatalf("idle waiters got %v", got)
	}

	close(done)
	popped := waitConsumers()
	// Pushed back elements may arrive after the consumers stopped.
	time.Sleep(500 * time.Millisecond)
	left, err := followers[0].Client().LRange(ctx, key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, popped, left, pushed.acked, pushed.maybe)
}

// A follower cut off while a client waits on it catches up by installing a
// snapshot that holds the push it never applied: the client is served.
func TestWaiterServedAfterSnapshotInstall(t *testing.T) {
	c := Start(t, 3, func(cfg *config.Config) {
		cfg.SnapshotThreshold = 64
		cfg.SnapshotInterval = 100 * time.Millisecond
		cfg.TrailingLogs = 16
	})
	ctx := Ctx(t, 90*time.Second)
	leader := c.Leader()
	f := c.Others(leader)[0]
	got := make(chan []string, 1)
	go func() {
		v, err := f.Client().BLPop(ctx, 0, "snapq").Result()
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	waitBlockedOn(t, f, 1)
	// Its first try (a write that finds the list empty) must be over
	// before the cut, or its retry after the heal would serve it.
	time.Sleep(300 * time.Millisecond)
	restores := f.Server().Node().Stats().Restores
	c.Net.Isolate(f.ID)
	w := leader.Client()
	if err := w.RPush(ctx, "snapq", "held").Err(); err != nil {
		t.Fatal(err)
	}
	// Write until the leader's log no longer holds what f has not applied:
	// a snapshot compacts it, keeping 16 entries behind, after it is saved,
	// so wait for a few snapshots past that point.
	applied := f.Server().Node().Stats().AppliedIndex
	for i := 0; leader.Server().Node().Stats().LastSnapshotIndex <= applied+16+4*64; i++ {
		if i > 20000 {
			t.Fatal("the leader took no snapshot")
		}
		if err := w.Set(ctx, fmt.Sprint("filler", i%500), "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c.Net.Heal()
	select {
	case v := <-got:
		if fmt.Sprint(v) != "[snapq held]" {
			t.Fatalf("BLPOP got %q", v)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the waiting client was not served after its node caught up")
	}
	if st := f.Server().Node().Stats(); st.Restores == restores {
		t.Fatalf("%s caught up without installing a snapshot (applied %d when cut off, %d now; leader's snapshot at %d)",
			f.ID, applied, st.AppliedIndex, leader.Server().Node().Stats().LastSnapshotIndex)
	}
}

package clustertest

import (
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/config"
)

// streamState is everything a stream command reads of key, for comparing
// nodes.
func streamState(t *testing.T, cl *goredis.Client, key string) string {
	t.Helper()
	ctx := Ctx(t, 10*time.Second)
	r, err := cl.XRange(ctx, key, "-", "+").Result()
	info, err2 := cl.Do(ctx, "XINFO", "STREAM", key).Result()
	return fmt.Sprint(r, err, info, err2)
}

// Stream writes sent through a follower of three — XADD with "*" (the ID
// from the leader's clock, applied on every node alike), in a MULTI as
// rq's worker sends it, from a script, XTRIM, XDEL, XSETID — leave the
// same streams, IDs included, and the same accounted memory on every
// node.
func TestStreamsReplicateAlike(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	leader := c.Leader()
	follower := c.Others(leader)[0].Client()
	var ids []string
	for i := range 5 {
		id, err := follower.XAdd(ctx, &goredis.XAddArgs{Stream: "s", Values: []string{"n", fmt.Sprint(i)}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := follower.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.XAdd(ctx, &goredis.XAddArgs{Stream: "rq:results:1", MaxLen: 10, Approx: true, Values: []string{"type", "2", "exc_string", ""}})
		p.Expire(ctx, "rq:results:1", time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := follower.Eval(ctx, `for i = 1, 3 do redis.call('XADD', KEYS[1], '*', 'i', i) end return 1`, []string{"s"}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := follower.XTrimMaxLen(ctx, "s", 6).Err(); err != nil {
		t.Fatal(err)
	}
	if err := follower.XDel(ctx, "s", ids[2]).Err(); err != nil {
		t.Fatal(err)
	}
	if err := follower.Do(ctx, "XSETID", "rq:results:1", "99999999999999-0", "ENTRIESADDED", 5).Err(); err != nil {
		t.Fatal(err)
	}
	if n := follower.XLen(ctx, "s").Val(); n != 5 {
		t.Fatalf("XLEN %d, want 5", n)
	}
	for _, key := range []string{"s", "rq:results:1"} {
		want := streamState(t, leader.Client(), key)
		for _, n := range c.Nodes {
			deadline := time.Now().Add(10 * time.Second)
			got := streamState(t, n.Client(), key)
			for got != want && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				got = streamState(t, n.Client(), key)
			}
			if got != want {
				t.Errorf("%s: %s is %s, on the leader %s", n.ID, key, got, want)
			}
		}
	}
	used := leader.Server().Node().Stats().UsedMemory
	for _, n := range c.Nodes {
		if got := n.Server().Node().Stats().UsedMemory; got != used {
			t.Errorf("%s accounts %d bytes, the leader %d", n.ID, got, used)
		}
	}
}

// XREAD BLOCK on a follower is woken by an XADD sent to another node, and
// reads the entry with the ID that XADD replied.
func TestXReadBlockOnFollower(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	leader := c.Leader()
	others := c.Others(leader)
	waiter, writer := others[0].Client(), others[1].Client()
	if err := writer.XAdd(ctx, &goredis.XAddArgs{Stream: "q", ID: "1-1", Values: []string{"old", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}
	got := make(chan []goredis.XStream, 1)
	errs := make(chan error, 1)
	go func() {
		r, err := waiter.XRead(ctx, &goredis.XReadArgs{Streams: []string{"q", "$"}, Block: 0}).Result()
		errs <- err
		got <- r
	}()
	// Until the waiter is in place, an entry may come before its "$":
	// keep adding until it reads one.
	var sent []string
	for {
		id, err := writer.XAdd(ctx, &goredis.XAddArgs{Stream: "q", Values: []string{"new", "x"}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, id)
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
			r := <-got
			if len(r) != 1 || r[0].Stream != "q" || len(r[0].Messages) == 0 {
				t.Fatalf("XREAD read %v", r)
			}
			first := r[0].Messages[0].ID
			found := false
			for _, id := range sent {
				found = found || id == first
			}
			if !found || first == "1-1" {
				t.Fatalf("XREAD read %s, not one of the IDs added after it started (%v)", first, sent)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// A follower that was down while streams were written, and whose log
// position the leader compacted away, catches up by installing a snapshot
// that carries the streams.
func TestStreamsInSnapshot(t *testing.T) {
	c := Start(t, 3, func(cfg *config.Config) {
		cfg.SnapshotThreshold = 64
		cfg.SnapshotInterval = 200 * time.Millisecond
		cfg.TrailingLogs = 32
		cfg.LogSegmentSize = 256 << 10
	})
	ctx := Ctx(t, 2*time.Minute)
	leader := c.Leader()
	lagging := c.Others(leader)[0]
	lagging.Kill()
	killedAt := leader.Server().Node().Stats().CommitIndex
	cl := c.Others(lagging)[1].Client()
	for i := range 20 {
		if err := cl.XAdd(ctx, &goredis.XAddArgs{Stream: "st", MaxLen: 15, Values: []string{"i", fmt.Sprint(i)}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.XDel(ctx, "st", cl.XRange(ctx, "st", "-", "+").Val()[3].ID).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cl.Do(ctx, "XSETID", "empty", "5-5").Err(); err == nil {
		t.Fatal("XSETID of a missing key succeeded")
	}
	if err := cl.XAdd(ctx, &goredis.XAddArgs{Stream: "empty", ID: "7-7", Values: []string{"a", "b"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cl.XDel(ctx, "empty", "7-7").Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if err := cl.Set(ctx, fmt.Sprint("k", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for st := leader.Server().Node().Stats(); st.LastSnapshotIndex <= killedAt+c.Nodes[0].Cfg.TrailingLogs+60; st = leader.Server().Node().Stats() {
		if ctx.Err() != nil {
			t.Fatal("the leader did not snapshot past the stopped node")
		}
		time.Sleep(50 * time.Millisecond)
	}
	lagging.Start()
	restores := lagging.Server().Node().Stats().Restores
	want := streamState(t, leader.Client(), "st") + streamState(t, leader.Client(), "empty")
	deadline := time.Now().Add(time.Minute)
	for lagging.Server().Node().Stats().Keys[0] != 302 {
		if time.Now().After(deadline) {
			t.Fatalf("the follower holds %d keys, want 302", lagging.Server().Node().Stats().Keys[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := streamState(t, lagging.Client(), "st") + streamState(t, lagging.Client(), "empty"); got != want {
		t.Fatalf("after catching up: %s, the leader %s", got, want)
	}
	if lagging.Server().Node().Stats().Restores <= restores {
		t.Fatal("the follower caught up without installing a snapshot")
	}
}

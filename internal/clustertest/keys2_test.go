package clustertest

import (
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// RESTORE sent through a follower of three (a payload DUMP gave on
// another node) leaves the same value, expiry and accounted memory on
// every node; a corrupt payload is refused before the log.
func TestRestoreReplicates(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	leader := c.Leader()
	follower := c.Others(leader)[0].Client()
	other := c.Others(leader)[1].Client()
	if err := follower.RPush(ctx, "l", "a", "b", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := follower.HSet(ctx, "h", "f", "v").Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"l", "h"} {
		p, err := other.Dump(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if err := follower.Restore(ctx, k+"2", time.Hour, p).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := follower.Restore(ctx, "bad", 0, "garbage").Err(); err == nil || err.Error() != "ERR DUMP payload version or checksum are wrong" {
		t.Fatalf("a corrupt payload: %v", err)
	}
	read := func(n *Node) string {
		cl := n.Client()
		return fmt.Sprint(cl.LRange(ctx, "l2", 0, -1).Val(), cl.HGetAll(ctx, "h2").Val(),
			cl.PExpireTime(ctx, "l2").Val() > 0, cl.Exists(ctx, "bad").Val())
	}
	want := "[a b 1] map[f:v] true 0"
	everyNodeReads(t, c, read, want)
	sameMemory(t, c, leader)
}

// everyNodeReads waits until read gives want on every node (each applies
// the log in its own time), and reports the nodes where it never does.
func everyNodeReads(t *testing.T, c *Cluster, read func(*Node) string, want string) {
	t.Helper()
	for _, n := range c.Nodes {
		deadline := time.Now().Add(10 * time.Second)
		for read(n) != want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := read(n); got != want {
			t.Errorf("%s: %s, want %s", n.ID, got, want)
		}
	}
}

// sameMemory checks that every node accounts the memory the leader does.
func sameMemory(t *testing.T, c *Cluster, leader *Node) {
	t.Helper()
	used := func(n *Node) string { return fmt.Sprint(n.Server().Node().Stats().UsedMemory, " bytes") }
	everyNodeReads(t, c, used, used(leader))
}

// SORT … STORE sent through a follower (BY and GET reading keys it does
// not declare, ties among them) stores the same list on every node; SORT
// without STORE reads on the follower.
func TestSortStoreReplicates(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	leader := c.Leader()
	follower := c.Others(leader)[0].Client()
	steps := [][]any{
		{"RPUSH", "ids", 4, 3, 2, 1, 5},
		{"MSET", "w_1", 3, "w_2", 1, "w_3", 1, "w_4", 2, "n_1", "one", "n_2", "two", "n_4", "four"},
		{"SADD", "s", "b", "c", "a"},
		{"SORT", "ids", "BY", "w_*", "GET", "#", "GET", "n_*", "STORE", "dst"},
		{"SORT", "s", "BY", "nosort", "STORE", "dst2"},
		{"SORT", "ids", "BY", "w_*", "ALPHA", "DESC", "STORE", "dst3"},
	}
	for _, s := range steps {
		if err := follower.Do(ctx, s...).Err(); err != nil {
			t.Fatalf("%v: %v", s, err)
		}
	}
	if got, err := follower.Do(ctx, "SORT", "ids", "BY", "w_*", "LIMIT", 0, 2).StringSlice(); err != nil || fmt.Sprint(got) != "[5 2]" {
		t.Fatalf("SORT on the follower: %v %v", got, err)
	}
	read := func(n *Node) string {
		cl := n.Client()
		return fmt.Sprint(cl.LRange(ctx, "dst", 0, -1).Val(), cl.LRange(ctx, "dst2", 0, -1).Val(), cl.LRange(ctx, "dst3", 0, -1).Val())
	}
	want := "[5  2 two 3  4 four 1 one] [a b c] [1 4 3 2 5]" // as redis-server 7.0 stores them
	everyNodeReads(t, c, read, want)
	sameMemory(t, c, leader)
}

// SWAPDB sent through a follower swaps the databases on every node.
func TestSwapDBReplicates(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	leader := c.Leader()
	follower := c.Others(leader)[0].Client()
	for _, s := range [][]any{{"SET", "a", "zero"}, {"SELECT", 0}, {"SWAPDB", 0, 4}, {"SET", "b", "new"}} {
		if err := follower.Do(ctx, s...).Err(); err != nil {
			t.Fatalf("%v: %v", s, err)
		}
	}
	read := func(n *Node) string {
		cl := n.Client()
		opts := *cl.Options()
		opts.DB = 4
		db4 := goredis.NewClient(&opts)
		defer db4.Close()
		return fmt.Sprintln(cl.Exists(ctx, "a").Val(), cl.Get(ctx, "b").Val(), db4.Get(ctx, "a").Val())
	}
	want := "0 new zero\n"
	everyNodeReads(t, c, read, want)
}

// WAIT counts the voters other than the leader that applied the writes
// acknowledged before it: both of a three-node cluster's, asked on the
// leader or on a follower (which counts itself); with one follower
// stopped, WAIT 2 gives up after its timeout with 1.
func TestWaitCountsReplicas(t *testing.T) {
	c := Start(t, 3)
	ctx := Ctx(t, 60*time.Second)
	leader := c.Leader()
	others := c.Others(leader)
	lc, fc := leader.Client(), others[0].Client()
	wait := func(cl *goredis.Client, want int, timeout time.Duration) int64 {
		t.Helper()
		n, err := cl.Wait(ctx, want, timeout).Result()
		if err != nil {
			t.Fatalf("WAIT: %v", err)
		}
		return n
	}
	if err := lc.Set(ctx, "k", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := wait(lc, 2, 0); n != 2 {
		t.Fatalf("WAIT 2 0 on the leader: %d", n)
	}
	if err := fc.Set(ctx, "k", "2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := wait(fc, 2, 0); n != 2 {
		t.Fatalf("WAIT 2 0 on a follower: %d", n)
	}
	others[1].Stop()
	if err := lc.Set(ctx, "k", "3", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := wait(lc, 2, 100*time.Millisecond); n != 1 {
		t.Fatalf("WAIT 2 100 with a follower stopped, on the leader: %d", n)
	}
	if n := wait(fc, 2, 100*time.Millisecond); n != 1 {
		t.Fatalf("WAIT 2 100 with a follower stopped, on the other follower: %d", n)
	}
	if n := wait(fc, 1, 0); n != 1 {
		t.Fatalf("WAIT 1 0: %d", n)
	}
}

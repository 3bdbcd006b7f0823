package clustertest

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/config"
)

// The memcached meta commands sent to a follower: every change is a log
// entry, so every node answers the same right after the follower replied.
func TestMetaCommandsThroughAFollower(t *testing.T) {
	c := Start(t, 3)
	follower := c.Others(c.Leader())[0].Cfg.MemcacheAddr
	expect := func(addr, req string, want *regexp.Regexp) string {
		t.Helper()
		got := memcacheRoundTrip(t, addr, req)
		if !want.MatchString(got) {
			t.Fatalf("%q via %s: %q, want %s", req, addr, got, want)
		}
		return got
	}
	everyNode := func(req string, want *regexp.Regexp) {
		t.Helper()
		for _, n := range c.Nodes {
			expect(n.Cfg.MemcacheAddr, req, want)
		}
	}

	expect(follower, "ms s 5 T60 F3 c\r\nhello\r\n", regexp.MustCompile(`^HD c[1-9][0-9]*\r\n$`))
	everyNode("mg s v f t k\r\n", regexp.MustCompile(`^VA 5 f3 t(59|60) ks\r\nhello\r\n$`))
	expect(follower, "ms s 1 MA\r\n!\r\n", regexp.MustCompile(`^HD\r\n$`))
	everyNode("mg s v\r\n", regexp.MustCompile(`^VA 6\r\nhello!\r\n$`))

	// mg with T touches through the log.
	expect(follower, "mg s T0 t\r\n", regexp.MustCompile(`^HD t-1\r\n$`))
	everyNode("mg s t\r\n", regexp.MustCompile(`^HD t-1\r\n$`))

	expect(follower, "ma n N0 J10 v\r\n", regexp.MustCompile(`^VA 2\r\n10\r\n$`))
	expect(follower, "ma n D5 v\r\n", regexp.MustCompile(`^VA 2\r\n15\r\n$`))
	everyNode("mg n v\r\n", regexp.MustCompile(`^VA 2\r\n15\r\n$`))

	// A CAS read on one follower deletes on another.
	cas := strings.TrimSuffix(strings.TrimPrefix(expect(follower, "mg n c\r\n", regexp.MustCompile(`^HD c[0-9]+\r\n$`)), "HD c"), "\r\n")
	other := c.Others(c.Leader())[1].Cfg.MemcacheAddr
	expect(other, "md n C1\r\n", regexp.MustCompile(`^EX\r\n$`))
	expect(other, "md n C"+cas+" q\r\nmn\r\n", regexp.MustCompile(`^MN\r\n$`))
	everyNode("mg n v\r\n", regexp.MustCompile(`^EN\r\n$`))
}

// The stale and win-sent bits are replicated state: set through a
// follower, every node answers the same Z and X; a node that catches up by
// installing a snapshot has them too.
func TestMetaStaleBitsReplicatedAndSnapshotted(t *testing.T) {
	c := Start(t, 3, func(cfg *config.Config) {
		// Compact often and keep the log short, so that a node that was
		// down catches up by snapshot (as TestSnapshotCatchUp).
		cfg.SnapshotThreshold = 128
		cfg.SnapshotInterval = 200 * time.Millisecond
		cfg.TrailingLogs = 64
		cfg.LogSegmentSize = 256 << 10
	})
	ctx := Ctx(t, 5*time.Minute)
	expect := func(n *Node, req, want string) {
		t.Helper()
		if got := memcacheRoundTrip(t, n.Cfg.MemcacheAddr, req); !regexp.MustCompile(want).MatchString(got) {
			t.Fatalf("%q via %s: %q, want %s", req, n.ID, got, want)
		}
	}
	leader := c.Leader()
	follower, lagging := c.Others(leader)[0], c.Others(leader)[1]
	expect(follower, "ms k 2 T1000\r\nhi\r\n", `^HD\r\n$`)
	expect(follower, "md k I\r\n", `^HD\r\n$`)
	expect(leader, "mg k v\r\n", `^VA 2 X W\r\nhi\r\n$`)
	expect(follower, "mg n N1000\r\n", `^HD W\r\n$`)
	for _, n := range c.Nodes {
		expect(n, "mg k\r\n", `^HD Z X\r\n$`)
		expect(n, "mg n\r\n", `^HD Z\r\n$`)
	}

	lagging.Kill()
	killedAt := leader.Server().Node().Stats().CommitIndex
	cl := follower.Client()
	const pad = 400
	for i := range pad {
		if err := cl.Set(ctx, fmt.Sprintf("pad:%d", i), "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for st := leader.Server().Node().Stats(); st.LastSnapshotIndex <= killedAt+c.Nodes[0].Cfg.TrailingLogs; st = leader.Server().Node().Stats() {
		if ctx.Err() != nil {
			t.Fatal("leader did not snapshot past the lagging node")
		}
		time.Sleep(50 * time.Millisecond)
	}
	lagging.Start()
	restoresAtStart := lagging.Server().Node().Stats().Restores
	for st := lagging.Server().Node().Stats(); st.Keys[0] != pad+2; st = lagging.Server().Node().Stats() {
		if ctx.Err() != nil {
			t.Fatalf("the restarted node holds %d keys, want %d", st.Keys[0], pad+2)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if lagging.Server().Node().Stats().Restores <= restoresAtStart {
		t.Fatal("the node caught up without installing a snapshot; the test must exercise it")
	}
	expect(lagging, "mg k v\r\n", `^VA 2 Z X\r\nhi\r\n$`)
	expect(lagging, "mg n\r\n", `^HD Z\r\n$`)
}

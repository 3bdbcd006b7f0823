package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestEventRingKeepsTheLatest(t *testing.T) {
	l := eventLog{node: "n1"}
	l.add(EventLeader, "elected")
	for i := range maxSlowEvents + 7 {
		l.add(EventSlow, fmt.Sprint(i))
	}
	got := l.list()
	// Slow commands have a ring of their own: they do not push the
	// election out.
	if len(got) != maxSlowEvents+1 || got[0].Text != "elected" || got[1].Text != "7" || got[len(got)-1].Text != fmt.Sprint(maxSlowEvents+6) {
		t.Fatalf("%d events: %+v", len(got), got)
	}
	if got[0].Node != "n1" || got[0].Time.IsZero() {
		t.Fatalf("event not stamped: %+v", got[0])
	}
	for i := range maxEvents + 3 {
		l.add(EventPeer, fmt.Sprint("peer ", i))
	}
	got = l.list()
	if len(got) != maxEvents+maxSlowEvents || got[0].Kind != EventSlow {
		t.Fatalf("%d events, first %+v", len(got), got[0])
	}
	for i := 1; i < len(got); i++ {
		if got[i].Time.Before(got[i-1].Time) {
			t.Fatalf("not in time order at %d: %+v", i, got)
		}
	}
}

// hasEvent reports whether n recorded an event of kind whose text holds
// every one of words.
func hasEvent(n *Node, kind string, words ...string) bool {
next:
	for _, e := range n.Events() {
		if e.Kind != kind {
			continue
		}
		for _, w := range words {
			if !strings.Contains(e.Text, w) {
				continue next
			}
		}
		return true
	}
	return false
}

func waitEvent(t *testing.T, n *Node, kind string, words ...string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !hasEvent(n, kind, words...); {
		if time.Now().After(deadline) {
			t.Fatalf("%s recorded no %s event with %q; it has %+v", n.ID(), kind, words, n.Events())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The first node records its start, its election, the others' joins and
// promotions, a snapshot and a peer lost; MembersWithEvents shows a member
// that does not answer with its error, the others with their figures and
// events.
func TestEventsAndMembersWithEvents(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	n1 := nodes[0]
	n1.SetLoad(func() Load { return Load{OpsPerSec: 12, Clients: 3} })
	waitEvent(t, n1, EventStart, "n1 started a new cluster")
	waitEvent(t, n1, EventLeader, "n1 is the leader")
	for _, id := range []string{"n2", "n3"} {
		waitEvent(t, n1, EventMember, id, "added as a learner")
		waitEvent(t, n1, EventMember, id, "promoted to voter")
		waitEvent(t, n1, EventPeer, "connected to "+id)
	}
	if hasEvent(nodes[2], EventMember, "n1") {
		t.Errorf("n3 recorded the cluster's history before it joined as news: %+v", nodes[2].Events())
	}
	if _, err := n1.group.Snapshot(); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, n1, EventSnapshot, "took a snapshot")

	if err := nodes[2].Abort(); err != nil {
		t.Fatal(err)
	}
	if !n1.IsLeader() {
		t.Skip("leadership moved; the rest of the test needs n1 to lead")
	}
	waitEvent(t, n1, EventPeer, "lost connection to n3")

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ms := nodes[1].MembersWithEvents(ctx)
	if len(ms) != 3 {
		t.Fatalf("members: %+v", ms)
	}
	for _, m := range ms[:2] {
		if m.Info == nil || m.Info.Health != "ok" || m.Info.Commit == 0 || m.Info.Started.IsZero() || len(m.Info.Events) == 0 {
			t.Fatalf("%s: %+v", m.ID, m.Info)
		}
	}
	if l := ms[0].Info.Load; l == nil || l.OpsPerSec != 12 || l.Clients != 3 {
		t.Errorf("n1's load: %+v", l)
	}
	if ms[1].Info.Load != nil {
		t.Errorf("n2 has no load source, but says %+v", ms[1].Info.Load)
	}
	if ms[2].ID != "n3" || ms[2].Info != nil || ms[2].Error == "" {
		t.Fatalf("the stopped member: %+v", ms[2])
	}
	// Members, for GET /cluster, does not carry events.
	plain, _ := nodes[1].Members(ctx)
	if plain[0].Info == nil || plain[0].Info.Events != nil {
		t.Fatalf("Members: %+v", plain[0].Info)
	}
}

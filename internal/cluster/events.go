package cluster

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// Event is something that happened, as one node saw it: what the
// dashboard lists under "recent events". Events are for people, not
// programs: the text may change between releases.
type Event struct {
	Time time.Time `json:"time"`
	Node string    `json:"node"` // the node that recorded it
	Kind string    `json:"kind"` // one of the Event* kinds
	Text string    `json:"text"`
}

// The kinds of events. Leader changes and membership changes are seen
// alike by every node (they come from the log or from the leader), so a
// view that merges several nodes' events takes them from one node only
// (ClusterWide); the others are this node's own.
const (
	EventStart    = "start"    // this node started
	EventLeader   = "leader"   // a leader was elected, or the leader was lost
	EventMember   = "member"   // a member was added, promoted, moved or removed
	EventPeer     = "peer"     // the Raft stream to a peer went down or came back
	EventSnapshot = "snapshot" // a snapshot was taken, or received from the leader
	EventSlow     = "slow"     // a client command took longer than the slow threshold
)

// ClusterWide reports whether every node records events of this kind
// alike.
func ClusterWide(kind string) bool { return kind == EventLeader || kind == EventMember }

// maxEvents bounds the events a node keeps: enough for a page that shows
// the last few minutes of a troubled cluster, small enough to send in
// every info reply that asks for them. Slow-command reports have a ring
// of their own, maxSlowEvents long, so that a node slow for a long while
// does not push its elections and membership changes out.
const (
	maxEvents     = 100
	maxSlowEvents = 20
)

// eventLog holds a node's recent events. Any goroutine may record;
// recording never blocks for more than a copy.
type eventLog struct {
	mu   sync.Mutex
	node string
	main ring
	slow ring
}

// ring keeps the last max events.
type ring struct {
	buf  []Event // next is the oldest once it is full
	next int
}

func (r *ring) add(e Event, max int) {
	if len(r.buf) < max {
		r.buf = append(r.buf, e)
		return
	}
	r.buf[r.next] = e
	r.next = (r.next + 1) % max
}

// list appends the events to out, oldest first.
func (r *ring) list(out []Event) []Event {
	return append(append(out, r.buf[r.next:]...), r.buf[:r.next]...)
}

func (l *eventLog) add(kind, text string) {
	e := Event{Time: time.Now(), Node: l.node, Kind: kind, Text: text}
	l.mu.Lock()
	defer l.mu.Unlock()
	if kind == EventSlow {
		l.slow.add(e, maxSlowEvents)
		return
	}
	l.main.add(e, maxEvents)
}

// list returns the events, oldest first.
func (l *eventLog) list() []Event {
	l.mu.Lock()
	out := l.main.list(make([]Event, 0, len(l.main.buf)+len(l.slow.buf)))
	out = l.slow.list(out)
	l.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// RecordEvent adds an event of kind (one of the Event* kinds) to this
// node's recent events. The cluster records its own; the server records
// what the front ends see (EventSlow).
func (n *Node) RecordEvent(kind, text string) { n.events.add(kind, text) }

// Events returns this node's recent events, oldest first.
func (n *Node) Events() []Event { return n.events.list() }

// recordf records an event with a formatted text.
func (n *Node) recordf(kind, format string, args ...any) {
	n.events.add(kind, fmt.Sprintf(format, args...))
}

// memberEvents records what changed between two member tables: who was
// added (as a learner or a voter), promoted, moved or removed.
func (n *Node) memberEvents(before, after map[uint64]memberState) {
	for id, m := range after {
		old, ok := before[id]
		switch {
		case !ok && m.learner:
			n.recordf(EventMember, "%s added as a learner (%s)", m.name, m.addr)
		case !ok:
			n.recordf(EventMember, "%s added as a voter (%s)", m.name, m.addr)
		case old.learner && !m.learner:
			n.recordf(EventMember, "%s promoted to voter", m.name)
		case old.addr != m.addr:
			n.recordf(EventMember, "%s moved from %s to %s", m.name, old.addr, m.addr)
		}
	}
	for id, m := range before {
		if _, ok := after[id]; !ok {
			n.recordf(EventMember, "%s removed", m.name)
		}
	}
}

// memberState is what memberEvents compares of a member.
type memberState struct {
	name, addr string
	learner    bool
}

// peerConnection is the transport's OnConnection.
func (n *Node) peerConnection(id uint64, up bool, err error) {
	// A joining node hears from the leader before its member table names
	// it: then the name comes from the peer's hello.
	n.peersMu.Lock()
	p, ok := n.knownPeers[id]
	n.peersMu.Unlock()
	name := p.name
	if !ok || name == "" {
		name = fmt.Sprintf("%x", id)
	}
	if up {
		n.recordf(EventPeer, "connected to %s", name)
		return
	}
	n.recordf(EventPeer, "lost connection to %s: %v", name, err)
}

// snapshotEvent is the group's OnSnapshot.
func (n *Node) snapshotEvent(index, term uint64, fromLeader bool) {
	if fromLeader {
		n.recordf(EventSnapshot, "installed a snapshot from the leader at index %d (term %d)", index, term)
		return
	}
	n.recordf(EventSnapshot, "took a snapshot at index %d", index)
}

// leaderEvent records a leadership change that runLeaderObserver saw.
func (n *Node) leaderEvent(id string) {
	_, term := n.group.Leader()
	if id == "" {
		n.recordf(EventLeader, "no leader (term %d)", term)
		return
	}
	n.recordf(EventLeader, "%s is the leader (term %d)", id, term)
}

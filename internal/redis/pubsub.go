package redis

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/keyspace"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// Pub/sub. PUBLISH is a log command: every node applies it and hands the
// message to its own subscribers, so a message published on any node
// reaches subscribers on every node, once. Keyspace notifications travel
// the same way (each node notifies when it applies the change). The apply
// path never waits for a subscriber: messages go to a queue that one
// goroutine per node drains, pushing each message to its subscribers'
// connections (netserve.Link.Push: queued on the subscriber's event loop,
// after the replies written before it); a subscriber that does not read
// is disconnected once netserve.PushLimit bytes wait for it.

type hub struct {
	mu       sync.Mutex
	subs     map[string]map[*conn]struct{}
	patterns map[string]map[*conn]struct{}

	startOnce sync.Once
	queue     chan pubMsg
	stop      chan struct{}
	done      chan struct{}
	dropped   atomic.Uint64 // messages lost because the queue was full
	out       *atomic.Int64 // the server's count of bytes written to clients
}

type pubMsg struct{ channel, message string }

// pubQueueLen bounds messages waiting for delivery on one node.
const pubQueueLen = 1 << 16

var _ keyspace.Events = (*Server)(nil)

// Publish delivers message to this node's subscribers of channel (and of
// matching patterns) and returns how many there are. It never blocks: the
// log's apply path calls it.
func (s *Server) Publish(channel, message []byte) int64 {
	return int64(s.PublishLocal(string(channel), string(message)))
}

// Notify publishes a keyspace notification, as configured by
// notify-keyspace-events.
func (s *Server) Notify(db int, class keyspace.EventClass, event, key string) {
	if s.blocking.n.Load() > 0 {
		s.blocking.signal(db, key)
	}
	if s.xreads.n.Load() > 0 {
		s.xreads.signal(db, key)
	}
	// Every event is a change of key: tracking connections hear of it.
	s.track.keyChanged(key)
	flags := int(s.notify.Load())
	if flags == 0 || flags&classFlag[class] == 0 {
		return
	}
	d := strconv.Itoa(db)
	if flags&notifyKeyspace != 0 {
		s.hub.enqueue(pubMsg{"__keyspace@" + d + "__:" + key, event})
	}
	if flags&notifyKeyevent != 0 {
		s.hub.enqueue(pubMsg{"__keyevent@" + d + "__:" + event, key})
	}
}

var _ keyspace.FlushEvents = (*Server)(nil)

// Flushed tells tracking connections to drop every key they cache.
func (s *Server) Flushed(int) { s.track.flushed() }

var _ keyspace.ApplyEvents = (*Server)(nil)

// Applied delivers the invalidations of the log entry just applied.
func (s *Server) Applied(uint64) { s.track.applied() }

var classFlag = map[keyspace.EventClass]int{
	keyspace.EventGeneric: notifyGeneric, keyspace.EventString: notifyString, keyspace.EventHash: notifyHash,
	keyspace.EventSet: notifySet, keyspace.EventExpired: notifyExpired, keyspace.EventEvicted: notifyEvicted,
	keyspace.EventList:   notifyList,
	keyspace.EventZSet:   notifyZset,
	keyspace.EventStream: notifyStream,
}

// Popped tells the blocking registry what a pop proposed for one of its
// clients took (keyspace.PopWatcher).
func (s *Server) Popped(token []byte, key string, elems [][]byte) {
	s.blocking.popped(token, key, elems)
}

// Replaced has every blocked client look at its keys again after a
// snapshot replaced the keyspace (keyspace.ReplaceWatcher).
func (s *Server) Replaced() { s.blocking.kickAll() }

// PublishLocal sends a message to this node's subscribers only, and
// returns how many there are. The node's own announcements (Sentinel's
// +switch-master) use it directly; Publish is the log's way in.
func (s *Server) PublishLocal(channel, message string) int {
	n := s.hub.receivers(channel)
	s.hub.enqueue(pubMsg{channel, message})
	return n
}

func (h *hub) receivers(channel string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.subs[channel])
	for p, conns := range h.patterns {
		if command.Match([]byte(p), []byte(channel)) {
			n += len(conns)
		}
	}
	return n
}

func (h *hub) enqueue(m pubMsg) {
	h.startOnce.Do(func() {
		h.queue = make(chan pubMsg, pubQueueLen)
		h.stop, h.done = make(chan struct{}), make(chan struct{})
		go h.deliver()
	})
	select {
	case h.queue <- m:
	default:
		h.dropped.Add(1)
	}
}

// close stops the delivery goroutine, if it was started.
func (h *hub) close() {
	h.startOnce.Do(func() {}) // no start after close
	if h.stop != nil {
		close(h.stop)
		<-h.done
	}
}

func (h *hub) deliver() {
	defer close(h.done)
	for {
		select {
		case m := <-h.queue:
			h.send(m)
		case <-h.stop:
			return
		}
	}
}

func (h *hub) send(m pubMsg) {
	type target struct {
		c       *conn
		pattern string
	}
	h.mu.Lock()
	var targets []target
	for c := range h.subs[m.channel] {
		targets = append(targets, target{c: c})
	}
	for p, conns := range h.patterns {
		if command.Match([]byte(p), []byte(m.channel)) {
			for c := range conns {
				targets = append(targets, target{c, p})
			}
		}
	}
	h.mu.Unlock()
	var plain [4][]byte // by protocol: the message framed as an array (2) or a push (3)
	for _, t := range targets {
		proto := t.c.protocol()
		if t.pattern == "" {
			if plain[proto] == nil {
				msg := appendPush(nil, proto, 3)
				msg = resp.AppendBulkString(msg, "message")
				msg = resp.AppendBulkString(msg, m.channel)
				plain[proto] = resp.AppendBulkString(msg, m.message)
			}
			t.c.link.Push(plain[proto])
			h.wrote(len(plain[proto]))
			continue
		}
		msg := appendPush(nil, proto, 4)
		msg = resp.AppendBulkString(msg, "pmessage")
		msg = resp.AppendBulkString(msg, t.pattern)
		msg = resp.AppendBulkString(msg, m.channel)
		msg = resp.AppendBulkString(msg, m.message)
		t.c.link.Push(msg)
		h.wrote(len(msg))
	}
}

func (h *hub) wrote(n int) {
	if h.out != nil {
		h.out.Add(int64(n))
	}
}

func newHub() *hub {
	return &hub{subs: map[string]map[*conn]struct{}{}, patterns: map[string]map[*conn]struct{}{}}
}

// add and remove change set, which is h.subs or h.patterns (created with
// the hub and never replaced), under the hub's lock.
func (h *hub) add(set map[string]map[*conn]struct{}, c *conn, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if set[name] == nil {
		set[name] = map[*conn]struct{}{}
	}
	set[name][c] = struct{}{}
}

func (h *hub) remove(set map[string]map[*conn]struct{}, c *conn, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(set[name], c)
	if len(set[name]) == 0 {
		delete(set, name)
	}
}

// Pub/sub commands. redis-server 7.0 queues them in MULTI and runs them at
// EXEC.
func pubsubCommands() []*cmdSpec {
	sub := flagPubSub | flagNoScript | flagLoading | flagStale
	return []*cmdSpec{
		{name: "subscribe", arity: -2, flags: sub, run: func(c *conn, a [][]byte) { c.subscribe(a, false) }},
		{name: "unsubscribe", arity: -1, flags: sub, run: func(c *conn, a [][]byte) { c.unsubscribe(a, false) }},
		{name: "psubscribe", arity: -2, flags: sub, run: func(c *conn, a [][]byte) { c.subscribe(a, true) }},
		{name: "punsubscribe", arity: -1, flags: sub, run: func(c *conn, a [][]byte) { c.unsubscribe(a, true) }},
		{name: "publish", arity: 3, flags: flagPubSub | flagLoading | flagStale | flagFast | flagMayReplicate, build: buildPublish},
		{name: "pubsub", arity: -2, run: runPubsub},
	}
}

func buildPublish(c *conn, a [][]byte) (command.Cmd, string) {
	return c.cmd(command.OpPublish, nil, a[1], a[2]), ""
}

// subscribed reports whether the connection is in subscriber mode.
func (c *conn) subscribed() bool { return len(c.channels)+len(c.patterns) > 0 }

func (c *conn) subscribe(a [][]byte, pattern bool) {
	mine, set, kind := &c.channels, c.srv.hub.subs, "subscribe"
	if pattern {
		mine, set, kind = &c.patterns, c.srv.hub.patterns, "psubscribe"
	}
	for _, ch := range a[1:] {
		name := string(ch)
		if *mine == nil {
			*mine = map[string]bool{}
		}
		if !(*mine)[name] {
			(*mine)[name] = true
			c.srv.hub.add(set, c, name)
		}
		c.out = subscription(c.out, c.protocol(), kind, &name, len(c.channels)+len(c.patterns))
	}
}

func (c *conn) unsubscribe(a [][]byte, pattern bool) {
	mine, set, kind := c.channels, c.srv.hub.subs, "unsubscribe"
	if pattern {
		mine, set, kind = c.patterns, c.srv.hub.patterns, "punsubscribe"
	}
	names := make([]string, 0, len(a)-1)
	for _, ch := range a[1:] {
		names = append(names, string(ch))
	}
	if len(names) == 0 {
		for name := range mine {
			names = append(names, name)
		}
		if len(names) == 0 {
			c.out = subscription(c.out, c.protocol(), kind, nil, len(c.channels)+len(c.patterns))
			return
		}
	}
	for _, name := range names {
		if mine[name] {
			delete(mine, name)
			c.srv.hub.remove(set, c, name)
		}
		c.out = subscription(c.out, c.protocol(), kind, &name, len(c.channels)+len(c.patterns))
	}
}

// subscription is the confirmation of one (un)subscription: an array in
// RESP2, a push in RESP3.
func subscription(dst []byte, proto int, kind string, channel *string, count int) []byte {
	dst = appendPush(dst, proto, 3)
	dst = resp.AppendBulkString(dst, kind)
	if channel == nil {
		dst = appendNull(dst, proto)
	} else {
		dst = resp.AppendBulkString(dst, *channel)
	}
	return resp.AppendInt(dst, int64(count))
}

// runPubsub answers PUBSUB CHANNELS|NUMSUB|NUMPAT about this node's
// subscribers.
func runPubsub(c *conn, a [][]byte) {
	h := c.srv.hub
	sub := strings.ToLower(string(a[1]))
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case sub == "channels" && len(a) <= 3:
		var names []string
		for name := range h.subs {
			if len(a) == 2 || command.Match(a[2], []byte(name)) {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		c.out = resp.AppendArray(c.out, len(names))
		for _, n := range names {
			c.out = resp.AppendBulkString(c.out, n)
		}
	case sub == "numsub":
		c.out = resp.AppendArray(c.out, 2*(len(a)-2))
		for _, ch := range a[2:] {
			c.out = resp.AppendBulk(c.out, ch)
			c.out = resp.AppendInt(c.out, int64(len(h.subs[string(ch)])))
		}
	case sub == "numpat" && len(a) == 2:
		c.out = resp.AppendInt(c.out, int64(len(h.patterns)))
	case sub == "channels" || sub == "numpat":
		c.out = resp.AppendError(c.out, "ERR wrong number of arguments for 'pubsub|"+sub+"' command")
	default:
		c.out = resp.AppendError(c.out, unknownSubcommand(a[1], "PUBSUB"))
	}
}

// subscribedOnly reports whether a subscribed RESP2 client may run name, and
// the error redis-server gives when it may not.
func subscribedOnly(name string) (bool, string) {
	switch name {
	case "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe", "ping", "quit", "reset":
		return true, ""
	}
	return false, "ERR Can't execute '" + name + "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
}

// leave drops a closed connection's subscriptions. It runs on the
// connection's driver, after its last Run.
func (h *hub) leave(c *conn) {
	for name := range c.channels {
		h.remove(h.subs, c, name)
	}
	for name := range c.patterns {
		h.remove(h.patterns, c, name)
	}
	c.channels, c.patterns = nil, nil
}

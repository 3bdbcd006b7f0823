package redis

import (
	"sync"
	"time"

	"github.com/hatcheck/hatcheck/internal/resp"
)

// Pub/sub on this node. A subscribed connection keeps reading requests on
// its own goroutine; messages are written to its socket by the publisher
// under the connection's write lock. For now the only publisher is the node
// itself (Sentinel's +switch-master); PUBLISH through the log comes with the
// scripting and pub/sub work.

type hub struct {
	mu   sync.Mutex
	subs map[string]map[*conn]struct{}
}

// pushTimeout bounds writing one message to a subscriber; a subscriber that
// does not read is disconnected rather than holding up the publisher.
const pushTimeout = time.Second

// Publish sends message to this node's subscribers of channel and returns
// how many received it.
func (s *Server) Publish(channel, message string) int {
	s.hub.mu.Lock()
	var targets []*conn
	for c := range s.hub.subs[channel] {
		targets = append(targets, c)
	}
	s.hub.mu.Unlock()
	msg := resp.AppendArray(nil, 3)
	msg = resp.AppendBulkString(msg, "message")
	msg = resp.AppendBulkString(msg, channel)
	msg = resp.AppendBulkString(msg, message)
	n := 0
	for _, c := range targets {
		if c.push(msg) {
			n++
		}
	}
	return n
}

// push writes an out-of-band message to the client.
func (c *conn) push(msg []byte) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(pushTimeout))
	_, err := c.nc.Write(msg)
	_ = c.nc.SetWriteDeadline(time.Time{})
	if err != nil {
		c.nc.Close()
		return false
	}
	return true
}

func (h *hub) subscribe(c *conn, ch string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[string]map[*conn]struct{}{}
	}
	if h.subs[ch] == nil {
		h.subs[ch] = map[*conn]struct{}{}
	}
	h.subs[ch][c] = struct{}{}
}

func (h *hub) unsubscribe(c *conn, ch string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[ch], c)
	if len(h.subs[ch]) == 0 {
		delete(h.subs, ch)
	}
}

func init() {
	register(
		// redis-server 7.0 queues them in MULTI and runs them at EXEC.
		&cmdSpec{name: "subscribe", arity: -2, run: runSubscribe},
		&cmdSpec{name: "unsubscribe", arity: -1, run: runUnsubscribe},
	)
}

func runSubscribe(c *conn, a [][]byte) {
	for _, ch := range a[1:] {
		name := string(ch)
		if c.channels == nil {
			c.channels = map[string]bool{}
		}
		if !c.channels[name] {
			c.channels[name] = true
			c.srv.hub.subscribe(c, name)
		}
		c.out = subscription(c.out, "subscribe", &name, len(c.channels))
	}
}

func runUnsubscribe(c *conn, a [][]byte) {
	names := make([]string, 0, len(a)-1)
	for _, ch := range a[1:] {
		names = append(names, string(ch))
	}
	if len(names) == 0 {
		for name := range c.channels {
			names = append(names, name)
		}
		if len(names) == 0 {
			c.out = subscription(c.out, "unsubscribe", nil, 0)
			return
		}
	}
	for _, name := range names {
		if c.channels[name] {
			delete(c.channels, name)
			c.srv.hub.unsubscribe(c, name)
		}
		c.out = subscription(c.out, "unsubscribe", &name, len(c.channels))
	}
}

func subscription(dst []byte, kind string, channel *string, count int) []byte {
	dst = resp.AppendArray(dst, 3)
	dst = resp.AppendBulkString(dst, kind)
	if channel == nil {
		dst = resp.AppendNull(dst)
	} else {
		dst = resp.AppendBulkString(dst, *channel)
	}
	return resp.AppendInt(dst, int64(count))
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

// leaveChannels drops the connection's subscriptions when it closes.
func (c *conn) leaveChannels() {
	for name := range c.channels {
		c.srv.hub.unsubscribe(c, name)
	}
	c.channels = nil
}

package redis

import (
	"sync"
	"testing"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// lateFollower is a follower that hears the leader's answer to a write
// before it has applied the write itself: the write's key changes reach
// the front end (Notify, Applied) only at the next read barrier, as when
// the follower learns the commit index after the forwarded answer.
type lateFollower struct {
	*memNode
	mu      sync.Mutex
	srv     *Server
	pending []string // keys written but not yet "applied here"
}

func (f *lateFollower) Role() string { return "slave" }

func (f *lateFollower) WriteAsync(tx command.Tx, done func(command.TxResult, error)) {
	f.memNode.WriteAsync(tx, func(res command.TxResult, err error) {
		f.mu.Lock()
		for _, c := range tx {
			f.pending = append(f.pending, string(c.Key))
		}
		f.mu.Unlock()
		done(res, err)
	})
}

// ReadNow refuses, so every read waits for a barrier (ReadAsync), which
// applies what the follower had not.
func (f *lateFollower) ReadNow(*command.Cmd) (command.Result, bool) { return command.Result{}, false }

func (f *lateFollower) ReadAsync(c *command.Cmd, done func(command.Result, error)) {
	f.mu.Lock()
	keys, srv := f.pending, f.srv
	f.pending = nil
	f.mu.Unlock()
	for _, k := range keys {
		srv.Notify(0, keyspace.EventString, "set", k)
		srv.Applied(0)
	}
	f.memNode.ReadAsync(c, done)
}

// A tracking connection on a follower gets its reply to a write only once
// the write is applied on that follower, as on a single node: a read sent
// after the reply then registers its key after the write's invalidation,
// and the connection's next write of the key is invalidated after its
// reply. Without the barrier, SET y 1's late apply invalidates the GET
// that followed it (a push nobody expects, and the next SET's push is
// missing), as a CI replay of tracking.txt through a follower once showed.
func TestTrackingWritesThroughAFollowerWaitForTheLocalApply(t *testing.T) {
	f := &lateFollower{memNode: newMemNode()}
	srv, addr := serveNode(t, testConfig(), nil, f)
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	c := dial(t, addr)
	c.send("HELLO 3\r\nCLIENT TRACKING ON\r\nPING\r\n")
	for { // HELLO's map, up to CLIENT TRACKING's +OK
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "+OK\r\n" {
			break
		}
	}
	c.expect("+PONG\r\n")
	c.send("SET y 1\r\n")
	c.expect("+OK\r\n")
	c.send("GET y\r\n")
	c.expect("$1\r\n1\r\n")
	c.send("SET y 2\r\n")
	c.expect("+OK\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\ny\r\n")
	c.send("PING\r\n")
	c.expect("+PONG\r\n")
}

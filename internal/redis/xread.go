package redis

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// XREAD BLOCK. XREAD is a read, so a blocked XREAD proposes nothing: the
// client waits on the node it is connected to, which reads again (its
// usual read path, a read barrier on a follower) each time applying an
// entry changes one of its keys, until the read finds entries or the
// timeout fires. "$" is resolved to each stream's last ID once, at the
// start, as redis does. Whatever node took the XADD, every node applies
// it, so a client on any node is woken.
type xreads struct {
	n    atomic.Int64 // clients waiting: Notify's fast path
	mu   sync.Mutex
	keys map[blockKey]map[*xwait]bool
}

// xwait is one waiting XREAD.
type xwait struct {
	c    *conn
	keys []blockKey
	kick chan struct{} // a key changed (capacity 1)
	stop chan bool     // true: the connection is gone; false: shutdown
}

func newXReads() *xreads { return &xreads{keys: map[blockKey]map[*xwait]bool{}} }

// xreadWait runs XREAD: at once without BLOCK, else waiting.
func xreadWait(c *conn, spec *cmdSpec, cmd command.Cmd) {
	x, err := command.ParseXRead(cmd.Args)
	if err != nil || x.Block < 0 || len(x.Keys) == 0 {
		c.runOne(spec, cmd)
		return
	}
	timeout := time.Duration(x.Block) * time.Millisecond
	if x.Block > int64(maxBlock/time.Millisecond) {
		timeout = maxBlock
	}
	cmd.Args = cloneArgs(cmd.Args)
	w := &xwait{c: c, kick: make(chan struct{}, 1), stop: make(chan bool, 1)}
	x, _ = command.ParseXRead(cmd.Args)
	for _, k := range x.Keys {
		w.keys = append(w.keys, blockKey{cmd.DB, string(k)})
	}
	c.Await(func(done func(func())) {
		c.srv.xreads.add(w)
		go c.srv.xreads.run(w, spec, cmd, len(x.Keys), timeout, done)
	})
}

func (xr *xreads) add(w *xwait) {
	xr.mu.Lock()
	defer xr.mu.Unlock()
	w.c.xwait = w
	for _, k := range w.keys {
		m := xr.keys[k]
		if m == nil {
			m = map[*xwait]bool{}
			xr.keys[k] = m
		}
		m[w] = true
	}
	xr.n.Add(1)
}

func (xr *xreads) remove(w *xwait) {
	xr.mu.Lock()
	defer xr.mu.Unlock()
	if w.c.xwait != w {
		return
	}
	w.c.xwait = nil
	for _, k := range w.keys {
		delete(xr.keys[k], w)
		if len(xr.keys[k]) == 0 {
			delete(xr.keys, k)
		}
	}
	xr.n.Add(-1)
}

// signal is Notify's: applying an entry changed key.
func (xr *xreads) signal(db int, key string) {
	xr.mu.Lock()
	defer xr.mu.Unlock()
	for w := range xr.keys[blockKey{uint8(db), key}] {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// cancel ends c's wait, if any: the connection is gone (closed), or the
// server is shutting down (the connection then closes with no reply).
func (xr *xreads) cancel(c *conn, closed bool) {
	if xr.n.Load() == 0 {
		return
	}
	xr.mu.Lock()
	w := c.xwait
	xr.mu.Unlock()
	if w != nil {
		select {
		case w.stop <- closed:
		default:
		}
	}
}

// run is a waiting XREAD's loop, on a goroutine of its own. nkeys is the
// number of streams: the last nkeys arguments are their IDs.
func (xr *xreads) run(w *xwait, spec *cmdSpec, cmd command.Cmd, nkeys int, timeout time.Duration, done func(func())) {
	finish := func(k func(c *conn)) {
		xr.remove(w)
		c := w.c
		done(func() { k(c) })
	}
	var expire <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	// Resolve "$" (and check every key's type and every ID) first.
	resolve := cmd
	resolve.Flags |= command.FlagXLast
	r, err := xr.readSync(w.c, resolve)
	if err == nil && r.Kind != command.KindError {
		ids := make([][]byte, len(r.Array))
		for i, id := range r.Array {
			ids[i] = id.Bulk
		}
		cmd.Args = append(slices.Clip(cmd.Args[:len(cmd.Args)-nkeys]), ids...)
	}
	for {
		if err == nil && r.Kind != command.KindError {
			r, err = xr.readSync(w.c, cmd)
		}
		switch {
		case err != nil:
			finish(func(c *conn) { c.out = resp.AppendError(c.out, errorText(err, spec.name)) })
			return
		case r.Kind == command.KindError || !(r.Kind == command.KindArray && r.Int == -1):
			finish(func(c *conn) { c.replyResult(spec, r) })
			return
		}
		select {
		case <-w.kick:
		case <-expire:
			finish(func(c *conn) { c.appendNullArray() })
			return
		case gone := <-w.stop:
			if gone {
				xr.remove(w)
				return
			}
			finish(func(*conn) {})
			return
		}
	}
}

// readSync runs a read on the node and waits for its result.
func (xr *xreads) readSync(c *conn, cmd command.Cmd) (command.Result, error) {
	type out struct {
		r   command.Result
		err error
	}
	ch := make(chan out, 1)
	p := new(command.Cmd)
	*p = cmd
	c.srv.node.ReadAsync(p, func(r command.Result, err error) { ch <- out{r, err} })
	o := <-ch
	return o.r, o.err
}

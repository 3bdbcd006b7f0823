package redis

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/resp"
)

// CLIENT PAUSE timeout [WRITE|ALL] and CLIENT UNPAUSE, as redis 7.0: while
// a pause lasts, the commands it covers are held, each connection's in
// order, and run when it ends (its timeout, or CLIENT UNPAUSE). ALL holds
// every command of every client, the one that paused included (so under
// ALL only the timeout ends it: CLIENT UNPAUSE is held too, as in
// redis-server); WRITE holds the write commands and those redis marks
// may-replicate (EVAL, EVALSHA, FCALL, PUBLISH), and EXEC of a transaction
// that queued one. A command that is refused anyway (unknown, wrong
// arity, before AUTH) is answered at once, as redis checks those first. A
// second pause keeps the more restrictive mode and the later end.
//
// The pause is this node's, as redis's is its server's: clients of other
// nodes go on, and what they write is applied here too (the log is never
// held). A held connection waits as one waiting for a write's commit does
// (netserve.Waiter): the other connections are not held up by it.
type pause struct {
	mode atomic.Int32 // pauseOff, pauseWrite or pauseAll: the fast path's check

	mu    sync.Mutex
	end   time.Time
	timer *time.Timer
	held  map[*conn]heldCmd
}

// Pause modes, from the least restrictive.
const (
	pauseOff = iota
	pauseWrite
	pauseAll
)

// heldCmd is a held connection's completion and what it runs once the
// pause ends.
type heldCmd struct {
	done func(func())
	k    func()
}

func newPause() *pause { return &pause{held: map[*conn]heldCmd{}} }

// start pauses for d in mode (merged with a pause in force).
func (p *pause) start(d time.Duration, mode int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	end := time.Now().Add(d)
	if cur := p.mode.Load(); cur != pauseOff {
		mode = max(mode, cur)
		if p.end.After(end) {
			end = p.end
		}
	}
	p.end = end
	p.mode.Store(mode)
	if p.timer != nil {
		p.timer.Stop()
	}
	p.timer = time.AfterFunc(time.Until(end), p.expire)
}

// expire ends the pause at its end time (the timer may fire early if a
// later pause moved the end).
func (p *pause) expire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode.Load() == pauseOff {
		return
	}
	if d := time.Until(p.end); d > 0 {
		p.timer = time.AfterFunc(d, p.expire)
		return
	}
	p.endLocked()
}

// stop is CLIENT UNPAUSE.
func (p *pause) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.endLocked()
}

// endLocked ends the pause and lets every held connection go on, each
// running its command as if it had just arrived.
func (p *pause) endLocked() {
	p.mode.Store(pauseOff)
	for c, h := range p.held {
		delete(p.held, c)
		h.done(h.k)
	}
}

// wait holds c until the pause ends, then runs k on c's driver; if the
// pause ended meanwhile (holds no longer reports true), k runs at once. A
// closing connection is let go without running k: Shutdown marks it
// closing before it releases it, so one that comes here after its
// release would otherwise stay held (and its driver, and the server's
// Close, wait) until the pause ends.
func (p *pause) wait(c *conn, holds func(mode int32) bool, done func(func()), k func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.closing.Load() {
		done(func() {})
		return
	}
	if !holds(p.mode.Load()) {
		done(k)
		return
	}
	p.held[c] = heldCmd{done: done, k: k}
}

// release lets c go without running its command: it closes (at shutdown,
// or it is gone).
func (p *pause) release(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h, ok := p.held[c]; ok {
		delete(p.held, c)
		h.done(func() {})
	}
}

// isHeld reports whether c is held.
func (p *pause) isHeld(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.held[c]
	return ok
}

func (p *pause) heldCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held)
}

// pausedIn reports whether a pause of mode holds the request: it is one
// the command's own checks will not refuse first (see run), and the pause
// covers it.
func (c *conn) pausedIn(mode int32, spec *cmdSpec, args [][]byte) bool {
	switch {
	case mode == pauseOff || spec == nil || !spec.arityOK(len(args)):
		return false
	case !c.authed && spec.flags&flagNoAuth == 0:
		return false
	case c.subscribed() && !c.resp3():
		if ok, _ := subscribedOnly(spec.name); !ok {
			return false
		}
	}
	return mode == pauseAll || c.mayReplicate(spec, args)
}

// mayReplicate reports whether a command is one a WRITE pause holds: a
// write (FUNCTION LOAD, DELETE, FLUSH and RESTORE among them: redis flags
// those subcommands write), one redis marks may-replicate, or EXEC of a
// transaction that queued one of those.
func (c *conn) mayReplicate(spec *cmdSpec, args [][]byte) bool {
	if spec.flags&(flagWrite|flagMayReplicate) != 0 {
		return true
	}
	if spec.name == "function" && len(args) > 1 {
		for _, w := range []string{"load", "delete", "flush", "restore"} {
			if eq(args[1], w) {
				return true
			}
		}
	}
	if spec.name == "exec" && c.multi {
		for _, q := range c.queued {
			if c.mayReplicate(q.spec, q.args) {
				return true
			}
		}
	}
	return false
}

// hold makes c wait for the pause's end, then dispatch the request (which
// may be held again, if a pause still covers it).
func (c *conn) hold(spec *cmdSpec, args [][]byte) {
	c.Await(func(done func(func())) {
		c.srv.pause.wait(c, func(mode int32) bool { return c.pausedIn(mode, spec, args) }, done, func() {
			if c.pausedIn(c.srv.pause.mode.Load(), spec, args) {
				c.hold(spec, args)
				return
			}
			c.dispatch(spec, args)
		})
	})
}

// clientPause is CLIENT PAUSE timeout [WRITE|ALL].
func (c *conn) clientPause(a [][]byte) {
	mode := int32(pauseAll)
	if len(a) == 4 {
		switch {
		case eq(a[3], "write"):
			mode = pauseWrite
		case eq(a[3], "all"):
		default:
			c.out = resp.AppendError(c.out, "ERR CLIENT PAUSE mode must be WRITE or ALL")
			return
		}
	}
	ms, ok := parseInt(a[2])
	switch {
	case !ok:
		c.out = resp.AppendError(c.out, "ERR timeout is not an integer or out of range")
		return
	case ms < 0:
		c.out = resp.AppendError(c.out, "ERR timeout is negative")
		return
	}
	d := time.Duration(math.MaxInt64)
	if ms < int64(d/time.Millisecond) {
		d = time.Duration(ms) * time.Millisecond
	}
	c.srv.pause.start(d, mode)
	c.out = resp.AppendSimple(c.out, "OK")
}

package redis

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/netserve"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// flushAfter bounds the replies one run of a connection collects before
// they are written: past it the connection stops parsing and asks to be
// run again, so a long pipeline does not build one huge reply.
const flushAfter = 64 * 1024

// conn is one client connection and its state: a state machine over bytes
// that a netserve driver runs (an event loop, or a goroutine for TLS and
// tests). Run parses every complete request in the input and appends the
// replies. A request that waits — a write for its commit, a read for its
// barrier, a discovery command for the other nodes — hands the node a
// callback and the connection stops parsing; the callback stores the
// continuation and wakes the driver, which runs it on the connection's
// own loop, and parsing goes on where it stopped. Replies therefore leave
// in request order, and nothing ever blocks a loop.
//
// Only the driver's goroutine touches the connection, except Shutdown,
// Busy, the completion hand-over (netserve.Waiter) and the fields CLIENT LIST reads
// atomically.
type conn struct {
	srv  *Server
	link netserve.Link
	id   int64
	addr string

	buf     []byte // input; buf[start:] is not parsed yet
	start   int
	out     []byte // replies of this run
	args    [][]byte
	opened  bool
	readCmd command.Cmd // the read being run (see read)

	netserve.Waiter        // the request in flight, if any
	next            func() // runs after the continuation, if it did not wait again
	// The command whose reply a continuation writes, for metrics.
	waitSpec  *cmdSpec
	waitArgs  [][]byte
	waitStart time.Time

	// Fields CLIENT LIST reads from other connections' goroutines are
	// atomics; only this connection's goroutine writes them.
	db     atomic.Int32
	proto  atomic.Int32 // 2 or 3 (HELLO); the pub/sub hub reads it to frame messages
	authed bool
	// The ACL user (acl.go): as of users generation userGen; userName
	// is its name for CLIENT LIST and for finding it again after a
	// change (nil: default).
	user     *aclUser
	userGen  uint64
	userName atomic.Pointer[string]
	name     atomic.Value // string
	libName  atomic.Value // string
	libVer   atomic.Value // string
	created  time.Time
	lastCmd  atomic.Pointer[string] // a cmdSpec's name (no allocation per command)

	multi      bool
	multiDirty bool
	inExec     bool // EXEC is running a queued connection or server command
	queued     []queued
	watched    []command.Cmd // OpWatchCheck per WATCHed key, sent with EXEC

	// Pipeline batching. When a write arrives with more requests already
	// in the buffer, it and the data commands after it (reads too) wait in
	// batch and then go to the log as one transaction: one commit instead
	// of one per write. The client sent them all before reading a reply,
	// so running them back to back, in order, is a valid execution; reads
	// in the batch see the writes before them. Anything else that answers
	// (another command, an error) runs the batch first, so replies keep
	// their order.
	more    bool // requests follow the one being dispatched
	batch   command.Tx
	items   []batchItem // one per batched request, in order
	batched bool        // the command just dispatched joined the batch

	channels map[string]bool // SUBSCRIBEd channels
	patterns map[string]bool // PSUBSCRIBEd patterns

	closing atomic.Bool // server shutdown asked
	quit    bool        // close after the replies are written

	blocked *blocked // the blocking pop it waits in; guarded by the server's blocking.mu
	xwait   *xwait   // the XREAD BLOCK it waits in; guarded by the server's xreads.mu
	// CLIENT settings.
	viewFields      // what CLIENT LIST shows of this connection (client.go)
	noEvict    bool // CLIENT NO-EVICT
	noTouch    bool // CLIENT NO-TOUCH
	replyMode  int  // CLIENT REPLY: replyOn, replyOff or replySkip
	// CLIENT TRACKING (tracking.go).
	tracking   *trackState // nil: off
	caching    bool        // CLIENT CACHING given for the next command
	loopMarked bool        // NOLOOP marks to clear once nothing is in flight
	inval      invalQueue  // invalidations for the next run
	gone       atomic.Bool // closed: connections redirecting here find out
	muted      bool        // the command being run answers nothing (CLIENT REPLY)
	waitMuted  bool        // the same, for the command a continuation answers
}

// batchItem is one request of a pipeline batch: a command of the
// transaction, or a request refused before it (an error reply in place).
type batchItem struct {
	spec *cmdSpec
	err  string
	args [][]byte // the request, for the slow log (in c.buf until the batch has run)
}

type queued struct {
	spec *cmdSpec
	args [][]byte
}

// noCommandYet is CLIENT LIST's cmd= before the first command.
var noCommandYet = "NULL"

func newConn(s *Server, l netserve.Link) *conn {
	c := &conn{srv: s, link: l, id: s.nextID.Add(1), addr: l.RemoteAddr().String(), created: time.Now()}
	c.Waiter.Link = l
	ut := s.users.Load()
	c.user, c.userGen, c.authed = ut.byName["default"], ut.gen, ut.open
	c.proto.Store(2)
	c.name.Store("")
	c.libName.Store("")
	c.libVer.Store("")
	c.lastCmd.Store(&noCommandYet)
	c.lastActive.Store(c.created.UnixNano())
	c.redirView.Store(-1)
	if m := s.cfg.Metrics; m != nil {
		m.Connections(1)
	}
	return c
}

// Shutdown asks the connection to stop after the command it is running.
func (c *conn) Shutdown() {
	c.closing.Store(true)
	c.srv.blocking.cancel(c, false)
	c.srv.pause.release(c)
	c.srv.xreads.cancel(c, false)
}

// Closed drops the connection's subscriptions once it has ended.
func (c *conn) Closed() {
	c.srv.blocking.cancel(c, true)
	c.srv.pause.release(c)
	c.srv.xreads.cancel(c, true)
	c.gone.Store(true)
	c.disableTracking()
	c.srv.hub.leave(c)
	if m := c.srv.cfg.Metrics; m != nil {
		m.Connections(-1)
	}
}

func (c *conn) limits() resp.Limits {
	cfg := &c.srv.cfg
	return resp.Limits{MaxMultibulk: cfg.MaxMultibulk, MaxBulk: cfg.MaxBulk, MaxInline: cfg.MaxInline, Unauthenticated: !c.authed}
}

// Run takes the client's new bytes, runs what it can and returns the
// replies (see netserve.Session).
func (c *conn) Run(in []byte) ([]byte, bool) {
	if cap(c.out) > 1<<20 {
		c.out = nil
	}
	c.out = c.out[:0]
	if !c.opened {
		c.opened = true
		if c.srv.DefaultUserOpen() && !isLoopback(c.link.RemoteAddr()) {
			return resp.AppendError(c.out, deniedMsg), true
		}
	}
	if c.subscribed() && c.userGen != c.srv.users.Load().gen && !c.subscriptionsAllowed() {
		return c.out, true
	}
	if len(in) > 0 {
		c.srv.stats.netIn.Add(int64(len(in)))
		c.buf = append(c.buf, in...)
		if len(c.buf)-c.start > c.srv.cfg.QueryBufLimit {
			c.srv.log.Warn("closing client: query buffer limit reached", "conn", c.id, "addr", c.addr, "bytes", len(c.buf)-c.start)
			return c.out, true
		}
	}
	if c.Busy() && !c.resume() {
		return c.out, false
	}
	c.process()
	if c.Busy() {
		return c.out, false
	}
	c.compact()
	// Nothing is in flight: invalidations go after the replies.
	if c.loopMarked {
		c.loopMarked = false
		c.clearLoop()
	}
	c.appendInvalidations()
	if len(c.out) >= flushAfter && c.start < len(c.buf) && !c.quit {
		// More requests wait: write these replies, then go on.
		c.link.Wake()
	}
	c.srv.stats.netOut.Add(int64(len(c.out)))
	return c.out, c.quit || c.closing.Load()
}

// compact moves the unparsed tail to the front of the buffer. Not while a
// command waits: batched arguments point into the buffer.
func (c *conn) compact() {
	if c.start == 0 {
		return
	}
	n := copy(c.buf, c.buf[c.start:])
	c.buf, c.start = c.buf[:n], 0
	if n == 0 && cap(c.buf) > 1<<20 {
		c.buf = nil
	}
}

// process runs the requests in the buffer until the input runs out, one
// waits for a completion, or the connection is to close.
func (c *conn) process() {
	for c.start < len(c.buf) && !c.quit && !c.closing.Load() && !c.Busy() && len(c.out) < flushAfter {
		args, n, err := resp.Parse(c.buf[c.start:], c.limits(), c.args)
		c.args = args
		if errors.Is(err, resp.ErrIncomplete) {
			break
		}
		if err != nil {
			// A framing error leaves the stream unusable: reply and
			// close, as redis-server does.
			if c.runBatch() {
				return // the error is parsed again once the batch is answered
			}
			c.out = resp.AppendError(c.out, "ERR "+err.Error())
			c.quit = true
			return
		}
		if len(args) == 0 {
			c.start += n
			continue
		}
		spec := c.srv.cmds.lookup(args[0])
		if len(c.batch) > 0 && !c.joinsBatch(spec, args) && c.runBatch() {
			return // this request runs once the batch is answered
		}
		if c.srv.pause.mode.Load() != pauseOff && c.pausedIn(c.srv.pause.mode.Load(), spec, args) {
			// CLIENT PAUSE holds it (pause.go), after the batch before
			// it is answered.
			if c.runBatch() {
				return
			}
			c.start += n
			c.more = c.start < len(c.buf)
			c.hold(spec, slices.Clone(args))
			if c.Busy() {
				return
			}
			continue
		}
		c.start += n
		c.more = c.start < len(c.buf)
		c.dispatch(spec, args)
		if c.Busy() {
			return
		}
	}
	if !c.quit && !c.Busy() {
		c.runBatch()
	}
}

// resume runs a continuation that has been handed over, if any, then what
// was to follow it, and reports whether it did (a driver may wake a
// connection early).
func (c *conn) resume() bool {
	mark := len(c.out)
	if !c.Resume() {
		return false
	}
	for !c.Busy() && c.next != nil {
		f := c.next
		c.next = nil
		f()
	}
	if !c.Busy() && (c.waitMuted || c.replyMode == replyOff) {
		c.out = c.out[:mark]
		c.waitMuted = false
	}
	if !c.Busy() && c.waitSpec != nil {
		c.observe(c.waitSpec, c.waitArgs, c.waitStart, c.out)
		c.waitArgs = nil
		c.waitSpec = nil
	}
	return true
}

// observe reports a command to the metrics, failed if its reply is an
// error, and to the slow log.
func (c *conn) observe(spec *cmdSpec, args [][]byte, start time.Time, reply []byte) {
	d := time.Since(start)
	if m := c.srv.cfg.Metrics; m != nil {
		m.Command(spec.name, d, bytes.HasPrefix(reply, []byte{'-'}))
	}
	c.slowlogRecord(spec, args, start, d)
}

// dispatch runs one request and drops its reply if CLIENT REPLY says so:
// OFF drops every reply (and errors) until CLIENT REPLY ON, whose own +OK
// is sent; SKIP drops the next command's. Muted commands do not join a
// pipeline batch, whose replies are written together.
func (c *conn) dispatch(spec *cmdSpec, args [][]byte) {
	c.muted = c.replyMode == replySkip
	if c.muted {
		c.replyMode = replyOn
	}
	before := len(c.out)
	c.run(spec, args)
	c.publishView()
	if c.Busy() {
		c.waitMuted = c.muted
		return
	}
	if c.muted || c.replyMode == replyOff {
		c.out = c.out[:before]
	}
}

// run runs one request: lookup, arity, auth, MULTI queueing, then the
// command itself.
func (c *conn) run(spec *cmdSpec, args [][]byte) {
	c.srv.totalCmds.Add(1)
	if spec == nil {
		c.abortMulti()
		c.out = resp.AppendError(c.out, unknownCommand(args))
		if m := c.srv.cfg.Metrics; m != nil {
			m.Command("(unknown)", 0, true) // one label for every unknown name
		}
		return
	}
	if !c.authed && spec.flags&flagNoAuth == 0 && !c.srv.DefaultUserOpen() {
		c.abortMulti()
		c.out = resp.AppendError(c.out, "NOAUTH Authentication required.")
		return
	}
	if !spec.arityOK(len(args)) {
		c.abortMulti()
		c.out = resp.AppendError(c.out, arityError(spec.name))
		return
	}
	if !c.checkACL(spec, args) {
		c.abortMulti()
		return
	}
	if c.subscribed() && !c.resp3() {
		// A RESP3 client tells messages from replies by their type, so
		// it may run any command while subscribed.
		if ok, msg := subscribedOnly(spec.name); !ok {
			c.out = resp.AppendError(c.out, msg)
			return
		}
	}
	c.lastCmd.Store(&spec.name)
	if c.tracking != nil {
		c.trackCommand(spec, args)
	}
	if c.multi && spec.flags&flagNoQueue == 0 {
		c.queue(spec, args)
		return
	}
	start := time.Now()
	c.lastActive.Store(start.UnixNano())
	before := len(c.out)
	spec.run(c, args)
	switch {
	case c.batched:
		c.batched = false // runBatch records it
	case c.Busy():
		// resume records it; the arguments stay in c.buf until then.
		c.waitSpec, c.waitArgs, c.waitStart = spec, args, start
	default:
		c.observe(spec, args, start, c.out[before:])
	}
}

// joinsBatch reports whether a request will reach runData, which decides
// whether it joins the pending batch, rather than answer by itself.
// A request its user may not run is answered at once: not with a batch
// pending.
func (c *conn) joinsBatch(spec *cmdSpec, args [][]byte) bool {
	return spec != nil && spec.data && spec.flags&flagBlocking == 0 && c.authed && spec.arityOK(len(args)) && !c.subscribed() && !c.multi && c.replyMode == replyOn && c.allowed(spec, args)
}

// allowed reports whether the connection's user may run the request, with
// no side effect (checkACL logs and answers a refusal).
func (c *conn) allowed(spec *cmdSpec, args [][]byte) bool {
	if c.userGen != c.srv.users.Load().gen {
		return false // checkACL picks the change up first
	}
	if c.user.free {
		return true
	}
	r, _, _ := c.user.canRun(c.srv.cmds, spec, args)
	return r == aclOK
}

// maxBatch bounds the commands of one pipeline batch.
const maxBatch = 256

func (c *conn) addToBatch(spec *cmdSpec, args [][]byte, cmd command.Cmd) {
	// Build may alias the parser's argument slice, which the next request
	// reuses; the bytes themselves stay in c.buf until the batch has run.
	cmd.Args = append([][]byte(nil), cmd.Args...)
	c.batch = append(c.batch, cmd)
	c.items = append(c.items, batchItem{spec: spec, args: args})
	c.batched = true
	if len(c.batch) >= maxBatch {
		c.runBatch()
	}
}

// refuseInBatch puts a request's error reply in the batch's order.
func (c *conn) refuseInBatch(spec *cmdSpec, args [][]byte, msg string) {
	c.items = append(c.items, batchItem{spec: spec, err: msg, args: args})
	c.batched = true
}

// runBatch runs the pending batch as one transaction and appends each
// request's reply in order. It reports whether the connection now waits
// for the batch's commit.
func (c *conn) runBatch() bool {
	if len(c.items) == 0 {
		return false
	}
	tx, items := c.batch, c.items
	c.batch, c.items = nil, nil
	start := time.Now()
	c.write(tx, func(res command.TxResult, err error) {
		if err == nil && errors.Is(res.Err, command.ErrOOM) {
			// Refused whole before anything ran: run the commands one by
			// one, so that reads and commands allowed over maxmemory
			// still answer.
			c.runEach(tx, items)
			return
		}
		if err == nil {
			err = res.Err
		}
		took := time.Since(start)
		results := res.Results
		for _, it := range items {
			failed := true
			switch {
			case it.err != "":
				c.out = resp.AppendError(c.out, it.err)
			case err != nil:
				c.out = resp.AppendError(c.out, errorText(err, ""))
			default:
				failed = results[0].Kind == command.KindError
				c.replyResult(it.spec, results[0])
				results = results[1:]
			}
			if m := c.srv.cfg.Metrics; m != nil {
				m.Command(it.spec.name, took, failed)
			}
			c.slowlogRecord(it.spec, it.args, start, took)
		}
		c.recycleBatch(tx, items)
	})
	return c.Busy()
}

// recycleBatch keeps a finished batch's slices for the next one.
func (c *conn) recycleBatch(tx command.Tx, items []batchItem) {
	if c.batch == nil {
		clear(tx)
		clear(items)
		c.batch, c.items = tx[:0], items[:0]
	}
}

// runEach answers a batch's requests one at a time, each after the one
// before it completed.
func (c *conn) runEach(tx command.Tx, items []batchItem) {
	for len(items) > 0 {
		it := items[0]
		items = items[1:]
		if it.err != "" {
			c.out = resp.AppendError(c.out, it.err)
			continue
		}
		cmd := tx[0]
		tx = tx[1:]
		c.runOne(it.spec, cmd)
		if c.Busy() {
			c.next = func() { c.runEach(tx, items) }
			return
		}
	}
}

// queue adds a command to the open transaction after checking it the way
// redis-server does before answering QUEUED: syntax errors are reported now
// and make EXEC fail with EXECABORT.
// A command's own syntax (its options, its numbers) is checked when EXEC
// runs it, not here: as redis-server does, the error is its slot of EXEC's
// reply and the other commands run. Only what redis refuses before queuing
// (unknown command, arity, NOAUTH) aborts the transaction.
func (c *conn) queue(spec *cmdSpec, args [][]byte) {
	cp := make([][]byte, len(args))
	for i, a := range args {
		cp[i] = bytes.Clone(a)
	}
	c.queued = append(c.queued, queued{spec: spec, args: cp})
	c.out = resp.AppendSimple(c.out, "QUEUED")
}

// abortMulti marks an open transaction as failed after an error that
// redis-server reports before queuing (unknown command, arity, NOAUTH).
func (c *conn) abortMulti() {
	if c.multi {
		c.multiDirty = true
	}
}

// write proposes a transaction; k gets its result, or the node's error
// (the transaction's own error is in res.Err), on the connection's driver.
func (c *conn) write(tx command.Tx, k func(res command.TxResult, err error)) {
	if as, ok := c.asUser(tx); ok {
		// The scripts run as the user; OpACLAs's own result is dropped.
		tx = as
		inner := k
		k = func(res command.TxResult, err error) {
			if len(res.Results) > 0 {
				res.Results = res.Results[1:]
			}
			inner(res, err)
		}
	}
	loop := c.loopMarked
	// A follower may hear the leader's answer before it has applied the
	// write itself, or after. For a tracking connection the reply waits
	// until it has (a read barrier), as on a single node: NOLOOP's marks
	// stay until then, or the write's own invalidations would come back
	// to the connection; and a read sent after the reply registers its
	// keys only once the write is applied here, or the write's apply would
	// invalidate what that read is about to return.
	barrier := c.tracking != nil && c.srv.node.Role() != "master"
	c.Await(func(done func(func())) {
		c.srv.node.WriteAsync(tx, func(res command.TxResult, err error) {
			if barrier && err == nil {
				c.srv.node.ReadAsync(&command.Cmd{Op: command.OpDBSize}, func(command.Result, error) {
					if loop {
						c.clearLoop()
					}
					done(func() { k(res, err) })
				})
				return
			}
			if loop {
				// Applied here (or failed): later changes of its keys
				// are other clients'. Cleared as early as the node tells.
				c.clearLoop()
			}
			done(func() { k(res, err) })
		})
	})
}

// writeOK proposes a transaction and calls k with its result if it
// succeeded; otherwise it writes the error reply.
func (c *conn) writeOK(tx command.Tx, k func(res command.TxResult)) {
	c.write(tx, func(res command.TxResult, err error) {
		if err == nil {
			err = res.Err
		}
		if err != nil {
			c.out = resp.AppendError(c.out, errorText(err, ""))
			return
		}
		k(res)
	})
}

// readNow runs a read-only command if the node can answer it at once, and
// reports whether it did; the caller then replies with r. The common read
// (on a leader that is the only voter) takes this path: no callback, no
// allocation.
func (c *conn) readNow(cmd command.Cmd) (r command.Result, ok bool) {
	c.readCmd = cmd
	r, ok = c.srv.node.ReadNow(&c.readCmd)
	c.readCmd = command.Cmd{}
	return r, ok
}

// read runs a read-only command and calls k with its result, or writes the
// error reply.
//
// The node takes the command by pointer, which would move every read's
// command to the heap; the connection's own copy does not. A read on the
// leader completes before ReadAsync returns; one that waits for a read
// barrier completes later, and the connection waits for it.
func (c *conn) read(cmd command.Cmd, k func(r command.Result)) {
	c.readCmd = cmd
	c.Await(func(done func(func())) {
		c.srv.node.ReadAsync(&c.readCmd, func(r command.Result, err error) {
			done(func() {
				c.readCmd = command.Cmd{}
				if err != nil {
					c.out = resp.AppendError(c.out, errorText(err, ""))
					return
				}
				k(r)
			})
		})
	})
}

// offload runs get, which may wait for other nodes (the discovery
// commands ask members for their addresses), on a goroutine of its own,
// then k with its value on the connection's driver.
func offload[T any](c *conn, get func() T, k func(T)) {
	c.Await(func(done func(func())) {
		go func() {
			v := get()
			done(func() { k(v) })
		}()
	})
}

func isLoopback(a net.Addr) bool {
	switch t := a.(type) {
	case *net.TCPAddr:
		return t.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}

// deniedMsg is redis-server's protected-mode reply, naming hatcheck's own
// settings.
const deniedMsg = "DENIED hatcheck is running in protected mode because no password is set " +
	"for the default user. In this mode connections are only accepted from the loopback " +
	"interface. If you want to connect from external computers, set a password with " +
	"--requirepass (or HATCHECK_REQUIREPASS) and use AUTH, or bind the server to loopback only."

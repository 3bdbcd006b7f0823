package redis

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/netserve"
	"github.com/hatcheck/hatcheck/internal/resp"
)

const (
	readChunk  = 16 * 1024
	flushAfter = 64 * 1024
)

// conn is one client connection and its state. Only its own goroutine
// touches it, except shutdown and the fields CLIENT LIST reads atomically.
type conn struct {
	srv  *Server
	nc   net.Conn
	id   int64
	addr string

	buf     []byte      // unparsed input
	readCmd command.Cmd // the read being run (see read)
	out     []byte      // replies not yet written
	args    [][]byte

	// Fields CLIENT LIST reads from other connections' goroutines are
	// atomics; only this connection's goroutine writes them.
	db      atomic.Int32
	authed  bool
	name    atomic.Value // string
	libName atomic.Value // string
	libVer  atomic.Value // string
	created time.Time
	lastCmd atomic.Pointer[string] // a cmdSpec's name (no allocation per command)

	multi      bool
	multiDirty bool
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
	more       bool // requests follow the one being dispatched
	batch      command.Tx
	batchSpecs []*cmdSpec
	batched    bool // the command just dispatched joined the batch

	channels map[string]bool // SUBSCRIBEd channels
	patterns map[string]bool // PSUBSCRIBEd patterns
	wmu      sync.Mutex      // serializes socket writes with pub/sub pushes

	closing  atomic.Bool // server shutdown asked
	quit     bool        // close after the reply is written
	protoErr bool
}

type queued struct {
	spec *cmdSpec
	args [][]byte
}

// noCommandYet is CLIENT LIST's cmd= before the first command.
var noCommandYet = "NULL"

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, id: s.nextID.Add(1), addr: nc.RemoteAddr().String(), created: time.Now()}
	c.authed = s.cfg.RequirePass == ""
	c.name.Store("")
	c.libName.Store("")
	c.libVer.Store("")
	c.lastCmd.Store(&noCommandYet)
	return c
}

// Shutdown asks the connection to stop after the command it is running.
func (c *conn) Shutdown() {
	c.closing.Store(true)
	_ = c.nc.SetReadDeadline(time.Now())
}

// Close closes the connection's socket at once.
func (c *conn) Close() error { return c.nc.Close() }

func (c *conn) limits() resp.Limits {
	cfg := &c.srv.cfg
	return resp.Limits{MaxMultibulk: cfg.MaxMultibulk, MaxBulk: cfg.MaxBulk, MaxInline: cfg.MaxInline, Unauthenticated: !c.authed}
}

// Serve handles the client until it leaves or Shutdown is called.
func (c *conn) Serve() {
	defer c.nc.Close()
	defer c.leaveChannels()
	if m := c.srv.cfg.Metrics; m != nil {
		m.Connections(1)
		defer m.Connections(-1)
	}
	if c.srv.cfg.RequirePass == "" && !isLoopback(c.nc.RemoteAddr()) {
		_, _ = c.nc.Write([]byte("-" + deniedMsg + "\r\n"))
		return
	}
	c.buf = make([]byte, 0, readChunk)
	for {
		start := 0
		for start < len(c.buf) && !c.quit && !c.closing.Load() {
			args, n, err := resp.Parse(c.buf[start:], c.limits(), c.args)
			c.args = args
			if errors.Is(err, resp.ErrIncomplete) {
				break
			}
			if err != nil {
				// A framing error leaves the stream unusable: reply and
				// close, as redis-server does.
				c.runBatch()
				c.out = resp.AppendError(c.out, "ERR "+err.Error())
				c.quit = true
				break
			}
			start += n
			c.more = start < len(c.buf)
			if len(args) > 0 {
				c.dispatch(args)
			}
			if len(c.out) >= flushAfter {
				if !c.flush() {
					return
				}
			}
		}
		c.runBatch()
		if !c.flush() || c.quit || c.closing.Load() {
			return
		}
		// Keep the unparsed tail at the front of the buffer.
		c.buf = c.buf[:copy(c.buf, c.buf[start:])]
		if len(c.buf) >= c.srv.cfg.QueryBufLimit {
			c.srv.log.Warn("closing client: query buffer limit reached", "conn", c.id, "addr", c.addr, "bytes", len(c.buf))
			return
		}
		if cap(c.buf)-len(c.buf) < readChunk {
			nb := make([]byte, len(c.buf), min(2*cap(c.buf)+readChunk, c.srv.cfg.QueryBufLimit+readChunk))
			copy(nb, c.buf)
			c.buf = nb
		}
		if t := time.Duration(c.srv.timeout.Load()); t > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(t))
		} else {
			_ = c.nc.SetReadDeadline(time.Time{})
		}
		if c.closing.Load() {
			return
		}
		netserve.YieldBeforeRead()
		n, err := c.nc.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		if err != nil && n == 0 {
			return
		}
	}
}

func (c *conn) flush() bool {
	if len(c.out) == 0 {
		return true
	}
	c.wmu.Lock()
	_, err := c.nc.Write(c.out)
	c.wmu.Unlock()
	if cap(c.out) > 1<<20 {
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
	return err == nil
}

// dispatch runs one request: lookup, arity, auth, MULTI queueing, then the
// command itself.
func (c *conn) dispatch(args [][]byte) {
	c.srv.totalCmds.Add(1)
	name := strings.ToLower(string(args[0]))
	spec := commands[name]
	if len(c.batch) > 0 && !c.joinsBatch(spec, len(args)) {
		c.runBatch()
	}
	if spec == nil {
		c.abortMulti()
		c.out = resp.AppendError(c.out, unknownCommand(args))
		return
	}
	if !c.authed && spec.flags&flagNoAuth == 0 {
		c.abortMulti()
		c.out = resp.AppendError(c.out, "NOAUTH Authentication required.")
		return
	}
	if !spec.arityOK(len(args)) {
		c.abortMulti()
		c.out = resp.AppendError(c.out, arityError(spec.name))
		return
	}
	if c.subscribed() {
		if ok, msg := subscribedOnly(spec.name); !ok {
			c.out = resp.AppendError(c.out, msg)
			return
		}
	}
	c.lastCmd.Store(&spec.name)
	if c.multi && spec.flags&flagNoQueue == 0 {
		c.queue(spec, args)
		return
	}
	start := time.Now()
	before := len(c.out)
	spec.run(c, args)
	if c.batched {
		c.batched = false // runBatch records it
		return
	}
	if m := c.srv.cfg.Metrics; m != nil {
		m.Command(spec.name, time.Since(start), bytes.HasPrefix(c.out[before:], []byte{'-'}))
	}
}

// joinsBatch reports whether a request will reach runData, which decides
// whether it joins the pending batch, rather than answer by itself.
func (c *conn) joinsBatch(spec *cmdSpec, nargs int) bool {
	return spec != nil && spec.data && c.authed && spec.arityOK(nargs) && !c.subscribed() && !c.multi
}

// maxBatch bounds the commands of one pipeline batch.
const maxBatch = 256

func (c *conn) addToBatch(spec *cmdSpec, cmd command.Cmd) {
	// Build may alias the parser's argument slice, which the next request
	// reuses; the bytes themselves stay in c.buf until the batch has run.
	cmd.Args = append([][]byte(nil), cmd.Args...)
	c.batch = append(c.batch, cmd)
	c.batchSpecs = append(c.batchSpecs, spec)
	c.batched = true
	if len(c.batch) >= maxBatch {
		c.runBatch()
	}
}

// runBatch runs the pending batch as one transaction and appends each
// command's reply in order.
func (c *conn) runBatch() {
	if len(c.batch) == 0 {
		return
	}
	tx, specs := c.batch, c.batchSpecs
	defer func() {
		clear(tx)
		c.batch, c.batchSpecs = tx[:0], specs[:0]
	}()
	start := time.Now()
	res, err := c.srv.node.Write(context.Background(), tx)
	if err == nil && errors.Is(res.Err, command.ErrOOM) {
		// Refused whole before anything ran: run the commands one by one,
		// so that reads and commands allowed over maxmemory still answer.
		for i := range tx {
			c.runOne(specs[i], tx[i])
		}
		return
	}
	if err == nil {
		err = res.Err
	}
	took := time.Since(start)
	for i, spec := range specs {
		failed := err != nil || res.Results[i].Kind == command.KindError
		if err != nil {
			c.out = resp.AppendError(c.out, errorText(err, ""))
		} else {
			c.replyResult(spec, res.Results[i])
		}
		if m := c.srv.cfg.Metrics; m != nil {
			m.Command(spec.name, took, failed)
		}
	}
}

// queue adds a command to the open transaction after checking it the way
// redis-server does before answering QUEUED: syntax errors are reported now
// and make EXEC fail with EXECABORT.
func (c *conn) queue(spec *cmdSpec, args [][]byte) {
	if spec.build != nil {
		if _, msg := spec.build(c, args); msg != "" {
			c.multiDirty = true
			c.out = resp.AppendError(c.out, msg)
			return
		}
	}
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

// write proposes a transaction and returns its results, or writes the
// error reply and returns false.
func (c *conn) write(tx command.Tx) (command.TxResult, bool) {
	res, err := c.srv.node.Write(context.Background(), tx)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		c.out = resp.AppendError(c.out, errorText(err, ""))
		return res, false
	}
	return res, true
}

// read runs a read-only command, or writes the error reply and returns false.
//
// The node takes the command by pointer through an interface, which would
// move every read's command to the heap; the connection's own copy does not.
func (c *conn) read(cmd command.Cmd) (command.Result, bool) {
	c.readCmd = cmd
	r, err := c.srv.node.Read(context.Background(), &c.readCmd)
	c.readCmd = command.Cmd{}
	if err != nil {
		c.out = resp.AppendError(c.out, errorText(err, ""))
		return r, false
	}
	return r, true
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

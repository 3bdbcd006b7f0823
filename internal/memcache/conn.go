package memcache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/netserve"
)

// conn is one client connection: a state machine over bytes that a
// netserve driver runs (see redis's conn for the model). A request that
// waits for its commit or read barrier stops the parsing; its completion
// wakes the driver, which runs the continuation and goes on, so replies
// leave in request order and no loop ever blocks.
type conn struct {
	srv     *Server
	link    netserve.Link
	buf     []byte // input; buf[start:] is not parsed yet
	start   int
	out     []byte
	opened  bool
	binary  bool
	decided bool
	authed  bool
	swallow int         // input bytes still to discard (an oversized value)
	toks    [][]byte    // the text request's tokens (see parseText)
	readCmd command.Cmd // the read being run (see read)
	quit    bool
	closing atomic.Bool

	netserve.Waiter // the request in flight, if any
	// The request whose reply a continuation writes, for metrics.
	waitName  string
	waitStart time.Time
}

func newConn(s *Server, l netserve.Link) *conn {
	if m := s.cfg.Metrics; m != nil {
		m.Connections(1)
	}
	c := &conn{srv: s, link: l, toks: make([][]byte, 0, 8)}
	c.Waiter.Link = l
	return c
}

// Shutdown asks the connection to stop after the request it is running.
func (c *conn) Shutdown() { c.closing.Store(true) }

// Closed is called once the connection has ended.
func (c *conn) Closed() {
	if m := c.srv.cfg.Metrics; m != nil {
		m.Connections(-1)
	}
}

// maxBody bounds a binary body that is buffered: the largest item plus
// room for its key and extras.
func (c *conn) maxBody() int { return c.srv.cfg.MaxItemSize + maxKeyLen + 64 }

// Run takes the client's new bytes, runs every complete request and
// returns the replies (see netserve.Session).
func (c *conn) Run(in []byte) ([]byte, bool) {
	c.out = c.out[:0]
	if !c.opened {
		c.opened = true
		if c.srv.open() && !isLoopback(c.link.RemoteAddr()) {
			return append(c.out, "SERVER_ERROR hatcheck is in protected mode: no password is set, so only loopback clients are served; set --requirepass to accept others\r\n"...), true
		}
	}
	m := c.srv.cfg.Metrics
	if m != nil && len(in) > 0 {
		m.Bytes(len(in), 0)
	}
	c.buf = append(c.buf, in...)
	done := false
	if !c.Busy() || c.resume() {
		done = c.process() != nil
	}
	if m != nil && len(c.out) > 0 {
		m.Bytes(0, len(c.out))
	}
	if c.Busy() {
		return c.out, false
	}
	n := copy(c.buf, c.buf[c.start:])
	c.buf, c.start = c.buf[:n], 0
	if n == 0 && cap(c.buf) > 1<<20 {
		c.buf = nil
	}
	return c.out, done || c.quit || c.closing.Load()
}

// process handles every complete request in the buffer; an error means
// the connection must close.
func (c *conn) process() error {
	for c.start < len(c.buf) && !c.quit && !c.closing.Load() && !c.Busy() {
		if c.swallow > 0 {
			n := min(c.swallow, len(c.buf)-c.start)
			c.swallow -= n
			c.start += n
			continue
		}
		if !c.decided {
			c.binary, c.decided = c.buf[c.start] == magicRequest, true
		}
		var n int
		var err error
		if c.binary {
			n, err = c.binaryRequest(c.buf[c.start:])
		} else {
			n, err = c.textRequest(c.buf[c.start:])
		}
		if errors.Is(err, errIncomplete) {
			break
		}
		c.start += n
		if errors.Is(err, errHTTP) {
			c.out = c.out[:0]
		}
		if err != nil {
			return err
		}
		if c.Busy() {
			break
		}
	}
	return nil
}

// resume runs a handed-over continuation, if any, and reports whether it
// did.
func (c *conn) resume() bool {
	if !c.Resume() {
		return false
	}
	if !c.Busy() && c.waitName != "" {
		c.observe(c.waitName, c.waitStart, c.failed(c.out))
		c.waitName = ""
	}
	return true
}

// observeRequest records a request that answered now, or marks it for
// resume to record when it waits.
func (c *conn) observeRequest(name string, start time.Time, reply []byte) {
	if c.Busy() {
		c.waitName, c.waitStart = name, start
		return
	}
	c.observe(name, start, c.failed(reply))
}

// failed reports whether a reply is an error, in the connection's protocol.
func (c *conn) failed(reply []byte) bool {
	if c.binary {
		return len(reply) > 7 && binary.BigEndian.Uint16(reply[6:8]) != stOK
	}
	return bytes.Contains(reply, []byte("ERROR"))
}

// write proposes one command; k gets its result or error (a command's own
// error result included) on the connection's driver.
func (c *conn) write(cmd command.Cmd, k func(command.Result, error)) {
	c.writeTx(command.Tx{cmd}, func(res command.TxResult, err error) {
		if err != nil {
			k(command.Result{}, err)
			return
		}
		r := res.Results[0]
		if r.Kind == command.KindError {
			k(r, r.Err)
			return
		}
		k(r, nil)
	})
}

// writeTx proposes a transaction; k gets its result or the error that
// failed it whole.
func (c *conn) writeTx(tx command.Tx, k func(command.TxResult, error)) {
	c.Await(func(done func(func())) {
		c.srv.node.WriteAsync(tx, func(res command.TxResult, err error) {
			if err == nil {
				err = res.Err
			}
			done(func() { k(res, err) })
		})
	})
}

// dropKey deletes key after a set that was refused as too large, as
// memcached does so that a failed set never leaves the old value readable;
// then runs k.
func (c *conn) dropKey(key []byte, k func()) {
	c.write(command.Cmd{Op: command.OpMCDelete, Key: key}, func(_ command.Result, err error) {
		if err != nil {
			c.srv.log.Warn("dropping the old value of a refused set failed", "err", err)
		}
		k()
	})
}

// read runs a read-only command on the node; k gets its result on the
// connection's driver. The node takes the command by pointer, which would
// move every read's command to the heap; the connection's own copy does
// not.
//
// A read the node answers at once (on a leader that is the only voter)
// calls k directly, with no callback through the node.
func (c *conn) read(cmd command.Cmd, k func(command.Result, error)) {
	c.readCmd = cmd
	if r, ok := c.srv.node.ReadNow(&c.readCmd); ok {
		c.readCmd = command.Cmd{}
		k(r, nil)
		return
	}
	c.Await(func(done func(func())) {
		c.srv.node.ReadAsync(&c.readCmd, func(r command.Result, err error) {
			done(func() {
				c.readCmd = command.Cmd{}
				k(r, err)
			})
		})
	})
}

// expiry converts a memcached exptime: 0 never, up to 30 days relative,
// larger an absolute Unix time; negative is already expired.
func expiry(exptime int64, cmd *command.Cmd) {
	switch {
	case exptime == 0:
	case exptime < 0:
		cmd.Flags |= command.FlagExpireAbs
		cmd.N = 1
	case exptime <= 30*24*3600:
		cmd.Flags |= command.FlagExpireRel
		cmd.N = exptime * 1000
	default:
		cmd.Flags |= command.FlagExpireAbs
		cmd.N = exptime * 1000
	}
}

func isLoopback(a net.Addr) bool {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.IsLoopback()
	}
	return true
}

func (c *conn) observe(name string, start time.Time, failed bool) {
	if m := c.srv.cfg.Metrics; m != nil {
		m.Command(name, time.Since(start), failed)
	}
}

func (c *conn) lookups(hits, misses int) {
	c.srv.hits.Add(int64(hits))
	c.srv.misses.Add(int64(misses))
	if m := c.srv.cfg.Metrics; m != nil {
		m.Lookups(hits, misses)
	}
}

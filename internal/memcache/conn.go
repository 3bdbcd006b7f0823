package memcache

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/netserve"
)

const readChunk = 16 * 1024

// conn is one client connection; only its goroutine touches it.
type conn struct {
	srv     *Server
	nc      net.Conn
	buf     []byte
	out     []byte
	binary  bool
	decided bool
	authed  bool
	swallow int         // input bytes still to discard (an oversized value)
	toks    [][]byte    // the text request's tokens (see parseText)
	readCmd command.Cmd // the read being run (see read)
	quit    bool
	closing atomic.Bool
}

// Shutdown asks the connection to stop after the request it is running.
func (c *conn) Shutdown() {
	c.closing.Store(true)
	_ = c.nc.SetReadDeadline(time.Now())
}

// maxBody bounds a binary body that is buffered: the largest item plus
// room for its key and extras.
func (c *conn) maxBody() int { return c.srv.cfg.MaxItemSize + maxKeyLen + 64 }

// Close closes the connection's socket at once.
func (c *conn) Close() error { return c.nc.Close() }

// Serve handles the client until it leaves or Shutdown is called.
func (c *conn) Serve() {
	defer c.nc.Close()
	m := c.srv.cfg.Metrics
	if m != nil {
		m.Connections(1)
		defer m.Connections(-1)
	}
	if c.srv.cfg.RequirePass == "" && !isLoopback(c.nc.RemoteAddr()) {
		_, _ = c.nc.Write([]byte("SERVER_ERROR hatcheck is in protected mode: no password is set, so only loopback clients are served; set --requirepass to accept others\r\n"))
		return
	}
	c.buf = make([]byte, 0, readChunk)
	c.toks = make([][]byte, 0, 8)
	for {
		used, err := c.process()
		if m != nil && len(c.out) > 0 {
			m.Bytes(0, len(c.out))
		}
		if !c.flush() || err != nil || c.quit || c.closing.Load() {
			return
		}
		c.buf = c.buf[:copy(c.buf, c.buf[used:])]
		if cap(c.buf)-len(c.buf) < readChunk {
			nb := make([]byte, len(c.buf), 2*cap(c.buf)+readChunk)
			copy(nb, c.buf)
			c.buf = nb
		}
		if t := c.srv.cfg.Timeout; t > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(t))
		}
		netserve.YieldBeforeRead()
		n, rerr := c.nc.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		if m != nil {
			m.Bytes(n, 0)
		}
		if rerr != nil && n == 0 {
			return
		}
	}
}

// process handles every complete request in the buffer and returns the
// bytes used; an error means the connection must close.
func (c *conn) process() (int, error) {
	pos := 0
	for pos < len(c.buf) && !c.quit && !c.closing.Load() {
		if c.swallow > 0 {
			n := min(c.swallow, len(c.buf)-pos)
			c.swallow -= n
			pos += n
			continue
		}
		if !c.decided {
			c.binary, c.decided = c.buf[pos] == magicRequest, true
		}
		var n int
		var err error
		if c.binary {
			n, err = c.binaryRequest(c.buf[pos:])
		} else {
			n, err = c.textRequest(c.buf[pos:])
		}
		if errors.Is(err, errIncomplete) {
			break
		}
		if err != nil {
			return pos, err
		}
		pos += n
	}
	return pos, nil
}

func (c *conn) flush() bool {
	if len(c.out) == 0 {
		return true
	}
	_, err := c.nc.Write(c.out)
	c.out = c.out[:0]
	return err == nil
}

// write proposes one command and returns its result or an error.
func (c *conn) write(cmd command.Cmd) (command.Result, error) {
	res, err := c.srv.node.Write(context.Background(), command.Tx{cmd})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return command.Result{}, err
	}
	r := res.Results[0]
	if r.Kind == command.KindError {
		return r, r.Err
	}
	return r, nil
}

// dropKey deletes key after a set that was refused as too large, as
// memcached does so that a failed set never leaves the old value readable.
func (c *conn) dropKey(key []byte) {
	if _, err := c.write(command.Cmd{Op: command.OpMCDelete, Key: key}); err != nil {
		c.srv.log.Warn("dropping the old value of a refused set failed", "err", err)
	}
}

// read runs a read-only command on the node. The node takes the command by
// pointer through an interface, which would move every read's command to
// the heap; the connection's own copy does not.
func (c *conn) read(cmd command.Cmd) (command.Result, error) {
	c.readCmd = cmd
	r, err := c.srv.node.Read(context.Background(), &c.readCmd)
	c.readCmd = command.Cmd{}
	return r, err
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

package memcache

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
)

// textRequest parses and runs one text request.
func (c *conn) textRequest(buf []byte) (int, error) {
	r, n, err := parseText(buf, c.srv.cfg.MaxItemSize, c.toks)
	if err != nil {
		return n, err
	}
	if r.errReply != "" {
		c.swallow = r.swallow
		answer := func() {
			if !r.noreply {
				c.line(r.errReply)
			}
		}
		if r.dropKey != nil && c.authed {
			c.dropKey(r.dropKey, answer)
		} else {
			answer()
		}
		return n, nil
	}
	start := time.Now()
	before := len(c.out)
	if !c.authed {
		c.textLogin(r)
	} else {
		c.runText(r)
	}
	c.observeRequest(r.cmd, start, c.out[before:])
	return n, nil
}

func (c *conn) line(s string) { c.out = append(append(c.out, s...), '\r', '\n') }

// textLogin implements memcached's text authentication: with a password
// set, a client first sends "set <any key> <flags> <exptime> <bytes>" whose
// data is "<username> <password>".
func (c *conn) textLogin(r textReq) {
	if r.cmd != "set" {
		c.line("CLIENT_ERROR unauthenticated")
		return
	}
	user, pass, ok := bytes.Cut(r.data, []byte(" "))
	if !ok || len(user) == 0 || !c.srv.login(user, bytes.TrimRight(pass, "\r\n")) {
		c.srv.log.Warn("memcache authentication failed", "addr", c.link.RemoteAddr().String())
		c.line("CLIENT_ERROR authentication failure")
		return
	}
	c.authed = true
	c.line("STORED")
}

func (c *conn) runText(r textReq) {
	a := r.args
	switch r.cmd {
	case "get", "gets":
		c.textGet(a, r.cmd == "gets", nil)
	case "gat", "gats":
		if len(a) < 2 {
			c.line("ERROR")
			return
		}
		exp, err := strconv.ParseInt(string(a[0]), 10, 64)
		if err != nil {
			c.line("CLIENT_ERROR invalid exptime argument")
			return
		}
		c.textGet(a[1:], r.cmd == "gats", &exp)
	case "set", "add", "replace", "append", "prepend", "cas":
		c.textStore(r)
	case "delete":
		if len(a) == 0 {
			c.line("ERROR")
			return
		}
		noreply := len(a) > 1 && string(a[len(a)-1]) == "noreply"
		rest := a[1:]
		if noreply {
			rest = rest[:len(rest)-1]
		}
		if len(rest) > 1 || (len(rest) == 1 && string(rest[0]) != "0") {
			c.line("CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]")
			return
		}
		if !validKey(a[0]) {
			c.line("CLIENT_ERROR bad command line format")
			return
		}
		c.write(command.Cmd{Op: command.OpMCDelete, Key: a[0]}, func(res command.Result, err error) {
			c.reply(noreply, err, func() string {
				if res.Int == command.NotFound {
					return "NOT_FOUND"
				}
				return "DELETED"
			})
		})
	case "incr", "decr":
		noreply, ok := c.keyAndArg(a)
		if !ok {
			return
		}
		delta, ok := command.ParseUint(a[1])
		if !ok {
			c.line("CLIENT_ERROR invalid numeric delta argument")
			return
		}
		cmd := command.Cmd{Op: command.OpMCIncr, Key: a[0], Delta: delta}
		if r.cmd == "decr" {
			cmd.Flags = command.FlagDecr
		}
		c.write(cmd, func(res command.Result, err error) {
			c.reply(noreply, err, func() string {
				if res.Int == command.NotFound {
					return "NOT_FOUND"
				}
				return string(res.Bulk)
			})
		})
	case "touch":
		noreply, ok := c.keyAndArg(a)
		if !ok {
			return
		}
		exp, err := strconv.ParseInt(string(a[1]), 10, 64)
		if err != nil {
			c.line("CLIENT_ERROR invalid exptime argument")
			return
		}
		cmd := touchCmd(a[0], exp)
		c.write(cmd, func(res command.Result, err error) {
			c.reply(noreply, err, func() string {
				if res.Int == command.NotFound {
					return "NOT_FOUND"
				}
				return "TOUCHED"
			})
		})
	case "version":
		c.line("VERSION " + Version)
	case "verbosity":
		if len(a) == 0 || len(a) > 2 {
			c.line("ERROR")
			return
		}
		if !(len(a) == 2 && string(a[1]) == "noreply") && !(len(a) == 1 && string(a[0]) == "noreply") {
			c.line("OK")
		}
	case "flush_all":
		noreply := len(a) > 0 && string(a[len(a)-1]) == "noreply"
		if noreply {
			a = a[:len(a)-1]
		}
		var delay int64
		if len(a) > 1 {
			c.line("ERROR")
			return
		}
		if len(a) == 1 {
			var err error
			if delay, err = strconv.ParseInt(string(a[0]), 10, 64); err != nil {
				c.line("CLIENT_ERROR bad command line format")
				return
			}
		}
		if delay > 0 {
			c.srv.scheduleFlush(time.Duration(delay) * time.Second)
			if !noreply {
				c.line("OK")
			}
			return
		}
		c.write(command.Cmd{Op: command.OpFlushDB}, func(_ command.Result, err error) {
			c.reply(noreply, err, func() string { return "OK" })
		})
	case "stats":
		c.textStats(a)
	case "quit":
		c.quit = true
	case "mg", "md", "ma", "mn", "me":
		c.runMeta(r)
	case "ms":
		c.metaSet(r)
	default:
		c.line("ERROR")
	}
}

// keyAndArg checks the "<key> <arg> [noreply]" arguments of incr, decr and
// touch, answering a malformed line as memcached does.
func (c *conn) keyAndArg(a [][]byte) (noreply, ok bool) {
	if len(a) != 2 && len(a) != 3 {
		c.line("ERROR")
		return false, false
	}
	if !validKey(a[0]) {
		c.line("CLIENT_ERROR bad command line format")
		return false, false
	}
	return len(a) == 3 && string(a[2]) == "noreply", true
}

// touchCmd builds a touch: exptime 0 removes the expiry.
func touchCmd(key []byte, exp int64) command.Cmd {
	cmd := command.Cmd{Op: command.OpTouch, Key: key}
	if exp == 0 {
		cmd.Flags = command.FlagPersist
	} else {
		expiry(exp, &cmd)
	}
	return cmd
}

// reply writes the outcome of a write unless noreply; errors are always
// reported as memcached reports server trouble.
func (c *conn) reply(noreply bool, err error, ok func() string) {
	switch {
	case errors.Is(err, command.ErrNotNumeric):
		c.line("CLIENT_ERROR cannot increment or decrement non-numeric value")
	case errors.Is(err, command.ErrOOM):
		c.line("SERVER_ERROR out of memory storing object")
	case err != nil:
		c.line("SERVER_ERROR " + err.Error())
	case !noreply:
		c.line(ok())
	}
}

// textGet answers get/gets, and gat/gats when exp is set.
func (c *conn) textGet(keys [][]byte, withCAS bool, exp *int64) {
	if len(keys) == 0 {
		c.line("ERROR")
		return
	}
	for _, k := range keys {
		if !validKey(k) {
			c.line("CLIENT_ERROR bad command line format")
			return
		}
	}
	if exp == nil {
		c.read(command.Cmd{Op: command.OpMGet, Args: keys}, func(res command.Result, err error) {
			if err != nil {
				c.line("SERVER_ERROR " + err.Error())
				return
			}
			c.srv.cmdGet.Add(int64(len(keys)))
			c.textValues(keys, res.Array, withCAS)
		})
		return
	}
	// gat/gats: one transaction of a get-and-touch per key.
	tx := make(command.Tx, len(keys))
	for i, k := range keys {
		tx[i] = command.Cmd{Op: command.OpGetEx, Key: k}
		if *exp == 0 {
			tx[i].Flags = command.FlagPersist
		} else {
			expiry(*exp, &tx[i])
		}
	}
	c.writeTx(tx, func(res command.TxResult, err error) {
		if err == nil {
			for _, r := range res.Results {
				if r.Kind == command.KindError && !errors.Is(r.Err, command.ErrWrongType) {
					err = r.Err
					break
				}
			}
		}
		if err != nil {
			c.line("SERVER_ERROR " + err.Error())
			return
		}
		c.textValues(keys, res.Results, withCAS)
	})
}

// textValues writes get's VALUE lines for the hits and the closing END.
func (c *conn) textValues(keys [][]byte, results []command.Result, withCAS bool) {
	hits := 0
	for i, r := range results {
		if r.Kind != command.KindBulk {
			continue
		}
		hits++
		c.out = append(c.out, "VALUE "...)
		c.out = append(c.out, keys[i]...)
		c.out = fmt.Appendf(c.out, " %d %d", r.Flags, len(r.Bulk))
		if withCAS {
			c.out = fmt.Appendf(c.out, " %d", r.CAS)
		}
		c.out = append(c.out, '\r', '\n')
		c.out = append(c.out, r.Bulk...)
		c.out = append(c.out, '\r', '\n')
	}
	c.lookups(hits, len(results)-hits)
	c.line("END")
}

func (c *conn) textStore(r textReq) {
	a := r.args
	// memcached keeps the low 32 bits of a larger flags value.
	flags, _ := strconv.ParseUint(string(a[1]), 10, 64)
	exp, _ := strconv.ParseInt(string(a[2]), 10, 64)
	cmd := command.Cmd{Op: command.OpMCStore, Key: a[0], Args: [][]byte{r.data}, ClientFlags: uint32(flags)}
	switch r.cmd {
	case "add":
		cmd.Flags = command.FlagNX
	case "replace":
		cmd.Flags = command.FlagXX
	case "append":
		cmd.Flags = command.FlagAppend
	case "prepend":
		cmd.Flags = command.FlagPrepend
	case "cas":
		cmd.CAS, _ = strconv.ParseUint(string(a[4]), 10, 64)
		if cmd.CAS == 0 {
			// No item ever has CAS 0; compare with a value none has.
			cmd.CAS = math.MaxUint64
		}
	}
	if r.cmd != "append" && r.cmd != "prepend" {
		expiry(exp, &cmd)
	}
	c.srv.cmdSet.Add(1)
	c.write(cmd, func(res command.Result, err error) {
		c.reply(r.noreply, err, func() string {
			return [...]string{command.Stored: "STORED", command.NotStored: "NOT_STORED", command.Exists: "EXISTS", command.NotFound: "NOT_FOUND"}[res.Int]
		})
	})
}

func (c *conn) textStats(a [][]byte) {
	if len(a) > 0 {
		switch string(a[0]) {
		case "reset":
			c.line("RESET")
		case "settings":
			c.line(fmt.Sprintf("STAT maxconns %d", c.srv.cfg.MaxClients))
			c.line(fmt.Sprintf("STAT item_size_max %d", c.srv.cfg.MaxItemSize))
			c.line("END")
		case "items", "slabs", "sizes", "conns":
			c.line("END")
		default:
			c.line("ERROR")
		}
		return
	}
	for _, kv := range c.srv.stats() {
		c.line("STAT " + kv[0] + " " + kv[1])
	}
	c.line("END")
}

// stats lists the general statistics, shared by text "stats" and binary STAT.
func (s *Server) stats() [][2]string {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	now := time.Now()
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	return [][2]string{
		{"pid", i(int64(os.Getpid()))},
		{"uptime", i(int64(now.Sub(s.started).Seconds()))},
		{"time", i(now.Unix())},
		{"version", Version},
		{"pointer_size", "64"},
		{"rusage_user", fmt.Sprintf("%.6f", time.Duration(ru.Utime.Nano()).Seconds())},
		{"rusage_system", fmt.Sprintf("%.6f", time.Duration(ru.Stime.Nano()).Seconds())},
		{"max_connections", i(int64(s.cfg.MaxClients))},
		{"curr_connections", i(int64(s.conns.Len()))},
		{"total_connections", i(s.conns.Accepted())},
		{"cmd_get", i(s.cmdGet.Load())},
		{"cmd_set", i(s.cmdSet.Load())},
		{"get_hits", i(s.hits.Load())},
		{"get_misses", i(s.misses.Load())},
		{"threads", "1"},
	}
}

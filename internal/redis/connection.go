package redis

import (
	"fmt"
	"strings"
	"time"

	"github.com/hatcheck/hatcheck/internal/resp"
)

// RedisVersion is the redis-server version whose behaviour hatcheck
// reproduces; clients read it from INFO and HELLO to pick features.
const RedisVersion = "7.0.15"

// Connection commands.
func connectionCommands() []*cmdSpec {
	const acl = aclConnection
	handshake := flagNoScript | flagLoading | flagStale | flagFast | flagNoAuth | flagAllowBusy | flagNoQueue
	return []*cmdSpec{
		{name: "auth", arity: -2, flags: handshake, acl: acl, run: runAuth},
		{name: "hello", arity: -1, flags: handshake, acl: acl, run: runHello},
		{name: "quit", arity: -1, flags: handshake, acl: acl, run: runQuit},
		{name: "ping", arity: -1, flags: flagFast, acl: acl, tips: tipsAllShardsSucceeded, run: runPing},
		{name: "echo", arity: 2, flags: flagLoading | flagStale | flagFast, acl: acl, run: runEcho},
		{name: "select", arity: 2, flags: flagLoading | flagStale | flagFast, acl: acl, run: runSelect},
		{name: "readonly", arity: 1, flags: flagLoading | flagStale | flagFast, acl: acl, run: runClusterDisabled},
		{name: "readwrite", arity: 1, flags: flagLoading | flagStale | flagFast, acl: acl, run: runClusterDisabled},
		// A container command: its subcommands have their own flags.
		{name: "client", arity: -2, run: runClient},
	}
}

func runEcho(c *conn, a [][]byte) { c.out = resp.AppendBulk(c.out, a[1]) }

func runQuit(c *conn, _ [][]byte) {
	c.out = resp.AppendSimple(c.out, "OK")
	c.quit = true
}

func runAuth(c *conn, a [][]byte) {
	if len(a) > 3 {
		c.out = resp.AppendError(c.out, errSyntax)
		return
	}
	if msg := c.authenticate(a[1:]); msg != "" {
		c.out = resp.AppendError(c.out, msg)
		return
	}
	c.out = resp.AppendSimple(c.out, "OK")
}

// authenticate checks AUTH's [user] password. Only the "default" user
// exists, as in a redis-server configured with requirepass.
func (c *conn) authenticate(a [][]byte) string {
	if c.srv.cfg.RequirePass == "" {
		if len(a) == 1 {
			return "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
		}
		if string(a[0]) == "default" {
			c.authed = true
			return ""
		}
		return errWrongPass
	}
	pass := a[len(a)-1]
	userOK := len(a) == 1 || string(a[0]) == "default"
	if !c.srv.checkPassword(pass) || !userOK {
		c.srv.log.Warn("authentication failed", "conn", c.id, "addr", c.addr)
		return errWrongPass
	}
	c.authed = true
	return ""
}

func runHello(c *conn, a [][]byte) {
	proto := c.protocol()
	if len(a) >= 2 {
		v, ok := parseInt(a[1])
		if !ok {
			c.out = resp.AppendError(c.out, "ERR Protocol version is not an integer or out of range")
			return
		}
		if v != 2 && v != 3 {
			c.out = resp.AppendError(c.out, "NOPROTO unsupported protocol version")
			return
		}
		proto = int(v)
	}
	var name []byte
	var setName bool
	for i := 2; i < len(a); i++ {
		switch {
		case eq(a[i], "AUTH") && i+2 < len(a):
			if msg := c.authenticate(a[i+1 : i+3]); msg != "" {
				c.out = resp.AppendError(c.out, msg)
				return
			}
			i += 2
		case eq(a[i], "SETNAME") && i+1 < len(a):
			name, setName = a[i+1], true
			i++
		default:
			c.out = resp.AppendError(c.out, "ERR Syntax error in HELLO option '"+string(a[i])+"'")
			return
		}
	}
	if !c.authed {
		c.out = resp.AppendError(c.out, "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName {
		if msg := validClientName(name); msg != "" {
			c.out = resp.AppendError(c.out, msg)
			return
		}
		c.name.Store(string(name))
	}
	// The reply is already in the new protocol, as redis-server's is.
	c.proto.Store(int32(proto))
	c.helloReply(c.srv.node.Role())
}

func (c *conn) helloReply(role string) {
	c.appendMap(7)
	c.out = resp.AppendBulkString(c.out, "server")
	c.out = resp.AppendBulkString(c.out, "redis")
	c.out = resp.AppendBulkString(c.out, "version")
	c.out = resp.AppendBulkString(c.out, RedisVersion)
	c.out = resp.AppendBulkString(c.out, "proto")
	c.out = resp.AppendInt(c.out, int64(c.protocol()))
	c.out = resp.AppendBulkString(c.out, "id")
	c.out = resp.AppendInt(c.out, c.id)
	c.out = resp.AppendBulkString(c.out, "mode")
	c.out = resp.AppendBulkString(c.out, "standalone")
	c.out = resp.AppendBulkString(c.out, "role")
	c.out = resp.AppendBulkString(c.out, role)
	c.out = resp.AppendBulkString(c.out, "modules")
	c.out = resp.AppendArray(c.out, 0)
}

func runPing(c *conn, a [][]byte) {
	if c.subscribed() && !c.resp3() && len(a) <= 2 {
		// A subscribed RESP2 client gets PING's reply as a message.
		c.out = resp.AppendArray(c.out, 2)
		c.out = resp.AppendBulkString(c.out, "pong")
		if len(a) == 2 {
			c.out = resp.AppendBulk(c.out, a[1])
		} else {
			c.out = resp.AppendBulkString(c.out, "")
		}
		return
	}
	switch len(a) {
	case 1:
		c.out = resp.AppendSimple(c.out, "PONG")
	case 2:
		c.out = resp.AppendBulk(c.out, a[1])
	default:
		c.out = resp.AppendError(c.out, arityError("ping"))
	}
}

func runSelect(c *conn, a [][]byte) {
	n, ok := parseInt(a[1])
	if !ok {
		c.out = resp.AppendError(c.out, errNotInteger)
		return
	}
	if n < 0 || n >= int64(c.srv.cfg.Databases) {
		c.out = resp.AppendError(c.out, errDBRange)
		return
	}
	c.db.Store(int32(n))
	c.out = resp.AppendSimple(c.out, "OK")
}

func runClusterDisabled(c *conn, _ [][]byte) {
	c.out = resp.AppendError(c.out, "ERR This instance has cluster support disabled")
}

func validClientName(b []byte) string {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return "ERR Client names cannot contain spaces, newlines or special characters."
		}
	}
	return ""
}

// clientSubcommands are CLIENT's subcommands with their arities.
var clientSubcommands = map[string]int{"id": 2, "getname": 2, "setname": 3, "info": 2, "list": -2, "setinfo": 4, "no-evict": 3, "no-touch": 3, "help": 2}

func runClient(c *conn, a [][]byte) {
	sub, ok := c.subcommand(a, "client", clientSubcommands)
	if !ok {
		return
	}
	switch sub {
	case "id":
		c.out = resp.AppendInt(c.out, c.id)
	case "getname":
		if name := c.name.Load().(string); name != "" {
			c.out = resp.AppendBulkString(c.out, name)
		} else {
			c.appendNull()
		}
	case "setname":
		if msg := validClientName(a[2]); msg != "" {
			c.out = resp.AppendError(c.out, msg)
			return
		}
		c.name.Store(string(a[2]))
		c.out = resp.AppendSimple(c.out, "OK")
	case "setinfo":
		switch strings.ToLower(string(a[2])) {
		case "lib-name":
			if strings.ContainsAny(string(a[3]), " \r\n") {
				c.out = resp.AppendError(c.out, "ERR lib-name cannot contain spaces, newlines or special characters.")
				return
			}
			c.libName.Store(string(a[3]))
		case "lib-ver":
			c.libVer.Store(string(a[3]))
		default:
			c.out = resp.AppendError(c.out, "ERR Unrecognized option '"+string(a[2])+"'")
			return
		}
		c.out = resp.AppendSimple(c.out, "OK")
	case "no-evict", "no-touch":
		if !eq(a[2], "on") && !eq(a[2], "off") {
			c.out = resp.AppendError(c.out, errSyntax)
			return
		}
		c.out = resp.AppendSimple(c.out, "OK")
	case "info":
		c.appendVerbatim(c.describe() + "\n")
	case "list":
		var b strings.Builder
		c.srv.conns.Each(func(o *conn) {
			b.WriteString(o.describe())
			b.WriteString("\n")
		})
		c.appendVerbatim(b.String())
	case "help":
		lines := []string{
			"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"ID", "    Return the ID of the current connection.",
			"GETNAME", "    Return the name of the current connection.",
			"SETNAME <name>", "    Assign the name <name> to the current connection.",
			"SETINFO <LIB-NAME|LIB-VER> <value>", "    Set client library name or version.",
			"INFO", "    Return information about the current client connection.",
			"LIST", "    Return information about client connections.",
		}
		c.out = resp.AppendArray(c.out, len(lines))
		for _, l := range lines {
			c.out = resp.AppendSimple(c.out, l)
		}
	}
}

// describe is the connection's line in CLIENT LIST and CLIENT INFO.
func (c *conn) describe() string {
	age := int(time.Since(c.created).Seconds())
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=0 name=%s age=%d idle=0 flags=N db=%d sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=%s user=default redir=-1 resp=%d lib-name=%s lib-ver=%s",
		c.id, c.addr, c.link.LocalAddr(), c.name.Load().(string), age, c.db.Load(), *c.lastCmd.Load(), c.protocol(), c.libName.Load().(string), c.libVer.Load().(string))
}

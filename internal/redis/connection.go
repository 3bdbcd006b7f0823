package redis

import (
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
	if msg := c.authenticate(a[0], a[1:]); msg != "" {
		c.out = resp.AppendError(c.out, msg)
		return
	}
	c.out = resp.AppendSimple(c.out, "OK")
}

// authenticate checks AUTH's (or HELLO AUTH's) [user] password against
// the ACL users; a failure is logged to ACL LOG (reason auth) as redis
// does. cmd is the command's name as the client sent it.
func (c *conn) authenticate(cmd []byte, a [][]byte) string {
	ut := c.srv.users.Load()
	name, pass := []byte("default"), a[len(a)-1]
	if len(a) == 2 {
		name = a[0]
	} else if ut.byName["default"].nopass {
		return "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	}
	u := ut.byName[string(name)]
	if u == nil || !u.on || !u.checkPassword(pass) {
		if !c.srv.usersReady() {
			return errLoadingUsers // the log may not have set the user up yet
		}
		c.srv.log.Warn("authentication failed", "conn", c.id, "addr", c.addr)
		ctx := "toplevel"
		if c.multi {
			ctx = "multi"
		}
		c.srv.acllog.add(c, "auth", ctx, string(cmd), string(name))
		return errWrongPass
	}
	c.login(u, ut.gen)
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
			if msg := c.authenticate(a[0], a[i+1:i+3]); msg != "" {
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
	if !c.authed && !c.srv.DefaultUserOpen() {
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

package redis

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/resp"
)

// CLIENT: a connection's own settings (name, library, reply mode,
// no-evict) and what it knows of the others (LIST, KILL). CLIENT LIST
// runs on one connection's driver and reads the others, so what it shows
// of a connection is published by that connection's driver (clientView)
// and read atomically; nothing of another connection is read directly.

// clientSubcommands are CLIENT's subcommands with their arities.
var clientSubcommands = map[string]int{
	"id": 2, "getname": 2, "setname": 3, "info": 2, "list": -2, "kill": -3, "reply": 3,
	"setinfo": 4, "no-evict": 3, "no-touch": 3, "help": 2,
	"tracking": -3, "caching": 3, "getredir": 2, "trackinginfo": 2,
	"pause": -3, "unpause": 2, "unblock": -3,
}

// clientView is what CLIENT LIST shows of a connection that only its
// driver knows: published when it changes (see publishView), read by
// any connection.
type clientView struct {
	sub, psub int
	multi     int // commands queued in MULTI; -1 outside MULTI
	flags     string
}

// Reply modes (CLIENT REPLY).
const (
	replyOn   = iota
	replyOff  // no replies at all
	replySkip // no reply to the next command
)

func runClient(c *conn, a [][]byte) {
	sub, ok := c.subcommand(a, "client", clientSubcommands)
	if !ok {
		return
	}
	c.lastCmd.Store(subcommandName("client", sub))
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
		// Redis 7.2's; go-redis 9 and node-redis send it on connect.
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
		on := eq(a[2], "on")
		if !on && !eq(a[2], "off") {
			c.out = resp.AppendError(c.out, errSyntax)
			return
		}
		if sub == "no-evict" {
			c.noEvict = on
		} else {
			c.noTouch = on
		}
		c.out = resp.AppendSimple(c.out, "OK")
	case "reply":
		switch {
		case eq(a[2], "on"):
			c.replyMode = replyOn
			c.out = resp.AppendSimple(c.out, "OK")
		case eq(a[2], "off"):
			c.replyMode = replyOff
		case eq(a[2], "skip"):
			if c.replyMode != replyOff {
				c.replyMode = replySkip
			}
		default:
			c.out = resp.AppendError(c.out, errSyntax)
		}
	case "info":
		c.publishView()
		c.appendVerbatim(c.describe() + "\n")
	case "list":
		c.clientList(a[2:])
	case "kill":
		c.clientKill(a[2:])
	case "tracking":
		c.clientTracking(a[2:])
	case "caching":
		c.clientCaching(a[2])
	case "getredir":
		c.out = resp.AppendInt(c.out, c.trackingRedirect())
	case "trackinginfo":
		c.trackingInfo()
	case "pause":
		if len(a) > 4 {
			c.out = resp.AppendError(c.out, subcommandSyntaxError(a))
			return
		}
		c.clientPause(a)
	case "unpause":
		c.srv.pause.stop()
		c.out = resp.AppendSimple(c.out, "OK")
	case "unblock":
		if len(a) > 4 {
			c.out = resp.AppendError(c.out, subcommandSyntaxError(a))
			return
		}
		c.clientUnblock(a)
	case "help":
		c.out = appendHelp(c.out, "CLIENT",
			"CACHING (YES|NO)", "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
			"GETREDIR", "    Return the client ID we are redirecting to when tracking is enabled.",
			"GETNAME", "    Return the name of the current connection.",
			"ID", "    Return the ID of the current connection.",
			"INFO", "    Return information about the current client connection.",
			"KILL <ip:port>", "    Kill connection made from <ip:port>.",
			"KILL <option> <value> [<option> <value> [...]]", "    Kill connections. Options are:",
			"    * ADDR (<ip:port>|<unixsocket>:0)", "      Kill connections made from the specified address",
			"    * LADDR (<ip:port>|<unixsocket>:0)", "      Kill connections made to specified local address",
			"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Kill connections by type.",
			"    * USER <username>", "      Kill connections authenticated by <username>.",
			"    * SKIPME (YES|NO)", "      Skip killing current connection (default: yes).",
			"LIST [options ...]", "    Return information about client connections. Options:",
			"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Return clients of specified type.",
			"UNPAUSE", "    Stop the current client pause, resuming traffic.",
			"PAUSE <timeout> [WRITE|ALL]", "    Suspend all, or just write, clients for <timeout> milliseconds.",
			"REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection.",
			"SETNAME <name>", "    Assign the name <name> to the current connection.",
			"SETINFO <LIB-NAME|LIB-VER> <value>", "    Set client library name or version.",
			"UNBLOCK <clientid> [TIMEOUT|ERROR]", "    Unblock the specified blocked client.",
			"TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
			"         [OPTIN] [OPTOUT] [NOLOOP]", "    Control server assisted client side caching.",
			"TRACKINGINFO", "    Report tracking status for the current connection.",
			"NO-EVICT (ON|OFF)", "    Protect current client connection from eviction.",
			"NO-TOUCH (ON|OFF)", "    Will not touch LRU/LFU stats when this mode is on.")
	}
}

// clientUnblock is CLIENT UNBLOCK client-id [TIMEOUT|ERROR]: :1 if the
// client waited in a blocking command on this node (and now has its
// reply), else :0.
func (c *conn) clientUnblock(a [][]byte) {
	withError := false
	if len(a) == 4 {
		switch {
		case eq(a[3], "timeout"):
		case eq(a[3], "error"):
			withError = true
		default:
			c.out = resp.AppendError(c.out, "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
			return
		}
	}
	id, ok := parseInt(a[2])
	if !ok {
		c.out = resp.AppendError(c.out, errNotInteger)
		return
	}
	var n int64
	c.srv.conns.Each(func(o *conn) {
		if o.id == id && n == 0 && c.srv.blocking.unblock(o, withError) {
			n = 1
		}
	})
	c.out = resp.AppendInt(c.out, n)
}

// subcommandNames interns "container|sub" names for CLIENT LIST's cmd=,
// so that recording one allocates only the first time.
var subcommandNames sync.Map // string → *string

func subcommandName(container, sub string) *string {
	key := container + "|" + sub
	if p, ok := subcommandNames.Load(key); ok {
		return p.(*string)
	}
	p, _ := subcommandNames.LoadOrStore(key, &key)
	return p.(*string)
}

// clientType is CLIENT LIST's and CLIENT KILL's TYPE: "normal" or
// "pubsub" (hatcheck has no replication clients, so "master" and
// "replica" match none).
func clientTypeOK(t []byte) (string, bool) {
	switch s := strings.ToLower(string(t)); s {
	case "normal", "pubsub", "master", "replica":
		return s, true
	case "slave":
		return "replica", true
	}
	return "", false
}

func (o *conn) isType(t string) bool {
	v := o.view.Load()
	pubsub := v != nil && v.sub+v.psub > 0
	switch t {
	case "normal":
		return !pubsub
	case "pubsub":
		return pubsub
	}
	return false
}

// clientList answers CLIENT LIST [TYPE type] [ID id …].
func (c *conn) clientList(opts [][]byte) {
	typ := ""
	var ids map[int64]bool
	switch {
	case len(opts) == 0:
	case len(opts) == 2 && eq(opts[0], "type"):
		t, ok := clientTypeOK(opts[1])
		if !ok {
			c.out = resp.AppendError(c.out, "ERR Unknown client type '"+string(opts[1])+"'")
			return
		}
		typ = t
	case len(opts) >= 2 && eq(opts[0], "id"):
		ids = map[int64]bool{}
		for _, b := range opts[1:] {
			id, ok := parseInt(b)
			if !ok {
				c.out = resp.AppendError(c.out, "ERR Invalid client ID")
				return
			}
			ids[id] = true
		}
	default:
		c.out = resp.AppendError(c.out, errSyntax)
		return
	}
	c.publishView()
	var b strings.Builder
	c.srv.conns.Each(func(o *conn) {
		if (typ != "" && !o.isType(typ)) || (ids != nil && !ids[o.id]) {
			return
		}
		b.WriteString(o.describe())
		b.WriteString("\n")
	})
	c.appendVerbatim(b.String())
}

// clientKill answers CLIENT KILL ip:port (the old form: +OK, or an error
// if no client matches) and CLIENT KILL with filters (the number of
// clients killed; by default not this one).
func (c *conn) clientKill(opts [][]byte) {
	if len(opts) == 1 {
		addr := string(opts[0])
		found := false
		c.srv.conns.Each(func(o *conn) {
			if o.addr == addr && !found {
				found = true
				c.kill(o)
			}
		})
		if !found {
			c.out = resp.AppendError(c.out, "ERR No such client")
			return
		}
		c.out = resp.AppendSimple(c.out, "OK")
		return
	}
	if len(opts)%2 != 0 {
		c.out = resp.AppendError(c.out, errSyntax)
		return
	}
	var match []func(o *conn) bool
	skipMe := true
	for i := 0; i < len(opts); i += 2 {
		v := opts[i+1]
		switch {
		case eq(opts[i], "id"):
			id, ok := parseInt(v)
			if !ok || id <= 0 {
				c.out = resp.AppendError(c.out, "ERR client-id should be greater than 0")
				return
			}
			match = append(match, func(o *conn) bool { return o.id == id })
		case eq(opts[i], "addr"):
			addr := string(v)
			match = append(match, func(o *conn) bool { return o.addr == addr })
		case eq(opts[i], "laddr"):
			addr := string(v)
			match = append(match, func(o *conn) bool { return o.link.LocalAddr().String() == addr })
		case eq(opts[i], "type"):
			t, ok := clientTypeOK(v)
			if !ok {
				c.out = resp.AppendError(c.out, "ERR Unknown client type '"+string(v)+"'")
				return
			}
			match = append(match, func(o *conn) bool { return o.isType(t) })
		case eq(opts[i], "user"):
			name := string(v)
			if c.srv.users.Load().byName[name] == nil {
				c.out = resp.AppendError(c.out, "ERR No such user '"+name+"'")
				return
			}
			match = append(match, func(o *conn) bool {
				user := "default"
				if p := o.userName.Load(); p != nil {
					user = *p
				}
				return user == name
			})
		case eq(opts[i], "skipme"):
			switch {
			case eq(v, "yes"):
				skipMe = true
			case eq(v, "no"):
				skipMe = false
			default:
				c.out = resp.AppendError(c.out, errSyntax)
				return
			}
		default:
			c.out = resp.AppendError(c.out, errSyntax)
			return
		}
	}
	c.publishView()
	var n int64
	c.srv.conns.Each(func(o *conn) {
		if o == c && skipMe {
			return
		}
		for _, m := range match {
			if !m(o) {
				return
			}
		}
		c.kill(o)
		n++
	})
	c.out = resp.AppendInt(c.out, n)
}

// kill closes o: at once if it is another connection, after this reply
// if it is this one, as redis-server does.
func (c *conn) kill(o *conn) {
	if o == c {
		c.quit = true
		return
	}
	o.link.Close()
}

// publishView makes what CLIENT LIST shows of this connection visible to
// the others, if it changed since it was last published. The driver calls
// it after every command; it allocates only when something changed.
func (c *conn) publishView() {
	multi := -1
	if c.multi {
		multi = len(c.queued)
	}
	old := c.view.Load()
	flags := c.flagString()
	if old != nil && old.sub == len(c.channels) && old.psub == len(c.patterns) && old.multi == multi && old.flags == flags {
		return
	}
	c.view.Store(&clientView{sub: len(c.channels), psub: len(c.patterns), multi: multi, flags: flags})
}

// flagString is CLIENT LIST's flags=, in redis-server's order of letters;
// "N" for none. It returns constants for the common cases, so that it
// allocates nothing.
func (c *conn) flagString() string {
	var f [8]byte
	n := 0
	add := func(on bool, ch byte) {
		if on {
			f[n] = ch
			n++
		}
	}
	add(c.subscribed(), 'P')
	add(c.multi, 'x')
	if st := c.tracking; st != nil {
		add(true, 't')
		add(st.broken.Load(), 'R')
		add(st.bcast, 'B')
	}
	add(c.quit, 'c')
	add(c.noEvict, 'e')
	add(c.noTouch, 'T')
	switch string(f[:n]) {
	case "":
		return "N"
	case "P":
		return "P"
	case "x":
		return "x"
	}
	return string(f[:n])
}

// describe is the connection's line in CLIENT LIST and CLIENT INFO: redis
// 7.0's fields in its order, then 7.2's lib-name and lib-ver (hatcheck
// takes CLIENT SETINFO). Values hatcheck has no counterpart for (fd, the
// buffer sizes and memory) are 0; events is always r.
func (o *conn) describe() string {
	v := o.view.Load()
	if v == nil {
		v = &clientView{multi: -1, flags: "N"}
	}
	now := time.Now()
	var b strings.Builder
	b.Grow(256)
	field := func(k, val string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(val)
	}
	num := func(k string, n int64) { field(k, strconv.FormatInt(n, 10)) }
	num("id", o.id)
	field("addr", o.addr)
	field("laddr", o.link.LocalAddr().String())
	num("fd", 0)
	field("name", o.name.Load().(string))
	num("age", int64(now.Sub(o.created)/time.Second))
	num("idle", int64(now.Sub(time.Unix(0, o.lastActive.Load()))/time.Second))
	field("flags", v.flags)
	num("db", int64(o.db.Load()))
	num("sub", int64(v.sub))
	num("psub", int64(v.psub))
	num("ssub", 0)
	num("multi", int64(v.multi))
	for _, k := range []string{"qbuf", "qbuf-free", "argv-mem", "multi-mem", "rbs", "rbp", "obl", "oll", "omem", "tot-mem"} {
		num(k, 0)
	}
	field("events", "r")
	field("cmd", *o.lastCmd.Load())
	user := "default"
	if p := o.userName.Load(); p != nil {
		user = *p
	}
	field("user", user)
	num("redir", o.redirView.Load())
	num("resp", int64(o.protocol()))
	field("lib-name", o.libName.Load().(string))
	field("lib-ver", o.libVer.Load().(string))
	return b.String()
}

// viewFields are the atomics of conn that describe reads; declared here
// to keep CLIENT's state together.
type viewFields struct {
	view       atomic.Pointer[clientView]
	lastActive atomic.Int64 // unix ns of the last command
	redirView  atomic.Int64 // CLIENT TRACKING's redirect as CLIENT LIST shows it (-1: off)
}

package redis

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/keyspace"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// The ACL command and the users of this node (acl_user.go is the user
// model). Users are replicated state: ACL SETUSER and ACL DELUSER go
// through the log, and applying them (on every node) hands the server
// every user's rules (UsersChanged), from which it builds its userTable.
// Connections hold the user they authenticated as, and pick up a changed
// user at their next command; the connections of a deleted user are
// closed.
//
// The default user: until the replicated state defines it (the first ACL
// SETUSER default), each node builds it from its own requirepass —
// "on #<sha256> ~* &* +@all", or "on nopass ~* &* +@all" without one.
// The first ACL SETUSER default seeds the replicated user with the rules
// of the node that proposes it, then applies the given rules; from then
// on requirepass no longer matters for it.

// userTable is what a node knows of users at one moment; never modified.
type userTable struct {
	gen    uint64
	byName map[string]*aclUser
	names  []string // sorted
	// replicated: the names the replicated state defines (the default
	// user may be only this node's seed).
	replicated map[string]bool
	// open: the default user is on and nopass (new connections are
	// authenticated as it; only loopback clients are accepted).
	open bool
}

// defaultSeed is the rules of the default user built from requirepass.
func defaultSeed(pass string) [][]byte {
	p := []byte("nopass")
	if pass != "" {
		p = []byte("#" + hashPassword([]byte(pass)))
	}
	return [][]byte{[]byte("on"), p, []byte("~*"), []byte("&*"), []byte("+@all")}
}

// buildUsers builds the user table from every user's rules.
func (s *Server) buildUsers(gen uint64, rules map[string][][]byte) *userTable {
	ut := &userTable{gen: gen, byName: map[string]*aclUser{}, replicated: map[string]bool{}}
	for name, r := range rules {
		ut.byName[name] = compileUser(s.cmds, name, r)
		ut.replicated[name] = true
	}
	if ut.byName["default"] == nil {
		ut.byName["default"] = compileUser(s.cmds, "default", defaultSeed(s.cfg.RequirePass))
	}
	for name := range ut.byName {
		ut.names = append(ut.names, name)
	}
	slices.Sort(ut.names)
	d := ut.byName["default"]
	ut.open = d.on && d.nopass
	return ut
}

var _ keyspace.UserWatcher = (*Server)(nil)

// UsersChanged takes the replicated users (on the log's apply path: it
// must not block). Connections of users that no longer exist are closed,
// as redis-server closes them on ACL DELUSER.
func (s *Server) UsersChanged(rules map[string][][]byte) {
	s.usersMu.Lock()
	old := s.users.Load()
	ut := s.buildUsers(old.gen+1, rules)
	s.users.Store(ut)
	s.usersMu.Unlock()
	var gone, fewerChannels []string
	for name, u := range old.byName {
		switch nu := ut.byName[name]; {
		case nu == nil:
			gone = append(gone, name)
		case !nu.allChannels && (u.allChannels || slices.ContainsFunc(u.channels, func(ch string) bool { return !slices.Contains(nu.channels, ch) })):
			fewerChannels = append(fewerChannels, name)
		}
	}
	if len(gone)+len(fewerChannels) == 0 {
		return
	}
	s.conns.Each(func(c *conn) {
		name := "default"
		if p := c.userName.Load(); p != nil {
			name = *p
		}
		switch {
		case slices.Contains(gone, name):
			c.link.Close()
		case slices.Contains(fewerChannels, name):
			// A subscriber whose channels are no longer all allowed is
			// closed (on its own driver: see Run), as redis 7.0 does.
			c.link.Wake()
		}
	})
}

// subscriptionsAllowed reports whether the connection's user may still
// have every subscription the connection has.
func (c *conn) subscriptionsAllowed() bool {
	if ut := c.srv.users.Load(); ut.gen != c.userGen {
		c.refreshUser(ut)
	}
	u := c.user
	if u.allChannels {
		return true
	}
	for ch := range c.channels {
		if !u.channelAllowed([]byte(ch), false) {
			return false
		}
	}
	for p := range c.patterns {
		if !u.channelAllowed([]byte(p), true) {
			return false
		}
	}
	return true
}

// Authenticate reports whether pass is a password of user, an enabled
// user (memcached's SASL and text login use it).
func (s *Server) Authenticate(user, pass []byte) bool {
	u := s.users.Load().byName[string(user)]
	return u != nil && u.on && u.checkPassword(pass)
}

// HasUser reports whether a user of that name exists.
func (s *Server) HasUser(user []byte) bool { return s.users.Load().byName[string(user)] != nil }

// DefaultUserOpen reports whether the default user is on and needs no
// password: then only loopback clients are accepted.
func (s *Server) DefaultUserOpen() bool { return s.users.Load().open }

func (s *Server) usersReady() bool { return s.cfg.UsersReady == nil || s.cfg.UsersReady() }

// errLoadingUsers is redis's reply while it loads its data.
const errLoadingUsers = "LOADING Redis is loading the dataset in memory"

// refreshUser picks up a change of users: the connection's user as it is
// now. A user that no longer exists denies everything (its connection is
// being closed).
func (c *conn) refreshUser(ut *userTable) {
	c.userGen = ut.gen
	name := "default"
	if p := c.userName.Load(); p != nil {
		name = *p
	}
	if u := ut.byName[name]; u != nil {
		c.user = u
		return
	}
	c.user = newUser(c.srv.cmds, name).finish()
	c.quit = true
}

// checkACL checks a request against the connection's user and writes
// redis's NOPERM error (and an ACL LOG entry) if it is refused.
func (c *conn) checkACL(spec *cmdSpec, args [][]byte) bool {
	ctx := "toplevel"
	if c.multi {
		ctx = "multi"
	}
	msg := c.aclRefusal(spec, args, ctx, false)
	if msg == "" {
		return true
	}
	c.out = resp.AppendError(c.out, msg)
	return false
}

// aclRefusal checks a request against the connection's user; if it is
// refused it logs it (context ctx) and returns redis's error, the one
// EXEC gives for a queued command if atExec.
func (c *conn) aclRefusal(spec *cmdSpec, args [][]byte, ctx string, atExec bool) string {
	if ut := c.srv.users.Load(); ut.gen != c.userGen {
		c.refreshUser(ut)
	}
	if c.user.free {
		return ""
	}
	r, pos, denied := c.user.canRun(c.srv.cmds, spec, args)
	const changed = "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: "
	switch r {
	case aclOK:
		return ""
	case aclDeniedCmd:
		c.srv.acllog.add(c, "command", ctx, denied, c.user.name)
		if atExec {
			return changed + "no permission to execute the command or subcommand"
		}
		return "NOPERM this user has no permissions to run the '" + denied + "' command"
	case aclDeniedKey:
		c.srv.acllog.add(c, "key", ctx, string(args[pos]), c.user.name)
		if atExec {
			return changed + "no permission to touch the specified keys"
		}
		return "NOPERM this user has no permissions to access one of the keys used as arguments"
	default:
		c.srv.acllog.add(c, "channel", ctx, string(args[pos]), c.user.name)
		if atExec {
			return changed + "no permission to access one of the channels used as arguments"
		}
		return "NOPERM this user has no permissions to access one of the channels used as arguments"
	}
}

// login makes the connection authenticated as u.
func (c *conn) login(u *aclUser, gen uint64) {
	c.user, c.userGen, c.authed = u, gen, true
	name := u.name
	c.userName.Store(&name)
}

// scriptUsers caches the users scripts run as (OpACLAs), by their name
// and rules: building one per redis.call would be slow. Every change of a
// user is a new entry: past scriptUsersMax the cache starts over.
var (
	scriptUsers    sync.Map // string → *aclUser
	scriptUsersLen atomic.Int64
)

const scriptUsersMax = 1024

// scriptACL checks a command a script calls against the user it runs as
// (name, then rules) and returns redis's error if it is refused.
func (s *Server) scriptACL(user [][]byte, spec *cmdSpec, args [][]byte) string {
	key := string(bytes.Join(user, []byte{0}))
	var u *aclUser
	if v, ok := scriptUsers.Load(key); ok {
		u = v.(*aclUser)
	} else {
		u = compileUser(s.cmds, string(user[0]), user[1:])
		if scriptUsersLen.Add(1) > scriptUsersMax {
			scriptUsers.Clear()
			scriptUsersLen.Store(1)
		}
		scriptUsers.Store(key, u)
	}
	switch r, _, _ := u.canRun(s.cmds, spec, args); r {
	case aclOK:
		return ""
	case aclDeniedCmd:
		return "ERR The user executing the script can't run this command or subcommand"
	case aclDeniedKey:
		return "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments"
	default:
		return "ERR The user executing the script can't publish to the channel mentioned in the command"
	}
}

// scriptOps are the ops that run scripts: a restricted user's transaction
// holding one starts with OpACLAs (see conn.write).
func isScriptOp(op command.Op) bool {
	switch op {
	case command.OpEval, command.OpEvalSha, command.OpEvalRO, command.OpEvalShaRO, command.OpFCall, command.OpFCallRO:
		return true
	}
	return false
}

// asUser prepends OpACLAs to tx if the connection's user is restricted and
// tx runs a script, and reports whether it did (the first result is then
// OpACLAs's).
func (c *conn) asUser(tx command.Tx) (command.Tx, bool) {
	if c.user.free || !slices.ContainsFunc(tx, func(cmd command.Cmd) bool { return isScriptOp(cmd.Op) }) {
		return tx, false
	}
	args := append([][]byte{[]byte(c.user.name)}, c.user.rules...)
	return append(command.Tx{{Op: command.OpACLAs, Args: args}}, tx...), true
}

// aclSubcommandArities are ACL's subcommands with their arities.
var aclSubcommandArities = map[string]int{
	"cat": -2, "deluser": -3, "dryrun": -4, "genpass": -2, "getuser": 3, "help": 2, "list": 2,
	"load": 2, "log": -2, "save": 2, "setuser": -3, "users": 2, "whoami": 2,
}

func aclCommands() []*cmdSpec {
	return []*cmdSpec{{name: "acl", arity: -2, run: runACL}}
}

func runACL(c *conn, a [][]byte) {
	sub, ok := c.subcommand(a, "acl", aclSubcommandArities)
	if !ok {
		return
	}
	c.lastCmd.Store(subcommandName("acl", sub))
	ut := c.srv.users.Load()
	switch sub {
	case "setuser":
		c.aclSetUser(ut, a[2], a[3:])
	case "deluser":
		for _, name := range a[2:] {
			if string(name) == "default" {
				c.out = resp.AppendError(c.out, "ERR The 'default' user cannot be removed")
				return
			}
		}
		c.writeOK(command.Tx{{Op: command.OpACLDelUser, Args: a[2:]}}, func(res command.TxResult) {
			n := res.Results[0].Int
			c.afterApplied(func() { c.out = resp.AppendInt(c.out, n) })
		})
	case "getuser":
		u := ut.byName[string(a[2])]
		if u == nil {
			c.appendNull()
			return
		}
		c.appendMap(6)
		c.out = resp.AppendBulkString(c.out, "flags")
		flags := []string{"off"}
		if u.on {
			flags[0] = "on"
		}
		if u.nopass {
			flags = append(flags, "nopass")
		}
		switch u.sanitize {
		case sanitizeSkip:
			flags = append(flags, "skip-sanitize-payload")
		case sanitizeOn:
			flags = append(flags, "sanitize-payload")
		}
		c.appendSet(len(flags))
		for _, f := range flags {
			c.out = resp.AppendBulkString(c.out, f)
		}
		c.out = resp.AppendBulkString(c.out, "passwords")
		c.out = resp.AppendArray(c.out, len(u.passwords))
		for _, p := range u.passwords {
			c.out = resp.AppendBulkString(c.out, p)
		}
		c.out = resp.AppendBulkString(c.out, "commands")
		c.out = resp.AppendBulkString(c.out, u.describeCommands(c.srv.cmds))
		c.out = resp.AppendBulkString(c.out, "keys")
		c.out = resp.AppendBulkString(c.out, u.keysString())
		c.out = resp.AppendBulkString(c.out, "channels")
		c.out = resp.AppendBulkString(c.out, u.channelsString())
		c.out = resp.AppendBulkString(c.out, "selectors")
		c.out = resp.AppendArray(c.out, 0)
	case "list", "users":
		c.out = resp.AppendArray(c.out, len(ut.names))
		for _, name := range ut.names {
			if sub == "users" {
				c.out = resp.AppendBulkString(c.out, name)
			} else {
				c.out = resp.AppendBulkString(c.out, "user "+name+" "+ut.byName[name].describe(c.srv.cmds))
			}
		}
	case "whoami":
		name := "default"
		if p := c.userName.Load(); p != nil {
			name = *p
		}
		c.out = resp.AppendBulkString(c.out, name)
	case "load", "save":
		c.out = resp.AppendError(c.out, "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.")
	case "cat":
		c.aclCat(a)
	case "genpass":
		bits := int64(256)
		if len(a) > 3 {
			c.out = resp.AppendError(c.out, aclSyntaxError(a[1]))
			return
		}
		if len(a) == 3 {
			n, ok := parseInt(a[2])
			if !ok {
				c.out = resp.AppendError(c.out, errNotInteger)
				return
			}
			bits = n
		}
		if bits <= 0 || bits > 4096 {
			c.out = resp.AppendError(c.out, "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096")
			return
		}
		chars := (bits + 3) / 4
		b := make([]byte, (chars+1)/2)
		_, _ = rand.Read(b)
		c.out = resp.AppendBulkString(c.out, hex.EncodeToString(b)[:chars])
	case "log":
		c.aclLog(a)
	case "dryrun":
		c.aclDryRun(ut, a)
	case "help":
		lines := []string{"ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"CAT [<category>]",
			"    List all commands that belong to <category>, or all command categories",
			"    when no category is specified.",
			"DELUSER <username> [<username> ...]",
			"    Delete a list of users.",
			"DRYRUN <username> <command> [<arg> ...]",
			"    Returns whether the user can execute the given command without executing the command.",
			"GETUSER <username>",
			"    Get the user's details.",
			"GENPASS [<bits>]",
			"    Generate a secure 256-bit user password. The optional `bits` argument can",
			"    be used to specify a different size.",
			"LIST",
			"    Show users details in config file format.",
			"LOAD",
			"    Reload users from the ACL file.",
			"LOG [<count> | RESET]",
			"    Show the ACL log entries.",
			"SAVE",
			"    Save the current config to the ACL file.",
			"SETUSER <username> <attribute> [<attribute> ...]",
			"    Create or modify a user with the specified attributes.",
			"USERS",
			"    List all the registered usernames.",
			"WHOAMI",
			"    Return the current connection username.",
			"HELP",
			"    Prints this help."}
		c.out = resp.AppendArray(c.out, len(lines))
		for _, l := range lines {
			c.out = resp.AppendSimple(c.out, l)
		}
	}
}

// aclSyntaxError is redis's addReplySubcommandSyntaxError for ACL.
func aclSyntaxError(sub []byte) string {
	return "ERR unknown subcommand or wrong number of arguments for '" + clip(sub) + "'. Try ACL HELP."
}

// aclSetUser checks the rules against the user as this node knows it,
// then proposes them, passwords hashed. Selectors (rules in parentheses)
// are not supported.
func (c *conn) aclSetUser(ut *userTable, nameArg []byte, rules [][]byte) {
	if hasSpaces(nameArg) {
		c.out = resp.AppendError(c.out, "ERR Usernames can't contain spaces or null characters")
		return
	}
	for i, r := range rules {
		if len(r) > 0 && r[0] == '(' && r[len(r)-1] != ')' {
			closed := slices.ContainsFunc(rules[i+1:], func(x []byte) bool { return len(x) > 0 && x[len(x)-1] == ')' })
			if !closed {
				c.out = resp.AppendError(c.out, "ERR Unmatched parenthesis in acl selector starting at '"+string(r)+"'.")
				return
			}
		}
	}
	name := string(nameArg)
	if _, msg := setUser(c.srv.cmds, ut.byName[name], name, rules); msg != "" {
		c.out = resp.AppendError(c.out, msg)
		return
	}
	args := [][]byte{nameArg}
	var seed int64
	if name == "default" && !ut.replicated[name] {
		s := defaultSeed(c.srv.cfg.RequirePass)
		args = append(args, s...)
		seed = int64(len(s))
	}
	for _, r := range rules {
		switch {
		case len(r) > 0 && r[0] == '>':
			r = []byte("#" + hashPassword(r[1:]))
		case len(r) > 0 && r[0] == '<':
			r = []byte("!" + hashPassword(r[1:]))
		}
		args = append(args, r)
	}
	c.writeOK(command.Tx{{Op: command.OpACLSetUser, N: seed, Args: args}}, func(command.TxResult) {
		c.afterApplied(func() { c.out = resp.AppendSimple(c.out, "OK") })
	})
}

// afterApplied runs reply once this node has applied what the client's
// write changed: a write through a follower is answered when the leader
// applied it, and a read (with its barrier) waits until this node did
// too, so that the client's next command here sees the users it set.
func (c *conn) afterApplied(reply func()) {
	c.read(command.Cmd{Op: command.OpDBSize}, func(command.Result) { reply() })
}

// aclCat lists the categories, or the commands (and subcommands) of one,
// as hatcheck's table has them.
func (c *conn) aclCat(a [][]byte) {
	if len(a) > 3 {
		c.out = resp.AppendError(c.out, aclSyntaxError(a[1]))
		return
	}
	if len(a) == 2 {
		c.out = resp.AppendArray(c.out, len(aclNames))
		for _, n := range aclNames {
			c.out = resp.AppendBulkString(c.out, n[1:])
		}
		return
	}
	cat, ok := categoryByName(string(a[2]))
	if !ok {
		name := a[2]
		if len(name) > 128 {
			name = name[:128]
		}
		c.out = resp.AppendError(c.out, "ERR Unknown category '"+string(name)+"'")
		return
	}
	var names []string
	t := c.srv.cmds
	for _, s := range t.specs {
		if s.categories()&cat != 0 {
			names = append(names, s.name)
		}
		for _, sub := range t.subsOf[s.id] {
			if sub.categories()&cat != 0 {
				names = append(names, sub.name)
			}
		}
	}
	c.out = resp.AppendArray(c.out, len(names))
	for _, n := range names {
		c.out = resp.AppendBulkString(c.out, n)
	}
}

// aclDryRun answers whether a user may run a command, in redis's words.
func (c *conn) aclDryRun(ut *userTable, a [][]byte) {
	u := ut.byName[string(a[2])]
	if u == nil {
		c.out = resp.AppendError(c.out, "ERR User '"+string(a[2])+"' not found")
		return
	}
	args := a[3:]
	spec := c.srv.cmds.lookup(args[0])
	if spec != nil && c.srv.cmds.subsOf[spec.id] != nil && len(args) >= 2 {
		// redis looks the subcommand up: an unknown one is no command.
		if c.srv.cmds.subs[spec.name+"|"+strings.ToLower(string(args[1]))] == nil {
			spec = nil
		}
	}
	if spec == nil {
		c.out = resp.AppendError(c.out, "ERR Command '"+string(args[0])+"' not found")
		return
	}
	if !spec.arityOK(len(args)) {
		c.out = resp.AppendError(c.out, "ERR wrong number of arguments for '"+spec.name+"' command")
		return
	}
	r, pos, denied := u.canRun(c.srv.cmds, spec, args)
	switch r {
	case aclOK:
		c.out = resp.AppendSimple(c.out, "OK")
	case aclDeniedCmd:
		c.out = resp.AppendBulkString(c.out, "This user has no permissions to run the '"+denied+"' command")
	case aclDeniedKey:
		c.out = resp.AppendBulkString(c.out, "This user has no permissions to access the '"+string(args[pos])+"' key")
	default:
		c.out = resp.AppendBulkString(c.out, "This user has no permissions to access the '"+string(args[pos])+"' channel")
	}
}

// aclLog is ACL LOG: this node's record of refused commands and failed
// authentications (not replicated: each node logs what its clients did).
type aclLog struct {
	mu      sync.Mutex
	entries []*aclLogEntry // newest first
}

type aclLogEntry struct {
	count                             int64
	reason, context, object, username string
	clientInfo                        string
	created                           time.Time
}

// aclLogMaxLen is redis's acllog-max-len default.
const aclLogMaxLen = 128

// add records a refusal; one like a recent entry (among the ten newest,
// within a minute) bumps that entry's count, as redis does.
func (l *aclLog) add(c *conn, reason, context, object, username string) {
	e := &aclLogEntry{count: 1, reason: reason, context: context, object: object, username: username,
		clientInfo: c.describe(), created: time.Now()}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, old := range l.entries[:min(10, len(l.entries))] {
		if old.reason == e.reason && old.context == e.context && old.object == e.object &&
			old.username == e.username && e.created.Sub(old.created) <= time.Minute {
			old.count++
			old.created, old.clientInfo = e.created, e.clientInfo
			copy(l.entries[1:i+1], l.entries[:i])
			l.entries[0] = old
			return
		}
	}
	l.entries = append([]*aclLogEntry{e}, l.entries...)
	if len(l.entries) > aclLogMaxLen {
		l.entries = l.entries[:aclLogMaxLen]
	}
}

func (c *conn) aclLog(a [][]byte) {
	if len(a) > 3 {
		c.out = resp.AppendError(c.out, aclSyntaxError(a[1]))
		return
	}
	l := &c.srv.acllog
	count := int64(10)
	if len(a) == 3 {
		if eq(a[2], "reset") {
			l.mu.Lock()
			l.entries = nil
			l.mu.Unlock()
			c.out = resp.AppendSimple(c.out, "OK")
			return
		}
		n, ok := parseInt(a[2])
		if !ok {
			c.out = resp.AppendError(c.out, errNotInteger)
			return
		}
		count = max(n, 0)
	}
	l.mu.Lock()
	entries := slices.Clone(l.entries[:min(int64(len(l.entries)), count)])
	var copies []aclLogEntry
	for _, e := range entries {
		copies = append(copies, *e)
	}
	l.mu.Unlock()
	now := time.Now()
	c.out = resp.AppendArray(c.out, len(copies))
	for _, e := range copies {
		c.appendMap(7)
		c.out = resp.AppendBulkString(c.out, "count")
		c.out = resp.AppendInt(c.out, e.count)
		for _, kv := range [][2]string{{"reason", e.reason}, {"context", e.context}, {"object", e.object}, {"username", e.username}} {
			c.out = resp.AppendBulkString(c.out, kv[0])
			c.out = resp.AppendBulkString(c.out, kv[1])
		}
		c.out = resp.AppendBulkString(c.out, "age-seconds")
		c.appendDouble(float64(now.Sub(e.created).Milliseconds()) / 1000)
		c.out = resp.AppendBulkString(c.out, "client-info")
		c.out = resp.AppendBulkString(c.out, e.clientInfo)
	}
}

// appendDouble writes a double as redis's addReplyDouble does: "%.17g",
// a bulk string in RESP2, a double in RESP3.
func (c *conn) appendDouble(f float64) {
	var s string
	switch {
	case math.IsInf(f, 1):
		s = "inf"
	case math.IsInf(f, -1):
		s = "-inf"
	default:
		s = strconv.FormatFloat(f, 'g', 17, 64)
	}
	if c.resp3() {
		c.out = append(c.out, ',')
		c.out = append(c.out, s...)
		c.out = append(c.out, '\r', '\n')
		return
	}
	c.out = resp.AppendBulkString(c.out, s)
}

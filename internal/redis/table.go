package redis

import (
	"slices"
	"strings"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// The command table. Each command is one row (cmdSpec), declared beside its
// code in its family's file (strings.go, keys.go, hashes.go, sets.go, lists.go,
// transactions.go, connection.go, server_cmds.go, pubsub.go, scripting.go,
// sentinel.go): its name, arity, flags, ACL categories, tips and key
// positions as redis 7.0 declares them, and how it runs. Dispatch, MULTI
// queueing, AUTH, scripts' redis.call and COMMAND all read the row;
// nothing about a command lives anywhere else. A new command is one row and
// one function here, and one row and one function in package command if it
// is a new kind of data command.
//
// Each Server builds its table in New (newTable); a command registered
// twice panics there, as net/http's ServeMux does.

// cmdFlags are a command's flags: redis 7.0's, in the order COMMAND lists
// them, then hatcheck's own, which COMMAND does not report.
type cmdFlags uint32

const (
	flagWrite cmdFlags = 1 << iota
	flagReadOnly
	flagDenyOOM
	flagAdmin
	flagPubSub
	flagNoScript // a script may not call it (for data commands: EVAL inside EVAL)
	flagBlocking
	flagLoading
	flagStale
	flagSkipMonitor
	flagSkipSlowlog
	flagFast
	flagNoAuth // allowed before AUTH
	flagNoMandatoryKeys
	flagMovableKeys
	flagAllowBusy

	// hatcheck's own, from bit 24 on.
	flagNoQueue cmdFlags = 1 << 24 // runs at once inside MULTI (EXEC, DISCARD, MULTI, QUIT…)
	// flagMayReplicate is redis's may-replicate flag, which COMMAND
	// does not report either: a command that is no write but that
	// CLIENT PAUSE WRITE holds (EVAL, EVALSHA, FCALL, PUBLISH).
	flagMayReplicate cmdFlags = 1 << 25
)

// flagNames are redis's names of its flags, by bit.
var flagNames = []string{"write", "readonly", "denyoom", "admin", "pubsub", "noscript", "blocking",
	"loading", "stale", "skip_monitor", "skip_slowlog", "fast", "no_auth", "no_mandatory_keys",
	"movablekeys", "allow_busy"}

// aclCats are ACL categories, in redis's order (the order COMMAND lists
// them).
type aclCats uint32

const (
	aclKeyspace aclCats = 1 << iota
	aclRead
	aclWrite
	aclSet
	aclSortedSet
	aclList
	aclHash
	aclString
	aclBitmap
	aclHyperLogLog
	aclGeo
	aclStream
	aclPubSub
	aclAdmin
	aclFast
	aclSlow
	aclBlocking
	aclDangerous
	aclConnection
	aclTransaction
	aclScripting
)

var aclNames = []string{"@keyspace", "@read", "@write", "@set", "@sortedset", "@list", "@hash", "@string",
	"@bitmap", "@hyperloglog", "@geo", "@stream", "@pubsub", "@admin", "@fast", "@slow", "@blocking",
	"@dangerous", "@connection", "@transaction", "@scripting"}

// keyPos is where a command's keys are, as COMMAND reports them: the
// first, the last (negative: counted from the end) and the step. Zero: no
// keys (or keys that move, found by the row's keysOf).
type keyPos struct{ first, last, step int }

var (
	noKeys   = keyPos{}
	oneKey   = keyPos{1, 1, 1}
	allKeys  = keyPos{1, -1, 1} // every argument is a key
	pairKeys = keyPos{1, -1, 2} // key value key value …
)

// cmdSpec is one command's row. Data commands have build (request →
// typed command, or an error reply) and optionally reply (result → RESP,
// when it differs from the generic encoding); the others have run.
type cmdSpec struct {
	name  string
	arity int // redis convention: n = exactly n, -n = at least n (name included)
	flags cmdFlags
	acl   aclCats  // categories beyond those the flags imply (see categories)
	tips  []string // redis 7.0's command tips, reported by COMMAND
	keys  keyPos
	// keysOf, if set, finds the keys of a command whose keys move
	// (EVAL's numkeys); ok false means the arguments are invalid.
	keysOf func(args [][]byte) (keys [][]byte, ok bool)
	build  func(c *conn, args [][]byte) (command.Cmd, string)
	reply  func(c *conn, r command.Result)
	run    func(c *conn, args [][]byte)
	// wait, if set, runs a data command that may wait for a change
	// without writing (XREAD BLOCK; see xread.go) in place of runData's
	// blocking pops.
	wait func(c *conn, spec *cmdSpec, cmd command.Cmd)
	data bool // run is runData: the command becomes one command.Cmd
	// shape frames the command's array reply in RESP3 (a map, a set);
	// zero: an array.
	shape replyShape
	// perKey: the reply has an element per key (MGET); INFO's
	// keyspace_hits and _misses count each.
	perKey bool
	// id is the command's index in the table (its bit in an ACL user's
	// bitmap of allowed commands), set by newTable.
	id int
}

func (s *cmdSpec) arityOK(n int) bool { return arityOK(s.arity, n) }

// arityOK reports whether n arguments (the command's name included) fit
// arity, in redis's convention.
func arityOK(arity, n int) bool { return (arity > 0 && n == arity) || (arity < 0 && n >= -arity) }

// subcommand finds a container command's subcommand (a[1]) in arities,
// each subcommand's arity, and checks the number of arguments; otherwise
// it writes redis-server's error and reports false.
func (c *conn) subcommand(a [][]byte, name string, arities map[string]int) (string, bool) {
	sub := strings.ToLower(string(a[1]))
	arity, ok := arities[sub]
	if !ok {
		c.out = resp.AppendError(c.out, unknownSubcommand(a[1], strings.ToUpper(name)))
		return "", false
	}
	if !arityOK(arity, len(a)) {
		c.out = resp.AppendError(c.out, arityError(name+"|"+sub))
		return "", false
	}
	return sub, true
}

// table is a server's commands by lower-case name.
type table struct {
	byName map[string]*cmdSpec
	names  []string   // sorted
	specs  []*cmdSpec // by id: in the order of names
	// subs are the subcommands of container commands (config|get), for
	// ACL rules only (see aclSubcommands): ids after the commands'.
	subs    map[string]*cmdSpec
	subsOf  map[int][]*cmdSpec // a container's id → its subcommands
	aclBits int                // commands and subcommands
}

// newTable builds the command table from every family's rows.
func newTable() *table {
	t := &table{byName: map[string]*cmdSpec{}}
	for _, family := range [][]*cmdSpec{
		connectionCommands(), transactionCommands(), serverCommands(), keyCommands(), stringCommands(),
		hashCommands(), setCommands(), scriptingCommands(), pubsubCommands(), sentinelCommands(),
		bitmapCommands(),
		listCommands(),
		zsetCommands(),
		aclCommands(),
		streamCommands(),
	} {
		for _, s := range family {
			t.add(s)
		}
	}
	slices.Sort(t.names)
	for i, name := range t.names {
		s := t.byName[name]
		s.id = i
		t.specs = append(t.specs, s)
	}
	t.subs, t.subsOf = map[string]*cmdSpec{}, map[int][]*cmdSpec{}
	id := len(t.specs)
	for _, name := range t.names {
		for _, sub := range aclSubcommands[name] {
			s := &cmdSpec{name: name + "|" + sub.name, id: id}
			for _, c := range strings.Fields(sub.categories) {
				cat, _ := categoryByName(c)
				s.acl |= cat
			}
			t.subs[s.name] = s
			container := t.byName[name]
			t.subsOf[container.id] = append(t.subsOf[container.id], s)
			id++
		}
	}
	t.aclBits = id
	return t
}

// BlockingCommands are the names of the commands that wait by design,
// sorted: those with redis's "blocking" flag (BLPOP, BZPOPMIN, …) and
// those that wait for replicas (WAIT, WAITAOF), which redis does not flag
// so (COMMAND INFO shows redis's flags). The dashboard's load meter counts
// their wait as neither latency nor slow.
func BlockingCommands() []string { return newTable().waiting() }

// waitForReplicas are the commands that wait by design without redis's
// blocking flag.
var waitForReplicas = []string{"wait", "waitaof"}

func (t *table) waiting() []string {
	var names []string
	for _, name := range t.names {
		if t.byName[name].flags&flagBlocking != 0 || slices.Contains(waitForReplicas, name) {
			names = append(names, name)
		}
	}
	return names
}

// add registers one command; a name registered twice panics.
func (t *table) add(s *cmdSpec) {
	if s.name != strings.ToLower(s.name) {
		panic("redis: command name " + s.name + " is not lower case")
	}
	if t.byName[s.name] != nil {
		panic("redis: command " + s.name + " registered twice")
	}
	if (s.build == nil) == (s.run == nil) {
		panic("redis: command " + s.name + " needs exactly one of build and run")
	}
	if s.run == nil {
		spec := s
		s.run = func(c *conn, a [][]byte) { runData(c, spec, a) }
		s.data = true
	}
	t.byName[s.name] = s
	t.names = append(t.names, s.name)
}

// lookup finds a command by name in any case. Names of up to 32 bytes are
// lowered in a buffer on the stack, and a map index with string(bytes)
// does not allocate, so the lookup allocates nothing.
func (t *table) lookup(name []byte) *cmdSpec {
	var low [32]byte
	if len(name) > len(low) {
		return t.byName[strings.ToLower(string(name))]
	}
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		low[i] = ch
	}
	return t.byName[string(low[:len(name)])]
}

// categories are the command's ACL categories: those declared, and those
// redis derives from the flags (setImplicitACLCategories).
func (s *cmdSpec) categories() aclCats {
	c := s.acl
	if s.flags&flagWrite != 0 {
		c |= aclWrite
	}
	if s.flags&flagReadOnly != 0 && c&aclScripting == 0 {
		c |= aclRead
	}
	if s.flags&flagAdmin != 0 {
		c |= aclAdmin | aclDangerous
	}
	if s.flags&flagPubSub != 0 {
		c |= aclPubSub
	}
	if s.flags&flagFast != 0 {
		c |= aclFast
	}
	if s.flags&flagBlocking != 0 {
		c |= aclBlocking
	}
	if c&aclFast == 0 {
		c |= aclSlow
	}
	return c
}

// keysIn returns the keys among a request's arguments (the command name
// first), as COMMAND GETKEYS reports them; ok false means the arguments
// hold none where the command needs some.
func (s *cmdSpec) keysIn(args [][]byte) (keys [][]byte, ok bool) {
	if s.keysOf != nil {
		return s.keysOf(args)
	}
	k := s.keys
	if k.first == 0 {
		return nil, false
	}
	last := k.last
	if last < 0 {
		last += len(args)
	}
	for i := k.first; i <= last && i < len(args); i += k.step {
		keys = append(keys, args[i])
	}
	return keys, len(keys) > 0
}

// hasKeys reports whether the command takes keys at all.
func (s *cmdSpec) hasKeys() bool { return s.keys.first != 0 || s.keysOf != nil }

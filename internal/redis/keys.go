package redis

import (
	"bytes"
	"math"
	"strconv"
	"strings"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/rdb"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// Keys: the generic commands, on a key of any type or on the keyspace.
func keyCommands() []*cmdSpec {
	const w, r, acl = flagWrite, flagReadOnly, aclKeyspace
	return []*cmdSpec{
		{name: "del", arity: -2, flags: w, acl: acl, keys: allKeys, tips: tipsMultiShardSum, build: buildKeys(command.OpDel)},
		{name: "unlink", arity: -2, flags: w | flagFast, acl: acl, keys: allKeys, tips: tipsMultiShardSum, build: buildKeys(command.OpDel)},
		{name: "exists", arity: -2, flags: r | flagFast, acl: acl, keys: allKeys, tips: tipsMultiShardSum, build: buildKeys(command.OpExists)},
		{name: "expire", arity: -3, flags: w | flagFast, acl: acl, keys: oneKey, build: buildExpire(true, false, "expire")},
		{name: "pexpire", arity: -3, flags: w | flagFast, acl: acl, keys: oneKey, build: buildExpire(false, false, "pexpire")},
		{name: "expireat", arity: -3, flags: w | flagFast, acl: acl, keys: oneKey, build: buildExpire(true, true, "expireat")},
		{name: "pexpireat", arity: -3, flags: w | flagFast, acl: acl, keys: oneKey, build: buildExpire(false, true, "pexpireat")},
		{name: "persist", arity: 2, flags: w | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpPersist)},
		{name: "ttl", arity: 2, flags: r | flagFast, acl: acl, keys: oneKey, tips: tipsNondeterministic, build: buildTTL(0)},
		{name: "pttl", arity: 2, flags: r | flagFast, acl: acl, keys: oneKey, tips: tipsNondeterministic, build: buildTTL(command.FlagMillis)},
		{name: "expiretime", arity: 2, flags: r | flagFast, acl: acl, keys: oneKey, build: buildTTL(command.FlagAbs)},
		{name: "pexpiretime", arity: 2, flags: r | flagFast, acl: acl, keys: oneKey, build: buildTTL(command.FlagAbs | command.FlagMillis)},
		{name: "type", arity: 2, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpType)},
		{name: "rename", arity: 3, flags: w, acl: acl, keys: keyPos{1, 2, 1}, build: buildRename(false)},
		{name: "renamenx", arity: 3, flags: w | flagFast, acl: acl, keys: keyPos{1, 2, 1}, build: buildRename(true)},
		{name: "keys", arity: 2, flags: r, acl: acl | aclDangerous, tips: []string{policyAllShards, "nondeterministic_output_order"}, build: buildNoKey(command.OpKeys)},
		{name: "scan", arity: -2, flags: r, acl: acl, tips: []string{"nondeterministic_output", "request_policy:special"}, build: buildScan},
		{name: "dbsize", arity: 1, flags: r | flagFast, acl: acl, tips: []string{policyAllShards, "response_policy:agg_sum"}, build: buildNoKey(command.OpDBSize)},
		{name: "flushdb", arity: -1, flags: w, acl: acl | aclDangerous, tips: tipsAllShardsSucceeded, build: buildFlush(command.OpFlushDB)},
		{name: "flushall", arity: -1, flags: w, acl: acl | aclDangerous, tips: tipsAllShardsSucceeded, build: buildFlush(command.OpFlushAll)},
		{name: "copy", arity: -3, flags: w | flagDenyOOM, acl: acl, keys: keyPos{1, 2, 1}, build: buildCopy},
		{name: "move", arity: 3, flags: w | flagFast, acl: acl, keys: oneKey, build: buildMove},
		{name: "randomkey", arity: 1, flags: r, acl: acl, tips: []string{policyAllShards, "nondeterministic_output"}, build: buildNoKey(command.OpRandomKey)},
		{name: "touch", arity: -2, flags: r | flagFast, acl: acl, keys: allKeys, tips: tipsMultiShardSum, build: buildKeys(command.OpTouchKeys)},
		{name: "dump", arity: 2, flags: r, acl: acl, keys: oneKey, tips: tipsNondeterministic, build: buildOneKey(command.OpDump)},
		{name: "restore", arity: -4, flags: w | flagDenyOOM, acl: acl | aclDangerous, keys: oneKey, build: buildRestore},
		{name: "sort", arity: -2, flags: w | flagDenyOOM | flagMovableKeys, acl: aclSet | aclSortedSet | aclList | aclDangerous, keys: oneKey, keysOf: sortKeys, build: buildSort(false)},
		{name: "sort_ro", arity: -2, flags: r | flagMovableKeys, acl: aclSet | aclSortedSet | aclList | aclDangerous, keys: oneKey, keysOf: func(a [][]byte) ([][]byte, bool) { return a[1:2], true }, build: buildSort(true)},
		{name: "swapdb", arity: 3, flags: w | flagFast, acl: acl | aclDangerous, build: buildSwapDB},
		// A container command: its subcommands' flags are not reported.
		{name: "object", arity: -2, build: buildObject, reply: replyObject},
	}
}

// Command tips several commands share (redis 7.0's).
const (
	policyMultiShard = "request_policy:multi_shard"
	policyAllShards  = "request_policy:all_shards"
)

var (
	tipsMultiShard         = []string{policyMultiShard}
	tipsMultiShardSum      = []string{policyMultiShard, "response_policy:agg_sum"}
	tipsAllShardsSucceeded = []string{policyAllShards, "response_policy:all_succeeded"}
	tipsNondeterministic   = []string{"nondeterministic_output"}
	tipsOutputOrder        = []string{"nondeterministic_output_order"}
)

func buildExpire(seconds, abs bool, name string) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(command.OpExpire, a[1])
		if msg := c.keyCheck(a[1]); msg != "" {
			return cmd, msg
		}
		for _, o := range a[3:] {
			switch strings.ToUpper(string(o)) {
			case "NX":
				cmd.Flags |= command.FlagNX
			case "XX":
				cmd.Flags |= command.FlagXX
			case "GT":
				cmd.Flags |= command.FlagGT
			case "LT":
				cmd.Flags |= command.FlagLT
			default:
				return cmd, "ERR Unsupported option " + string(o)
			}
		}
		if cmd.Has(command.FlagNX) && cmd.Flags&(command.FlagXX|command.FlagGT|command.FlagLT) != 0 {
			return cmd, "ERR NX and XX, GT or LT options at the same time are not compatible"
		}
		if cmd.Has(command.FlagGT | command.FlagLT) {
			return cmd, "ERR GT and LT options at the same time are not compatible"
		}
		n, ok := parseInt(a[2])
		if !ok {
			return cmd, errNotInteger
		}
		// Unlike SET, EXPIRE takes zero and negative times: the key is
		// deleted at once.
		if seconds {
			if n > math.MaxInt64/1000 || n < math.MinInt64/1000 {
				return cmd, invalidExpire(name)
			}
			n *= 1000
		}
		cmd.N = n
		if abs {
			cmd.Flags |= command.FlagExpireAbs
		} else {
			cmd.Flags |= command.FlagExpireRel
		}
		return cmd, ""
	}
}

func buildTTL(flags uint32) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(command.OpTTL, a[1])
		cmd.Flags = flags
		return cmd, c.keyCheck(a[1])
	}
}

func buildRename(nx bool) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(command.OpRename, a[1], a[2])
		if nx {
			cmd.Flags = command.FlagNX
		}
		return cmd, c.keyCheck(a[1], a[2])
	}
}

func buildScan(c *conn, a [][]byte) (command.Cmd, string) {
	cursor, err := strconv.ParseUint(string(a[1]), 10, 64)
	if err != nil {
		return command.Cmd{}, "ERR invalid cursor"
	}
	var pattern, typ []byte
	count := int64(10)
	for i := 2; i < len(a); i += 2 {
		if i+1 >= len(a) {
			return command.Cmd{}, errSyntax
		}
		switch strings.ToUpper(string(a[i])) {
		case "MATCH":
			pattern = a[i+1]
			if bytes.Equal(pattern, []byte("*")) {
				pattern = nil
			}
		case "COUNT":
			n, ok := parseInt(a[i+1])
			if !ok {
				return command.Cmd{}, errNotInteger
			}
			if n < 1 {
				return command.Cmd{}, errSyntax
			}
			count = n
		case "TYPE":
			typ = bytes.ToLower(a[i+1])
		default:
			return command.Cmd{}, errSyntax
		}
	}
	if count > 1<<20 {
		count = 1 << 20
	}
	cmd := c.cmd(command.OpScan, nil, pattern, typ, strconv.AppendInt(nil, count, 10))
	cmd.N = int64(cursor)
	if cursor >= 1<<62 {
		cmd.N = 1 << 62
	}
	return cmd, ""
}

func buildFlush(op command.Op) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		if len(a) > 2 || (len(a) == 2 && !eq(a[1], "ASYNC") && !eq(a[1], "SYNC")) {
			return command.Cmd{}, errSyntax
		}
		return c.cmd(op, nil), ""
	}
}

// dbIndex parses a database number as SELECT, COPY's DB and MOVE do.
func (c *conn) dbIndex(b []byte) (int64, string) {
	n, ok := parseInt(b)
	switch {
	case !ok || n < math.MinInt32 || n > math.MaxInt32:
		return 0, errNotInteger
	case n < 0 || n >= int64(c.srv.cfg.Databases):
		return 0, errDBRange
	}
	return n, ""
}

func buildCopy(c *conn, a [][]byte) (command.Cmd, string) {
	db := int64(c.db.Load())
	cmd := c.cmd(command.OpCopy, a[1], a[2], nil)
	for j := 3; j < len(a); j++ {
		switch {
		case eq(a[j], "replace"):
			cmd.Args[1] = []byte("replace")
		case eq(a[j], "db") && j+1 < len(a):
			n, msg := c.dbIndex(a[j+1])
			if msg != "" {
				return cmd, msg
			}
			db = n
			j++
		default:
			return cmd, errSyntax
		}
	}
	cmd.N = db
	return cmd, c.keyCheck(a[1], a[2])
}

func buildMove(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpMove, a[1])
	n, msg := c.dbIndex(a[2])
	if msg != "" {
		return cmd, msg
	}
	cmd.N = n
	return cmd, c.keyCheck(a[1])
}

// objectArities are OBJECT's subcommands.
var objectArities = map[string]int{"encoding": 3, "freq": 3, "idletime": 3, "refcount": 3, "help": 2}

// buildObject builds OBJECT's subcommands as one read of the key. HELP
// reads nothing: its command has no key, and replyObject writes the text.
func buildObject(c *conn, a [][]byte) (command.Cmd, string) {
	sub := strings.ToLower(string(a[1]))
	arity, ok := objectArities[sub]
	switch {
	case !ok:
		return command.Cmd{}, unknownSubcommand(a[1], "OBJECT")
	case !arityOK(arity, len(a)):
		return command.Cmd{}, arityError("object|" + sub)
	case sub == "help":
		return c.cmd(command.OpObject, nil, []byte(sub), nil), ""
	}
	// Values 0 to 9999 are shared objects in redis unless maxmemory
	// evicts by LRU (REFCOUNT tells). Scripts, which have no node, see
	// the default.
	var share []byte
	if c.srv.node != nil {
		if max, p := c.srv.node.MaxMemory(); max > 0 && (p == command.AllKeysLRU || p == command.VolatileLRU) {
			share = []byte("noshare")
		}
	}
	return c.cmd(command.OpObject, a[2], []byte(sub), share), c.keyCheck(a[2])
}

// replyObject answers OBJECT HELP (the executor's OK), and the others as
// their results.
func replyObject(c *conn, r command.Result) {
	if r.Kind != command.KindOK {
		c.out = appendReply(c.out, r, c.protocol(), shapeArray)
		return
	}
	// Not appendHelp: OBJECT's last line says "Prints", unlike the others.
	lines := []string{
		"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"ENCODING <key>",
		"    Return the kind of internal representation used in order to store the value",
		"    associated with a <key>.",
		"FREQ <key>",
		"    Return the access frequency index of the <key>. The returned integer is",
		"    proportional to the logarithm of the recent access frequency of the key.",
		"IDLETIME <key>",
		"    Return the idle time of the <key>, that is the approximated number of",
		"    seconds elapsed since the last access to the key.",
		"REFCOUNT <key>",
		"    Return the number of references of the value associated with the specified",
		"    <key>.",
		"HELP",
		"    Prints this help.",
	}
	c.out = resp.AppendArray(c.out, len(lines))
	for _, l := range lines {
		c.out = resp.AppendSimple(c.out, l)
	}
}

// buildRestore checks RESTORE's options, TTL and payload in redis's order.
// Redis looks at the key between the options and the rest: an existing
// key without REPLACE is BUSYKEY whatever follows. An error found after
// that point is therefore proposed in place of the payload (the executor
// answers BUSYKEY or it), unless REPLACE makes the key's state moot; a
// payload that fails its checks never reaches the log.
func buildRestore(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpRestore, a[1], a[3])
	if msg := c.keyValueCheck(a[1], a[3]); msg != "" {
		return cmd, msg
	}
	abs, idle, freq := false, false, false
	for j := 4; j < len(a); j++ {
		more := len(a) - j - 1
		switch {
		case eq(a[j], "replace"):
			cmd.Flags |= command.FlagXX
		case eq(a[j], "absttl"):
			abs = true
		case eq(a[j], "idletime") && more >= 1 && !freq:
			n, ok := parseInt(a[j+1])
			if !ok {
				return cmd, errNotInteger
			}
			if n < 0 {
				return cmd, "ERR Invalid IDLETIME value, must be >= 0"
			}
			idle = true
			j++
		case eq(a[j], "freq") && more >= 1 && !idle:
			n, ok := parseInt(a[j+1])
			if !ok {
				return cmd, errNotInteger
			}
			if n < 0 || n > 255 {
				return cmd, "ERR Invalid FREQ value, must be >= 0 and <= 255"
			}
			freq = true
			j++
		default:
			return cmd, errSyntax
		}
	}
	refuse := func(msg string) (command.Cmd, string) {
		if cmd.Has(command.FlagXX) {
			return cmd, msg
		}
		cmd.Args = [][]byte{{}, []byte(msg)}
		return cmd, ""
	}
	ttl, ok := parseInt(a[2])
	switch {
	case !ok:
		return refuse(errNotInteger)
	case ttl < 0:
		return refuse("ERR Invalid TTL value, must be >= 0")
	}
	if err := rdb.VerifyDump(a[3]); err != nil {
		return refuse("ERR " + err.Error())
	}
	if _, err := rdb.DecodeDump(a[3]); err != nil {
		return refuse("ERR " + err.Error())
	}
	if ttl != 0 {
		cmd.N = ttl
		if abs {
			cmd.Flags |= command.FlagExpireAbs
		} else {
			cmd.Flags |= command.FlagExpireRel
		}
	}
	return cmd, ""
}

// buildSort parses SORT's (or SORT_RO's: no STORE) options as redis does,
// before it looks at the key. A SORT with STORE is a write
// (OpSortStore), any other a read. The keys BY and GET patterns name are
// not declared, as in redis.
func buildSort(ro bool) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		var by, store []byte
		var gets [][]byte
		var flags uint32
		start, count := int64(0), int64(-1)
		for j := 2; j < len(a); j++ {
			left := len(a) - j - 1
			switch {
			case eq(a[j], "asc"):
				flags &^= command.FlagRev
			case eq(a[j], "desc"):
				flags |= command.FlagRev
			case eq(a[j], "alpha"):
				flags |= command.FlagByLex
			case eq(a[j], "limit") && left >= 2:
				var ok1, ok2 bool
				start, ok1 = parseInt(a[j+1])
				count, ok2 = parseInt(a[j+2])
				if !ok1 || !ok2 {
					return command.Cmd{}, errNotInteger
				}
				j += 2
			case !ro && eq(a[j], "store") && left >= 1:
				store = a[j+1]
				j++
			case eq(a[j], "by") && left >= 1:
				by = a[j+1]
				flags |= command.FlagByScore
				j++
			case eq(a[j], "get") && left >= 1:
				gets = append(gets, a[j+1])
				j++
			default:
				return command.Cmd{}, errSyntax
			}
		}
		args := append([][]byte{a[1], by, strconv.AppendInt(nil, start, 10), strconv.AppendInt(nil, count, 10)}, gets...)
		cmd := c.cmd(command.OpSort, a[1], args...)
		if store != nil {
			cmd.Op, cmd.Key = command.OpSortStore, store
			if msg := c.keyCheck(store); msg != "" {
				return cmd, msg
			}
		}
		cmd.Flags = flags
		return cmd, c.keyCheck(a[1])
	}
}

// sortKeys are SORT's declared keys, as redis's sortGetKeys finds them:
// the key sorted and STORE's destination (LIMIT's, GET's and BY's
// arguments skipped).
func sortKeys(a [][]byte) ([][]byte, bool) {
	keys := [][]byte{a[1]}
	var store []byte
	for i := 2; i < len(a); i++ {
		switch {
		case eq(a[i], "limit"):
			i += 2
		case eq(a[i], "get"), eq(a[i], "by"):
			i++
		case eq(a[i], "store") && i+1 < len(a):
			store = a[i+1]
		}
	}
	if store != nil {
		keys = append(keys, store)
	}
	return keys, true
}

// buildSwapDB parses SWAPDB's indexes as redis does: each an int, then both
// in range.
func buildSwapDB(c *conn, a [][]byte) (command.Cmd, string) {
	var ids [2]int64
	for i, what := range []string{"first", "second"} {
		n, ok := parseInt(a[i+1])
		if !ok || n < math.MinInt32 || n > math.MaxInt32 {
			return command.Cmd{}, "ERR invalid " + what + " DB index"
		}
		ids[i] = n
	}
	// Scripts' commands are built without a server's configuration: the
	// executor checks the range then.
	dbs := int64(c.srv.cfg.Databases)
	if dbs == 0 {
		dbs = math.MaxUint8 + 1
	}
	for _, n := range ids {
		if n < 0 || n >= dbs {
			return command.Cmd{}, errDBRange
		}
	}
	cmd := command.Cmd{Op: command.OpSwapDB, DB: uint8(ids[0]), N: ids[1]}
	return cmd, ""
}

package redis

import (
	"math"
	"strconv"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// Hashes.
func hashCommands() []*cmdSpec {
	const w, r, acl = flagWrite, flagReadOnly, aclHash
	return []*cmdSpec{
		{name: "hset", arity: -4, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildHSet("hset")},
		{name: "hmset", arity: -4, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildHSet("hmset"), reply: replyOK},
		{name: "hsetnx", arity: 4, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildHSetNX},
		{name: "hget", arity: 3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpHGet)},
		{name: "hmget", arity: -3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpHMGet)},
		{name: "hgetall", arity: 2, flags: r, acl: acl, keys: oneKey, tips: tipsOutputOrder, build: buildOneKey(command.OpHGetAll), shape: shapeMap},
		{name: "hkeys", arity: 2, flags: r, acl: acl, keys: oneKey, tips: tipsOutputOrder, build: buildOneKey(command.OpHKeys)},
		{name: "hvals", arity: 2, flags: r, acl: acl, keys: oneKey, tips: tipsOutputOrder, build: buildOneKey(command.OpHVals)},
		{name: "hlen", arity: 2, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpHLen)},
		{name: "hexists", arity: 3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpHExists)},
		{name: "hstrlen", arity: 3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpHStrLen)},
		{name: "hdel", arity: -3, flags: w | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpHDel)},
		{name: "hincrby", arity: 4, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildHIncrBy},
		{name: "hscan", arity: -3, flags: r, acl: acl, keys: oneKey, tips: tipsNondeterministic, build: buildCollectionScan(command.OpHScan)},
		{name: "hrandfield", arity: -2, flags: r, acl: acl, keys: oneKey, tips: tipsNondeterministic, build: buildRandomCount(command.OpHRandField, "withvalues")},
		{name: "hincrbyfloat", arity: 4, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildKeyValues(command.OpHIncrByFloat)},
	}
}

func buildHSet(name string) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		if len(a)%2 != 0 {
			return command.Cmd{}, arityError(name)
		}
		return c.cmd(command.OpHSet, a[1], a[2:]...), c.keyValueCheck(a[1], a[3:]...)
	}
}

func buildHSetNX(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpHSet, a[1], a[2], a[3])
	cmd.Flags = command.FlagNX
	return cmd, c.keyValueCheck(a[1], a[3])
}

func buildHIncrBy(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpHIncrBy, a[1], a[2])
	n, ok := parseInt(a[3])
	if !ok {
		return cmd, errNotInteger
	}
	cmd.N = n
	return cmd, c.keyCheck(a[1])
}

// replyOK answers OK whatever the result (HMSET, built as HSET).
func replyOK(c *conn, _ command.Result) { c.out = resp.AppendSimple(c.out, "OK") }

// buildCollectionScan is HSCAN and SSCAN: the cursor is checked first;
// MATCH and COUNT are checked by the executor after the key, as redis
// does (a missing key answers an empty scan whatever they are).
func buildCollectionScan(op command.Op) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(op, a[1], a[3:]...)
		cursor, ok := parseCursor(a[2])
		if !ok {
			return cmd, "ERR invalid cursor"
		}
		cmd.N = int64(min(cursor, 1<<62))
		return cmd, c.keyCheck(a[1])
	}
}

// parseCursor parses a SCAN cursor as redis does, with strtoul: an
// optional sign (a negative number wraps around), digits, nothing else.
func parseCursor(b []byte) (uint64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var n uint64
	if len(b) > 0 {
		var err error
		if n, err = strconv.ParseUint(string(b), 10, 64); err != nil || b[0] == '+' || b[0] == '-' {
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

// randomCount parses the count of HRANDFIELD and SRANDMEMBER, within
// redis's range (-LONG_MAX to LONG_MAX).
func randomCount(b []byte) (int64, string) {
	n, ok := parseInt(b)
	switch {
	case !ok:
		return 0, errNotInteger
	case n == math.MinInt64:
		return 0, "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
	}
	return n, ""
}

// buildRandomCount is HRANDFIELD and ZRANDMEMBER: key [count [with]],
// where with is WITHVALUES or WITHSCORES.
func buildRandomCount(op command.Op, with string) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(op, a[1], nil, nil)
		if len(a) == 2 {
			return cmd, c.keyCheck(a[1])
		}
		n, msg := randomCount(a[2])
		switch {
		case msg != "":
			return cmd, msg
		case len(a) > 4 || (len(a) == 4 && !eq(a[3], with)):
			return cmd, errSyntax
		case len(a) == 4 && (n < -math.MaxInt64/2 || n > math.MaxInt64/2):
			return cmd, "ERR value is out of range"
		case len(a) == 4:
			cmd.Args[1] = []byte(with)
		}
		cmd.Args[0] = a[2]
		return cmd, c.keyCheck(a[1])
	}
}

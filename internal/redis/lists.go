package redis

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// Lists. The blocking commands (BLPOP, BRPOP, BLMPOP, BLMOVE, BRPOPLPUSH)
// build their non-blocking form, which is what MULTI and a full list run;
// a client that must wait is handed to the server's blocking registry
// (blocking.go).
func listCommands() []*cmdSpec {
	const w, r, acl = flagWrite, flagReadOnly, aclList
	const blk = flagWrite | flagNoScript | flagBlocking
	return []*cmdSpec{
		{name: "lpush", arity: -3, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildPush(command.FlagLeft)},
		{name: "rpush", arity: -3, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildPush(0)},
		{name: "lpushx", arity: -3, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildPush(command.FlagLeft | command.FlagXX)},
		{name: "rpushx", arity: -3, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildPush(command.FlagXX)},
		{name: "lpop", arity: -2, flags: w | flagFast, acl: acl, keys: oneKey, build: buildPop("lpop", command.FlagLeft)},
		{name: "rpop", arity: -2, flags: w | flagFast, acl: acl, keys: oneKey, build: buildPop("rpop", 0)},
		{name: "llen", arity: 2, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpLLen)},
		{name: "lrange", arity: 4, flags: r, acl: acl, keys: oneKey, build: buildRange(command.OpLRange)},
		{name: "lindex", arity: 3, flags: r, acl: acl, keys: oneKey, build: buildOneKey(command.OpLIndex)},
		{name: "lset", arity: 4, flags: w | flagDenyOOM, acl: acl, keys: oneKey, build: buildLSet},
		{name: "linsert", arity: 5, flags: w | flagDenyOOM, acl: acl, keys: oneKey, build: buildLInsert},
		{name: "lrem", arity: 4, flags: w, acl: acl, keys: oneKey, build: buildLRem},
		{name: "ltrim", arity: 4, flags: w, acl: acl, keys: oneKey, build: buildRange(command.OpLTrim)},
		{name: "lpos", arity: -3, flags: r, acl: acl, keys: oneKey, build: buildLPos},
		{name: "lmove", arity: 5, flags: w | flagDenyOOM, acl: acl, keys: keyPos{1, 2, 1}, build: buildLMove(false)},
		{name: "rpoplpush", arity: 3, flags: w | flagDenyOOM, acl: acl, keys: keyPos{1, 2, 1}, build: buildRPopLPush(false)},
		{name: "lmpop", arity: -4, flags: w | flagMovableKeys, acl: acl, keysOf: mpopKeys(1), build: buildLMPop(false)},
		{name: "blpop", arity: -3, flags: blk, acl: acl, keys: keyPos{1, -2, 1}, build: buildBPop(command.OpLMPop, command.FlagLeft), reply: replyBPop},
		{name: "brpop", arity: -3, flags: blk, acl: acl, keys: keyPos{1, -2, 1}, build: buildBPop(command.OpLMPop, 0), reply: replyBPop},
		{name: "blmove", arity: 6, flags: blk | flagDenyOOM, acl: acl, keys: keyPos{1, 2, 1}, build: buildLMove(true)},
		{name: "brpoplpush", arity: 4, flags: blk | flagDenyOOM, acl: acl, keys: keyPos{1, 2, 1}, build: buildRPopLPush(true)},
		{name: "blmpop", arity: -5, flags: flagWrite | flagBlocking | flagMovableKeys, acl: acl, keysOf: mpopKeys(2), build: buildLMPop(true)},
	}
}

func buildPush(flags uint32) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(command.OpLPush, a[1], a[2:]...)
		cmd.Flags = flags
		return cmd, c.keyValueCheck(a[1], a[2:]...)
	}
}

func buildPop(name string, flags uint32) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(command.OpLPop, a[1])
		cmd.Flags = flags
		switch len(a) {
		case 2:
		case 3:
			n, ok := parseInt(a[2])
			if !ok || n < 0 {
				return cmd, "ERR value is out of range, must be positive"
			}
			cmd.Flags |= command.FlagCount
			cmd.N = n
		default:
			return cmd, arityError(name)
		}
		return cmd, c.keyCheck(a[1])
	}
}

// buildRange is LRANGE and LTRIM: redis checks the indexes before the key.
func buildRange(op command.Op) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(op, a[1], a[2], a[3])
		if _, ok := parseInt(a[2]); !ok {
			return cmd, errNotInteger
		}
		if _, ok := parseInt(a[3]); !ok {
			return cmd, errNotInteger
		}
		return cmd, c.keyCheck(a[1])
	}
}

func buildLSet(c *conn, a [][]byte) (command.Cmd, string) {
	return c.cmd(command.OpLSet, a[1], a[2], a[3]), c.keyValueCheck(a[1], a[3])
}

func buildLInsert(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpLInsert, a[1], a[3], a[4])
	switch {
	case eq(a[2], "before"):
		cmd.Flags = command.FlagLeft
	case eq(a[2], "after"):
	default:
		return cmd, errSyntax
	}
	return cmd, c.keyValueCheck(a[1], a[4])
}

func buildLRem(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpLRem, a[1], a[3])
	n, ok := parseInt(a[2])
	if !ok {
		return cmd, errNotInteger
	}
	cmd.N = n
	return cmd, c.keyCheck(a[1])
}

// buildLPos parses LPOS's options as redis 7.0 does, before it looks at
// the key.
func buildLPos(c *conn, a [][]byte) (command.Cmd, string) {
	rank, count, maxlen := int64(1), int64(-1), int64(0)
	for j := 3; j < len(a); j++ {
		more := j+1 < len(a)
		switch {
		case eq(a[j], "rank") && more:
			j++
			n, ok := parseInt(a[j])
			if !ok {
				return command.Cmd{}, errNotInteger
			}
			if n == 0 {
				return command.Cmd{}, "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
			}
			rank = n
		case eq(a[j], "count") && more:
			j++
			n, ok := parseInt(a[j])
			if !ok || n < 0 {
				return command.Cmd{}, "ERR COUNT can't be negative"
			}
			count = n
		case eq(a[j], "maxlen") && more:
			j++
			n, ok := parseInt(a[j])
			if !ok || n < 0 {
				return command.Cmd{}, "ERR MAXLEN can't be negative"
			}
			maxlen = n
		default:
			return command.Cmd{}, errSyntax
		}
	}
	itoa := func(n int64) []byte { return strconv.AppendInt(nil, n, 10) }
	return c.cmd(command.OpLPos, a[1], a[2], itoa(rank), itoa(count), itoa(maxlen)), c.keyCheck(a[1])
}

// listSide parses LEFT or RIGHT; ok false is a syntax error.
func listSide(b []byte) (left, ok bool) {
	switch {
	case eq(b, "left"):
		return true, true
	case eq(b, "right"):
		return false, true
	}
	return false, false
}

// buildLMove is LMOVE and BLMOVE (blocking: the timeout follows, checked
// after the sides, as redis does).
func buildLMove(blocking bool) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(command.OpLMove, a[1], a[2])
		from, ok1 := listSide(a[3])
		to, ok2 := listSide(a[4])
		if !ok1 || !ok2 {
			return cmd, errSyntax
		}
		if from {
			cmd.Flags |= command.FlagLeft
		}
		if to {
			cmd.Flags |= command.FlagDstLeft
		}
		if blocking {
			if _, msg := parseTimeout(a[5]); msg != "" {
				return cmd, msg
			}
		}
		return cmd, c.keyCheck(a[1], a[2])
	}
}

// buildRPopLPush is RPOPLPUSH and BRPOPLPUSH: LMOVE src dst RIGHT LEFT.
func buildRPopLPush(blocking bool) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(command.OpLMove, a[1], a[2])
		cmd.Flags = command.FlagDstLeft
		if blocking {
			if _, msg := parseTimeout(a[3]); msg != "" {
				return cmd, msg
			}
		}
		return cmd, c.keyCheck(a[1], a[2])
	}
}

// mpopKeys finds LMPOP's (at 1) or BLMPOP's (at 2) keys: numkeys of them
// after the numkeys argument.
func mpopKeys(at int) func(a [][]byte) ([][]byte, bool) {
	return func(a [][]byte) ([][]byte, bool) {
		n, ok := parseInt(a[at])
		if !ok || n < 1 || n > int64(len(a)-at-1) {
			return nil, false
		}
		return a[at+1 : at+1+int(n)], true
	}
}

// buildLMPop is LMPOP and BLMPOP (whose timeout comes first).
func buildLMPop(blocking bool) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		keys, count, left, msg := parseMPop(a, blocking, "left", "right")
		if msg != "" {
			return command.Cmd{}, msg
		}
		cmd := c.cmd(command.OpLMPop, nil, keys...)
		cmd.N = count
		if left {
			cmd.Flags = command.FlagLeft
		}
		return cmd, c.keyCheck(keys...)
	}
}

// parseMPop parses LMPOP and ZMPOP (first and second name their ends:
// LEFT and RIGHT, MIN and MAX), and their blocking forms, whose timeout
// comes first, in redis 7.0's order. count is 1 when not given.
func parseMPop(a [][]byte, blocking bool, first, second string) (keys [][]byte, count int64, isFirst bool, msg string) {
	at := 1
	if blocking {
		if _, msg := parseTimeout(a[1]); msg != "" {
			return nil, 0, false, msg
		}
		at = 2
	}
	n, ok := parseInt(a[at])
	if !ok || n < 1 {
		return nil, 0, false, "ERR numkeys should be greater than 0"
	}
	where := at + 1
	if n >= int64(len(a)-where) {
		return nil, 0, false, errSyntax
	}
	where += int(n)
	switch {
	case eq(a[where], first):
		isFirst = true
	case eq(a[where], second):
	default:
		return nil, 0, false, errSyntax
	}
	count = -1
	for j := where + 1; j < len(a); j++ {
		if count != -1 || !eq(a[j], "count") || j+1 >= len(a) {
			return nil, 0, false, errSyntax
		}
		j++
		if count, ok = parseInt(a[j]); !ok || count < 1 {
			return nil, 0, false, "ERR count should be greater than 0"
		}
	}
	return a[at+1 : where], max(count, 1), isFirst, ""
}

// buildBPop is BLPOP and BRPOP (op OpLMPop), BZPOPMIN and BZPOPMAX (op
// OpZMPop): a pop of one element from the first key that has one.
func buildBPop(op command.Op, flags uint32) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		if _, msg := parseTimeout(a[len(a)-1]); msg != "" {
			return command.Cmd{}, msg
		}
		keys := a[1 : len(a)-1]
		cmd := c.cmd(op, nil, keys...)
		cmd.N, cmd.Flags = 1, flags
		return cmd, c.keyCheck(keys...)
	}
}

// replyBPop is BLPOP's reply: the key and the element, or a null array.
func replyBPop(c *conn, r command.Result) {
	if r.Kind != command.KindArray || len(r.Array) != 2 || len(r.Array[1].Array) == 0 {
		c.appendNullArray()
		return
	}
	c.out = resp.AppendArray(c.out, 2)
	c.out = resp.AppendBulk(c.out, r.Array[0].Bulk)
	c.out = resp.AppendBulk(c.out, r.Array[1].Array[0].Bulk)
}

// blockTimeout is a blocking command's timeout argument.
func blockTimeout(spec *cmdSpec, a [][]byte) []byte {
	if spec.name == "blmpop" || spec.name == "bzmpop" {
		return a[1]
	}
	return a[len(a)-1]
}

// maxBlock stands for timeouts too long to tell from forever.
const maxBlock = 100 * 365 * 24 * time.Hour

// parseTimeout reads a blocking command's timeout, in seconds, as redis
// 7.0 does: a C long double (strtold: hexadecimal and "inf" accepted),
// turned into milliseconds rounded up, which must not be negative (an
// infinite or enormous one becomes negative in C's conversion, and is
// refused as such). Zero is forever.
func parseTimeout(b []byte) (time.Duration, string) {
	s := string(b)
	if len(s) > 5*1024 || strings.Contains(s, "_") {
		return 0, "ERR timeout is not a float or out of range"
	}
	if t := strings.TrimLeft(s, "+-"); len(t) > 2 && (t[:2] == "0x" || t[:2] == "0X") && !strings.ContainsAny(t, "pP") {
		s += "p0" // strtold reads hex without an exponent, ParseFloat does not
	}
	f, err := strconv.ParseFloat(s, 64)
	if (err != nil && !math.IsInf(f, 0)) || math.IsNaN(f) {
		return 0, "ERR timeout is not a float or out of range"
	}
	ms := math.Ceil(f * 1000)
	if ms < 0 || !(ms < math.MaxInt64) {
		return 0, "ERR timeout is negative"
	}
	if ms >= float64(maxBlock/time.Millisecond) {
		return maxBlock, ""
	}
	return time.Duration(ms) * time.Millisecond, ""
}

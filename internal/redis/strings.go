package redis

import (
	"math"
	"strconv"
	"strings"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// Strings.
func stringCommands() []*cmdSpec {
	const w, r, acl = flagWrite, flagReadOnly, aclString
	return []*cmdSpec{
		{name: "get", arity: 2, flags: r | flagFast, acl: acl, keys: oneKey, build: buildGet},
		{name: "set", arity: -3, flags: w | flagDenyOOM, acl: acl, keys: oneKey, build: buildSet},
		{name: "setnx", arity: 3, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildSetNX, reply: replyIntFromSet},
		{name: "setex", arity: 4, flags: w | flagDenyOOM, acl: acl, keys: oneKey, build: buildSetEx(true, "setex")},
		{name: "psetex", arity: 4, flags: w | flagDenyOOM, acl: acl, keys: oneKey, build: buildSetEx(false, "psetex")},
		{name: "getex", arity: -2, flags: w | flagFast, acl: acl, keys: oneKey, build: buildGetEx},
		{name: "getdel", arity: 2, flags: w | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpGetDel)},
		{name: "mget", arity: -2, flags: r | flagFast, acl: acl, keys: allKeys, tips: tipsMultiShard, build: buildKeys(command.OpMGet), perKey: true},
		{name: "mset", arity: -3, flags: w | flagDenyOOM, acl: acl, keys: pairKeys, tips: []string{policyMultiShard, "response_policy:all_succeeded"}, build: buildMSet(false, "mset")},
		{name: "msetnx", arity: -3, flags: w | flagDenyOOM, acl: acl, keys: pairKeys, tips: []string{policyMultiShard, "response_policy:agg_min"}, build: buildMSet(true, "msetnx")},
		{name: "append", arity: 3, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildKeyValues(command.OpAppend)},
		{name: "strlen", arity: 2, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpStrLen)},
		{name: "incr", arity: 2, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildIncr(1, true)},
		{name: "decr", arity: 2, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildIncr(-1, true)},
		{name: "incrby", arity: 3, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildIncr(1, false)},
		{name: "decrby", arity: 3, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildIncr(-1, false)},
		{name: "getset", arity: 3, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildGetSet},
		{name: "getrange", arity: 4, flags: r, acl: acl, keys: oneKey, build: buildGetRange},
		{name: "substr", arity: 4, flags: r, acl: acl, keys: oneKey, build: buildGetRange},
		{name: "setrange", arity: 4, flags: w | flagDenyOOM, acl: acl, keys: oneKey, build: buildSetRange},
		{name: "incrbyfloat", arity: 3, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildKeyValues(command.OpIncrByFloat)},
		{name: "lcs", arity: -3, flags: r, acl: acl, keys: keyPos{1, 2, 1}, build: buildLCS, shape: shapeMap},
	}
}

func buildGet(c *conn, a [][]byte) (command.Cmd, string) {
	return c.cmd(command.OpGet, a[1]), c.keyCheck(a[1])
}

func buildSet(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpSet, a[1], a[2])
	if msg := c.keyValueCheck(a[1], a[2]); msg != "" {
		return cmd, msg
	}
	var expArg []byte
	var expSeconds, expAbs, haveExp bool
	for i := 3; i < len(a); i++ {
		o := strings.ToUpper(string(a[i]))
		hasNext := i+1 < len(a)
		switch {
		case o == "NX" && !cmd.Has(command.FlagXX):
			cmd.Flags |= command.FlagNX
		case o == "XX" && !cmd.Has(command.FlagNX):
			cmd.Flags |= command.FlagXX
		case o == "GET":
			cmd.Flags |= command.FlagGet
		case o == "KEEPTTL" && !haveExp:
			cmd.Flags |= command.FlagKeepTTL
		case (o == "EX" || o == "PX" || o == "EXAT" || o == "PXAT") && !haveExp && !cmd.Has(command.FlagKeepTTL) && hasNext:
			haveExp = true
			expSeconds = o == "EX" || o == "EXAT"
			expAbs = o == "EXAT" || o == "PXAT"
			i++
			expArg = a[i]
		default:
			return cmd, errSyntax
		}
	}
	if haveExp {
		n, f, msg := expiry(expArg, expSeconds, expAbs, "set")
		if msg != "" {
			return cmd, msg
		}
		cmd.N, cmd.Flags = n, cmd.Flags|f
	}
	return cmd, ""
}

func buildSetNX(c *conn, a [][]byte) (command.Cmd, string) {
	cmd, msg := buildKeyValues(command.OpSet)(c, a)
	cmd.Flags = command.FlagNX
	return cmd, msg
}

func buildSetEx(seconds bool, name string) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(command.OpSet, a[1], a[3])
		if msg := c.keyValueCheck(a[1], a[3]); msg != "" {
			return cmd, msg
		}
		n, f, msg := expiry(a[2], seconds, false, name)
		cmd.N, cmd.Flags = n, f
		return cmd, msg
	}
}

func buildGetEx(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpGetEx, a[1])
	if msg := c.keyCheck(a[1]); msg != "" {
		return cmd, msg
	}
	if len(a) == 2 {
		// Without options GETEX only reads.
		cmd.Op = command.OpGet
		return cmd, ""
	}
	o := strings.ToUpper(string(a[2]))
	switch {
	case o == "PERSIST" && len(a) == 3:
		cmd.Flags = command.FlagPersist
	case (o == "EX" || o == "PX" || o == "EXAT" || o == "PXAT") && len(a) == 4:
		n, f, msg := expiry(a[3], o == "EX" || o == "EXAT", o == "EXAT" || o == "PXAT", "getex")
		if msg != "" {
			return cmd, msg
		}
		cmd.N, cmd.Flags = n, f
	default:
		return cmd, errSyntax
	}
	return cmd, ""
}

func buildMSet(nx bool, name string) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		if len(a)%2 != 1 {
			return command.Cmd{}, arityError(name)
		}
		cmd := c.cmd(command.OpMSet, nil, a[1:]...)
		if nx {
			cmd.Flags = command.FlagNX
		}
		for i := 1; i < len(a); i += 2 {
			if msg := c.keyCheck(a[i]); msg != "" {
				return cmd, msg
			}
			if msg := c.valueCheck(a[i+1]); msg != "" {
				return cmd, msg
			}
		}
		return cmd, ""
	}
}

func buildIncr(sign int64, fixed bool) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(command.OpIncrBy, a[1])
		if msg := c.keyCheck(a[1]); msg != "" {
			return cmd, msg
		}
		cmd.N = sign
		if !fixed {
			n, ok := parseInt(a[2])
			if !ok {
				return cmd, errNotInteger
			}
			if sign < 0 {
				if n == math.MinInt64 {
					return cmd, "ERR decrement would overflow"
				}
				n = -n
			}
			cmd.N = n
		}
		return cmd, ""
	}
}

// replyIntFromSet turns SET NX's OK/nil into SETNX's 1/0.
func replyIntFromSet(c *conn, r command.Result) {
	if r.Kind == command.KindOK {
		c.out = resp.AppendInt(c.out, 1)
	} else {
		c.out = resp.AppendInt(c.out, 0)
	}
}

// expiry parses an expiry argument in the unit given and normalizes it to
// milliseconds, as redis's getExpireMillisecondsOrReply does.
func expiry(v []byte, seconds, abs bool, name string) (int64, uint32, string) {
	n, ok := parseInt(v)
	if !ok {
		return 0, 0, errNotInteger
	}
	if n <= 0 {
		return 0, 0, invalidExpire(name)
	}
	if seconds {
		if n > math.MaxInt64/1000 {
			return 0, 0, invalidExpire(name)
		}
		n *= 1000
	}
	if abs {
		return n, command.FlagExpireAbs, ""
	}
	return n, command.FlagExpireRel, ""
}

// buildGetSet is GETSET as SET key value GET, which it is in redis too
// (the TTL goes, the event is "set").
func buildGetSet(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpSet, a[1], a[2])
	cmd.Flags = command.FlagGet
	return cmd, c.keyValueCheck(a[1], a[2])
}

// buildGetRange is GETRANGE and SUBSTR: both numbers must parse before the
// key is looked at.
func buildGetRange(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpGetRange, a[1], a[2], a[3])
	if _, ok := parseInt(a[2]); !ok {
		return cmd, errNotInteger
	}
	if _, ok := parseInt(a[3]); !ok {
		return cmd, errNotInteger
	}
	return cmd, c.keyCheck(a[1])
}

// buildSetRange carries the largest string the result may be
// (proto-max-bulk-len, and max-value-size if lower): the executor checks
// it once it knows the key's type, as redis does.
func buildSetRange(c *conn, a [][]byte) (command.Cmd, string) {
	limit := min(c.srv.cfg.MaxBulk, c.srv.cfg.MaxValueSize)
	cmd := c.cmd(command.OpSetRange, a[1], a[3], strconv.AppendInt(nil, limit, 10))
	n, ok := parseInt(a[2])
	switch {
	case !ok:
		return cmd, errNotInteger
	case n < 0:
		return cmd, "ERR offset is out of range"
	}
	cmd.N = n
	return cmd, c.keyCheck(a[1])
}

// buildLCS passes LCS's options as they are: the executor parses them
// after checking the keys' types, in redis's order.
func buildLCS(c *conn, a [][]byte) (command.Cmd, string) {
	return c.cmd(command.OpLCS, a[1], a[2:]...), c.keyCheck(a[1], a[2])
}

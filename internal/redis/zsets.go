package redis

import (
	"slices"
	"strconv"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// Sorted sets. Options are parsed here in redis 7.0's order, so that a
// request with two faults gets the same error as from redis-server; the
// executor gets them normalized (see command.OpZAdd and the others). The
// blocking pops (BZPOPMIN, BZPOPMAX, BZMPOP) build ZMPOP, and wait in the
// lists' registry (blocking.go).
func zsetCommands() []*cmdSpec {
	const w, r, acl = flagWrite, flagReadOnly, aclSortedSet
	const blk = flagWrite | flagNoScript | flagBlocking
	return []*cmdSpec{
		{name: "zadd", arity: -4, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildZAdd},
		{name: "zincrby", arity: 4, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildZIncrBy},
		{name: "zrem", arity: -3, flags: w | flagFast, acl: acl, keys: oneKey, build: buildZMembers(command.OpZRem, 0)},
		{name: "zscore", arity: 3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildZMembers(command.OpZScore, 0)},
		{name: "zmscore", arity: -3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildZMembers(command.OpZMScore, 0)},
		{name: "zcard", arity: 2, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpZCard)},
		{name: "zrank", arity: 3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildZMembers(command.OpZRank, 0)},
		{name: "zrevrank", arity: 3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildZMembers(command.OpZRank, command.FlagRev)},
		{name: "zcount", arity: 4, flags: r | flagFast, acl: acl, keys: oneKey, build: buildZRangeOnly(command.OpZCount, command.FlagByScore)},
		{name: "zlexcount", arity: 4, flags: r | flagFast, acl: acl, keys: oneKey, build: buildZRangeOnly(command.OpZCount, command.FlagByLex)},
		{name: "zremrangebyrank", arity: 4, flags: w, acl: acl, keys: oneKey, build: buildZRangeOnly(command.OpZRemRange, 0)},
		{name: "zremrangebyscore", arity: 4, flags: w, acl: acl, keys: oneKey, build: buildZRangeOnly(command.OpZRemRange, command.FlagByScore)},
		{name: "zremrangebylex", arity: 4, flags: w, acl: acl, keys: oneKey, build: buildZRangeOnly(command.OpZRemRange, command.FlagByLex)},
		{name: "zpopmin", arity: -2, flags: w | flagFast, acl: acl, keys: oneKey, build: buildZPop(command.FlagLeft)},
		{name: "zpopmax", arity: -2, flags: w | flagFast, acl: acl, keys: oneKey, build: buildZPop(0)},
		{name: "zrange", arity: -4, flags: r, acl: acl, keys: oneKey, build: buildZRange(zrangeAuto, false)},
		{name: "zrangebyscore", arity: -4, flags: r, acl: acl, keys: oneKey, build: buildZRange(command.FlagByScore, false)},
		{name: "zrangebylex", arity: -4, flags: r, acl: acl, keys: oneKey, build: buildZRange(command.FlagByLex, false)},
		{name: "zrevrange", arity: -4, flags: r, acl: acl, keys: oneKey, build: buildZRange(0, true)},
		{name: "zrevrangebyscore", arity: -4, flags: r, acl: acl, keys: oneKey, build: buildZRange(command.FlagByScore, true)},
		{name: "zrevrangebylex", arity: -4, flags: r, acl: acl, keys: oneKey, build: buildZRange(command.FlagByLex, true)},
		{name: "zrangestore", arity: -5, flags: w | flagDenyOOM, acl: acl, keys: keyPos{1, 2, 1}, build: buildZRangeStore},
		{name: "zunion", arity: -3, flags: r | flagMovableKeys, acl: acl, keysOf: zcombineKeys(1), build: buildZCombine(command.OpZUnion, "zunion")},
		{name: "zinter", arity: -3, flags: r | flagMovableKeys, acl: acl, keysOf: zcombineKeys(1), build: buildZCombine(command.OpZInter, "zinter")},
		{name: "zdiff", arity: -3, flags: r | flagMovableKeys, acl: acl, keysOf: zcombineKeys(1), build: buildZCombine(command.OpZDiff, "zdiff")},
		{name: "zunionstore", arity: -4, flags: w | flagDenyOOM | flagMovableKeys, acl: acl, keys: oneKey, keysOf: zcombineKeys(2), build: buildZCombine(command.OpZUnionStore, "zunionstore")},
		{name: "zinterstore", arity: -4, flags: w | flagDenyOOM | flagMovableKeys, acl: acl, keys: oneKey, keysOf: zcombineKeys(2), build: buildZCombine(command.OpZInterStore, "zinterstore")},
		{name: "zdiffstore", arity: -4, flags: w | flagDenyOOM | flagMovableKeys, acl: acl, keys: oneKey, keysOf: zcombineKeys(2), build: buildZCombine(command.OpZDiffStore, "zdiffstore")},
		{name: "zintercard", arity: -3, flags: r | flagMovableKeys, acl: acl, keysOf: zcombineKeys(1), build: buildZCombine(command.OpZInterCard, "zintercard")},
		{name: "zrandmember", arity: -2, flags: r, acl: acl, keys: oneKey, tips: tipsNondeterministic, build: buildRandomCount(command.OpZRandMember, "withscores")},
		{name: "zscan", arity: -3, flags: r, acl: acl, keys: oneKey, tips: tipsNondeterministic, build: buildCollectionScan(command.OpZScan)},
		{name: "zmpop", arity: -4, flags: w | flagMovableKeys, acl: acl, keysOf: mpopKeys(1), build: buildZMPop(false)},
		{name: "bzpopmin", arity: -3, flags: blk | flagFast, acl: acl, keys: keyPos{1, -2, 1}, build: buildBPop(command.OpZMPop, command.FlagLeft), reply: replyBZPop},
		{name: "bzpopmax", arity: -3, flags: blk | flagFast, acl: acl, keys: keyPos{1, -2, 1}, build: buildBPop(command.OpZMPop, 0), reply: replyBZPop},
		{name: "bzmpop", arity: -5, flags: w | flagBlocking | flagMovableKeys, acl: acl, keysOf: mpopKeys(2), build: buildZMPop(true)},
	}
}

// buildZAdd parses ZADD's options as redis's zaddGenericCommand, which
// checks them all, then every score, before it looks at the key.
func buildZAdd(c *conn, a [][]byte) (command.Cmd, string) {
	var flags uint32
	at := 2
	for ; at < len(a); at++ {
		i := slices.IndexFunc(zaddOptions, func(o zaddOption) bool { return eq(a[at], o.word) })
		if i < 0 {
			break
		}
		flags |= zaddOptions[i].flag
	}
	has := func(f uint32) bool { return flags&f != 0 }
	pairs := a[at:]
	switch {
	case len(pairs) == 0 || len(pairs)%2 != 0:
		return command.Cmd{}, errSyntax
	case has(command.FlagNX) && has(command.FlagXX):
		return command.Cmd{}, "ERR XX and NX options at the same time are not compatible"
	case (has(command.FlagGT) && has(command.FlagNX)) || (has(command.FlagLT) && has(command.FlagNX)) || (has(command.FlagGT) && has(command.FlagLT)):
		return command.Cmd{}, "ERR GT, LT, and/or NX options at the same time are not compatible"
	case has(command.FlagIncr) && len(pairs) > 2:
		return command.Cmd{}, "ERR INCR option supports a single increment-element pair"
	}
	members := make([][]byte, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		if _, ok := command.ParseScore(pairs[i]); !ok {
			return command.Cmd{}, errNotFloat
		}
		members = append(members, pairs[i+1])
	}
	cmd := c.cmd(command.OpZAdd, a[1], pairs...)
	cmd.Flags = flags
	return cmd, c.keyValueCheck(a[1], members...)
}

const errNotFloat = "ERR value is not a valid float"

type zaddOption struct {
	word string
	flag uint32
}

// zaddOptions are ZADD's options, which come before the scores.
var zaddOptions = []zaddOption{
	{"nx", command.FlagNX}, {"xx", command.FlagXX}, {"gt", command.FlagGT}, {"lt", command.FlagLT},
	{"ch", command.FlagCH}, {"incr", command.FlagIncr},
}

// buildZIncrBy is ZINCRBY key increment member: ZADD key INCR.
func buildZIncrBy(c *conn, a [][]byte) (command.Cmd, string) {
	if _, ok := command.ParseScore(a[2]); !ok {
		return command.Cmd{}, errNotFloat
	}
	cmd := c.cmd(command.OpZAdd, a[1], a[2], a[3])
	cmd.Flags = command.FlagIncr
	return cmd, c.keyValueCheck(a[1], a[3])
}

// buildZMembers is a command of a key and members.
func buildZMembers(op command.Op, flags uint32) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(op, a[1], a[2:]...)
		cmd.Flags = flags
		return cmd, c.keyCheck(a[1])
	}
}

// zrangeMsg checks a range of ranks (flags 0), scores or members, as
// redis does before it looks at the key.
func zrangeMsg(flags uint32, min, max []byte) string {
	switch {
	case flags&command.FlagByScore != 0:
		if _, ok := command.ParseScoreRange(min, max); !ok {
			return "ERR min or max is not a float"
		}
	case flags&command.FlagByLex != 0:
		if _, ok := command.ParseLexRange(min, max); !ok {
			return "ERR min or max not valid string range item"
		}
	default:
		_, ok1 := parseInt(min)
		_, ok2 := parseInt(max)
		if !ok1 || !ok2 {
			return errNotInteger
		}
	}
	return ""
}

// buildZRangeOnly is a command of a key and a range: ZCOUNT, ZLEXCOUNT
// and the ZREMRANGEBY commands.
func buildZRangeOnly(op command.Op, flags uint32) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(op, a[1], a[2], a[3])
		cmd.Flags = flags
		if msg := zrangeMsg(flags, a[2], a[3]); msg != "" {
			return cmd, msg
		}
		return cmd, c.keyCheck(a[1])
	}
}

// buildZPop is ZPOPMIN and ZPOPMAX, with an optional count.
func buildZPop(flags uint32) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(command.OpZPop, a[1])
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
			return cmd, errSyntax
		}
		return cmd, c.keyCheck(a[1])
	}
}

// zrangeAuto marks ZRANGE, whose options choose the kind of range.
const zrangeAuto = ^uint32(0)

// buildZRange is ZRANGE and the older commands it stands for, as redis's
// zrangeGenericCommand: kind is the range's kind (ranks: 0) unless it is
// zrangeAuto, rev the direction the command implies.
func buildZRange(kind uint32, rev bool) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) { return parseZRange(c, a, kind, rev, false) }
}

// parseZRange parses ZRANGE key min max and its options (for ZRANGESTORE,
// store, without WITHSCORES).
func parseZRange(c *conn, a [][]byte, kind uint32, rev, store bool) (command.Cmd, string) {
	auto := kind == zrangeAuto
	flags := kind
	if auto {
		flags = 0
	}
	dirAuto := auto // only ZRANGE takes REV
	if rev {
		flags |= command.FlagRev
	}
	offset, limit := int64(0), int64(-1)
	for j := 4; j < len(a); j++ {
		left := len(a) - j - 1
		switch {
		case !store && eq(a[j], "withscores"):
			flags |= command.FlagWithScores
		case eq(a[j], "limit") && left >= 2:
			var ok1, ok2 bool
			offset, ok1 = parseInt(a[j+1])
			if ok1 {
				limit, ok2 = parseInt(a[j+2])
			}
			if !ok1 || !ok2 {
				return command.Cmd{}, errNotInteger
			}
			j += 2
		case dirAuto && eq(a[j], "rev"):
			flags |= command.FlagRev
			dirAuto = false
		case auto && eq(a[j], "bylex"):
			flags |= command.FlagByLex
			auto = false
		case auto && eq(a[j], "byscore"):
			flags |= command.FlagByScore
			auto = false
		default:
			return command.Cmd{}, errSyntax
		}
	}
	byRank := flags&(command.FlagByScore|command.FlagByLex) == 0
	switch {
	case limit != -1 && byRank:
		return command.Cmd{}, "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
	case flags&command.FlagWithScores != 0 && flags&command.FlagByLex != 0:
		return command.Cmd{}, "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
	}
	min, max := a[2], a[3]
	if flags&command.FlagRev != 0 && !byRank {
		min, max = max, min // given as max, min
	}
	if msg := zrangeMsg(flags&(command.FlagByScore|command.FlagByLex), min, max); msg != "" {
		return command.Cmd{}, msg
	}
	itoa := func(n int64) []byte { return strconv.AppendInt(nil, n, 10) }
	cmd := c.cmd(command.OpZRange, a[1], min, max, itoa(offset), itoa(limit))
	cmd.Flags = flags
	return cmd, c.keyCheck(a[1])
}

// buildZRangeStore is ZRANGESTORE dst src min max and ZRANGE's options
// but WITHSCORES.
func buildZRangeStore(c *conn, a [][]byte) (command.Cmd, string) {
	cmd, msg := parseZRange(c, append([][]byte{a[0]}, a[2:]...), zrangeAuto, false, true)
	if msg != "" {
		return command.Cmd{}, msg
	}
	cmd.Op, cmd.Key = command.OpZRangeStore, a[1]
	cmd.Args = append([][]byte{a[2]}, cmd.Args...)
	return cmd, c.keyCheck(a[1], a[2])
}

// zcombineKeys finds the keys of ZUNION and the others, whose numkeys is
// at at: the destination (at 2: the STORE forms) and numkeys keys.
func zcombineKeys(at int) func(a [][]byte) ([][]byte, bool) {
	return func(a [][]byte) ([][]byte, bool) {
		n, ok := parseInt(a[at])
		if !ok || n < 1 || n > int64(len(a)-at-1) {
			return nil, false
		}
		keys := a[at+1 : at+1+int(n)]
		if at == 2 {
			keys = append([][]byte{a[1]}, keys...)
		}
		return keys, true
	}
}

// buildZCombine checks numkeys; the options are parsed by the executor,
// after the keys' types, as redis does.
func buildZCombine(op command.Op, name string) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		at := 1
		var dst []byte
		if op == command.OpZUnionStore || op == command.OpZInterStore || op == command.OpZDiffStore {
			at, dst = 2, a[1]
		}
		n, ok := parseInt(a[at])
		switch {
		case !ok:
			return command.Cmd{}, errNotInteger
		case n < 1:
			return command.Cmd{}, "ERR at least 1 input key is needed for '" + name + "' command"
		case n > int64(len(a)-at-1):
			return command.Cmd{}, errSyntax
		}
		cmd := c.cmd(op, dst, a[at+1:]...)
		cmd.N = n
		keys := a[at+1 : at+1+int(n)]
		if dst != nil {
			keys = append([][]byte{dst}, keys...)
		}
		return cmd, c.keyCheck(keys...)
	}
}

// buildZMPop is ZMPOP numkeys key … MIN|MAX [COUNT count], and BZMPOP,
// whose timeout comes first.
func buildZMPop(blocking bool) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		keys, count, min, msg := parseMPop(a, blocking, "min", "max")
		if msg != "" {
			return command.Cmd{}, msg
		}
		cmd := c.cmd(command.OpZMPop, nil, keys...)
		cmd.N = count
		if min {
			cmd.Flags = command.FlagLeft
		}
		return cmd, c.keyCheck(keys...)
	}
}

// replyBZPop is BZPOPMIN's reply: the key, the member and its score, or a
// null array.
func replyBZPop(c *conn, r command.Result) {
	if r.Kind != command.KindArray || len(r.Array) != 2 || len(r.Array[1].Array) == 0 {
		c.appendNullArray()
		return
	}
	pair := r.Array[1].Array[0].Array
	c.out = resp.AppendArray(c.out, 3)
	c.out = resp.AppendBulk(c.out, r.Array[0].Bulk)
	c.out = resp.AppendBulk(c.out, pair[0].Bulk)
	c.out = appendReply(c.out, pair[1], c.protocol(), shapeArray) // a double in RESP3
}

// zmpopResult is ZMPOP's reply from what a served try reported taking
// from key: member, score, member, score …
func zmpopResult(key string, elems [][]byte) command.Result {
	pairs := make([]command.Result, 0, len(elems)/2)
	for i := 0; i+1 < len(elems); i += 2 {
		pairs = append(pairs, command.Result{Kind: command.KindArray, Array: []command.Result{
			{Kind: command.KindBulk, Bulk: elems[i]}, {Kind: command.KindBulk, Bulk: elems[i+1], Form: command.FormDouble}}})
	}
	return command.Result{Kind: command.KindArray, Array: []command.Result{
		{Kind: command.KindBulk, Bulk: []byte(key)}, {Kind: command.KindArray, Array: pairs}}}
}

// zaddBack is the ZADD that puts back what a ZMPOP reply r took.
func zaddBack(db uint8, r command.Result) (command.Cmd, bool) {
	if r.Kind != command.KindArray || len(r.Array) != 2 {
		return command.Cmd{}, false
	}
	cmd := command.Cmd{Op: command.OpZAdd, DB: db, Key: r.Array[0].Bulk}
	for _, p := range r.Array[1].Array {
		if len(p.Array) == 2 {
			cmd.Args = append(cmd.Args, p.Array[1].Bulk, p.Array[0].Bulk)
		}
	}
	return cmd, len(cmd.Args) > 0
}

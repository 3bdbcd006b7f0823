package redis

import (
	"bytes"
	"math"
	"strconv"
	"strings"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// Command flags.
const (
	flagNoAuth   = 1 << iota // allowed before AUTH
	flagNoQueue              // runs immediately inside MULTI (EXEC, DISCARD, MULTI, QUIT)
	flagWrite                // reported as "write" by COMMAND
	flagReadOnly             // reported as "readonly" by COMMAND
	flagNoScript             // data command a script may not call (EVAL inside EVAL)
)

// cmdSpec describes one command. Data commands have build (request →
// typed command, or an error reply) and optionally reply (result → RESP,
// when it differs from the generic encoding); the others have run.
type cmdSpec struct {
	name  string
	arity int // redis convention: n = exactly n, -n = at least n (name included)
	flags int
	build func(c *conn, args [][]byte) (command.Cmd, string)
	reply func(c *conn, r command.Result)
	run   func(c *conn, args [][]byte)
	data  bool // run is runData: the command becomes one command.Cmd
	// key positions for COMMAND INFO: first, last, step
	keys [3]int
}

var commands = map[string]*cmdSpec{}

// lookup finds a command by name in any case. Names of up to 32 bytes are
// lowered in a buffer on the stack, so the lookup allocates nothing.
func lookup(name []byte) *cmdSpec {
	var low [32]byte
	if len(name) > len(low) {
		return commands[strings.ToLower(string(name))]
	}
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		low[i] = ch
	}
	return commands[string(low[:len(name)])]
}

func register(specs ...*cmdSpec) {
	for _, s := range specs {
		if s.run == nil {
			spec := s
			s.run = func(c *conn, a [][]byte) { runData(c, spec, a) }
			s.data = true
		}
		if s.build != nil {
			if s.keys == [3]int{} {
				s.keys = [3]int{1, 1, 1}
			}
		}
		commands[s.name] = s
	}
}

func (s *cmdSpec) arityOK(n int) bool {
	return (s.arity > 0 && n == s.arity) || (s.arity < 0 && n >= -s.arity)
}

// runData executes a data command outside MULTI, or adds it to the
// connection's pipeline batch (see conn.batch).
func runData(c *conn, spec *cmdSpec, args [][]byte) {
	cmd, msg := spec.build(c, args)
	if msg != "" {
		if len(c.items) > 0 {
			c.refuseInBatch(spec, msg)
			return
		}
		c.out = resp.AppendError(c.out, msg)
		return
	}
	if len(c.batch) > 0 || (c.more && cmd.Op.IsWrite()) {
		c.addToBatch(spec, cmd)
		return
	}
	c.runOne(spec, cmd)
}

// runOne executes one data command on its own.
func (c *conn) runOne(spec *cmdSpec, cmd command.Cmd) {
	if cmd.Op.IsWrite() {
		c.writeOK(command.Tx{cmd}, func(res command.TxResult) { c.replyResult(spec, res.Results[0]) })
		return
	}
	if r, ok := c.readNow(cmd); ok {
		c.replyResult(spec, r)
		return
	}
	c.read(cmd, func(r command.Result) { c.replyResult(spec, r) })
}

func (c *conn) replyResult(spec *cmdSpec, r command.Result) {
	if r.Kind == command.KindError {
		c.out = resp.AppendError(c.out, errorText(r.Err, spec.name))
		return
	}
	if spec.reply != nil {
		spec.reply(c, r)
		return
	}
	c.out = appendResult(c.out, r)
}

func appendResult(out []byte, r command.Result) []byte {
	switch r.Kind {
	case command.KindNil:
		return resp.AppendNull(out)
	case command.KindOK:
		return resp.AppendSimple(out, "OK")
	case command.KindStatus:
		return resp.AppendSimple(out, r.Str)
	case command.KindInt:
		return resp.AppendInt(out, r.Int)
	case command.KindBulk:
		return resp.AppendBulk(out, r.Bulk)
	case command.KindArray:
		out = resp.AppendArray(out, len(r.Array))
		for _, e := range r.Array {
			out = appendResult(out, e)
		}
		return out
	case command.KindError:
		return resp.AppendError(out, errorText(r.Err, ""))
	}
	return resp.AppendError(out, "ERR internal error: unknown result")
}

// replyIntFromSet turns SET NX's OK/nil into SETNX's 1/0.
func replyIntFromSet(c *conn, r command.Result) {
	if r.Kind == command.KindOK {
		c.out = resp.AppendInt(c.out, 1)
	} else {
		c.out = resp.AppendInt(c.out, 0)
	}
}

func replyOK(c *conn, _ command.Result) { c.out = resp.AppendSimple(c.out, "OK") }

func (c *conn) cmd(op command.Op, key []byte, args ...[]byte) command.Cmd {
	return command.Cmd{Op: op, DB: uint8(c.db.Load()), Key: key, Args: args}
}

// keyCheck enforces the configured key size limit.
func (c *conn) keyCheck(keys ...[]byte) string {
	for _, k := range keys {
		if len(k) > c.srv.cfg.MaxKeySize {
			return "ERR key is too large (max-key-size is " + strconv.Itoa(c.srv.cfg.MaxKeySize) + " bytes)"
		}
	}
	return ""
}

// valueCheck enforces the configured value size limit.
func (c *conn) valueCheck(vals ...[]byte) string {
	for _, v := range vals {
		if int64(len(v)) > c.srv.cfg.MaxValueSize {
			return "ERR value is too large (max-value-size is " + strconv.FormatInt(c.srv.cfg.MaxValueSize, 10) + " bytes)"
		}
	}
	return ""
}

func parseInt(b []byte) (int64, bool) { return command.ParseInt(b) }

func eq(b []byte, s string) bool { return strings.EqualFold(string(b), s) }

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

func buildGet(c *conn, a [][]byte) (command.Cmd, string) {
	return c.cmd(command.OpGet, a[1]), c.keyCheck(a[1])
}

func buildSet(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpSet, a[1], a[2])
	if msg := c.keyCheck(a[1]); msg != "" {
		return cmd, msg
	}
	if msg := c.valueCheck(a[2]); msg != "" {
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

func buildSetEx(seconds bool, name string) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(command.OpSet, a[1], a[3])
		if msg := c.keyCheck(a[1]); msg != "" {
			return cmd, msg
		}
		if msg := c.valueCheck(a[3]); msg != "" {
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

func buildKeys(op command.Op) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(op, nil, a[1:]...)
		return cmd, c.keyCheck(a[1:]...)
	}
}

func buildOneKey(op command.Op) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		return c.cmd(op, a[1], a[2:]...), c.keyCheck(a[1])
	}
}

func buildKeyValues(op command.Op) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		if msg := c.keyCheck(a[1]); msg != "" {
			return command.Cmd{}, msg
		}
		return c.cmd(op, a[1], a[2:]...), c.valueCheck(a[2:]...)
	}
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

func buildHSet(name string) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		if len(a)%2 != 0 {
			return command.Cmd{}, arityError(name)
		}
		if msg := c.keyCheck(a[1]); msg != "" {
			return command.Cmd{}, msg
		}
		return c.cmd(command.OpHSet, a[1], a[2:]...), c.valueCheck(a[3:]...)
	}
}

func buildHSetNX(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpHSet, a[1], a[2], a[3])
	cmd.Flags = command.FlagNX
	if msg := c.keyCheck(a[1]); msg != "" {
		return cmd, msg
	}
	return cmd, c.valueCheck(a[3])
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

func buildNoKey(op command.Op) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		return c.cmd(op, nil, a[1:]...), ""
	}
}

func init() {
	w, r := flagWrite, flagReadOnly
	register(
		&cmdSpec{name: "get", arity: 2, flags: r, build: buildGet},
		&cmdSpec{name: "set", arity: -3, flags: w, build: buildSet},
		&cmdSpec{name: "setnx", arity: 3, flags: w, build: func(c *conn, a [][]byte) (command.Cmd, string) {
			cmd, msg := buildKeyValues(command.OpSet)(c, a)
			cmd.Flags = command.FlagNX
			return cmd, msg
		}, reply: replyIntFromSet},
		&cmdSpec{name: "setex", arity: 4, flags: w, build: buildSetEx(true, "setex")},
		&cmdSpec{name: "psetex", arity: 4, flags: w, build: buildSetEx(false, "psetex")},
		&cmdSpec{name: "getex", arity: -2, flags: w, build: buildGetEx},
		&cmdSpec{name: "getdel", arity: 2, flags: w, build: buildOneKey(command.OpGetDel)},
		&cmdSpec{name: "mget", arity: -2, flags: r, build: buildKeys(command.OpMGet), keys: [3]int{1, -1, 1}},
		&cmdSpec{name: "mset", arity: -3, flags: w, build: buildMSet(false, "mset"), keys: [3]int{1, -1, 2}},
		&cmdSpec{name: "msetnx", arity: -3, flags: w, build: buildMSet(true, "msetnx"), keys: [3]int{1, -1, 2}},
		&cmdSpec{name: "del", arity: -2, flags: w, build: buildKeys(command.OpDel), keys: [3]int{1, -1, 1}},
		&cmdSpec{name: "unlink", arity: -2, flags: w, build: buildKeys(command.OpDel), keys: [3]int{1, -1, 1}},
		&cmdSpec{name: "exists", arity: -2, flags: r, build: buildKeys(command.OpExists), keys: [3]int{1, -1, 1}},
		&cmdSpec{name: "expire", arity: -3, flags: w, build: buildExpire(true, false, "expire")},
		&cmdSpec{name: "pexpire", arity: -3, flags: w, build: buildExpire(false, false, "pexpire")},
		&cmdSpec{name: "expireat", arity: -3, flags: w, build: buildExpire(true, true, "expireat")},
		&cmdSpec{name: "pexpireat", arity: -3, flags: w, build: buildExpire(false, true, "pexpireat")},
		&cmdSpec{name: "persist", arity: 2, flags: w, build: buildOneKey(command.OpPersist)},
		&cmdSpec{name: "ttl", arity: 2, flags: r, build: buildTTL(0)},
		&cmdSpec{name: "pttl", arity: 2, flags: r, build: buildTTL(command.FlagMillis)},
		&cmdSpec{name: "expiretime", arity: 2, flags: r, build: buildTTL(command.FlagAbs)},
		&cmdSpec{name: "pexpiretime", arity: 2, flags: r, build: buildTTL(command.FlagAbs | command.FlagMillis)},
		&cmdSpec{name: "type", arity: 2, flags: r, build: buildOneKey(command.OpType)},
		&cmdSpec{name: "append", arity: 3, flags: w, build: buildKeyValues(command.OpAppend)},
		&cmdSpec{name: "strlen", arity: 2, flags: r, build: buildOneKey(command.OpStrLen)},
		&cmdSpec{name: "incr", arity: 2, flags: w, build: buildIncr(1, true)},
		&cmdSpec{name: "decr", arity: 2, flags: w, build: buildIncr(-1, true)},
		&cmdSpec{name: "incrby", arity: 3, flags: w, build: buildIncr(1, false)},
		&cmdSpec{name: "decrby", arity: 3, flags: w, build: buildIncr(-1, false)},
		&cmdSpec{name: "rename", arity: 3, flags: w, build: buildRename(false), keys: [3]int{1, 2, 1}},
		&cmdSpec{name: "renamenx", arity: 3, flags: w, build: buildRename(true), keys: [3]int{1, 2, 1}},
		&cmdSpec{name: "keys", arity: 2, flags: r, build: buildNoKey(command.OpKeys), keys: [3]int{-1, -1, -1}},
		&cmdSpec{name: "scan", arity: -2, flags: r, build: buildScan, keys: [3]int{-1, -1, -1}},
		&cmdSpec{name: "dbsize", arity: 1, flags: r, build: buildNoKey(command.OpDBSize), keys: [3]int{-1, -1, -1}},
		&cmdSpec{name: "flushdb", arity: -1, flags: w, build: buildFlush(command.OpFlushDB), keys: [3]int{-1, -1, -1}},
		&cmdSpec{name: "flushall", arity: -1, flags: w, build: buildFlush(command.OpFlushAll), keys: [3]int{-1, -1, -1}},

		&cmdSpec{name: "hset", arity: -4, flags: w, build: buildHSet("hset")},
		&cmdSpec{name: "hmset", arity: -4, flags: w, build: buildHSet("hmset"), reply: replyOK},
		&cmdSpec{name: "hsetnx", arity: 4, flags: w, build: buildHSetNX},
		&cmdSpec{name: "hget", arity: 3, flags: r, build: buildOneKey(command.OpHGet)},
		&cmdSpec{name: "hmget", arity: -3, flags: r, build: buildOneKey(command.OpHMGet)},
		&cmdSpec{name: "hgetall", arity: 2, flags: r, build: buildOneKey(command.OpHGetAll)},
		&cmdSpec{name: "hkeys", arity: 2, flags: r, build: buildOneKey(command.OpHKeys)},
		&cmdSpec{name: "hvals", arity: 2, flags: r, build: buildOneKey(command.OpHVals)},
		&cmdSpec{name: "hlen", arity: 2, flags: r, build: buildOneKey(command.OpHLen)},
		&cmdSpec{name: "hexists", arity: 3, flags: r, build: buildOneKey(command.OpHExists)},
		&cmdSpec{name: "hstrlen", arity: 3, flags: r, build: buildOneKey(command.OpHStrLen)},
		&cmdSpec{name: "hdel", arity: -3, flags: w, build: buildOneKey(command.OpHDel)},
		&cmdSpec{name: "hincrby", arity: 4, flags: w, build: buildHIncrBy},

		&cmdSpec{name: "sadd", arity: -3, flags: w, build: buildKeyValues(command.OpSAdd)},
		&cmdSpec{name: "srem", arity: -3, flags: w, build: buildOneKey(command.OpSRem)},
		&cmdSpec{name: "smembers", arity: 2, flags: r, build: buildOneKey(command.OpSMembers)},
		&cmdSpec{name: "sismember", arity: 3, flags: r, build: buildOneKey(command.OpSIsMember)},
		&cmdSpec{name: "smismember", arity: -3, flags: r, build: buildOneKey(command.OpSMIsMember)},
		&cmdSpec{name: "scard", arity: 2, flags: r, build: buildOneKey(command.OpSCard)},
	)
}

package command

import (
	"bytes"
	"math"
	"strconv"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Strings: SET and its variants, GET, GETEX, GETDEL, MGET, MSET, APPEND,
// INCRBY and STRLEN.
var stringOps = []opRow{
	{op: OpSet, name: "set", flags: opWrite | opDenyOOM, args: argShape{1, 1}, exec: execSet},
	{op: OpGetEx, name: "getex", flags: opWrite, exec: execGetEx},
	{op: OpGetDel, name: "getdel", flags: opWrite, exec: execGetDel},
	{op: OpMSet, name: "mset", flags: opWrite | opDenyOOM, args: argShape{2, 2}, exec: execMSet},
	{op: OpAppend, name: "append", flags: opWrite | opDenyOOM, args: argShape{1, 1}, exec: execAppend},
	{op: OpIncrBy, name: "incrby", flags: opWrite | opDenyOOM, exec: execIncrBy},
	{op: OpGet, name: "get", exec: execGet},
	{op: OpMGet, name: "mget", args: argShape{1, 1}, exec: execMGet},
	{op: OpStrLen, name: "strlen", exec: execStrLen},
	{op: OpGetRange, name: "getrange", flags: opItem, args: argShape{2, 1}, exec: execGetRange},
	{op: OpSetRange, name: "setrange", flags: opWrite | opDenyOOM | opItem, args: argShape{2, 1}, exec: execSetRange},
	{op: OpIncrByFloat, name: "incrbyfloat", flags: opWrite | opDenyOOM | opItem, args: argShape{1, 1}, exec: execIncrByFloat},
	{op: OpLCS, name: "lcs", flags: opItem, args: argShape{1, 1}, exec: execLCS},
}

func execSet(v env, c *Cmd) Result {
	ks, db, key, now := v.ks, v.db, v.key, v.h.Now
	old := ks.Get(db, key, now)
	if c.Has(FlagGet) && old != nil && old.Type != keyspace.TypeString {
		return resErr(ErrWrongType)
	}
	reply := resOK
	if c.Has(FlagGet) {
		reply = resNil
		if old != nil {
			reply = resCopy(old.Str) // the Put below frees or rewrites old's slot
		}
	}
	if (c.Has(FlagNX) && old != nil) || (c.Has(FlagXX) && old == nil) {
		if c.Has(FlagGet) {
			return reply
		}
		return resNil
	}
	var at int64
	switch {
	case c.Has(FlagKeepTTL):
		if old != nil {
			at = old.ExpireAt
		}
	case c.Flags&(FlagExpireRel|FlagExpireAbs) != 0:
		var err error
		if at, err = expireAt(c, now); err != nil {
			return resErr(err)
		}
		if at <= now {
			// A time already past stores nothing: the key is gone at once,
			// as redis-server does for SET … EXAT <past>.
			ks.Delete(db, key)
			ks.Notify(db, keyspace.EventGeneric, "del", key)
			return reply
		}
	}
	ks.Put(db, key, &keyspace.Entry{Type: keyspace.TypeString, Str: c.Args[0], ExpireAt: at}, now)
	ks.Notify(db, keyspace.EventString, "set", key)
	if at != 0 {
		ks.Notify(db, keyspace.EventGeneric, "expire", key)
	}
	return reply
}

func execGetEx(v env, c *Cmd) Result {
	ks, db, key, now := v.ks, v.db, v.key, v.h.Now
	e := ks.Get(db, key, now)
	if e == nil {
		return resNil
	}
	if e.Type != keyspace.TypeString {
		return resErr(ErrWrongType)
	}
	// The reply copies the value before the key changes: e.Str aliases
	// the key's slot, which the change frees or rewrites in place.
	reply := resValue(e)
	switch {
	case c.Has(FlagPersist):
		if e.ExpireAt != 0 {
			ks.Put(db, key, e.WithExpiry(0), now)
			ks.Notify(db, keyspace.EventGeneric, "persist", key)
		}
	case c.Flags&(FlagExpireRel|FlagExpireAbs) != 0:
		at, err := expireAt(c, now)
		if err != nil {
			return resErr(err)
		}
		expireOrDelete(v, e, at)
	}
	return reply
}

func execGetDel(v env, _ *Cmd) Result {
	ks, db, key := v.ks, v.db, v.key
	e := ks.Get(db, key, v.h.Now)
	if e == nil {
		return resNil
	}
	if e.Type != keyspace.TypeString {
		return resErr(ErrWrongType)
	}
	reply := resCopy(e.Str) // before Delete frees the slot e.Str aliases
	ks.Delete(db, key)
	ks.Notify(db, keyspace.EventGeneric, "del", key)
	return reply
}

func execMSet(v env, c *Cmd) Result {
	ks, db, now := v.ks, v.db, v.h.Now
	if c.Has(FlagNX) {
		for i := 0; i < len(c.Args); i += 2 {
			if ks.Get(db, string(c.Args[i]), now) != nil {
				return resInt(0)
			}
		}
	}
	for i := 0; i+1 < len(c.Args); i += 2 {
		ks.Put(db, string(c.Args[i]), &keyspace.Entry{Type: keyspace.TypeString, Str: c.Args[i+1]}, now)
		ks.Notify(db, keyspace.EventString, "set", string(c.Args[i]))
	}
	if c.Has(FlagNX) {
		return resInt(1)
	}
	return resOK
}

func execAppend(v env, c *Cmd) Result {
	ks, db, key, now := v.ks, v.db, v.key, v.h.Now
	e := ks.Get(db, key, now)
	var old []byte
	var exp int64
	if e != nil {
		if e.Type != keyspace.TypeString {
			return resErr(ErrWrongType)
		}
		old, exp = e.Str, e.ExpireAt
	}
	val := make([]byte, 0, len(old)+len(c.Args[0]))
	val = append(append(val, old...), c.Args[0]...)
	ks.Put(db, key, &keyspace.Entry{Type: keyspace.TypeString, Str: val, ExpireAt: exp}, now)
	ks.Notify(db, keyspace.EventString, "append", key)
	return resInt(int64(len(val)))
}

func execIncrBy(v env, c *Cmd) Result {
	ks, db, key, now := v.ks, v.db, v.key, v.h.Now
	e := ks.Get(db, key, now)
	var cur, exp int64
	if e != nil {
		if e.Type != keyspace.TypeString {
			return resErr(ErrWrongType)
		}
		n, ok := ParseInt(e.Str)
		if !ok {
			return resErr(ErrNotInteger)
		}
		cur, exp = n, e.ExpireAt
	}
	if (c.N > 0 && cur > math.MaxInt64-c.N) || (c.N < 0 && cur < math.MinInt64-c.N) {
		return resErr(ErrOverflow)
	}
	cur += c.N
	ks.Put(db, key, &keyspace.Entry{Type: keyspace.TypeString, Str: strconv.AppendInt(nil, cur, 10), ExpireAt: exp}, now)
	ks.Notify(db, keyspace.EventString, "incrby", key)
	return resInt(cur)
}

func execGet(v env, _ *Cmd) Result {
	e := v.ks.Get(v.db, v.key, v.h.Now)
	if e == nil {
		return resNil
	}
	if e.Type != keyspace.TypeString {
		return resErr(ErrWrongType)
	}
	e.Touch(v.h.Now)
	return resValue(e)
}

func execMGet(v env, c *Cmd) Result {
	out := make([]Result, len(c.Args))
	for i, k := range c.Args {
		out[i] = resNil
		if e := v.ks.Get(v.db, string(k), v.h.Now); e != nil && e.Type == keyspace.TypeString {
			e.Touch(v.h.Now)
			out[i] = resValue(e)
		}
	}
	return Result{Kind: KindArray, Array: out}
}

func execStrLen(v env, _ *Cmd) Result {
	e := v.ks.Get(v.db, v.key, v.h.Now)
	if e == nil {
		return resInt(0)
	}
	if e.Type != keyspace.TypeString {
		return resErr(ErrWrongType)
	}
	return resInt(int64(len(e.Str)))
}

// Errors of the string commands, in redis-server's words.
var (
	ErrNotFloat       = ReplyError("ERR value is not a valid float")
	ErrFloatInfinity  = ReplyError("ERR increment would produce NaN or Infinity")
	ErrStringTooLong  = ReplyError("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
	ErrOffsetRange    = ReplyError("ERR offset is out of range")
	errLCSNotStrings  = ReplyError("ERR The specified keys must contain string values")
	errLCSLenAndIndex = ReplyError("ERR If you want both the length and indexes, please just use IDX.")
	errSyntax         = ReplyError("ERR syntax error")
)

// stringOf is the command's key's value: nil if the key does not exist,
// ErrWrongType if it holds another type.
func stringOf(v env) (*keyspace.Entry, error) {
	return entryOf(v, keyspace.TypeString)
}

// stringForWrite is the command's key's value and expiry, for a command
// that rewrites it: nil and 0 if the key does not exist, ErrWrongType if it
// holds another type.
func stringForWrite(v env) ([]byte, int64, error) {
	e, err := stringOf(v)
	if e == nil {
		return nil, 0, err
	}
	return e.Str, e.ExpireAt, nil
}

// byteRange turns redis's inclusive start and end, negative from the end,
// into a slice range of a string of n bytes; ok is false for an empty one.
func byteRange(start, end, n int64) (int64, int64, bool) {
	if start < 0 {
		start = max(n+start, 0)
	}
	if end < 0 {
		end = max(n+end, 0)
	}
	end = min(end, n-1)
	if n == 0 || start > end {
		return 0, 0, false
	}
	return start, end + 1, true
}

func execGetRange(v env, c *Cmd) Result {
	start, ok1 := ParseInt(c.Args[0])
	end, ok2 := ParseInt(c.Args[1])
	if !ok1 || !ok2 {
		return resErr(ErrNotInteger)
	}
	e, err := stringOf(v)
	if err != nil {
		return resErr(err)
	}
	if e == nil {
		return resBulk([]byte{})
	}
	from, to, ok := byteRange(start, end, int64(len(e.Str)))
	if !ok {
		return resBulk([]byte{})
	}
	return resCopy(e.Str[from:to])
}

func execSetRange(v env, c *Cmd) Result {
	val := c.Args[0]
	limit, ok := ParseInt(c.Args[1])
	if !ok || c.N < 0 {
		return resErr(ErrOffsetRange)
	}
	old, exp, err := stringForWrite(v)
	if err != nil {
		return resErr(err)
	}
	// An empty value changes nothing, not even a missing key, and is
	// answered before the size check, as redis does.
	if len(val) == 0 {
		return resInt(int64(len(old)))
	}
	if c.N > limit-int64(len(val)) {
		return resErr(ErrStringTooLong)
	}
	n := max(int64(len(old)), c.N+int64(len(val)))
	buf := make([]byte, n)
	copy(buf, old)
	copy(buf[c.N:], val)
	v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeString, Str: buf, ExpireAt: exp}, v.h.Now)
	v.ks.Notify(v.db, keyspace.EventString, "setrange", v.key)
	return resInt(n)
}

func execIncrByFloat(v env, c *Cmd) Result {
	e, err := stringOf(v)
	if err != nil {
		return resErr(err)
	}
	cur, exp := newExt(), int64(0)
	if e != nil {
		var ok bool
		if cur, ok = parseLongDouble(e.Str); !ok {
			return resErr(ErrNotFloat)
		}
		exp = e.ExpireAt
	}
	incr, ok := parseLongDouble(c.Args[0])
	if !ok {
		return resErr(ErrNotFloat)
	}
	sum, ok := addLongDouble(cur, incr)
	if !ok {
		return resErr(ErrFloatInfinity)
	}
	val := formatLongDouble(sum)
	v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeString, Str: val, ExpireAt: exp}, v.h.Now)
	v.ks.Notify(v.db, keyspace.EventString, "incrbyfloat", v.key)
	return resBulk(val)
}

// lcsMaxTable bounds LCS's table of (len(a)+1)·(len(b)+1) lengths, in
// bytes, as redis bounds it by proto-max-bulk-len.
const lcsMaxTable = 512 << 20

var errLCSTooLarge = ReplyError("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")

// execLCS is LCS. Its options are parsed here, after the keys' types are
// checked, so that errors come in redis's order.
func execLCS(v env, c *Cmd) Result {
	var strs [2][]byte
	for i, k := range []string{v.key, string(c.Args[0])} {
		e := v.ks.Get(v.db, k, v.h.Now)
		if e != nil && e.Type != keyspace.TypeString {
			return resErr(errLCSNotStrings)
		}
		if e != nil {
			strs[i] = e.Str
		}
	}
	var idx, length, withLen bool
	var minLen int64
	opts := c.Args[1:]
	for i := 0; i < len(opts); i++ {
		switch o := string(bytes.ToLower(opts[i])); {
		case o == "idx":
			idx = true
		case o == "len":
			length = true
		case o == "withmatchlen":
			withLen = true
		case o == "minmatchlen" && i+1 < len(opts):
			n, ok := ParseInt(opts[i+1])
			if !ok {
				return resErr(ErrNotInteger)
			}
			minLen = max(n, 0)
			i++
		default:
			return resErr(errSyntax)
		}
	}
	if idx && length {
		return resErr(errLCSLenAndIndex)
	}
	a, b := strs[0], strs[1]
	if (uint64(len(a))+1)*(uint64(len(b))+1)*4 > lcsMaxTable {
		return resErr(errLCSTooLarge)
	}
	// table[i][j] is the length of the LCS of a[:i] and b[:j].
	w := len(b) + 1
	table := make([]uint32, (len(a)+1)*w)
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			if a[i-1] == b[j-1] {
				table[i*w+j] = table[(i-1)*w+j-1] + 1
			} else {
				table[i*w+j] = max(table[(i-1)*w+j], table[i*w+j-1])
			}
		}
	}
	n := int(table[len(a)*w+len(b)])
	if length {
		return resInt(int64(n))
	}
	// Walk back from the end as redis does, preferring to drop a byte of
	// b on a tie, collecting the LCS and the matching ranges (last first).
	lcs := make([]byte, n)
	var matches []Result
	k := n
	inRange := false
	var aStart, aEnd, bStart, bEnd int
	emit := func() {
		if l := aEnd - aStart + 1; int64(l) >= minLen {
			m := []Result{
				{Kind: KindArray, Array: []Result{resInt(int64(aStart)), resInt(int64(aEnd))}},
				{Kind: KindArray, Array: []Result{resInt(int64(bStart)), resInt(int64(bEnd))}},
			}
			if withLen {
				m = append(m, resInt(int64(l)))
			}
			matches = append(matches, Result{Kind: KindArray, Array: m})
		}
		inRange = false
	}
	for i, j := len(a), len(b); i > 0 && j > 0; {
		if a[i-1] == b[j-1] {
			lcs[k-1] = a[i-1]
			k--
			if !inRange {
				inRange = true
				aStart, aEnd, bStart, bEnd = i-1, i-1, j-1, j-1
			} else {
				aStart, bStart = i-1, j-1
			}
			i, j = i-1, j-1
			if idx && (aStart == 0 || bStart == 0) {
				emit()
			}
			continue
		}
		if table[(i-1)*w+j] > table[i*w+j-1] {
			i--
		} else {
			j--
		}
		if idx && inRange {
			emit()
		}
	}
	if !idx {
		return resBulk(lcs)
	}
	if matches == nil {
		matches = []Result{}
	}
	return Result{Kind: KindArray, Array: []Result{
		resBulk([]byte("matches")), {Kind: KindArray, Array: matches},
		resBulk([]byte("len")), resInt(int64(n)),
	}}
}

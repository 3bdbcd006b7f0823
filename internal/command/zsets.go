package command

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Sorted sets. A sorted set is an immutable keyspace.ZSet; see its doc
// comment for what each change costs. Scores and ranges travel in the log
// as the client sent them and are parsed again here with the front end's
// functions (ParseScore, ParseScoreRange, ParseLexRange), so that a log
// entry is not trusted and every node reads them alike.
var zsetOps = []opRow{
	{op: OpZAdd, name: "zadd", flags: opWrite | opDenyOOM, args: argShape{2, 2}, exec: execZAdd},
	{op: OpZRem, name: "zrem", flags: opWrite, args: argShape{1, 1}, exec: execZRem},
	{op: OpZRemRange, name: "zremrange", flags: opWrite, args: argShape{2, 2}, exec: execZRemRange},
	{op: OpZPop, name: "zpop", flags: opWrite, exec: execZPop},
	{op: OpZScore, name: "zscore", args: argShape{1, 1}, exec: execZRead},
	{op: OpZMScore, name: "zmscore", args: argShape{1, 1}, exec: execZRead},
	{op: OpZCard, name: "zcard", exec: execZRead},
	{op: OpZCount, name: "zcount", args: argShape{2, 2}, exec: execZCount},
	{op: OpZRange, name: "zrange", args: argShape{4, 4}, check: checkZRange, exec: execZRange},
	{op: OpZRank, name: "zrank", args: argShape{1, 1}, exec: execZRead},
	{op: OpZRangeStore, name: "zrangestore", flags: opWrite | opDenyOOM, args: argShape{5, 5}, check: checkZRange, exec: execZRangeStore},
	{op: OpZUnion, name: "zunion", args: argShape{1, 1}, check: checkZCombine, exec: execZCombine},
	{op: OpZInter, name: "zinter", args: argShape{1, 1}, check: checkZCombine, exec: execZCombine},
	{op: OpZDiff, name: "zdiff", args: argShape{1, 1}, check: checkZCombine, exec: execZCombine},
	{op: OpZUnionStore, name: "zunionstore", flags: opWrite | opDenyOOM, args: argShape{1, 1}, check: checkZCombine, exec: execZCombine},
	{op: OpZInterStore, name: "zinterstore", flags: opWrite | opDenyOOM, args: argShape{1, 1}, check: checkZCombine, exec: execZCombine},
	{op: OpZDiffStore, name: "zdiffstore", flags: opWrite | opDenyOOM, args: argShape{1, 1}, check: checkZCombine, exec: execZCombine},
	{op: OpZInterCard, name: "zintercard", args: argShape{1, 1}, check: checkZCombine, exec: execZCombine},
	{op: OpZRandMember, name: "zrandmember", args: argShape{2, 2}, exec: execZRandMember},
	{op: OpZScan, name: "zscan", exec: execZScan},
	{op: OpZMPop, name: "zmpop", flags: opWrite, args: argShape{1, 1}, check: checkServe, exec: execZMPop},
}

// Errors of the sorted set commands, in redis-server's words.
var (
	ErrScoreNaN     = ReplyError("ERR resulting score is not a number (NaN)")
	ErrMinMaxFloat  = ReplyError("ERR min or max is not a float")
	ErrMinMaxLex    = ReplyError("ERR min or max not valid string range item")
	errZRangeLimits = ReplyError("ERR bad sorted set range arguments")
)

// ParseScore parses a score as redis's getDoubleFromObject does (strtod,
// the whole string, no leading space, no NaN, no overflow or underflow to
// zero).
func ParseScore(b []byte) (float64, bool) {
	if len(b) == 0 || isCSpace(b[0]) {
		return 0, false
	}
	f, ok := strtod(string(b))
	return f, ok && !math.IsNaN(f)
}

// strtod parses s whole as C's strtod, ok false also for an overflow to
// infinity or an underflow to zero (ERANGE). "inf" and "infinity" are
// accepted, and hexadecimal without an exponent.
func strtod(s string) (float64, bool) {
	if strings.Contains(s, "_") {
		return 0, false // Go's syntax, not C's
	}
	t := strings.TrimLeft(s, "+-")
	hex := len(t) > 2 && (t[:2] == "0x" || t[:2] == "0X")
	if hex && !strings.ContainsAny(t, "pP") {
		s += "p0"
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	if f == 0 {
		// An underflow: Go rounds to zero where strtod reports ERANGE.
		mant := t
		exp := "eE"
		if hex {
			mant, exp = mant[2:], "pP"
		}
		if i := strings.IndexAny(mant, exp); i >= 0 {
			mant = mant[:i]
		}
		if strings.ContainsAny(mant, "123456789abcdefABCDEF") {
			return 0, false
		}
	}
	return f, true
}

// isCSpace is C's isspace in the C locale.
func isCSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// ScoreRange is a range of scores, each end inclusive or not (redis's
// zrangespec).
type ScoreRange struct {
	Min, Max     float64
	MinEx, MaxEx bool
}

// ParseScoreRange parses ZRANGEBYSCORE's min and max as redis's
// zslParseRange: an optional '(' then what strtod reads, up to the end
// (an empty string is 0, an overflow infinite), not NaN.
func ParseScoreRange(min, max []byte) (ScoreRange, bool) {
	var r ScoreRange
	var ok1, ok2 bool
	r.Min, r.MinEx, ok1 = parseRangeEnd(min)
	r.Max, r.MaxEx, ok2 = parseRangeEnd(max)
	return r, ok1 && ok2
}

func parseRangeEnd(b []byte) (float64, bool, bool) {
	ex := len(b) > 0 && b[0] == '('
	if ex {
		b = b[1:]
	}
	s := strings.TrimLeft(string(b), " \t\n\v\f\r")
	if len(b) == 0 {
		return 0, ex, true // strtod read nothing, and stopped at the end
	}
	if s == "" || strings.Contains(s, "_") {
		return 0, ex, false
	}
	t := strings.TrimLeft(s, "+-")
	if len(t) > 2 && (t[:2] == "0x" || t[:2] == "0X") && !strings.ContainsAny(t, "pP") {
		s += "p0"
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, ex, false
	}
	return f, ex, !math.IsNaN(f)
}

func (r ScoreRange) gteMin(s float64) bool {
	if r.MinEx {
		return s > r.Min
	}
	return s >= r.Min
}

func (r ScoreRange) lteMax(s float64) bool {
	if r.MaxEx {
		return s < r.Max
	}
	return s <= r.Max
}

// LexBound is one end of a range of members: '-' (Inf < 0, below every
// member), '+' (Inf > 0, above every member), or a member, inclusive ('[')
// or exclusive ('(').
type LexBound struct {
	Inf int
	S   string
	Ex  bool
}

// LexRange is a range of members (redis's zlexrangespec).
type LexRange struct{ Min, Max LexBound }

// ParseLexRange parses ZRANGEBYLEX's min and max as redis's
// zslParseLexRange.
func ParseLexRange(min, max []byte) (LexRange, bool) {
	a, ok1 := parseLexBound(min)
	b, ok2 := parseLexBound(max)
	return LexRange{a, b}, ok1 && ok2
}

func parseLexBound(b []byte) (LexBound, bool) {
	switch {
	case len(b) == 1 && b[0] == '+':
		return LexBound{Inf: 1}, true
	case len(b) == 1 && b[0] == '-':
		return LexBound{Inf: -1}, true
	case len(b) > 0 && b[0] == '(':
		return LexBound{S: string(b[1:]), Ex: true}, true
	case len(b) > 0 && b[0] == '[':
		return LexBound{S: string(b[1:])}, true
	}
	return LexBound{}, false
}

func (r LexRange) gteMin(m string) bool {
	if r.Min.Inf != 0 {
		return r.Min.Inf < 0
	}
	c := strings.Compare(m, r.Min.S)
	return c > 0 || (c == 0 && !r.Min.Ex)
}

func (r LexRange) lteMax(m string) bool {
	if r.Max.Inf != 0 {
		return r.Max.Inf > 0
	}
	c := strings.Compare(m, r.Max.S)
	return c < 0 || (c == 0 && !r.Max.Ex)
}

// FormatScore writes a score as redis 7.0 replies it in RESP2: "%.17g",
// and inf and -inf.
func FormatScore(f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return []byte("inf")
	case math.IsInf(f, -1):
		return []byte("-inf")
	case math.IsNaN(f): // a script's {double=0/0}, as glibc prints it
		if math.Signbit(f) {
			return []byte("-nan")
		}
		return []byte("nan")
	}
	return strconv.AppendFloat(nil, f, 'g', 17, 64)
}

// zsetOf is the key as a sorted set: nil if it does not exist,
// ErrWrongType if it holds another type.
func zsetOf(v env, key string) (*keyspace.ZSet, int64, error) {
	v.key = key
	e, err := entryOf(v, keyspace.TypeZSet)
	if e == nil {
		return nil, 0, err
	}
	return e.ZSet, e.ExpireAt, nil
}

// storeZSet stores z under key, or deletes the key when z is empty (redis
// keeps no empty sorted set), and sends event, then "del" for a deleted
// key, as redis orders them.
func storeZSet(v env, key string, z *keyspace.ZSet, exp int64, event string) {
	if z.Len() == 0 {
		v.ks.Delete(v.db, key)
		v.ks.Notify(v.db, keyspace.EventZSet, event, key)
		v.ks.Notify(v.db, keyspace.EventGeneric, "del", key)
		return
	}
	v.ks.Put(v.db, key, &keyspace.Entry{Type: keyspace.TypeZSet, ZSet: z, ExpireAt: exp}, v.h.Now)
	v.ks.Notify(v.db, keyspace.EventZSet, event, key)
}

// resScore is a score as a reply: its RESP2 text, marked as a double.
func resScore(f float64) Result {
	return Result{Kind: KindBulk, Bulk: FormatScore(f), Form: FormDouble}
}

// execZAdd is ZADD and ZINCRBY, following redis's zaddGenericCommand and
// zsetAdd: members are applied one after the other (a member given twice
// ends with its last score), NX skips existing members, XX new ones, GT
// and LT keep a score that would not grow or shrink, INCR adds.
func execZAdd(v env, c *Cmd) Result {
	incr := c.Has(FlagIncr)
	n := len(c.Args) / 2
	if incr && n > 1 {
		return resErr(errSyntax)
	}
	scores := make([]float64, n)
	for i := range scores {
		s, ok := ParseScore(c.Args[2*i])
		if !ok {
			return resErr(ErrNotFloat)
		}
		scores[i] = s
	}
	z, exp, err := zsetOf(v, v.key)
	if err != nil {
		return resErr(err)
	}
	reply := func(added, updated, processed int, score float64) Result {
		switch {
		case incr && processed > 0:
			return resScore(score)
		case incr:
			return resNil
		case c.Has(FlagCH):
			return resInt(int64(added + updated))
		}
		return resInt(int64(added))
	}
	if z == nil && c.Has(FlagXX) {
		return reply(0, 0, 0, 0)
	}
	var changes []keyspace.ZElem
	pending := map[string]float64{}
	current := func(m string) (float64, bool) {
		if s, ok := pending[m]; ok {
			return s, true
		}
		return z.Score(m)
	}
	var added, updated, processed int
	var score float64
	for i, s := range scores {
		m := string(c.Args[2*i+1])
		if old, ok := current(m); ok {
			if c.Has(FlagNX) {
				continue
			}
			if incr {
				if s += old; math.IsNaN(s) {
					return resErr(ErrScoreNaN)
				}
			}
			if (c.Has(FlagLT) && s >= old) || (c.Has(FlagGT) && s <= old) {
				continue
			}
			processed++
			score = s
			if s != old {
				changes = append(changes, keyspace.ZElem{Member: m, Score: s})
				pending[m] = s
				updated++
			}
			continue
		}
		if c.Has(FlagXX) {
			continue
		}
		changes = append(changes, keyspace.ZElem{Member: m, Score: s})
		pending[m] = s
		added++
		processed++
		score = s
	}
	if len(changes) > 0 {
		event := "zadd"
		if incr {
			event = "zincr"
		}
		nz := z.With(changes)
		if slices.ContainsFunc(changes, func(e keyspace.ZElem) bool { return e.Score == 0 && math.Signbit(e.Score) }) {
			nz = listpackZeros(nz)
		}
		storeZSet(v, v.key, nz, exp, event)
	}
	return reply(added, updated, processed, score)
}

func execZRem(v env, c *Cmd) Result {
	z, exp, err := zsetOf(v, v.key)
	if err != nil || z == nil {
		return errOrZero(err)
	}
	members := make([]string, len(c.Args))
	for i, m := range c.Args {
		members[i] = string(m)
	}
	nz, n := z.Without(members)
	if n > 0 {
		storeZSet(v, v.key, nz, exp, "zrem")
	}
	return resInt(int64(n))
}

// zspan is the ranks [from, to) of the range in c.Args[0:2], by rank,
// score or member as c's flags say, in ascending order.
func zspan(z *keyspace.ZSet, c *Cmd) (from, to int, err error) {
	switch {
	case c.Has(FlagByScore):
		r, ok := ParseScoreRange(c.Args[0], c.Args[1])
		if !ok {
			return 0, 0, ErrMinMaxFloat
		}
		from = z.Search(func(e keyspace.ZElem) bool { return r.gteMin(e.Score) })
		to = z.Search(func(e keyspace.ZElem) bool { return !r.lteMax(e.Score) })
	case c.Has(FlagByLex):
		r, ok := ParseLexRange(c.Args[0], c.Args[1])
		if !ok {
			return 0, 0, ErrMinMaxLex
		}
		from = z.Search(func(e keyspace.ZElem) bool { return r.gteMin(e.Member) })
		to = z.Search(func(e keyspace.ZElem) bool { return !r.lteMax(e.Member) })
	default:
		start, ok1 := ParseInt(c.Args[0])
		stop, ok2 := ParseInt(c.Args[1])
		if !ok1 || !ok2 {
			return 0, 0, ErrNotInteger
		}
		from, to = span(start, stop, z.Len())
	}
	return from, max(from, to), nil
}

// execZRemRange is ZREMRANGEBYRANK, ZREMRANGEBYSCORE and ZREMRANGEBYLEX.
func execZRemRange(v env, c *Cmd) Result {
	z, exp, err := zsetOf(v, v.key)
	if err == nil && z == nil {
		_, _, err = zspan(nil, c) // a bad range is refused even so
	}
	if err != nil || z == nil {
		return errOrZero(err)
	}
	from, to, err := zspan(z, c)
	if err != nil || from == to {
		return errOrZero(err)
	}
	event := "zremrangebyrank"
	switch {
	case c.Has(FlagByScore):
		event = "zremrangebyscore"
	case c.Has(FlagByLex):
		event = "zremrangebylex"
	}
	storeZSet(v, v.key, z.WithoutRange(from, to), exp, event)
	return resInt(int64(to - from))
}

// withScores is elems as a reply: members, each followed by its score if
// scores is set.
func withScores(elems []keyspace.ZElem, scores bool) Result {
	out := make([]Result, 0, len(elems)*2)
	for _, e := range elems {
		out = append(out, resBulk([]byte(e.Member)))
		if scores {
			out = append(out, resScore(e.Score))
		}
	}
	return Result{Kind: KindArray, Array: out, Pairs: scores}
}

// execZPop is ZPOPMIN and ZPOPMAX: the reply is flat, member then score.
func execZPop(v env, c *Cmd) Result {
	z, exp, err := zsetOf(v, v.key)
	switch {
	case err != nil:
		return resErr(err)
	case z == nil || (c.Has(FlagCount) && c.N <= 0):
		return Result{Kind: KindArray, Array: []Result{}}
	}
	n := int64(1)
	if c.Has(FlagCount) {
		n = c.N
	}
	r := withScores(zpop(v, v.key, z, exp, n, c.Has(FlagLeft)), true)
	// Without a count the reply is one member and its score, flat in
	// RESP3 too.
	r.Pairs = c.Has(FlagCount)
	return r
}

// zpop takes up to n of the lowest or highest elements of z, stored
// at key, in the order popped, and stores the rest.
func zpop(v env, key string, z *keyspace.ZSet, exp int64, n int64, lowest bool) []keyspace.ZElem {
	k := int(min(n, int64(z.Len())))
	var out []keyspace.ZElem
	var rest *keyspace.ZSet
	if lowest {
		out = z.Range(0, k)
		rest = z.WithoutRange(0, k)
	} else {
		l := z.Len()
		out = z.Range(l-k, l)
		slices.Reverse(out)
		rest = z.WithoutRange(l-k, l)
	}
	event := "zpopmax"
	if lowest {
		event = "zpopmin"
	}
	storeZSet(v, key, rest, exp, event)
	return out
}

// execZRead is ZSCORE, ZMSCORE, ZCARD, ZRANK and ZREVRANK.
func execZRead(v env, c *Cmd) Result {
	z, _, err := zsetOf(v, v.key)
	if err != nil {
		return resErr(err)
	}
	switch c.Op {
	case OpZCard:
		return resInt(int64(z.Len()))
	case OpZScore:
		if s, ok := z.Score(string(c.Args[0])); ok {
			return resScore(s)
		}
		return resNil
	case OpZMScore:
		out := make([]Result, len(c.Args))
		for i, m := range c.Args {
			out[i] = resNil
			if s, ok := z.Score(string(m)); ok {
				out[i] = resScore(s)
			}
		}
		return Result{Kind: KindArray, Array: out}
	}
	r, ok := z.Rank(string(c.Args[0]))
	if !ok {
		return resNil
	}
	if c.Has(FlagRev) {
		r = z.Len() - 1 - r
	}
	return resInt(int64(r))
}

// execZCount is ZCOUNT and ZLEXCOUNT.
func execZCount(v env, c *Cmd) Result {
	z, _, err := zsetOf(v, v.key)
	if err != nil {
		return resErr(err)
	}
	if !c.Has(FlagByLex) {
		c2 := *c
		c2.Flags |= FlagByScore
		c = &c2
	}
	from, to, err := zspan(z, c)
	if err != nil {
		return resErr(err)
	}
	return resInt(int64(to - from))
}

// checkZRange: ZRANGE's (and ZRANGESTORE's, after the source) offset and
// count are integers.
func checkZRange(c *Cmd) error {
	at := 2
	if c.Op == OpZRangeStore {
		at = 3
	}
	for _, a := range c.Args[at : at+2] {
		if _, ok := ParseInt(a); !ok {
			return errZRangeLimits
		}
	}
	return nil
}

// zrangeOf selects what ZRANGE (and the commands it stands for) replies:
// the elements in the range, in the order asked, LIMIT applied as redis
// applies it (an offset past the end, or negative, selects nothing; a
// negative count means all).
func zrangeOf(z *keyspace.ZSet, c *Cmd) ([]keyspace.ZElem, error) {
	rev := c.Has(FlagRev)
	if !c.Has(FlagByScore) && !c.Has(FlagByLex) {
		start, ok1 := ParseInt(c.Args[0])
		stop, ok2 := ParseInt(c.Args[1])
		if !ok1 || !ok2 {
			return nil, ErrNotInteger
		}
		from, to := span(start, stop, z.Len())
		if !rev {
			return z.Range(from, to), nil
		}
		out := z.Range(z.Len()-to, z.Len()-from) // counted from the end
		slices.Reverse(out)
		return out, nil
	}
	from, to, err := zspan(z, c)
	if err != nil {
		return nil, err
	}
	offset, _ := ParseInt(c.Args[2])
	count, _ := ParseInt(c.Args[3])
	n := int64(to - from)
	if offset < 0 || offset >= n {
		return nil, nil
	}
	n -= offset
	if count >= 0 {
		n = min(n, count)
	}
	if !rev {
		return z.Range(from+int(offset), from+int(offset+n)), nil
	}
	out := z.Range(to-int(offset+n), to-int(offset))
	slices.Reverse(out)
	return out, nil
}

// execZRange is ZRANGE and every older command it stands for
// (ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX,
// ZREVRANGEBYLEX).
func execZRange(v env, c *Cmd) Result {
	z, _, err := zsetOf(v, v.key)
	if err != nil {
		return resErr(err)
	}
	elems, err := zrangeOf(z, c)
	if err != nil {
		return resErr(err)
	}
	return withScores(elems, c.Has(FlagWithScores))
}

// zsetEncoding is the encoding redis 7.0 gives a sorted set like z under
// its defaults (zset-max-listpack-entries 128, -value 64). Like hashes,
// redis remembers a conversion to a skiplist when the set shrinks again;
// this is derived from the set as it is.
func zsetEncoding(z *keyspace.ZSet) string {
	if z.Len() > 128 {
		return "skiplist"
	}
	for _, e := range z.Range(0, z.Len()) {
		if len(e.Member) > 64 {
			return "skiplist"
		}
	}
	return "listpack"
}

// execZRangeStore is ZRANGESTORE: the range of the source replaces the
// destination, whatever it held, without a TTL; an empty range deletes it.
func execZRangeStore(v env, c *Cmd) Result {
	src := *c
	src.Args = c.Args[1:]
	z, _, err := zsetOf(v, string(c.Args[0]))
	if err != nil {
		return resErr(err)
	}
	elems, err := zrangeOf(z, &src)
	if err != nil {
		return resErr(err)
	}
	return storeResult(v, keyspace.NewZSet(elems), "zrangestore")
}

// storeResult stores a computed sorted set at the command's key,
// replacing what it held, with event; an empty one deletes the key ("del"
// if there was one). The reply is the set's size.
func storeResult(v env, z *keyspace.ZSet, event string) Result {
	z = listpackZeros(z)
	if z.Len() == 0 {
		if v.ks.Delete(v.db, v.key) {
			v.ks.Notify(v.db, keyspace.EventGeneric, "del", v.key)
		}
		return resInt(0)
	}
	v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeZSet, ZSet: z}, v.h.Now)
	v.ks.Notify(v.db, keyspace.EventZSet, event, v.key)
	return resInt(int64(z.Len()))
}

// checkZCombine: numkeys is at least 1 and there are that many keys.
func checkZCombine(c *Cmd) error {
	if c.N < 1 || c.N > int64(len(c.Args)) {
		return errBadArgs
	}
	return nil
}

// Errors of ZUNION, ZINTER, ZDIFF and ZINTERCARD's options.
var (
	errWeightNotFloat = ReplyError("ERR weight value is not a float")
	errLimitNegative  = ReplyError("ERR LIMIT can't be negative")
)

// zsource is one input of ZUNION and the others: a sorted set, or a set
// whose members all score 1, and its weight.
type zsource struct {
	z      *keyspace.ZSet
	s      *keyspace.Set
	weight float64
}

func (s zsource) len() int { return s.z.Len() + s.s.Len() }

// each calls fn for every element, in the source's order.
func (s zsource) each(fn func(m string, score float64)) {
	for _, e := range s.z.Range(0, s.z.Len()) {
		fn(e.Member, e.Score)
	}
	for _, m := range s.s.Members() {
		fn(m, 1)
	}
}

func (s zsource) score(m string) (float64, bool) {
	if s.s != nil {
		return 1, s.s.Has(m)
	}
	return s.z.Score(m)
}

// aggregate folds val into target as AGGREGATE says (SUM: +inf plus -inf
// is 0, as redis's convention).
func aggregate(how string, target, val float64) float64 {
	// Compared as C compares: a NaN (an infinite score times a weight of
	// 0) never wins.
	switch how {
	case "min":
		if val < target {
			return val
		}
		return target
	case "max":
		if val > target {
			return val
		}
		return target
	}
	if t := target + val; !math.IsNaN(t) {
		return t
	}
	return 0
}

// execZCombine is ZUNION, ZINTER, ZDIFF, their STORE forms and
// ZINTERCARD, as redis's zunionInterDiffGenericCommand: every key must
// hold a sorted set or a set (or nothing) before the options are read.
func execZCombine(v env, c *Cmd) Result {
	keys, opts := c.Args[:c.N], c.Args[c.N:]
	srcs := make([]zsource, len(keys))
	for i, k := range keys {
		srcs[i].weight = 1
		e := v.ks.Get(v.db, string(k), v.h.Now)
		switch {
		case e == nil:
		case e.Type == keyspace.TypeZSet:
			srcs[i].z = e.ZSet
		case e.Type == keyspace.TypeSet:
			srcs[i].s = e.Set
		default:
			return resErr(ErrWrongType)
		}
		if e != nil {
			e.Touch(v.h.Now)
		}
	}
	store := c.Op == OpZUnionStore || c.Op == OpZInterStore || c.Op == OpZDiffStore
	diff := c.Op == OpZDiff || c.Op == OpZDiffStore
	card := c.Op == OpZInterCard
	how, scores, limit := "sum", false, int64(0)
	for j := 0; j < len(opts); j++ {
		left := len(opts) - j - 1
		switch o := strings.ToLower(string(opts[j])); {
		case !diff && !card && left >= len(srcs) && o == "weights":
			for i := range srcs {
				j++
				w, ok := ParseScore(opts[j])
				if !ok {
					return resErr(errWeightNotFloat)
				}
				srcs[i].weight = w
			}
		case !diff && !card && left >= 1 && o == "aggregate":
			j++
			how = strings.ToLower(string(opts[j]))
			if how != "sum" && how != "min" && how != "max" {
				return resErr(errSyntax)
			}
		case !store && !card && o == "withscores":
			scores = true
		case card && left >= 1 && o == "limit":
			j++
			n, ok := ParseInt(opts[j])
			if !ok || n < 0 {
				return resErr(errLimitNegative)
			}
			limit = n
		default:
			return resErr(errSyntax)
		}
	}
	if !diff {
		// Smallest first, as redis orders them (which decides the order
		// a SUM adds in).
		slices.SortStableFunc(srcs, func(a, b zsource) int { return a.len() - b.len() })
	}
	weighted := func(s zsource, score float64) float64 {
		if w := s.weight * score; !math.IsNaN(w) {
			return w
		}
		return 0
	}
	var out []keyspace.ZElem
	switch c.Op {
	case OpZUnion, OpZUnionStore:
		acc := map[string]float64{}
		for _, s := range srcs {
			s.each(func(m string, score float64) {
				w := weighted(s, score)
				if old, ok := acc[m]; ok {
					w = aggregate(how, old, w)
				}
				acc[m] = w
			})
		}
		for m, s := range acc {
			out = append(out, keyspace.ZElem{Member: m, Score: s})
		}
	case OpZInter, OpZInterStore, OpZInterCard:
		n := int64(0)
		srcs[0].each(func(m string, score float64) {
			if card && limit > 0 && n >= limit {
				return
			}
			acc := weighted(srcs[0], score)
			for _, s := range srcs[1:] {
				other, ok := s.score(m)
				if !ok {
					return
				}
				acc = aggregate(how, acc, other*s.weight)
			}
			n++
			out = append(out, keyspace.ZElem{Member: m, Score: acc})
		})
		if card {
			return resInt(n)
		}
	case OpZDiff, OpZDiffStore:
		srcs[0].each(func(m string, score float64) {
			for _, s := range srcs[1:] {
				if _, ok := s.score(m); ok {
					return
				}
			}
			out = append(out, keyspace.ZElem{Member: m, Score: score})
		})
	}
	z := keyspace.NewZSet(out)
	if store {
		return storeResult(v, z, v.x.row(c.Op).name)
	}
	return withScores(z.Range(0, z.Len()), scores)
}

// execZRandMember is ZRANDMEMBER, chosen from the sorted elements as
// HRANDFIELD chooses (see execHRandField and picker). A count that takes
// the whole set returns it from the highest down: redis walks a sorted
// set from its tail.
func execZRandMember(v env, c *Cmd) Result {
	z, _, err := zsetOf(v, v.key)
	if err != nil {
		return resErr(err)
	}
	members := make([]string, z.Len())
	for i, e := range z.Range(0, z.Len()) {
		members[i] = e.Member
	}
	return randomReply(v, c.Args[0], members, func(idx []int) Result {
		if len(idx) == z.Len() && slices.IsSorted(idx) {
			slices.Reverse(idx)
		}
		out := make([]Result, 0, 2*len(idx))
		for _, i := range idx {
			out = append(out, resBulk([]byte(members[i])))
			if len(c.Args[1]) > 0 {
				out = append(out, resScore(z.At(i).Score))
			}
		}
		return Result{Kind: KindArray, Array: out, Pairs: len(c.Args[1]) > 0}
	})
}

// execZScan is ZSCAN: members with their scores, scanned as HSCAN scans
// (collscan.go); a set redis keeps as a listpack comes whole.
func execZScan(v env, c *Cmd) Result {
	z, _, err := zsetOf(v, v.key)
	if err != nil {
		return resErr(err)
	}
	if z == nil {
		return scanReply(0, nil)
	}
	members := make([]string, z.Len())
	for i, e := range z.Range(0, z.Len()) {
		members[i] = e.Member
	}
	return scanCollection(c, members, zsetEncoding(z) == "listpack", func(m string) []Result {
		s, _ := z.Score(m)
		return []Result{resBulk([]byte(m)), resBulk(FormatScore(s))} // a bulk in RESP3 too
	})
}

// execZMPop is ZMPOP, BZPOPMIN and BZPOPMAX, and the pops that serve
// blocked clients (FlagServe: the last argument is the client's token; it
// is told what was taken as member, score pairs). The reply nests, as
// redis's does: the key, then [member, score] pairs.
func execZMPop(v env, c *Cmd) Result {
	return mpop(v, c, func(key string) (popper, error) {
		z, exp, err := zsetOf(v, key)
		if z == nil {
			return nil, err
		}
		return func() ([][]byte, Result) {
			elems := zpop(v, key, z, exp, max(c.N, 1), c.Has(FlagLeft))
			pairs := make([]Result, len(elems))
			taken := make([][]byte, 0, 2*len(elems))
			for i, e := range elems {
				pairs[i] = Result{Kind: KindArray, Array: []Result{resBulk([]byte(e.Member)), resScore(e.Score)}}
				taken = append(taken, pairs[i].Array[0].Bulk, pairs[i].Array[1].Bulk)
			}
			return taken, Result{Kind: KindArray, Array: pairs}
		}, nil
	})
}

// listpackZeros is z with a score of -0 made 0 if redis would keep z as a
// listpack, which stores -0 as 0 (a skiplist keeps -0, and replies it as
// "-0"). Only a small set is scanned, so this costs O(1) on a large one.
func listpackZeros(z *keyspace.ZSet) *keyspace.ZSet {
	if zsetEncoding(z) != "listpack" {
		return z
	}
	var fixed []keyspace.ZElem
	for _, e := range z.Range(0, z.Len()) {
		if e.Score == 0 && math.Signbit(e.Score) {
			fixed = append(fixed, keyspace.ZElem{Member: e.Member, Score: 0})
		}
	}
	if fixed == nil {
		return z
	}
	// With keeps an equal score as it is: take the -0s out first.
	members := make([]string, len(fixed))
	for i, e := range fixed {
		members[i] = e.Member
	}
	z, _ = z.Without(members)
	return z.With(fixed)
}

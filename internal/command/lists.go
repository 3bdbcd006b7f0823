package command

import (
	"bytes"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Lists: pushes, pops (LMPOP and LMOVE also serve blocked clients, see
// FlagServe), the index and range commands and LPOS. A list is an
// immutable keyspace.List; see its doc comment for what each change costs.
var listOps = []opRow{
	{op: OpLPush, name: "lpush", flags: opWrite | opDenyOOM, args: argShape{1, 1}, exec: execLPush},
	{op: OpLPop, name: "lpop", flags: opWrite, exec: execLPop},
	{op: OpLMPop, name: "lmpop", flags: opWrite, args: argShape{1, 1}, check: checkServe, exec: execLMPop},
	{op: OpLMove, name: "lmove", flags: opWrite, args: argShape{1, 1}, check: checkServe, exec: execLMove},
	{op: OpLSet, name: "lset", flags: opWrite | opDenyOOM, args: argShape{2, 2}, exec: execLSet},
	{op: OpLInsert, name: "linsert", flags: opWrite | opDenyOOM, args: argShape{2, 2}, exec: execLInsert},
	{op: OpLRem, name: "lrem", flags: opWrite, args: argShape{1, 1}, exec: execLRem},
	{op: OpLTrim, name: "ltrim", flags: opWrite, args: argShape{2, 2}, check: checkRange, exec: execLTrim},
	{op: OpLLen, name: "llen", exec: execLRead},
	{op: OpLRange, name: "lrange", args: argShape{2, 2}, check: checkRange, exec: execLRead},
	{op: OpLIndex, name: "lindex", args: argShape{1, 1}, exec: execLRead},
	{op: OpLPos, name: "lpos", args: argShape{4, 4}, check: checkLPos, exec: execLPos},
}

// checkServe refuses a served pop with no key besides its token.
func checkServe(c *Cmd) error {
	if c.Op == OpLMPop && c.Has(FlagServe) && len(c.Args) < 2 {
		return errBadArgs
	}
	if (c.Op == OpLMove || c.Op == OpZMPop) && c.Has(FlagServe) && len(c.Args) < 2 {
		return errBadArgs
	}
	return nil
}

func checkRange(c *Cmd) error {
	if _, ok := ParseInt(c.Args[0]); !ok {
		return errBadArgs
	}
	if _, ok := ParseInt(c.Args[1]); !ok {
		return errBadArgs
	}
	return nil
}

// checkLPos: rank, count and maxlen are integers.
func checkLPos(c *Cmd) error {
	for _, a := range c.Args[1:4] {
		if _, ok := ParseInt(a); !ok {
			return errBadArgs
		}
	}
	return nil
}

var errBadArgs = ReplyError("ERR bad list command arguments")

// ErrIndexOutOfRange is LSET of an index the list does not have.
var ErrIndexOutOfRange = ReplyError("ERR index out of range")

// listOf is the key as a list: nil if it does not exist, ErrWrongType if
// it holds another type.
func listOf(v env, key string) (*keyspace.List, int64, error) {
	v.key = key
	e, err := entryOf(v, keyspace.TypeList)
	if e == nil {
		return nil, 0, err
	}
	return e.List, e.ExpireAt, nil
}

// putList stores l under key, or deletes the key when l is empty (redis
// keeps no empty list), with the "del" event.
func putList(v env, key string, l *keyspace.List, exp int64) {
	if l.Len() == 0 {
		v.ks.Delete(v.db, key)
		v.ks.Notify(v.db, keyspace.EventGeneric, "del", key)
		return
	}
	v.ks.Put(v.db, key, &keyspace.Entry{Type: keyspace.TypeList, List: l, ExpireAt: exp}, v.h.Now)
}

func side(left bool, l, r string) string {
	if left {
		return l
	}
	return r
}

func execLPush(v env, c *Cmd) Result {
	l, exp, err := listOf(v, v.key)
	if err != nil {
		return resErr(err)
	}
	if l == nil && c.Has(FlagXX) {
		return resInt(0)
	}
	// The arguments alias the log entry; the list keeps its elements.
	if c.Has(FlagLeft) {
		l = l.PushLeft(cloneAll(c.Args))
	} else {
		l = l.PushRight(cloneAll(c.Args))
	}
	putList(v, v.key, l, exp)
	v.ks.Notify(v.db, keyspace.EventList, side(c.Has(FlagLeft), "lpush", "rpush"), v.key)
	return resInt(int64(l.Len()))
}

// pop takes up to n elements off the list at key (a list, not empty) and
// stores the rest, with the events redis sends.
func pop(v env, key string, l *keyspace.List, exp int64, n int64, left bool) [][]byte {
	k := int(min(n, int64(l.Len())))
	var out [][]byte
	if left {
		l, out = l.PopLeft(k)
	} else {
		l, out = l.PopRight(k)
	}
	v.ks.Notify(v.db, keyspace.EventList, side(left, "lpop", "rpop"), key)
	putList(v, key, l, exp)
	return out
}

// nullArray is a null array (RESP2 "*-1"): a pop with a count, or LMPOP,
// that found nothing. An array result with no elements and Int -1 is one;
// Int travels with the result to a follower (wire.go).
var nullArray = Result{Kind: KindArray, Int: -1}

func bulks(elems [][]byte) Result {
	out := make([]Result, len(elems))
	for i, e := range elems {
		out[i] = resBulk(e) // list elements are immutable Go memory
	}
	return Result{Kind: KindArray, Array: out}
}

func execLPop(v env, c *Cmd) Result {
	l, exp, err := listOf(v, v.key)
	switch {
	case err != nil:
		return resErr(err)
	case l == nil && c.Has(FlagCount):
		return nullArray
	case l == nil:
		return resNil
	case c.Has(FlagCount) && c.N == 0:
		return Result{Kind: KindArray, Array: []Result{}}
	}
	n := int64(1)
	if c.Has(FlagCount) {
		n = c.N
	}
	out := pop(v, v.key, l, exp, n, c.Has(FlagLeft))
	if !c.Has(FlagCount) {
		return resBulk(out[0])
	}
	return bulks(out)
}

// execLMPop pops from the first of its keys that holds a non-empty list:
// LMPOP, BLPOP and BRPOP (count 1), and the pops that serve blocked
// clients (FlagServe, one key and a token).
func execLMPop(v env, c *Cmd) Result {
	return mpop(v, c, func(key string) (popper, error) {
		l, exp, err := listOf(v, key)
		if l == nil {
			return nil, err
		}
		return func() ([][]byte, Result) {
			out := pop(v, key, l, exp, max(c.N, 1), c.Has(FlagLeft))
			return out, bulks(out)
		}, nil
	})
}

// popper pops from a key found not empty, and returns what it took (as
// reported to a blocked client's token, FlagServe) and its reply.
type popper func() ([][]byte, Result)

// mpop pops from the first of c's keys for which find has a popper
// (an error, WRONGTYPE, ends the search): LMPOP, ZMPOP and the blocking
// pops. The reply is the key and the popper's reply, or a null array.
func mpop(v env, c *Cmd, find func(key string) (popper, error)) Result {
	keys, token := c.Args, []byte(nil)
	if c.Has(FlagServe) {
		keys, token = keys[:len(keys)-1], keys[len(keys)-1]
	}
	served := func(key string, elems [][]byte) {
		if token != nil {
			v.ks.Popped(token, key, elems)
		}
	}
	for _, k := range keys {
		pop, err := find(string(k))
		if err != nil {
			served("", nil)
			return resErr(err)
		}
		if pop == nil {
			continue
		}
		taken, r := pop()
		served(string(k), taken)
		return Result{Kind: KindArray, Array: []Result{resBulk(bytes.Clone(k)), r}}
	}
	served("", nil)
	return nullArray
}

// execLMove is LMOVE and RPOPLPUSH, and their blocking forms' serving
// (FlagServe).
func execLMove(v env, c *Cmd) Result {
	var token []byte
	if c.Has(FlagServe) {
		token = c.Args[len(c.Args)-1]
	}
	served := func(key string, elems [][]byte) {
		if token != nil {
			v.ks.Popped(token, key, elems)
		}
	}
	src, dst := v.key, string(c.Args[0])
	l, exp, err := listOf(v, src)
	if err != nil || l == nil {
		served("", nil)
		if err != nil {
			return resErr(err)
		}
		return resNil
	}
	dl, dexp, err := listOf(v, dst)
	if err != nil {
		served("", nil)
		return resErr(err)
	}
	var out [][]byte
	if c.Has(FlagLeft) {
		l, out = l.PopLeft(1)
	} else {
		l, out = l.PopRight(1)
	}
	if dst == src {
		dl, dexp = l, exp
	}
	if c.Has(FlagDstLeft) {
		dl = dl.PushLeft(out)
	} else {
		dl = dl.PushRight(out)
	}
	// As redis: the push's event, then the pop's, then the source's "del".
	putList(v, dst, dl, dexp)
	v.ks.Notify(v.db, keyspace.EventList, side(c.Has(FlagDstLeft), "lpush", "rpush"), dst)
	v.ks.Notify(v.db, keyspace.EventList, side(c.Has(FlagLeft), "lpop", "rpop"), src)
	if dst != src {
		putList(v, src, l, exp)
	}
	served(src, out)
	return resBulk(out[0])
}

// index is a redis list index (negative: from the tail) as a position,
// ok false when it is out of the list.
func index(i int64, n int) (int, bool) {
	if i < 0 {
		i += int64(n)
	}
	return int(i), i >= 0 && i < int64(n)
}

func execLSet(v env, c *Cmd) Result {
	l, exp, err := listOf(v, v.key)
	switch {
	case err != nil:
		return resErr(err)
	case l == nil:
		return resErr(ErrNoSuchKey)
	}
	n, ok := ParseInt(c.Args[0])
	if !ok {
		return resErr(ErrNotInteger)
	}
	i, ok := index(n, l.Len())
	if !ok {
		return resErr(ErrIndexOutOfRange)
	}
	elems := append([][]byte(nil), l.Range(0, l.Len())...)
	elems[i] = bytes.Clone(c.Args[1])
	putList(v, v.key, keyspace.NewList(elems), exp)
	v.ks.Notify(v.db, keyspace.EventList, "lset", v.key)
	return resOK
}

func execLInsert(v env, c *Cmd) Result {
	l, exp, err := listOf(v, v.key)
	if err != nil || l == nil {
		return errOrZero(err)
	}
	all := l.Range(0, l.Len())
	at := -1
	for i, e := range all {
		if bytes.Equal(e, c.Args[0]) {
			at = i
			break
		}
	}
	if at < 0 {
		return resInt(-1)
	}
	if !c.Has(FlagLeft) {
		at++
	}
	elems := make([][]byte, 0, len(all)+1)
	elems = append(append(append(elems, all[:at]...), bytes.Clone(c.Args[1])), all[at:]...)
	putList(v, v.key, keyspace.NewList(elems), exp)
	v.ks.Notify(v.db, keyspace.EventList, "linsert", v.key)
	return resInt(int64(len(elems)))
}

func execLRem(v env, c *Cmd) Result {
	l, exp, err := listOf(v, v.key)
	if err != nil || l == nil {
		return errOrZero(err)
	}
	all := l.Range(0, l.Len())
	keep := make([]bool, len(all))
	removed := int64(0)
	limit := c.N
	if limit < 0 {
		limit = -limit
	}
	for j := range all {
		i := j
		if c.N < 0 {
			i = len(all) - 1 - j
		}
		if (limit == 0 || removed < limit) && bytes.Equal(all[i], c.Args[0]) {
			removed++
			continue
		}
		keep[i] = true
	}
	if removed == 0 {
		return resInt(0)
	}
	var elems [][]byte
	for i, e := range all {
		if keep[i] {
			elems = append(elems, e)
		}
	}
	v.ks.Notify(v.db, keyspace.EventList, "lrem", v.key)
	putList(v, v.key, keyspace.NewList(elems), exp)
	return resInt(removed)
}

// span turns redis start and stop indexes (inclusive, negative from the
// tail) into [from, to) within a list of n, empty when they cross.
func span(start, stop int64, n int) (from, to int) {
	ln := int64(n)
	if start < 0 {
		start += ln
	}
	if stop < 0 {
		stop += ln
	}
	start = max(start, 0)
	if start > stop || start >= ln {
		return 0, 0
	}
	stop = min(stop, ln-1)
	return int(start), int(stop + 1)
}

func rangeArgs(c *Cmd) (int64, int64) {
	start, _ := ParseInt(c.Args[0])
	stop, _ := ParseInt(c.Args[1])
	return start, stop
}

func execLTrim(v env, c *Cmd) Result {
	l, exp, err := listOf(v, v.key)
	if err != nil || l == nil {
		if err != nil {
			return resErr(err)
		}
		return resOK
	}
	start, stop := rangeArgs(c)
	from, to := span(start, stop, l.Len())
	v.ks.Notify(v.db, keyspace.EventList, "ltrim", v.key)
	putList(v, v.key, l.Slice(from, to), exp)
	return resOK
}

// execLRead is LLEN, LRANGE and LINDEX.
func execLRead(v env, c *Cmd) Result {
	l, _, err := listOf(v, v.key)
	if err != nil {
		return resErr(err)
	}
	switch c.Op {
	case OpLLen:
		return resInt(int64(l.Len()))
	case OpLIndex:
		if l == nil {
			return resNil
		}
		n, ok := ParseInt(c.Args[0])
		if !ok {
			return resErr(ErrNotInteger)
		}
		i, ok := index(n, l.Len())
		if !ok {
			return resNil
		}
		return resBulk(l.Index(i))
	}
	start, stop := rangeArgs(c)
	from, to := span(start, stop, l.Len())
	return bulks(l.Range(from, to))
}

// execLPos follows redis's lposCommand step by step, overflow of a rank of
// math.MinInt64 included.
func execLPos(v env, c *Cmd) Result {
	rank, _ := ParseInt(c.Args[1])
	count, _ := ParseInt(c.Args[2])
	maxlen, _ := ParseInt(c.Args[3])
	l, _, err := listOf(v, v.key)
	switch {
	case err != nil:
		return resErr(err)
	case l == nil && count != -1:
		return Result{Kind: KindArray, Array: []Result{}}
	case l == nil:
		return resNil
	}
	fromTail := false
	if rank < 0 {
		rank, fromTail = -rank, true
	}
	n := int64(l.Len())
	var matches int64
	match := int64(-1)
	out := []Result{}
	for i := int64(0); i < n && (maxlen == 0 || i < maxlen); i++ {
		pos := i
		if fromTail {
			pos = n - 1 - i
		}
		if !bytes.Equal(l.Index(int(pos)), c.Args[0]) {
			continue
		}
		matches++
		if matches >= rank {
			match = pos
			if count == -1 {
				break
			}
			out = append(out, resInt(pos))
			if count != 0 && matches-rank+1 >= count {
				break
			}
		}
	}
	if count != -1 {
		return Result{Kind: KindArray, Array: out}
	}
	if match < 0 {
		return resNil
	}
	return resInt(match)
}

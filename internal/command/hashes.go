package command

import (
	"bytes"
	"math"
	"strconv"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Hashes: HSET (and HSETNX, HMSET), HDEL, HINCRBY and the reads.
var hashOps = []opRow{
	{op: OpHSet, name: "hset", flags: opWrite | opDenyOOM, args: argShape{2, 2}, exec: execHSet},
	{op: OpHDel, name: "hdel", flags: opWrite, args: argShape{1, 1}, exec: execHDel},
	{op: OpHIncrBy, name: "hincrby", flags: opWrite | opDenyOOM, args: argShape{1, 1}, exec: execHIncrBy},
	{op: OpHGet, name: "hget", args: argShape{1, 1}, exec: execHGet},
	{op: OpHMGet, name: "hmget", args: argShape{1, 1}, exec: execHMGet},
	{op: OpHGetAll, name: "hgetall", exec: execHGetAll},
	{op: OpHKeys, name: "hkeys", exec: execHGetAll},
	{op: OpHVals, name: "hvals", exec: execHGetAll},
	{op: OpHLen, name: "hlen", exec: execHGetAll},
	{op: OpHExists, name: "hexists", args: argShape{1, 1}, exec: execHGet},
	{op: OpHStrLen, name: "hstrlen", args: argShape{1, 1}, exec: execHGet},
	{op: OpHScan, name: "hscan", flags: opItem, exec: execHScan},
	{op: OpHRandField, name: "hrandfield", flags: opItem, args: argShape{2, 1}, exec: execHRandField},
	{op: OpHIncrByFloat, name: "hincrbyfloat", flags: opWrite | opDenyOOM | opItem, args: argShape{2, 1}, exec: execHIncrByFloat},
}

func execHSet(v env, c *Cmd) Result {
	h, exp, err := hashOf(v)
	if err != nil {
		return resErr(err)
	}
	if c.Has(FlagNX) {
		if _, ok := h.Get(string(c.Args[0])); ok {
			return resInt(0)
		}
	}
	nh, added := h.With(cloneAll(c.Args))
	v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeHash, Hash: nh, ExpireAt: exp}, v.h.Now)
	v.ks.Notify(v.db, keyspace.EventHash, "hset", v.key)
	return resInt(int64(added))
}

func execHDel(v env, c *Cmd) Result {
	h, exp, err := hashOf(v)
	if err != nil || h == nil {
		return errOrZero(err)
	}
	nh, n := h.Without(c.Args)
	putOrDelete(v.ks, v.db, v.key, v.h.Now, nh.Len(), &keyspace.Entry{Type: keyspace.TypeHash, Hash: nh, ExpireAt: exp})
	if n > 0 {
		v.ks.Notify(v.db, keyspace.EventHash, "hdel", v.key)
		if nh.Len() == 0 {
			v.ks.Notify(v.db, keyspace.EventGeneric, "del", v.key)
		}
	}
	return resInt(int64(n))
}

func execHIncrBy(v env, c *Cmd) Result {
	h, exp, err := hashOf(v)
	if err != nil {
		return resErr(err)
	}
	var cur int64
	if val, ok := h.Get(string(c.Args[0])); ok {
		if cur, ok = ParseInt(val); !ok {
			return resErr(ErrHashNotInteger)
		}
	}
	if (c.N > 0 && cur > math.MaxInt64-c.N) || (c.N < 0 && cur < math.MinInt64-c.N) {
		return resErr(ErrOverflow)
	}
	cur += c.N
	nh, _ := h.With([][]byte{bytes.Clone(c.Args[0]), strconv.AppendInt(nil, cur, 10)})
	v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeHash, Hash: nh, ExpireAt: exp}, v.h.Now)
	v.ks.Notify(v.db, keyspace.EventHash, "hincrby", v.key)
	return resInt(cur)
}

// execHGet is HGET, HEXISTS and HSTRLEN: one field.
func execHGet(v env, c *Cmd) Result {
	h, _, err := hashOf(v)
	if err != nil {
		return resErr(err)
	}
	val, ok := h.Get(string(c.Args[0]))
	switch c.Op {
	case OpHExists:
		return resBool(ok)
	case OpHStrLen:
		return resInt(int64(len(val)))
	}
	if !ok {
		return resNil
	}
	return resBulk(val)
}

func execHMGet(v env, c *Cmd) Result {
	h, _, err := hashOf(v)
	if err != nil {
		return resErr(err)
	}
	out := make([]Result, len(c.Args))
	for i, f := range c.Args {
		out[i] = resNil
		if val, ok := h.Get(string(f)); ok {
			out[i] = resBulk(val)
		}
	}
	return Result{Kind: KindArray, Array: out}
}

// execHGetAll is HGETALL, HKEYS, HVALS and HLEN: the whole hash.
func execHGetAll(v env, c *Cmd) Result {
	h, _, err := hashOf(v)
	if err != nil {
		return resErr(err)
	}
	if c.Op == OpHLen {
		return resInt(int64(h.Len()))
	}
	out := []Result{}
	h.Each(func(f string, val []byte) bool {
		if c.Op != OpHVals {
			out = append(out, resBulk([]byte(f)))
		}
		if c.Op != OpHKeys {
			out = append(out, resBulk(val))
		}
		return true
	})
	return Result{Kind: KindArray, Array: out}
}

// hashOf is the command's key as a hash: nil if it does not exist,
// ErrWrongType if it holds another type.
func hashOf(v env) (*keyspace.Hash, int64, error) {
	e, err := entryOf(v, keyspace.TypeHash)
	if e == nil {
		return nil, 0, err
	}
	return e.Hash, e.ExpireAt, nil
}

// Errors of HINCRBYFLOAT, in redis-server's words.
var (
	ErrHashNotFloat  = ReplyError("ERR hash value is not a float")
	ErrIncrNotFinite = ReplyError("ERR value is NaN or Infinity")
)

func execHScan(v env, c *Cmd) Result {
	h, _, err := hashOf(v)
	if err != nil {
		return resErr(err)
	}
	if h == nil {
		return scanReply(0, nil)
	}
	return scanCollection(c, fieldsOf(h), hashCompact(h), func(f string) []Result {
		val, _ := h.Get(f)
		return []Result{resBulk([]byte(f)), resBulk(val)}
	})
}

// fieldsOf is h's fields in order.
func fieldsOf(h *keyspace.Hash) []string {
	fields := make([]string, 0, h.Len())
	h.Each(func(f string, _ []byte) bool {
		fields = append(fields, f)
		return true
	})
	return fields
}

// execHRandField is HRANDFIELD: without a count, one field (nil when the
// key is missing); with a positive count, that many distinct fields (the
// whole hash, in order, when it has no more); with a negative one, that
// many drawn with repetition. See picker for how the choice is made.
func execHRandField(v env, c *Cmd) Result {
	h, _, err := hashOf(v)
	if err != nil {
		return resErr(err)
	}
	withValues := len(c.Args[1]) > 0
	fields := fieldsOf(h)
	reply := func(idx []int) Result {
		out := make([]Result, 0, len(idx)*2)
		for _, i := range idx {
			out = append(out, resBulk([]byte(fields[i])))
			if withValues {
				val, _ := h.Get(fields[i])
				out = append(out, resBulk(val))
			}
		}
		return Result{Kind: KindArray, Array: out, Pairs: withValues}
	}
	return randomReply(v, c.Args[0], fields, reply)
}

// randomReply answers HRANDFIELD or SRANDMEMBER over members: without a
// count (count empty), one member, or nil if there is none; with one, the
// members randomIndexes chooses, as reply renders them.
func randomReply(v env, count []byte, members []string, reply func(idx []int) Result) Result {
	if len(count) == 0 {
		if len(members) == 0 {
			return resNil
		}
		return resBulk([]byte(members[newPicker(v).intn(len(members))]))
	}
	n, ok := ParseInt(count)
	if !ok {
		return resErr(ErrNotInteger)
	}
	return reply(randomIndexes(v, len(members), n))
}

// randomIndexes chooses count indexes of a collection of n members as
// HRANDFIELD, SRANDMEMBER and SPOP do (see execHRandField).
func randomIndexes(v env, n int, count int64) []int {
	switch {
	case n == 0 || count == 0:
		return nil
	case count >= int64(n):
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	case count > 0:
		return newPicker(v).distinct(n, int(count))
	}
	p := newPicker(v)
	idx := make([]int, -count)
	for i := range idx {
		idx[i] = p.intn(n)
	}
	return idx
}

func execHIncrByFloat(v env, c *Cmd) Result {
	incr, ok := parseLongDouble(c.Args[1])
	if !ok {
		return resErr(ErrNotFloat)
	}
	if incr.IsInf() {
		return resErr(ErrIncrNotFinite)
	}
	h, exp, err := hashOf(v)
	if err != nil {
		return resErr(err)
	}
	cur := newExt()
	if val, ok := h.Get(string(c.Args[0])); ok {
		if cur, ok = parseLongDouble(val); !ok {
			return resErr(ErrHashNotFloat)
		}
	}
	sum, ok := addLongDouble(cur, incr)
	if !ok {
		return resErr(ErrFloatInfinity)
	}
	val := formatLongDouble(sum)
	nh, _ := h.With([][]byte{bytes.Clone(c.Args[0]), val})
	v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeHash, Hash: nh, ExpireAt: exp}, v.h.Now)
	v.ks.Notify(v.db, keyspace.EventHash, "hincrbyfloat", v.key)
	return resBulk(val)
}

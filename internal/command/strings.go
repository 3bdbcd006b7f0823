package command

import (
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

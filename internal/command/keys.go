package command

import (
	"math"
	"strconv"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Keys: the generic commands that work on a key of any type (DEL, EXPIRE,
// PERSIST, RENAME, TTL, TYPE, EXISTS), the keyspace as a whole (KEYS,
// SCAN, DBSIZE, FLUSHDB, FLUSHALL), and the leader's active expiry and
// eviction.
var keyOps = []opRow{
	{op: OpDel, name: "del", flags: opWrite, args: argShape{1, 1}, exec: execDel},
	{op: OpExpire, name: "expire", flags: opWrite, exec: execExpire},
	{op: OpPersist, name: "persist", flags: opWrite, exec: execPersist},
	{op: OpRename, name: "rename", flags: opWrite, args: argShape{1, 1}, exec: execRename},
	{op: OpFlushDB, name: "flushdb", flags: opWrite, exec: execFlushDB},
	{op: OpFlushAll, name: "flushall", flags: opWrite, exec: execFlushAll},
	{op: OpDelExpired, name: "delexpired", flags: opWrite, exec: execDelExpired},
	{op: OpEvict, name: "evict", flags: opWrite, exec: execDelExpired},
	{op: OpExists, name: "exists", args: argShape{1, 1}, exec: execExists},
	{op: OpTTL, name: "ttl", exec: execTTL},
	{op: OpType, name: "type", exec: execType},
	{op: OpKeys, name: "keys", args: argShape{1, 1}, exec: execKeys},
	{op: OpScan, name: "scan", args: argShape{3, 1}, exec: execScan},
	{op: OpDBSize, name: "dbsize", exec: execDBSize},
}

func execDel(v env, c *Cmd) Result {
	n := int64(0)
	for _, k := range c.Args {
		live := v.ks.Get(v.db, string(k), v.h.Now) != nil
		if v.ks.Delete(v.db, string(k)) && live {
			n++
			v.ks.Notify(v.db, keyspace.EventGeneric, "del", string(k))
		}
	}
	return resInt(n)
}

func execExpire(v env, c *Cmd) Result {
	ks, db, key, now := v.ks, v.db, v.key, v.h.Now
	e := ks.Get(db, key, now)
	if e == nil {
		return resInt(0)
	}
	at, err := expireAt(c, now)
	if err != nil {
		return resErr(err)
	}
	cur := e.ExpireAt
	switch {
	case c.Has(FlagNX) && cur != 0,
		c.Has(FlagXX) && cur == 0,
		c.Has(FlagGT) && (cur == 0 || at <= cur),
		c.Has(FlagLT) && cur != 0 && at >= cur:
		return resInt(0)
	}
	expireOrDelete(v, e, at)
	return resInt(1)
}

func execPersist(v env, _ *Cmd) Result {
	e := v.ks.Get(v.db, v.key, v.h.Now)
	if e == nil || e.ExpireAt == 0 {
		return resInt(0)
	}
	v.ks.Put(v.db, v.key, e.WithExpiry(0), v.h.Now)
	v.ks.Notify(v.db, keyspace.EventGeneric, "persist", v.key)
	return resInt(1)
}

func execRename(v env, c *Cmd) Result {
	ks, db, key, now := v.ks, v.db, v.key, v.h.Now
	e := ks.Get(db, key, now)
	if e == nil {
		return resErr(ErrNoSuchKey)
	}
	dst := string(c.Args[0])
	if c.Has(FlagNX) && ks.Get(db, dst, now) != nil {
		return resInt(0)
	}
	if dst != key {
		// Put first: e.Str aliases key's slot, which Delete frees.
		ks.Put(db, dst, e.WithExpiry(e.ExpireAt), now)
		ks.Delete(db, key)
	}
	ks.Notify(db, keyspace.EventGeneric, "rename_from", key)
	ks.Notify(db, keyspace.EventGeneric, "rename_to", dst)
	if c.Has(FlagNX) {
		return resInt(1)
	}
	return resOK
}

func execFlushDB(v env, _ *Cmd) Result {
	v.ks.Flush(v.db)
	return resOK
}

func execFlushAll(v env, _ *Cmd) Result {
	for i := 0; i < v.ks.Databases(); i++ {
		v.ks.Flush(i)
	}
	return resOK
}

// execDelExpired is the leader's active expiry (OpDelExpired: deletes the
// keys still expired at the batch time) and eviction (OpEvict: deletes
// them).
func execDelExpired(v env, c *Cmd) Result {
	n := int64(0)
	for _, k := range c.Args {
		e := v.ks.Lookup(v.db, string(k))
		if e != nil && (c.Op == OpEvict || e.Expired(v.h.Now)) {
			v.ks.Delete(v.db, string(k))
			n++
			if c.Op == OpEvict {
				v.ks.Notify(v.db, keyspace.EventEvicted, "evicted", string(k))
			} else {
				v.ks.Notify(v.db, keyspace.EventExpired, "expired", string(k))
			}
		}
	}
	return resInt(n)
}

func execExists(v env, c *Cmd) Result {
	n := int64(0)
	for _, k := range c.Args {
		if v.ks.Get(v.db, string(k), v.h.Now) != nil {
			n++
		}
	}
	return resInt(n)
}

func execTTL(v env, c *Cmd) Result {
	now := v.h.Now
	e := v.ks.Get(v.db, v.key, now)
	switch {
	case e == nil:
		return resInt(-2)
	case e.ExpireAt == 0:
		return resInt(-1)
	case c.Has(FlagAbs) && c.Has(FlagMillis):
		return resInt(e.ExpireAt)
	case c.Has(FlagAbs):
		return resInt(e.ExpireAt / 1000)
	case c.Has(FlagMillis):
		return resInt(e.ExpireAt - now)
	}
	return resInt((e.ExpireAt - now + 500) / 1000)
}

func execType(v env, _ *Cmd) Result {
	e := v.ks.Get(v.db, v.key, v.h.Now)
	if e == nil {
		return resStatus("none")
	}
	return resStatus(e.Type.String())
}

func execKeys(v env, c *Cmd) Result {
	var out []Result
	for cur := uint64(0); ; {
		cur = v.ks.Scan(v.db, cur, math.MaxInt, v.h.Now, func(k string, _ *keyspace.Entry) {
			if Match(c.Args[0], []byte(k)) {
				out = append(out, resBulk([]byte(k)))
			}
		})
		if cur == 0 {
			break
		}
	}
	return Result{Kind: KindArray, Array: out}
}

func execScan(v env, c *Cmd) Result {
	pattern, typ := c.Args[0], string(c.Args[1])
	count, _ := strconv.Atoi(string(c.Args[2]))
	keys := []Result{}
	next := v.ks.Scan(v.db, uint64(c.N), count, v.h.Now, func(k string, e *keyspace.Entry) {
		if len(pattern) > 0 && !Match(pattern, []byte(k)) {
			return
		}
		if typ != "" && e.Type.String() != typ {
			return
		}
		keys = append(keys, resBulk([]byte(k)))
	})
	return Result{Kind: KindArray, Array: []Result{resBulk(strconv.AppendUint(nil, next, 10)), {Kind: KindArray, Array: keys}}}
}

func execDBSize(v env, _ *Cmd) Result { return resInt(int64(v.ks.Len(v.db))) }

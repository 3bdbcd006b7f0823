package command

import (
	"math"
	"slices"
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
	{op: OpCopy, name: "copy", flags: opWrite | opDenyOOM | opItem, args: argShape{2, 1}, exec: execCopy},
	{op: OpMove, name: "move", flags: opWrite | opItem, exec: execMove},
	{op: OpRandomKey, name: "randomkey", flags: opItem, exec: execRandomKey},
	{op: OpTouchKeys, name: "redis-touch", flags: opItem, args: argShape{1, 1}, exec: execTouchKeys},
	{op: OpObject, name: "object", flags: opItem, args: argShape{2, 1}, exec: execObject},
	{op: OpSwapDB, name: "swapdb", flags: opWrite, exec: execSwapDB},
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
	v.ks.NotifyFlush(v.db)
	return resOK
}

func execFlushAll(v env, _ *Cmd) Result {
	for i := 0; i < v.ks.Databases(); i++ {
		v.ks.Flush(i)
	}
	v.ks.NotifyFlush(-1)
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

// ErrSameObject is COPY or MOVE onto the key itself.
var ErrSameObject = ReplyError("ERR source and destination objects are the same")

// targetDB is the destination database of COPY and MOVE.
func targetDB(v env, n int64) (int, error) {
	if n < 0 || n >= int64(v.ks.Databases()) {
		return 0, ErrBadDB
	}
	return int(n), nil
}

func execCopy(v env, c *Cmd) Result {
	dstDB, err := targetDB(v, c.N)
	if err != nil {
		return resErr(err)
	}
	dst := string(c.Args[0])
	if dstDB == v.db && dst == v.key {
		return resErr(ErrSameObject)
	}
	e := v.ks.Get(v.db, v.key, v.h.Now)
	if e == nil {
		return resInt(0)
	}
	if v.ks.Get(dstDB, dst, v.h.Now) != nil && string(c.Args[1]) != "replace" {
		return resInt(0)
	}
	// A new value (a new CAS); hashes, sets, lists and sorted sets are
	// immutable, so the copy shares them (a list's buffer too: see
	// keyspace.List).
	v.ks.Put(dstDB, dst, &keyspace.Entry{Type: e.Type, Str: e.Str, Hash: e.Hash, Set: e.Set, List: e.List, ZSet: e.ZSet, Stream: e.Stream, ExpireAt: e.ExpireAt, Flags: e.Flags}, v.h.Now)
	v.ks.Notify(dstDB, keyspace.EventGeneric, "copy_to", dst)
	return resInt(1)
}

func execMove(v env, c *Cmd) Result {
	dstDB, err := targetDB(v, c.N)
	if err != nil {
		return resErr(err)
	}
	if dstDB == v.db {
		return resErr(ErrSameObject)
	}
	e := v.ks.Get(v.db, v.key, v.h.Now)
	if e == nil || v.ks.Get(dstDB, v.key, v.h.Now) != nil {
		return resInt(0)
	}
	// Put first: e.Str aliases the source slot, which Delete frees.
	v.ks.Put(dstDB, v.key, e.WithExpiry(e.ExpireAt), v.h.Now)
	v.ks.Delete(v.db, v.key)
	v.ks.Notify(v.db, keyspace.EventGeneric, "move_from", v.key)
	v.ks.Notify(dstDB, keyspace.EventGeneric, "move_to", v.key)
	return resInt(1)
}

// execRandomKey picks a SCAN bucket at random, then one of the live keys of
// the first non-empty bucket from there, in key order: the choice depends
// on the keys alone, not on how the index happens to lay them out, so a
// node restored from a snapshot chooses as the others do (see picker).
func execRandomKey(v env, _ *Cmd) Result {
	if v.ks.Len(v.db) == 0 {
		return resNil
	}
	p := newPicker(v)
	start := uint64(p.intn(keyspace.NumShards))
	var keys []string
	collect := func(k string, _ *keyspace.Entry) { keys = append(keys, k) }
	if v.ks.Scan(v.db, start, 1, v.h.Now, collect); len(keys) == 0 {
		v.ks.Scan(v.db, 0, 1, v.h.Now, collect)
	}
	if len(keys) == 0 {
		return resNil
	}
	slices.Sort(keys)
	return resBulk([]byte(keys[p.intn(len(keys))]))
}

// execTouchKeys is redis's TOUCH: it counts the keys that exist and
// records an access for LRU (node-local, like every read's).
func execTouchKeys(v env, c *Cmd) Result {
	n := int64(0)
	for _, k := range c.Args {
		if e := v.ks.Get(v.db, string(k), v.h.Now); e != nil {
			e.Touch(v.h.Now)
			n++
		}
	}
	return resInt(n)
}

// Errors of OBJECT.
var errNoLFU = ReplyError("ERR An LFU maxmemory policy is not selected, access frequency not tracked. " +
	"Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")

// sharedIntegers is redis's OBJ_SHARED_INTEGERS: values 0 to 9999 stored
// by SET are one shared object, whose OBJECT REFCOUNT is INT_MAX.
const sharedIntegers = 10000

// execObject is OBJECT ENCODING, REFCOUNT, IDLETIME and FREQ. None of them
// counts as an access. The encoding is what redis would use for the value
// as it is now (see encodingOf); IDLETIME is this node's record of the last
// access, and 0 inside a transaction or a script, which run on every node
// and must not see a node's own clock.
func execObject(v env, c *Cmd) Result {
	if string(c.Args[0]) == "help" {
		return resOK // the front end has the text
	}
	e := v.ks.Get(v.db, v.key, v.h.Now)
	if e == nil {
		return resNil
	}
	switch string(c.Args[0]) {
	case "encoding":
		return resBulk([]byte(encodingOf(e)))
	case "refcount":
		if n, ok := ParseInt(e.Str); e.Type == keyspace.TypeString && ok && n >= 0 && n < sharedIntegers &&
			len(e.Str) <= 20 && string(c.Args[1]) != "noshare" {
			return resInt(math.MaxInt32)
		}
		return resInt(1)
	case "idletime":
		if !v.h.local || e.LastAccess() == 0 {
			return resInt(0)
		}
		return resInt(max(v.h.Now-e.LastAccess(), 0) / 1000)
	case "freq":
		return resErr(errNoLFU)
	case "memory-usage":
		// MEMORY USAGE, asked through OBJECT's op: the keyspace's own
		// accounting of the key.
		return resInt(v.ks.Usage(v.db, v.key))
	}
	return resErr(errSyntax)
}

// redis's default encoding thresholds (hash-max-listpack-entries and
// -value, set-max-intset-entries).
const (
	listpackEntries = 512
	listpackValue   = 64
	intsetEntries   = 512
)

// encodingOf is the name redis 7.0 gives the encoding of a value like e's
// under its default settings: int, embstr or raw; listpack or hashtable;
// intset or hashtable. It is derived from the value as it is now. Redis
// also remembers history that hatcheck does not: a string changed by
// APPEND or SETRANGE is raw however short, and a hash or set converted to
// a hashtable stays one when it shrinks.
func encodingOf(e *keyspace.Entry) string {
	switch e.Type {
	case keyspace.TypeString:
		if _, ok := ParseInt(e.Str); ok && len(e.Str) <= 20 {
			return "int"
		}
		if len(e.Str) <= 44 {
			return "embstr"
		}
		return "raw"
	case keyspace.TypeHash:
		if hashCompact(e.Hash) {
			return "listpack"
		}
	case keyspace.TypeSet:
		if setCompact(e.Set) {
			return "intset"
		}
	case keyspace.TypeList:
		return "quicklist"
	case keyspace.TypeZSet:
		return zsetEncoding(e.ZSet)
	case keyspace.TypeStream:
		return "stream"
	}
	return "hashtable"
}

// hashCompact reports whether redis keeps h as a listpack.
func hashCompact(h *keyspace.Hash) bool {
	if h.Len() > listpackEntries {
		return false
	}
	ok := true
	h.Each(func(f string, val []byte) bool {
		ok = len(f) <= listpackValue && len(val) <= listpackValue
		return ok
	})
	return ok
}

// setCompact reports whether redis keeps s as an intset.
func setCompact(s *keyspace.Set) bool {
	if s.Len() > intsetEntries {
		return false
	}
	for _, m := range s.Members() {
		if _, ok := ParseInt([]byte(m)); !ok {
			return false
		}
	}
	return true
}

// execSwapDB is redis's SWAPDB: the two databases exchange their keys;
// connections stay in the database they selected. No event is published
// (redis publishes none); WATCH sees every key that exists in either
// database as changed, since an entry's CAS is its own. Blocked clients
// look at their keys again: a key they wait for may exist now.
func execSwapDB(v env, c *Cmd) Result {
	other, err := targetDB(v, c.N)
	if err != nil {
		return resErr(err)
	}
	if other != v.db {
		v.ks.Swap(v.db, other)
	}
	return resOK
}

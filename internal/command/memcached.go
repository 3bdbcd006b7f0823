package command

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// memcached: its stores (set, add, replace, append, prepend, cas),
// incr/decr, touch and delete, with its item fields (client flags, CAS)
// in the log encoding. get, gets and gat read with OpGet and OpTouch.
var memcachedOps = []opRow{
	{op: OpMCStore, name: "mc-store", flags: opWrite | opDenyOOM | opItem, args: argShape{1, 1}, exec: execMCStore},
	{op: OpMCIncr, name: "mc-incr", flags: opWrite | opDenyOOM | opItem, exec: execMCIncr},
	{op: OpTouch, name: "touch", flags: opWrite | opItem, exec: execTouch},
	{op: OpMCDelete, name: "mc-delete", flags: opWrite | opItem, exec: execMCDelete},
	{op: OpMCGet, name: "mc-get", flags: opItem, exec: execMCGet},
}

// execMCStore is memcached's set/add/replace/append/prepend/cas.
func execMCStore(v env, c *Cmd) Result {
	ks, db, key, now := v.ks, v.db, v.key, v.h.Now
	old := ks.Get(db, key, now)
	if c.CAS != 0 {
		if old == nil {
			return resInt(NotFound)
		}
		if old.CAS != c.CAS {
			return resInt(Exists)
		}
	}
	if (c.Has(FlagNX) && old != nil) || (c.Has(FlagXX) && old == nil) {
		return resInt(NotStored)
	}
	e := &keyspace.Entry{Type: keyspace.TypeString, Flags: c.ClientFlags}
	if c.Flags&(FlagAppend|FlagPrepend) != 0 {
		// Appending keeps the item's flags and expiry, as memcached does.
		if old == nil || old.Type != keyspace.TypeString {
			return resInt(NotStored)
		}
		val := make([]byte, 0, len(old.Str)+len(c.Args[0]))
		if c.Has(FlagAppend) {
			val = append(append(val, old.Str...), c.Args[0]...)
		} else {
			val = append(append(val, c.Args[0]...), old.Str...)
		}
		e.Str, e.Flags, e.ExpireAt = val, old.Flags, old.ExpireAt
	} else {
		e.Str = c.Args[0] // Put copies it
		if c.Flags&(FlagExpireRel|FlagExpireAbs) != 0 {
			at, err := expireAt(c, now)
			if err != nil {
				return resErr(err)
			}
			if at <= now {
				// Stored already expired: nothing is readable and the old
				// value is gone, but the store used a CAS value as
				// memcached's does, and answers with it.
				ks.Delete(db, key)
				return Result{Kind: KindInt, Int: Stored, CAS: ks.NextCAS()}
			}
			e.ExpireAt = at
		}
	}
	ks.Put(db, key, e, now)
	ks.Notify(db, keyspace.EventString, "set", key)
	return Result{Kind: KindInt, Int: Stored, CAS: e.CAS}
}

// execMCIncr is memcached's incr/decr: unsigned 64-bit, incr wraps, decr
// stops at 0, and a shorter result is padded with spaces to the old length
// (memcached rewrites the item in place). The meta protocol's ma adds a CAS
// compare (CAS ≠ 0; before the value is parsed, as memcached's
// do_add_delta does) and FlagSetTTL, which gives an existing item the
// expiry too. No entry written before ma existed has either.
func execMCIncr(v env, c *Cmd) Result {
	ks, db, key, now := v.ks, v.db, v.key, v.h.Now
	e := ks.Get(db, key, now)
	if e == nil {
		if !c.Has(FlagCreate) {
			return resInt(NotFound)
		}
		ne := &keyspace.Entry{Type: keyspace.TypeString, Str: strconv.AppendUint(nil, c.Initial, 10)}
		if c.Flags&(FlagExpireRel|FlagExpireAbs) != 0 {
			at, err := expireAt(c, now)
			if err != nil {
				return resErr(err)
			}
			ne.ExpireAt = at
		}
		ks.Put(db, key, ne, now)
		return Result{Kind: KindInt, Int: Created, Bulk: ne.Str, CAS: ne.CAS, ExpireAt: ne.ExpireAt}
	}
	if e.Type != keyspace.TypeString || len(e.Str) == 0 {
		return resErr(ErrNotNumeric)
	}
	if c.CAS != 0 && c.CAS != e.CAS {
		return resInt(Exists)
	}
	n, ok := ParseUint(e.Str)
	if !ok {
		return resErr(ErrNotNumeric)
	}
	switch {
	case !c.Has(FlagDecr):
		n += c.Delta
	case c.Delta > n:
		n = 0
	default:
		n -= c.Delta
	}
	digits := strconv.AppendUint(nil, n, 10)
	stored := digits
	if len(digits) < len(e.Str) {
		stored = append(bytes.Clone(digits), bytes.Repeat([]byte{' '}, len(e.Str)-len(digits))...)
	}
	ne := &keyspace.Entry{Type: keyspace.TypeString, Str: stored, Flags: e.Flags, ExpireAt: e.ExpireAt}
	if c.Has(FlagSetTTL) {
		// No expiry flag: the item never expires (T0).
		var at int64
		if c.Flags&(FlagExpireRel|FlagExpireAbs) != 0 {
			var err error
			if at, err = expireAt(c, now); err != nil {
				return resErr(err)
			}
		}
		if at != 0 && at <= now {
			// memcached sets the new expiry on the incremented item,
			// which is then no longer readable.
			ks.Delete(db, key)
			return Result{Kind: KindInt, Int: Stored, Bulk: digits, CAS: ks.NextCAS(), ExpireAt: at}
		}
		ne.ExpireAt = at
	}
	ks.Put(db, key, ne, now)
	return Result{Kind: KindInt, Int: Stored, Bulk: digits, CAS: ne.CAS, ExpireAt: ne.ExpireAt}
}

// execMCGet is the meta protocol's mg: a string item with everything mg
// may print about it, the access clock as it was before this read.
func execMCGet(v env, c *Cmd) Result {
	e := v.ks.Get(v.db, v.key, v.h.Now)
	if e == nil || e.Type != keyspace.TypeString {
		return resNil
	}
	r := resValue(e)
	r.ExpireAt, r.Access = e.ExpireAt, e.LastAccess()
	if !c.Has(FlagNoBump) {
		e.Touch(v.h.Now)
	}
	return r
}

func execTouch(v env, c *Cmd) Result {
	ks, db, key, now := v.ks, v.db, v.key, v.h.Now
	e := ks.Get(db, key, now)
	if e == nil {
		return resInt(NotFound)
	}
	at := int64(0)
	if !c.Has(FlagPersist) {
		var err error
		if at, err = expireAt(c, now); err != nil {
			return resErr(err)
		}
	}
	if at != 0 && at <= now {
		ks.Delete(db, key)
		ks.Notify(db, keyspace.EventGeneric, "del", key)
	} else {
		ks.Put(db, key, e.WithExpiry(at), now)
		ks.Notify(db, keyspace.EventGeneric, "expire", key)
	}
	// memcached answers a touch with the item's flags and CAS, which
	// a new expiry does not change.
	return Result{Kind: KindInt, Int: Stored, Flags: e.Flags, CAS: e.CAS}
}

func execMCDelete(v env, c *Cmd) Result {
	e := v.ks.Get(v.db, v.key, v.h.Now)
	switch {
	case e == nil:
		return resInt(NotFound)
	case c.CAS != 0 && e.CAS != c.CAS:
		return resInt(Exists)
	}
	v.ks.Delete(v.db, v.key)
	v.ks.Notify(v.db, keyspace.EventGeneric, "del", v.key)
	return resInt(Stored)
}

// ParseUint parses an unsigned decimal as memcached's safe_strtoull: leading
// spaces allowed, digits, then the end or a space; a value over 2^63 that
// carries a minus sign is refused.
func ParseUint(b []byte) (uint64, bool) {
	s := strings.TrimLeft(string(b), " \t\n\v\f\r")
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == 0 || (end < len(s) && !isSpace(s[end])) {
		return 0, false
	}
	n, err := strconv.ParseUint(s[:end], 10, 64)
	return n, err == nil
}

func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

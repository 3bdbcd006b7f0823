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
	// The stale-while-revalidate ops. An mg that creates a stub (N) or
	// wins (W) grows memory by at most an empty item: it is not refused
	// over maxmemory, so that the one client told to recache is told so.
	{op: OpMCMetaGet, name: "mc-meta-get", flags: opWrite | opItem, args: argShape{3, 3}, exec: execMCMetaGet},
	{op: OpMCInvalidate, name: "mc-invalidate", flags: opWrite | opItem, exec: execMCInvalidate},
	{op: OpMCStoreStale, name: "mc-store-stale", flags: opWrite | opDenyOOM | opItem, args: argShape{1, 1}, exec: execMCStoreStale},
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
		return Result{Kind: KindInt, Int: Created, Bulk: ne.Str, CAS: ne.CAS, ExpireAt: ne.ExpireAt, Array: expiryOnWire(ne.ExpireAt)}
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
	if len(digits) <= len(e.Str) {
		// memcached rewrites the item in place: it keeps its marks (stale,
		// win sent, fetched) and gets a new CAS.
		ne.Bits, ne.CAS = e.Bits, ks.NextCAS()
	}
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
			return Result{Kind: KindInt, Int: Stored, Bulk: digits, CAS: ks.NextCAS(), ExpireAt: at, Array: expiryOnWire(at)}
		}
		ne.ExpireAt = at
	}
	ks.Put(db, key, ne, now)
	return Result{Kind: KindInt, Int: Stored, Bulk: digits, CAS: ne.CAS, ExpireAt: ne.ExpireAt, Array: expiryOnWire(ne.ExpireAt)}
}

// expiryOnWire is an incr's expiry again, in Array, for ma's t: Result's
// ExpireAt does not travel from the leader to a follower (the result
// encoding predates it), Array does.
func expiryOnWire(at int64) []Result { return []Result{{Kind: KindInt, Int: at}} }

// execMCGet is the meta protocol's mg: a string item with everything mg
// may print about it, the access clock as it was before this read, and in
// Int its Meta bits. The read may find that the mg would change the item
// — create it (N, FlagCreate) or win (a stale item, or R with its seconds
// in Delta) — which a read cannot do: it then answers MetaNeedsLog and
// leaves the item untouched, and the front end runs OpMCMetaGet instead.
func execMCGet(v env, c *Cmd) Result {
	e := v.ks.Get(v.db, v.key, v.h.Now)
	if e == nil {
		if c.Has(FlagCreate) {
			return Result{Kind: KindNil, Int: MetaNeedsLog}
		}
		return resNil
	}
	if e.Type != keyspace.TypeString {
		return resNil
	}
	r := resValue(e)
	r.ExpireAt, r.Access, r.Int = e.ExpireAt, e.LastAccess(), metaBits(e)
	if mayWin(e, int64(c.Delta), e.ExpireAt, v.h.Now) {
		r.Int |= MetaNeedsLog
		return r
	}
	if !c.Has(FlagNoBump) {
		e.Touch(v.h.Now)
	}
	return r
}

// metaBits are the Meta bits the item e has before a command.
func metaBits(e *keyspace.Entry) int64 {
	var b int64
	if e.Stale() {
		b |= MetaStale
	}
	if e.WinSent() {
		b |= MetaWinSent
	}
	if e.Fetched() {
		b |= MetaFetched
	}
	return b
}

// mayWin reports whether an mg wins the right to recache e, whose expiry
// is exp: no win was sent yet, and the item is stale or R wins.
func mayWin(e *keyspace.Entry, recache, exp, now int64) bool {
	return !e.WinSent() && (e.Stale() || recacheWins(recache, exp, now))
}

// recacheWins reports whether R (recache, memcached's exptime: seconds, 0
// or less none) makes a winner of an item that expires at exp: it expires
// sooner than R, in memcached's whole seconds.
func recacheWins(recache, exp, now int64) bool {
	switch {
	case recache <= 0 || exp == 0:
		return false
	case recache <= mcRelativeLimit:
		return ttlSeconds(exp, now) < recache
	default:
		return exp/1000 < recache
	}
}

// mcRelativeLimit is memcached's REALTIME_MAXDELTA: an exptime up to 30
// days is relative, a larger one a Unix time.
const mcRelativeLimit = 30 * 24 * 3600

// mcExpireAt is the expiry (Unix ms, 0 none) a memcached exptime gives at
// now: 0 none, negative already past, up to 30 days relative, else a Unix
// time in seconds.
func mcExpireAt(exptime, now int64) int64 {
	switch {
	case exptime == 0:
		return 0
	case exptime < 0:
		return 1
	case exptime <= mcRelativeLimit:
		return now + exptime*1000
	default:
		return exptime * 1000
	}
}

// ttlSeconds is the item's remaining time as memcached counts it, in
// whole seconds rounded up (as mg's t prints it).
func ttlSeconds(exp, now int64) int64 {
	if exp <= now {
		return 0
	}
	return (exp - now + 999) / 1000
}

// execMCMetaGet is an mg that may change the item, run through the log so
// that every node agrees who won: N creates a missing item as an empty
// stub and gives its creator the win; R wins when the item expires within
// R seconds; an mg of a stale item wins; every win marks the item so that
// later mgs see Z and do not win, until md or ms with I marks it stale
// again or a new value replaces it. T sets the expiry. Args[2] is the
// order in which T, N and R were given, which memcached's reply loop
// follows: a created stub gets the expiry of whichever of N and T comes
// last, and R compares the expiry T gave if T comes first.
//
// The result is OpMCGet's, with MetaWon and MetaCreated; Array holds the
// expiry before, the access clock before, the expiry after, T's expiry
// and N's (Result's ExpireAt and Access do not travel from the leader to
// a follower), so that the front end prints t as memcached does where it
// comes among the flags.
func execMCMetaGet(v env, c *Cmd) Result {
	ks, db, key, now := v.ks, v.db, v.key, v.h.Now
	var tAt, vivAt int64
	if c.Has(FlagSetTTL) && c.Flags&(FlagExpireRel|FlagExpireAbs) != 0 {
		var err error
		if tAt, err = expireAt(c, now); err != nil {
			return resErr(err)
		}
	}
	vivify := len(c.Args[0]) > 0
	if vivify {
		viv, err := strconv.ParseInt(string(c.Args[0]), 10, 64)
		if err != nil {
			return resErr(ErrInvalidExpire)
		}
		vivAt = mcExpireAt(viv, now)
	}
	recache, _ := strconv.ParseInt(string(c.Args[1]), 10, 64)
	order := c.Args[2]
	e := ks.Get(db, key, now)
	if e == nil {
		if !vivify {
			return resNil
		}
		var at int64 // memcached creates the stub with no expiry, then runs the flags
		for _, o := range order {
			switch o {
			case 'T':
				at = tAt
			case 'N':
				at = vivAt
			}
		}
		ne := &keyspace.Entry{Type: keyspace.TypeString, Str: []byte{}, ExpireAt: at, Bits: keyspace.BitWinSent}
		cas := uint64(0)
		if at != 0 && at <= now {
			cas = ks.NextCAS() // created already expired: memcached answers it all the same
		} else {
			ks.Put(db, key, ne, now)
			ks.Notify(db, keyspace.EventString, "set", key)
			cas = ne.CAS
			if !c.Has(FlagNoBump) {
				// The mg that created the stub fetched it (mg's h).
				ks.Get(db, key, now).Touch(now)
			}
		}
		return Result{Kind: KindBulk, Bulk: []byte{}, CAS: cas, Int: MetaWon | MetaCreated, ExpireAt: 0, Access: now,
			Array: metaTimes(0, now, at, tAt, vivAt)}
	}
	if e.Type != keyspace.TypeString {
		return resNil
	}
	r := resValue(e)
	before, access := e.ExpireAt, e.LastAccess()
	r.Int = metaBits(e)
	exp, hasT, won := before, false, false
	for _, o := range order {
		switch o {
		case 'T':
			exp, hasT = tAt, true
		case 'R':
			won = won || (!e.WinSent() && recacheWins(recache, exp, now))
		}
	}
	won = won || (e.Stale() && !e.WinSent())
	if !c.Has(FlagNoBump) {
		e.Touch(now) // before the copy below, which keeps the fetched bit
	}
	if won || hasT {
		ne := e.WithExpiry(exp)
		if won {
			ne.Bits |= keyspace.BitWinSent
			r.Int |= MetaWon
		}
		if exp != 0 && exp <= now {
			ks.Delete(db, key)
			ks.Notify(db, keyspace.EventGeneric, "del", key)
		} else {
			ks.Put(db, key, ne, now)
			if hasT {
				ks.Notify(db, keyspace.EventGeneric, "expire", key)
			}
		}
	}
	r.ExpireAt, r.Access, r.Array = before, access, metaTimes(before, access, exp, tAt, vivAt)
	return r
}

func metaTimes(times ...int64) []Result {
	r := make([]Result, len(times))
	for i, t := range times {
		r[i] = Result{Kind: KindInt, Int: t}
	}
	return r
}

// execMCInvalidate is md with I: rather than delete the item it marks it
// stale (mg then answers X, and the first one W), clears the win sent, and
// gives it a new CAS and, with T, a new expiry, as memcached's
// process_mdelete_command does.
func execMCInvalidate(v env, c *Cmd) Result {
	ks, db, key, now := v.ks, v.db, v.key, v.h.Now
	e := ks.Get(db, key, now)
	switch {
	case e == nil:
		return resInt(NotFound)
	case c.CAS != 0 && e.CAS != c.CAS:
		return resInt(Exists)
	}
	exp := e.ExpireAt
	if c.Has(FlagSetTTL) {
		exp = 0
		if c.Flags&(FlagExpireRel|FlagExpireAbs) != 0 {
			var err error
			if exp, err = expireAt(c, now); err != nil {
				return resErr(err)
			}
		}
	}
	if exp != 0 && exp <= now {
		ks.Delete(db, key)
		ks.Notify(db, keyspace.EventGeneric, "del", key)
		return resInt(Stored)
	}
	ne := e.WithExpiry(exp)
	ne.Bits = (ne.Bits | keyspace.BitStale) &^ keyspace.BitWinSent
	ne.CAS = ks.NextCAS()
	ks.Put(db, key, ne, now)
	return resInt(Stored)
}

// execMCStoreStale is ms with I and a CAS (set or replace mode): a CAS
// lower than the item's stores the value as a stale item that keeps the
// old expiry and win sent (memcached's CAS_STALE, for a late writer that
// must not pass for fresh); any other case is execMCStore's cas.
func execMCStoreStale(v env, c *Cmd) Result {
	ks, db, key, now := v.ks, v.db, v.key, v.h.Now
	old := ks.Get(db, key, now)
	if old == nil || c.CAS == 0 || c.CAS >= old.CAS {
		return execMCStore(v, c)
	}
	e := &keyspace.Entry{Type: keyspace.TypeString, Str: c.Args[0], Flags: c.ClientFlags, ExpireAt: old.ExpireAt,
		Bits: keyspace.BitStale | old.Bits&keyspace.BitWinSent}
	ks.Put(db, key, e, now)
	ks.Notify(db, keyspace.EventString, "set", key)
	return Result{Kind: KindInt, Int: Stored, CAS: e.CAS}
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

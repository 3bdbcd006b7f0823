package command

import (
	"bytes"
	"math"
	"strconv"
	"strings"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Apply executes one transaction at the batch's time. It is called from
// FSM.Apply on every node with the same arguments in the same order and so
// must stay deterministic: no clock, no randomness, no map-order effects on
// the result.
func Apply(ks *keyspace.Keyspace, h Header, tx Tx) TxResult {
	for i := range tx {
		if c := &tx[i]; c.Op == OpWatchCheck && watchState(ks, int(c.DB), string(c.Key), h.Now) != string(c.Args[0]) {
			return TxResult{Err: ErrWatchedKeyChanged}
		}
	}
	if overMemory(ks, h) {
		for i := range tx {
			if tx[i].Op.DenyOOM() {
				return TxResult{Err: ErrOOM}
			}
		}
	}
	res := make([]Result, len(tx))
	for i := range tx {
		if op := tx[i].Op; op == OpEval || op == OpEvalSha {
			res[i] = execScript(ks, h, &tx[i])
			continue
		}
		res[i] = exec(ks, h.Now, &tx[i])
	}
	return TxResult{Results: res}
}

// ErrWatchedKeyChanged aborts an EXEC whose WATCHed keys changed.
var ErrWatchedKeyChanged = ReplyError("EXECABORT watched key changed")

// watchState identifies a key's current version for WATCH: empty when it
// does not exist (or has expired), else its CAS, which every change of
// value gives anew, and its expiry, which EXPIRE and PERSIST change.
func watchState(ks *keyspace.Keyspace, db int, key string, now int64) string {
	if db >= ks.Databases() {
		return ""
	}
	e := ks.Get(db, key, now)
	if e == nil {
		return ""
	}
	return strconv.FormatUint(e.CAS, 10) + "/" + strconv.FormatInt(e.ExpireAt, 10)
}

// overMemory decides OOM from replicated facts only (accounted memory and
// the leader's limits), so every node refuses the same writes. With an
// eviction policy the leader evicts through the log; writes are refused
// only when the policy has nothing it may evict.
func overMemory(ks *keyspace.Keyspace, h Header) bool {
	if h.MaxMemory <= 0 || ks.Used() <= h.MaxMemory {
		return false
	}
	switch h.Policy {
	case AllKeysLRU:
		return false
	case VolatileLRU, VolatileTTL:
		for db := 0; db < ks.Databases(); db++ {
			if ks.VolatileLen(db) > 0 {
				return false
			}
		}
	}
	return true
}

// Read executes a read-only command at now.
func Read(ks *keyspace.Keyspace, now int64, c *Cmd) Result {
	if c.Op.IsWrite() || c.validate() != nil {
		return resErr(ErrUnknownCommand)
	}
	return exec(ks, now, c)
}

func exec(ks *keyspace.Keyspace, now int64, c *Cmd) Result {
	db := int(c.DB)
	if db >= ks.Databases() {
		return resErr(ErrBadDB)
	}
	key := string(c.Key)
	switch c.Op {
	case OpScriptLoad:
		sha := ScriptSHA(c.Args[0])
		if _, err := compileScript(sha, c.Args[0]); err != nil {
			return resErr(ReplyError("ERR Error compiling script (new function): " + oneLine(err.Error())))
		}
		ks.StoreScript(sha, c.Args[0])
		return resBulk([]byte(sha))
	case OpScriptFlush:
		ks.FlushScripts()
		protoCache.Clear()
		return resOK
	case OpScriptExists:
		arr := make([]Result, len(c.Args))
		for i, sha := range c.Args {
			_, ok := ks.Script(strings.ToLower(string(sha)))
			arr[i] = resBool(ok)
		}
		return Result{Kind: KindArray, Array: arr}
	case OpEval, OpEvalSha:
		return resErr(ErrUnknownCommand) // only Apply runs scripts
	case OpPublish:
		return resInt(ks.Publish(c.Args[0], c.Args[1]))
	case OpWatchCheck:
		return resOK // checked by Apply before anything ran
	case OpWatchState:
		arr := make([]Result, len(c.Args))
		for i, k := range c.Args {
			arr[i] = resBulk([]byte(watchState(ks, db, string(k), now)))
		}
		return Result{Kind: KindArray, Array: arr}
	case OpSet:
		return execSet(ks, db, key, now, c)
	case OpGetEx:
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
			if at <= now {
				ks.Delete(db, key)
				ks.Notify(db, keyspace.EventGeneric, "del", key)
			} else {
				ks.Put(db, key, e.WithExpiry(at), now)
				ks.Notify(db, keyspace.EventGeneric, "expire", key)
			}
		}
		return reply
	case OpGetDel:
		e := ks.Get(db, key, now)
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
	case OpMSet:
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
	case OpDel:
		n := int64(0)
		for _, k := range c.Args {
			live := ks.Get(db, string(k), now) != nil
			if ks.Delete(db, string(k)) && live {
				n++
				ks.Notify(db, keyspace.EventGeneric, "del", string(k))
			}
		}
		return resInt(n)
	case OpExpire:
		return execExpire(ks, db, key, now, c)
	case OpPersist:
		e := ks.Get(db, key, now)
		if e == nil || e.ExpireAt == 0 {
			return resInt(0)
		}
		ks.Put(db, key, e.WithExpiry(0), now)
		ks.Notify(db, keyspace.EventGeneric, "persist", key)
		return resInt(1)
	case OpAppend:
		e := ks.Get(db, key, now)
		var old []byte
		var exp int64
		if e != nil {
			if e.Type != keyspace.TypeString {
				return resErr(ErrWrongType)
			}
			old, exp = e.Str, e.ExpireAt
		}
		v := make([]byte, 0, len(old)+len(c.Args[0]))
		v = append(append(v, old...), c.Args[0]...)
		ks.Put(db, key, &keyspace.Entry{Type: keyspace.TypeString, Str: v, ExpireAt: exp}, now)
		ks.Notify(db, keyspace.EventString, "append", key)
		return resInt(int64(len(v)))
	case OpIncrBy:
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
	case OpRename:
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
	case OpHSet:
		h, exp, err := hashOf(ks, db, key, now)
		if err != nil {
			return resErr(err)
		}
		if c.Has(FlagNX) {
			if _, ok := h.Get(string(c.Args[0])); ok {
				return resInt(0)
			}
		}
		nh, added := h.With(cloneAll(c.Args))
		ks.Put(db, key, &keyspace.Entry{Type: keyspace.TypeHash, Hash: nh, ExpireAt: exp}, now)
		ks.Notify(db, keyspace.EventHash, "hset", key)
		return resInt(int64(added))
	case OpHDel:
		h, exp, err := hashOf(ks, db, key, now)
		if err != nil || h == nil {
			return errOrZero(err)
		}
		nh, n := h.Without(c.Args)
		putOrDelete(ks, db, key, now, nh.Len(), &keyspace.Entry{Type: keyspace.TypeHash, Hash: nh, ExpireAt: exp})
		if n > 0 {
			ks.Notify(db, keyspace.EventHash, "hdel", key)
			if nh.Len() == 0 {
				ks.Notify(db, keyspace.EventGeneric, "del", key)
			}
		}
		return resInt(int64(n))
	case OpHIncrBy:
		h, exp, err := hashOf(ks, db, key, now)
		if err != nil {
			return resErr(err)
		}
		var cur int64
		if v, ok := h.Get(string(c.Args[0])); ok {
			if cur, ok = ParseInt(v); !ok {
				return resErr(ErrHashNotInteger)
			}
		}
		if (c.N > 0 && cur > math.MaxInt64-c.N) || (c.N < 0 && cur < math.MinInt64-c.N) {
			return resErr(ErrOverflow)
		}
		cur += c.N
		nh, _ := h.With([][]byte{bytes.Clone(c.Args[0]), strconv.AppendInt(nil, cur, 10)})
		ks.Put(db, key, &keyspace.Entry{Type: keyspace.TypeHash, Hash: nh, ExpireAt: exp}, now)
		ks.Notify(db, keyspace.EventHash, "hincrby", key)
		return resInt(cur)
	case OpSAdd:
		s, exp, err := setOf(ks, db, key, now)
		if err != nil {
			return resErr(err)
		}
		ns, added := s.With(c.Args)
		if added > 0 {
			ks.Put(db, key, &keyspace.Entry{Type: keyspace.TypeSet, Set: ns, ExpireAt: exp}, now)
			ks.Notify(db, keyspace.EventSet, "sadd", key)
		}
		return resInt(int64(added))
	case OpSRem:
		s, exp, err := setOf(ks, db, key, now)
		if err != nil || s == nil {
			return errOrZero(err)
		}
		ns, n := s.Without(c.Args)
		if n > 0 {
			putOrDelete(ks, db, key, now, ns.Len(), &keyspace.Entry{Type: keyspace.TypeSet, Set: ns, ExpireAt: exp})
			ks.Notify(db, keyspace.EventSet, "srem", key)
			if ns.Len() == 0 {
				ks.Notify(db, keyspace.EventGeneric, "del", key)
			}
		}
		return resInt(int64(n))
	case OpMCStore:
		return execMCStore(ks, db, key, now, c)
	case OpMCIncr:
		return execMCIncr(ks, db, key, now, c)
	case OpTouch:
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
	case OpMCDelete:
		e := ks.Get(db, key, now)
		switch {
		case e == nil:
			return resInt(NotFound)
		case c.CAS != 0 && e.CAS != c.CAS:
			return resInt(Exists)
		}
		ks.Delete(db, key)
		ks.Notify(db, keyspace.EventGeneric, "del", key)
		return resInt(Stored)
	case OpFlushDB:
		ks.Flush(db)
		return resOK
	case OpFlushAll:
		for i := 0; i < ks.Databases(); i++ {
			ks.Flush(i)
		}
		return resOK
	case OpDelExpired, OpEvict:
		n := int64(0)
		for _, k := range c.Args {
			e := ks.Lookup(db, string(k))
			if e != nil && (c.Op == OpEvict || e.Expired(now)) {
				ks.Delete(db, string(k))
				n++
				if c.Op == OpEvict {
					ks.Notify(db, keyspace.EventEvicted, "evicted", string(k))
				} else {
					ks.Notify(db, keyspace.EventExpired, "expired", string(k))
				}
			}
		}
		return resInt(n)
	}
	return execRead(ks, db, key, now, c)
}

func execSet(ks *keyspace.Keyspace, db int, key string, now int64, c *Cmd) Result {
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

// execMCStore is memcached's set/add/replace/append/prepend/cas.
func execMCStore(ks *keyspace.Keyspace, db int, key string, now int64, c *Cmd) Result {
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
		v := make([]byte, 0, len(old.Str)+len(c.Args[0]))
		if c.Has(FlagAppend) {
			v = append(append(v, old.Str...), c.Args[0]...)
		} else {
			v = append(append(v, c.Args[0]...), old.Str...)
		}
		e.Str, e.Flags, e.ExpireAt = v, old.Flags, old.ExpireAt
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
// (memcached rewrites the item in place).
func execMCIncr(ks *keyspace.Keyspace, db int, key string, now int64, c *Cmd) Result {
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
		return Result{Kind: KindInt, Int: Stored, Bulk: ne.Str, CAS: ne.CAS}
	}
	if e.Type != keyspace.TypeString {
		return resErr(ErrNotNumeric)
	}
	v, ok := ParseUint(e.Str)
	if !ok {
		return resErr(ErrNotNumeric)
	}
	switch {
	case !c.Has(FlagDecr):
		v += c.Delta
	case c.Delta > v:
		v = 0
	default:
		v -= c.Delta
	}
	digits := strconv.AppendUint(nil, v, 10)
	stored := digits
	if len(digits) < len(e.Str) {
		stored = append(bytes.Clone(digits), bytes.Repeat([]byte{' '}, len(e.Str)-len(digits))...)
	}
	ne := &keyspace.Entry{Type: keyspace.TypeString, Str: stored, Flags: e.Flags, ExpireAt: e.ExpireAt}
	ks.Put(db, key, ne, now)
	return Result{Kind: KindInt, Int: Stored, Bulk: digits, CAS: ne.CAS}
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
	v, err := strconv.ParseUint(s[:end], 10, 64)
	return v, err == nil
}

func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

func execExpire(ks *keyspace.Keyspace, db int, key string, now int64, c *Cmd) Result {
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
	if at <= now {
		ks.Delete(db, key)
		ks.Notify(db, keyspace.EventGeneric, "del", key)
	} else {
		ks.Put(db, key, e.WithExpiry(at), now)
		ks.Notify(db, keyspace.EventGeneric, "expire", key)
	}
	return resInt(1)
}

// expireAt turns the command's expiry into an absolute Unix ms, refusing
// values that overflow as redis does.
func expireAt(c *Cmd, now int64) (int64, error) {
	if c.Has(FlagExpireAbs) {
		return c.N, nil
	}
	if c.N > 0 && now > math.MaxInt64-c.N {
		return 0, ErrInvalidExpire
	}
	return now + c.N, nil
}

func execRead(ks *keyspace.Keyspace, db int, key string, now int64, c *Cmd) Result {
	switch c.Op {
	case OpGet:
		e := ks.Get(db, key, now)
		if e == nil {
			return resNil
		}
		if e.Type != keyspace.TypeString {
			return resErr(ErrWrongType)
		}
		e.Touch(now)
		return resValue(e)
	case OpMGet:
		out := make([]Result, len(c.Args))
		for i, k := range c.Args {
			out[i] = resNil
			if e := ks.Get(db, string(k), now); e != nil && e.Type == keyspace.TypeString {
				e.Touch(now)
				out[i] = resValue(e)
			}
		}
		return Result{Kind: KindArray, Array: out}
	case OpExists:
		n := int64(0)
		for _, k := range c.Args {
			if ks.Get(db, string(k), now) != nil {
				n++
			}
		}
		return resInt(n)
	case OpTTL:
		e := ks.Get(db, key, now)
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
	case OpType:
		e := ks.Get(db, key, now)
		if e == nil {
			return resStatus("none")
		}
		return resStatus(e.Type.String())
	case OpStrLen:
		e := ks.Get(db, key, now)
		if e == nil {
			return resInt(0)
		}
		if e.Type != keyspace.TypeString {
			return resErr(ErrWrongType)
		}
		return resInt(int64(len(e.Str)))
	case OpKeys:
		var out []Result
		for cur := uint64(0); ; {
			cur = ks.Scan(db, cur, math.MaxInt, now, func(k string, _ *keyspace.Entry) {
				if Match(c.Args[0], []byte(k)) {
					out = append(out, resBulk([]byte(k)))
				}
			})
			if cur == 0 {
				break
			}
		}
		return Result{Kind: KindArray, Array: out}
	case OpScan:
		pattern, typ := c.Args[0], string(c.Args[1])
		count, _ := strconv.Atoi(string(c.Args[2]))
		keys := []Result{}
		next := ks.Scan(db, uint64(c.N), count, now, func(k string, e *keyspace.Entry) {
			if len(pattern) > 0 && !Match(pattern, []byte(k)) {
				return
			}
			if typ != "" && e.Type.String() != typ {
				return
			}
			keys = append(keys, resBulk([]byte(k)))
		})
		return Result{Kind: KindArray, Array: []Result{resBulk(strconv.AppendUint(nil, next, 10)), {Kind: KindArray, Array: keys}}}
	case OpDBSize:
		return resInt(int64(ks.Len(db)))
	case OpHGet, OpHExists, OpHStrLen:
		h, _, err := hashOf(ks, db, key, now)
		if err != nil {
			return resErr(err)
		}
		v, ok := h.Get(string(c.Args[0]))
		switch c.Op {
		case OpHExists:
			return resBool(ok)
		case OpHStrLen:
			return resInt(int64(len(v)))
		}
		if !ok {
			return resNil
		}
		return resBulk(v)
	case OpHMGet:
		h, _, err := hashOf(ks, db, key, now)
		if err != nil {
			return resErr(err)
		}
		out := make([]Result, len(c.Args))
		for i, f := range c.Args {
			out[i] = resNil
			if v, ok := h.Get(string(f)); ok {
				out[i] = resBulk(v)
			}
		}
		return Result{Kind: KindArray, Array: out}
	case OpHGetAll, OpHKeys, OpHVals, OpHLen:
		h, _, err := hashOf(ks, db, key, now)
		if err != nil {
			return resErr(err)
		}
		if c.Op == OpHLen {
			return resInt(int64(h.Len()))
		}
		out := []Result{}
		h.Each(func(f string, v []byte) bool {
			if c.Op != OpHVals {
				out = append(out, resBulk([]byte(f)))
			}
			if c.Op != OpHKeys {
				out = append(out, resBulk(v))
			}
			return true
		})
		return Result{Kind: KindArray, Array: out}
	case OpSMembers, OpSCard, OpSIsMember, OpSMIsMember:
		s, _, err := setOf(ks, db, key, now)
		if err != nil {
			return resErr(err)
		}
		switch c.Op {
		case OpSCard:
			return resInt(int64(s.Len()))
		case OpSIsMember:
			return resBool(s.Has(string(c.Args[0])))
		case OpSMIsMember:
			out := make([]Result, len(c.Args))
			for i, m := range c.Args {
				out[i] = resBool(s.Has(string(m)))
			}
			return Result{Kind: KindArray, Array: out}
		}
		out := []Result{}
		for _, m := range s.Members() {
			out = append(out, resBulk([]byte(m)))
		}
		return Result{Kind: KindArray, Array: out}
	}
	return resErr(ErrUnknownCommand)
}

func hashOf(ks *keyspace.Keyspace, db int, key string, now int64) (*keyspace.Hash, int64, error) {
	e := ks.Get(db, key, now)
	if e == nil {
		return nil, 0, nil
	}
	if e.Type != keyspace.TypeHash {
		return nil, 0, ErrWrongType
	}
	e.Touch(now)
	return e.Hash, e.ExpireAt, nil
}

func setOf(ks *keyspace.Keyspace, db int, key string, now int64) (*keyspace.Set, int64, error) {
	e := ks.Get(db, key, now)
	if e == nil {
		return nil, 0, nil
	}
	if e.Type != keyspace.TypeSet {
		return nil, 0, ErrWrongType
	}
	e.Touch(now)
	return e.Set, e.ExpireAt, nil
}

// putOrDelete stores e, or deletes the key when the collection became
// empty: redis never keeps an empty hash or set.
func putOrDelete(ks *keyspace.Keyspace, db int, key string, now int64, n int, e *keyspace.Entry) {
	if n == 0 {
		ks.Delete(db, key)
		return
	}
	ks.Put(db, key, e, now)
}

func errOrZero(err error) Result {
	if err != nil {
		return resErr(err)
	}
	return resInt(0)
}

func cloneAll(in [][]byte) [][]byte {
	out := make([][]byte, len(in))
	for i, b := range in {
		out[i] = bytes.Clone(b)
	}
	return out
}

// ParseInt parses a decimal int64 exactly as redis's string2ll: no spaces,
// no leading '+', no leading zeros, at most 20 bytes.
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	s := b
	if s[0] == '-' {
		s = s[1:]
	}
	if len(s) == 0 || s[0] < '1' || s[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}

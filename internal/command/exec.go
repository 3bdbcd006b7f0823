package command

import (
	"bytes"
	"math"
	"strconv"
	"sync"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Executor applies commands to a keyspace. It holds what executing needs
// beyond the keyspace and the command: the front end's parser for the
// commands scripts call, and the compiled-script cache. Each node has one
// (the composition root passes the call builder in); its Apply runs on the
// node's apply thread and its Read on client goroutines, under the
// keyspace's locks, which the caller holds.
type Executor struct {
	ops   *[opEnd]opRow // the op table (see table.go)
	calls CallBuilder   // nil: redis.call fails ("Unknown Redis command")

	// protos holds compiled scripts, sha → *lua.FunctionProto (immutable
	// once compiled). Like the replicated script cache it grows with every
	// distinct script until SCRIPT FLUSH.
	protos sync.Map
}

// NewExecutor returns an executor whose scripts parse the commands they
// call with calls (nil: scripts can call no command).
func NewExecutor(calls CallBuilder) *Executor {
	return &Executor{ops: ops, calls: calls}
}

// env is what an executor function sees besides the command: the executor,
// the keyspace, the batch's header (h.Now is the time the command runs at),
// and the command's database and key. It is passed by value: a pointer
// through the table's function values would move it to the heap on every
// command.
type env struct {
	x   *Executor
	ks  *keyspace.Keyspace
	h   Header
	db  int
	key string
}

// Apply executes one transaction at the batch's time. It is called from
// FSM.Apply on every node with the same arguments in the same order and so
// must stay deterministic: no clock, no randomness, no map-order effects on
// the result.
func (x *Executor) Apply(ks *keyspace.Keyspace, h Header, tx Tx) TxResult {
	for i := range tx {
		c := &tx[i]
		if row := x.row(c.Op); row != nil && row.guard != nil {
			if err := row.guard(env{x: x, ks: ks, h: h, db: int(c.DB), key: string(c.Key)}, c); err != nil {
				return TxResult{Err: err}
			}
		}
	}
	if overMemory(ks, h) {
		for i := range tx {
			if row := x.row(tx[i].Op); row != nil && row.flags&opDenyOOM != 0 {
				return TxResult{Err: ErrOOM}
			}
		}
	}
	res := make([]Result, len(tx))
	for i := range tx {
		if tx[i].Op == OpACLAs {
			h.scriptUser = &tx[i]
		}
		res[i] = x.exec(ks, h, &tx[i])
	}
	return TxResult{Results: res}
}

// Read executes a read-only command at now.
func (x *Executor) Read(ks *keyspace.Keyspace, now int64, c *Cmd) Result {
	if c.Op.IsWrite() || c.validate() != nil {
		return resErr(ErrUnknownCommand)
	}
	return x.exec(ks, Header{Now: now, local: true}, c)
}

// row is op's row in the table, nil for an unknown op.
func (x *Executor) row(op Op) *opRow {
	if op >= opEnd || x.ops[op].exec == nil {
		return nil
	}
	return &x.ops[op]
}

// exec runs one command through its row's function.
func (x *Executor) exec(ks *keyspace.Keyspace, h Header, c *Cmd) Result {
	db := int(c.DB)
	if db >= ks.Databases() {
		return resErr(ErrBadDB)
	}
	row := x.row(c.Op)
	if row == nil {
		return resErr(ErrUnknownCommand)
	}
	return row.exec(env{x: x, ks: ks, h: h, db: db, key: string(c.Key)}, c)
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

// expireOrDelete gives the command's key, whose entry is e, the expiry at,
// or deletes it if at is already past, as EXPIRE does.
func expireOrDelete(v env, e *keyspace.Entry, at int64) {
	if at <= v.h.Now {
		v.ks.Delete(v.db, v.key)
		v.ks.Notify(v.db, keyspace.EventGeneric, "del", v.key)
		return
	}
	v.ks.Put(v.db, v.key, e.WithExpiry(at), v.h.Now)
	v.ks.Notify(v.db, keyspace.EventGeneric, "expire", v.key)
}

// entryOf is the command's key's entry, touched for LRU: nil if the key
// does not exist, ErrWrongType if it holds another type than t.
func entryOf(v env, t keyspace.Type) (*keyspace.Entry, error) {
	e := v.ks.Get(v.db, v.key, v.h.Now)
	if e == nil {
		return nil, nil
	}
	if e.Type != t {
		return nil, ErrWrongType
	}
	e.Touch(v.h.Now)
	return e, nil
}

// entriesOf is the entries of keys (nil for a missing one), or
// ErrWrongType if one holds another type than t. Those found are touched
// for LRU.
func entriesOf(v env, keys [][]byte, t keyspace.Type) ([]*keyspace.Entry, error) {
	out := make([]*keyspace.Entry, len(keys))
	for i, k := range keys {
		e := v.ks.Get(v.db, string(k), v.h.Now)
		if e != nil && e.Type != t {
			return nil, ErrWrongType
		}
		if e != nil {
			e.Touch(v.h.Now)
		}
		out[i] = e
	}
	return out, nil
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

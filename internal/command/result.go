package command

import (
	"bytes"
	"errors"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Kind is the shape of a Result.
type Kind uint8

// Result kinds. Front ends encode them in their own protocol.
const (
	KindNil    Kind = iota // missing value
	KindOK                 // success with no value
	KindStatus             // short text such as a type name
	KindInt
	KindBulk
	KindArray
	KindError
)

// Form is the RESP3 type of a result that RESP2 writes as a bulk, an
// integer or an array: what a front end speaking RESP3 sends instead.
type Form uint8

// Forms. A script returns any of them (a table with a double, map, set,
// big_number or verbatim_string field, or a boolean after
// redis.setresp(3)); sorted sets' scores are doubles.
const (
	FormNone      Form = iota
	FormDouble         // a bulk holding a number written as "%.17g", "inf", "-inf"
	FormBigNumber      // a bulk holding a big number's digits
	FormVerbatim       // a bulk; Str is its three-letter format ("txt")
	FormBool           // an integer, 1 or 0
	FormMap            // an array of key, value, key, value…
	FormSet            // an array of members
)

// Result is one command's outcome.
type Result struct {
	Kind Kind
	// Pairs marks a flat array of field/value or member/score pairs that
	// a front end may frame as pairs (RESP3 nests HRANDFIELD
	// WITHVALUES's and ZRANGE WITHSCORES's pairs).
	Pairs bool
	// Form is the RESP3 type a bulk, an integer or an array stands for
	// (a sorted set's score is a FormDouble bulk); zero: none.
	Form  Form
	Int   int64
	Bulk  []byte
	Str   string
	Array []Result
	Err   error
	// memcached item fields of a value read or stored
	Flags uint32
	CAS   uint64
	// ExpireAt (Unix ms, 0 none) and Access (the access clock before
	// the command, Unix ms) of a memcached meta command's item.
	ExpireAt, Access int64
}

// Meta-get outcome bits, in Result.Int of OpMCGet and OpMCMetaGet.
const (
	MetaStale    = 1 << iota // X: the item is stale
	MetaWinSent              // Z: a win was sent before this command
	MetaWon                  // W: this command won the right to recache
	MetaFetched              // h: the item was fetched before (on the node that ran it)
	MetaNeedsLog             // OpMCGet: the mg may win or create; run it as OpMCMetaGet
	MetaCreated              // OpMCMetaGet: N created the item
)

// Outcomes of a memcached store, incr/decr, touch or delete, in Result.Int
// (Stored also means touched or deleted).
const (
	Stored    = 0
	NotStored = 1
	Exists    = 2
	NotFound  = 3
	Created   = 4 // an incr/decr with FlagCreate made the item
)

// TxResult is a transaction's outcome: Err set means nothing was executed.
type TxResult struct {
	Err     error
	Results []Result
}

// ErrNotNumeric is memcached's incr/decr of a value that is not a number.
var ErrNotNumeric = errors.New("cannot increment or decrement non-numeric value")

// Errors the executor returns. Front ends translate them to protocol text.
var (
	ErrWrongType      = errors.New("wrong type")
	ErrNoLeader       = errors.New("no leader available")
	ErrShutdown       = errors.New("node is shutting down")
	ErrRemoved        = errors.New("this node was removed from the cluster; it serves no more requests")
	ErrStorageFailed  = errors.New("this node's log could not be written (disk full or failing); it serves no requests until restarted")
	ErrNotInteger     = errors.New("value is not an integer or out of range")
	ErrHashNotInteger = errors.New("hash value is not an integer")
	ErrOverflow       = errors.New("increment or decrement would overflow")
	ErrNoSuchKey      = errors.New("no such key")
	ErrOOM            = errors.New("used memory over maxmemory")
	ErrInvalidExpire  = errors.New("invalid expire time")
	ErrValueTooLarge  = errors.New("value too large")
	ErrUnknownCommand = errors.New("unknown command")
	ErrBadDB          = errors.New("database index out of range")
)

var (
	resNil = Result{Kind: KindNil}
	resOK  = Result{Kind: KindOK}
)

func resInt(n int64) Result   { return Result{Kind: KindInt, Int: n} }
func resBulk(b []byte) Result { return Result{Kind: KindBulk, Bulk: b} }

// resValue is a string entry's value with its memcached fields. The value
// is copied: e.Str aliases the keyspace's arena, and a Result outlives the
// lock it was made under (a later write may reuse the slot).
func resValue(e *keyspace.Entry) Result {
	return Result{Kind: KindBulk, Bulk: bytes.Clone(e.Str), Flags: e.Flags, CAS: e.CAS}
}

// resCopy is a bulk reply of bytes read from the arena, copied (see
// resValue).
func resCopy(b []byte) Result   { return Result{Kind: KindBulk, Bulk: bytes.Clone(b)} }
func resErr(err error) Result   { return Result{Kind: KindError, Err: err} }
func resStatus(s string) Result { return Result{Kind: KindStatus, Str: s} }
func resBool(b bool) Result {
	if b {
		return resInt(1)
	}
	return resInt(0)
}

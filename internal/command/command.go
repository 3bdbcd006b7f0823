// Package command defines the typed commands that the front ends build from
// client requests, their binary encoding for the Raft log, and the
// deterministic executor that applies them to a keyspace.
//
// A write is proposed as the command itself and executed inside FSM.Apply on
// every node, so conditional results (NX, XX, RENAME of a missing key, OOM)
// are decided in log order alike everywhere. The executor never reads the
// clock: relative TTLs become absolute using the batch's leader timestamp.
//
// Layout: command.go has the op numbers (the log format), Cmd and the batch
// encoding; table.go the op table, one row per op, from which IsWrite,
// DenyOOM, the decoder's checks and the executor's dispatch derive; exec.go
// the Executor (Apply, Read) and what the families share; then one file per
// family holding its rows and their executor functions: strings.go,
// hashes.go, sets.go, lists.go, keys.go, transactions.go, pubsub.go,
// scripting.go (with the Lua sandbox), memcached.go, zsets.go and streams.go. A new command is an op number, a row
// and a function.
package command

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Op identifies a command. The numbers are part of the log format: append
// new ones, never renumber.
type Op uint8

// Commands. Front ends map client syntax (SETEX, SETNX, HMSET, UNLINK …) onto
// these, normalizing options into Cmd fields.
const (
	OpInvalid Op = iota
	// writes
	OpSet        // Key, Args[0]=value; Flags NX XX GET KeepTTL, ExpireRel/ExpireAbs with N
	OpGetEx      // Key; Flags Persist or ExpireRel/ExpireAbs with N
	OpGetDel     // Key
	OpMSet       // Args = k v k v …; Flags NX for MSETNX
	OpDel        // Args = keys
	OpExpire     // Key; N; Flags ExpireRel/ExpireAbs, NX XX GT LT
	OpPersist    // Key
	OpAppend     // Key, Args[0]
	OpIncrBy     // Key, N
	OpRename     // Key, Args[0]=new name; Flags NX for RENAMENX
	OpHSet       // Key, Args = f v f v …; Flags NX for HSETNX
	OpHDel       // Key, Args = fields
	OpHIncrBy    // Key, Args[0]=field, N
	OpSAdd       // Key, Args = members
	OpSRem       // Key, Args = members
	OpFlushDB    // DB
	OpFlushAll   //
	OpDelExpired // Args = keys; deletes those still expired at the batch time (leader's active expiry)
	OpEvict      // Args = keys; deletes them (leader's maxmemory eviction)
	opFirstRead  // marker: everything below is read-only
	OpGet        // Key
	OpMGet       // Args = keys
	OpExists     // Args = keys
	OpTTL        // Key; Flags Millis for PTTL, Abs for EXPIRETIME
	OpType       // Key
	OpStrLen     // Key
	OpKeys       // Args[0] = pattern
	OpScan       // N = cursor, Args[0] = pattern or empty, Args[1] = type or empty, Args[2] = count
	OpDBSize     //
	OpHGet       // Key, Args[0]
	OpHMGet      // Key, Args = fields
	OpHGetAll    // Key
	OpHKeys      // Key
	OpHVals      // Key
	OpHLen       // Key
	OpHExists    // Key, Args[0]
	OpHStrLen    // Key, Args[0]
	OpSMembers   // Key
	OpSIsMember  // Key, Args[0]
	OpSMIsMember // Key, Args = members
	OpSCard      // Key
	// memcached (appended: the numbers are part of the log format)
	OpMCStore  // Key, Args[0]=value, ClientFlags, N expiry; Flags NX (add) XX (replace) Append Prepend; CAS ≠ 0 compares
	OpMCIncr   // Key, Delta; Flags Decr, Create (with Initial and expiry N)
	OpTouch    // Key; N expiry or Persist
	OpMCDelete // Key; CAS ≠ 0 compares
	// scripting (appended)
	OpEval         // Args[0]=body, then N keys, then the script's arguments
	OpEvalSha      // Args[0]=SHA1 hex, then as OpEval
	OpScriptLoad   // Args[0]=body
	OpScriptFlush  //
	OpScriptExists // Args = SHA1s (read-only)
	OpPublish      // Args[0]=channel, Args[1]=message; every node delivers to its subscribers
	OpWatchState   // Args = keys (read-only): each key's state for WATCH
	OpWatchCheck   // Key, Args[0]=state from OpWatchState; leads an EXEC: the transaction aborts if the key changed
	// strings, bitmaps, keys, hashes and sets of issue 13 (appended).
	// Numbers in Args are decimal; the executor parses them again and
	// refuses what does not parse, as a log entry is not trusted.
	OpGetRange     // Key, Args[0]=start, Args[1]=end (read)
	OpSetRange     // Key, N=offset, Args[0]=value, Args[1]=largest string allowed
	OpIncrByFloat  // Key, Args[0]=increment
	OpLCS          // Key, Args[0]=other key, then LCS's options as given (read)
	OpSetBit       // Key, N=bit offset, Args[0]="0" or "1"
	OpGetBit       // Key, N=bit offset (read)
	OpBitCount     // Key, Args none or [start, end, "bit"|"byte"] (read)
	OpBitPos       // Key, Args[0]=bit, then start, end ("" when not given), "bit"|"byte" (read)
	OpBitOp        // Key=destination, Args[0]=and|or|xor|not, Args[1:]=source keys
	OpBitField     // Key, Args=4 per operation: get|set|incrby|overflow, type, bit offset, value
	OpBitFieldRO   // as OpBitField, GETs only (read)
	OpCopy         // Key, N=destination db, Args[0]=destination, Args[1]="replace" or ""
	OpMove         // Key, N=destination db
	OpRandomKey    // (read)
	OpTouchKeys    // Args = keys (read): redis's TOUCH, not memcached's touch
	OpObject       // Key, Args[0]=encoding|refcount|idletime|freq|memory-usage, Args[1]="noshare" or "" (read)
	OpHScan        // Key, N=cursor, Args[0]=pattern or empty, Args[1]=count (read)
	OpHRandField   // Key, Args[0]=count or empty, Args[1]="withvalues" or empty (read)
	OpHIncrByFloat // Key, Args[0]=field, Args[1]=increment
	OpSScan        // Key, N=cursor, Args[0]=pattern or empty, Args[1]=count (read)
	OpSRandMember  // Key, Args[0]=count or empty (read)
	OpSPop         // Key, Args[0]=count or empty
	OpSMove        // Key=source, Args[0]=destination, Args[1]=member
	OpSUnion       // Args = keys (read)
	OpSInter       // Args = keys (read)
	OpSDiff        // Args = keys (read)
	OpSUnionStore  // Key=destination, Args = keys
	OpSInterStore  // Key=destination, Args = keys
	OpSDiffStore   // Key=destination, Args = keys
	OpSInterCard   // N=limit (0: none), Args = keys (read)
	// memcached meta protocol (appended)
	OpMCGet // Key (read-only): value, flags, CAS, expiry and last access of a string; Flags NoBump
	// lists (appended)
	OpLPush   // Key, Args = elements; Flags Left (LPUSH, else RPUSH), XX (LPUSHX, RPUSHX)
	OpLPop    // Key; Flags Left (LPOP, else RPOP), Count with N (a count was given: the reply is an array)
	OpLMPop   // Args = keys; N = count; Flags Left; Serve: the last argument is a blocked client's token
	OpLMove   // Key = source, Args[0] = destination; Flags Left (pop the head), DstLeft (push at the head); Serve as OpLMPop
	OpLSet    // Key, Args = index (as sent: redis checks the key first), element
	OpLInsert // Key, Args[0] = pivot, Args[1] = element; Flags Left (BEFORE)
	OpLRem    // Key, N = count, Args[0] = element
	OpLTrim   // Key, Args = start, stop (decimal)
	OpLLen    // Key
	OpLRange  // Key, Args = start, stop (decimal)
	OpLIndex  // Key, Args[0] = index (as sent, as OpLSet)
	OpLPos    // Key, Args = element, rank, count, maxlen (decimal; count -1: no COUNT)
	// scripting of issue 13 (appended)
	OpEvalRO       // as OpEval; the script may not write (read)
	OpEvalShaRO    // as OpEvalSha; the script may not write (read)
	OpFunction     // Args[0]=load|delete|flush|restore, then its arguments (see functions.go)
	OpFunctionRead // Args[0]=list|dump|stats, then its arguments (read)
	OpFCall        // Args[0]=function, then N keys, then the arguments
	OpFCallRO      // as OpFCall; the function must be no-writes (read)
	// sorted sets (appended). Scores and ranges travel as the client sent
	// them; the executor parses them again (see zsets.go).
	OpZAdd        // Key, Args = score member …; Flags NX XX GT LT CH Incr (ZINCRBY is ZADD INCR)
	OpZRem        // Key, Args = members
	OpZRemRange   // Key, Args = min, max; Flags ByScore or ByLex, else ranks
	OpZPop        // Key; Flags Left (ZPOPMIN, else ZPOPMAX), Count with N
	OpZScore      // Key, Args[0] = member
	OpZMScore     // Key, Args = members
	OpZCard       // Key
	OpZCount      // Key, Args = min, max; Flags ByLex (ZLEXCOUNT), else scores
	OpZRange      // Key, Args = min, max (REV's already swapped), offset, count (decimal, -1: all); Flags ByScore ByLex Rev WithScores
	OpZRank       // Key, Args[0] = member; Flags Rev
	OpZRangeStore // Key = destination, Args = source, then as OpZRange; Flags as OpZRange but WithScores
	OpZUnion      // N = numkeys, Args = keys, then the options as sent (parsed after the keys' types are checked, as redis does)
	OpZInter      // as OpZUnion
	OpZDiff       // as OpZUnion
	OpZUnionStore // Key = destination, then as OpZUnion
	OpZInterStore // as OpZUnionStore
	OpZDiffStore  // as OpZUnionStore
	OpZInterCard  // as OpZUnion (the option is LIMIT)
	OpZRandMember // Key, Args[0] = count or empty, Args[1] = "withscores" or empty (read)
	OpZScan       // Key, N = cursor, Args = options as sent (read)
	OpZMPop       // Args = keys; N = count; Flags Left (MIN)
	// memcached meta protocol's stale-while-revalidate (appended; see
	// memcached.go). Exptimes travel as memcached's decimal exptime.
	OpMCMetaGet    // Key, Args[0] = N's exptime or "" (no N), Args[1] = R's seconds or "", Args[2] = the order of T N R as given; Flags NoBump, SetTTL (T) with N expiry (none: T0)
	OpMCInvalidate // Key; CAS ≠ 0 compares; Flags SetTTL (T) with N expiry: md's I
	OpMCStoreStale // as OpMCStore (set, CAS ≠ 0): ms's I, which stores a lower CAS as a stale value
	// ACL users (appended; see acl.go)
	OpACLSetUser // Args[0] = user name, Args[1:1+N] = rules that seed a new user, then the rules (passwords hashed)
	OpACLDelUser // Args = user names
	OpACLAs      // Args[0] = user name, Args[1:] = its rules: the scripts after it in the transaction run as that user (redis.call is checked)
	// keys (appended)
	OpDump      // Key (read): redis's DUMP payload of the value
	OpRestore   // Key, Args[0] = payload (verified), or Args = "", error when the front end refused it (redis checks the key first); N = TTL ms (0: none), Flags ExpireRel/ExpireAbs, XX (REPLACE)
	OpSort      // Key = the key sorted, Args = that key, BY pattern, LIMIT offset, count (decimal), GET patterns…; Flags Rev (DESC), ByLex (ALPHA), ByScore (a BY was given) (read)
	OpSortStore // Key = STORE's destination, then as OpSort
	OpSwapDB    // DB, N = the two databases
	// streams (appended). Arguments travel as the client sent them (after
	// the key); the executor parses them in redis's order (see streams.go).
	OpXAdd   // Key, Args = XADD's arguments after the key; the ID of "*" is the batch time's
	OpXTrim  // Key, Args = XTRIM's arguments after the key
	OpXDel   // Key, Args = IDs
	OpXSetID // Key, Args = XSETID's arguments after the key
	OpXLen   // Key (read)
	OpXRange // Key, Args = XRANGE's arguments after the key (XREVRANGE's: end, start); Flags Rev (read)
	OpXRead  // Args = XREAD's arguments; Flags XLast (read)
	OpXInfo  // Key, Args[0] = the subcommand as sent (help: no key), then its arguments (read)
	opEnd
)

// Ops is how many op codes this build knows: it executes 1 … Ops()-1.
// Nodes tell each other this number (the log format's level), and a
// leader proposes an op only when every member can apply it.
func Ops() int { return int(opEnd) }

// LegacyOps is Ops of the releases that did not tell it (up to
// 2026-11-27): a member that says nothing applies ops below it.
const LegacyOps = 54

// ErrUnknownOp: a log entry holds an op this build does not know — it was
// written by a newer hatcheck.
var ErrUnknownOp = errors.New("unknown op (written by a newer hatcheck?)")

// MaxOp is the highest op code in tx.
func (tx Tx) MaxOp() Op {
	var m Op
	for i := range tx {
		m = max(m, tx[i].Op)
	}
	return m
}

// Option bits in Cmd.Flags.
const (
	FlagNX uint32 = 1 << iota
	FlagXX
	FlagGT
	FlagLT
	FlagGet
	FlagKeepTTL
	FlagExpireRel // N is a duration in ms, made absolute with the batch time
	FlagExpireAbs // N is a Unix time in ms
	FlagPersist
	FlagMillis
	FlagAbs
	FlagAppend  // memcached append
	FlagPrepend // memcached prepend
	FlagDecr    // memcached decr
	FlagCreate  // memcached binary incr/decr: create with Initial when missing
	FlagSetTTL  // memcached ma's T: OpMCIncr gives an existing item the expiry too
	FlagNoBump  // memcached mg's u: OpMCGet leaves the access clock as it is
	FlagLeft    // lists: the head (LPUSH, LPOP, LMOVE's source, LINSERT BEFORE)
	FlagDstLeft // LMOVE: push at the destination's head
	FlagCount   // LPOP, RPOP: a count was given
	FlagServe   // OpLMPop, OpLMove for a blocked client: the last argument is its token (see keyspace.PopWatcher)

	// sorted sets (appended)
	FlagCH         // ZADD: reply with the number changed, not added
	FlagIncr       // ZADD INCR, ZINCRBY
	FlagByScore    // sorted sets: the range is of scores
	FlagByLex      // sorted sets: the range is of members (lex)
	FlagRev        // sorted sets: in descending order
	FlagWithScores // sorted sets: reply scores with the members

	// FlagWriteCommand marks a read built from a command redis counts as
	// a write (SORT without STORE) when a script calls it: a read-only
	// script refuses it, as redis does. Script calls are built on every
	// node and never logged, so the bit is no part of the log format.
	FlagWriteCommand uint32 = 1 << 31
	// streams (appended)
	FlagXLast // OpXRead: reply the IDs it would read after, "$" resolved (XREAD BLOCK's start)
)

// Cmd is one command with its options normalized.
type Cmd struct {
	Op    Op
	DB    uint8
	Flags uint32
	N     int64
	Key   []byte
	Args  [][]byte
	// memcached item fields
	ClientFlags uint32 // opaque flags stored with the item
	CAS         uint64 // compare-and-swap value; 0 = no compare
	Delta       uint64 // incr/decr amount
	Initial     uint64 // incr/decr value when created
}

// Has reports whether all bits in f are set.
func (c *Cmd) Has(f uint32) bool { return c.Flags&f == f }

// Tx is a list of commands applied atomically (MULTI/EXEC, or one command).
type Tx []Cmd

// Policy is the maxmemory policy. The numbers are part of the log format.
type Policy uint8

// Policies as in redis.
const (
	NoEviction Policy = iota
	VolatileTTL
	VolatileLRU
	AllKeysLRU
)

var policyNames = []string{"noeviction", "volatile-ttl", "volatile-lru", "allkeys-lru"}

func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("policy(%d)", p)
}

// ParsePolicy parses a maxmemory-policy name.
func ParsePolicy(s string) (Policy, bool) {
	for i, n := range policyNames {
		if n == s {
			return Policy(i), true
		}
	}
	return 0, false
}

// Header is what the leader stamps on a batch: its clock and the memory
// limits in force, so that every node decides OOM and expiry the same way.
type Header struct {
	// Index is the log index of the entry, set by the FSM when applying
	// (not encoded): memcached CAS values are derived from it.
	Index     uint64
	Now       int64 // Unix ms
	MaxMemory int64 // bytes; 0 = unlimited
	Policy    Policy
	// local is set by Read (not encoded): the command runs on this node
	// alone, so its random choices may use this node's random source.
	local bool
	// scriptUser is set by an OpACLAs of the transaction (not encoded):
	// the user the scripts after it run as (its Args: name, then rules).
	scriptUser *Cmd
}

const batchVersion = 1

// ErrBadEncoding means log data could not be decoded.
var ErrBadEncoding = errors.New("command: bad encoding")

// EncodeBatch appends the encoding of a batch of transactions to dst.
func EncodeBatch(dst []byte, h Header, txs []Tx) []byte {
	dst = append(dst, batchVersion)
	dst = binary.AppendVarint(dst, h.Now)
	dst = binary.AppendVarint(dst, h.MaxMemory)
	dst = append(dst, byte(h.Policy))
	dst = binary.AppendUvarint(dst, uint64(len(txs)))
	for _, tx := range txs {
		dst = binary.AppendUvarint(dst, uint64(len(tx)))
		for i := range tx {
			dst = appendCmd(dst, &tx[i])
		}
	}
	return dst
}

func appendCmd(dst []byte, c *Cmd) []byte {
	dst = append(dst, byte(c.Op), c.DB)
	dst = binary.AppendUvarint(dst, uint64(c.Flags))
	dst = binary.AppendVarint(dst, c.N)
	dst = binary.AppendUvarint(dst, uint64(len(c.Key)))
	dst = append(dst, c.Key...)
	dst = binary.AppendUvarint(dst, uint64(len(c.Args)))
	for _, a := range c.Args {
		dst = binary.AppendUvarint(dst, uint64(len(a)))
		dst = append(dst, a...)
	}
	if c.Op.hasItemFields() {
		dst = binary.AppendUvarint(dst, uint64(c.ClientFlags))
		dst = binary.AppendUvarint(dst, c.CAS)
		dst = binary.AppendUvarint(dst, c.Delta)
		dst = binary.AppendUvarint(dst, c.Initial)
	}
	return dst
}

// DecodeBatch decodes a batch. Byte slices in the commands point into data.
func DecodeBatch(data []byte) (Header, []Tx, error) {
	d := decoder{b: data}
	var h Header
	if v := d.byte(); v != batchVersion {
		return h, nil, fmt.Errorf("%w: batch version %d", ErrBadEncoding, v)
	}
	h.Now = d.varint()
	h.Index = 0
	h.MaxMemory = d.varint()
	h.Policy = Policy(d.byte())
	ntx := d.count()
	txs := make([]Tx, 0, ntx)
	for i := 0; i < ntx && d.err == nil; i++ {
		n := d.count()
		tx := make(Tx, n)
		for j := 0; j < n && d.err == nil; j++ {
			c := &tx[j]
			c.Op = Op(d.byte())
			c.DB = d.byte()
			c.Flags = uint32(d.uvarint())
			c.N = d.varint()
			c.Key = d.bytes()
			na := d.count()
			if na > 0 {
				c.Args = make([][]byte, na)
				for k := range c.Args {
					c.Args[k] = d.bytes()
				}
			}
			if c.Op.hasItemFields() {
				c.ClientFlags = uint32(d.uvarint())
				c.CAS = d.uvarint()
				c.Delta = d.uvarint()
				c.Initial = d.uvarint()
			}
			if d.err == nil {
				d.err = c.validate()
			}
		}
		txs = append(txs, tx)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return h, nil, fmt.Errorf("%w: %w", ErrBadEncoding, d.err)
	}
	return h, txs, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = errors.New("truncated " + what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length that must fit in the remaining data (each counted
// item takes at least one byte), so corrupt input cannot cause a huge
// allocation.
func (d *decoder) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.fail("count")
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("bytes")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

package command

import (
	"bytes"
	"math"
	"math/bits"
	"strconv"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Bitmaps: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and
// BITFIELD_RO, on string values, bit 0 being the most significant bit of
// the first byte, as in redis.
var bitmapOps = []opRow{
	{op: OpSetBit, name: "setbit", flags: opWrite | opDenyOOM | opItem, args: argShape{1, 1}, exec: execSetBit},
	{op: OpGetBit, name: "getbit", flags: opItem, exec: execGetBit},
	{op: OpBitCount, name: "bitcount", flags: opItem, check: checkBitCount, exec: execBitCount},
	{op: OpBitPos, name: "bitpos", flags: opItem, args: argShape{1, 1}, exec: execBitPos},
	{op: OpBitOp, name: "bitop", flags: opWrite | opDenyOOM | opItem, args: argShape{2, 1}, exec: execBitOp},
	{op: OpBitField, name: "bitfield", flags: opWrite | opDenyOOM | opItem, args: argShape{0, 4}, exec: execBitField},
	{op: OpBitFieldRO, name: "bitfield_ro", flags: opItem, args: argShape{0, 4}, exec: execBitField},
}

// maxBitOffset bounds a bit offset the executor accepts from the log:
// redis's 512 MB string limit, in bits. The front end refuses larger ones
// (by proto-max-bulk-len) before they are proposed.
const maxBitOffset = 512<<20*8 - 1

// Errors of the bitmap commands, in redis-server's words.
var (
	ErrBitOffset       = ReplyError("ERR bit offset is not an integer or out of range")
	ErrBitValue        = ReplyError("ERR bit is not an integer or out of range")
	errBitOpNotOneKey  = ReplyError("ERR BITOP NOT must be called with a single source key.")
	errBitFieldGetOnly = ReplyError("ERR BITFIELD_RO only supports the GET subcommand")
)

func bitAt(b []byte, i int64) int {
	if i>>3 >= int64(len(b)) {
		return 0
	}
	return int(b[i>>3]>>(7-uint(i&7))) & 1
}

// growTo is s extended with zero bytes to n bytes (a copy: s aliases the
// arena), and whether it grew.
func growTo(s []byte, n int64) ([]byte, bool) {
	buf := make([]byte, max(int64(len(s)), n))
	copy(buf, s)
	return buf, n > int64(len(s))
}

func execSetBit(v env, c *Cmd) Result {
	if c.N < 0 || c.N > maxBitOffset {
		return resErr(ErrBitOffset)
	}
	on := string(c.Args[0]) == "1"
	if !on && string(c.Args[0]) != "0" {
		return resErr(ErrBitValue)
	}
	old, exp, err := stringForWrite(v)
	if err != nil {
		return resErr(err)
	}
	prev := bitAt(old, c.N)
	buf, grew := growTo(old, c.N>>3+1) // a missing key grows from nothing
	if !grew && (prev == 1) == on {
		return resInt(int64(prev)) // nothing changes: no write, no event
	}
	mask := byte(1) << (7 - uint(c.N&7))
	if on {
		buf[c.N>>3] |= mask
	} else {
		buf[c.N>>3] &^= mask
	}
	v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeString, Str: buf, ExpireAt: exp}, v.h.Now)
	v.ks.Notify(v.db, keyspace.EventString, "setbit", v.key)
	return resInt(int64(prev))
}

func execGetBit(v env, c *Cmd) Result {
	if c.N < 0 || c.N > maxBitOffset {
		return resErr(ErrBitOffset)
	}
	e, err := stringOf(v)
	if err != nil || e == nil {
		return errOrZero(err)
	}
	return resInt(int64(bitAt(e.Str, c.N)))
}

// checkBitCount refuses a range without its unit (the front end always
// sends all three).
func checkBitCount(c *Cmd) error {
	if len(c.Args) != 0 && len(c.Args) != 3 {
		return errSyntax
	}
	return nil
}

// bitRange turns a BITCOUNT or BITPOS range (inclusive, negative from the
// end, in bytes or in bits) over a string of n bytes into an inclusive range
// of bits; ok is false when it is empty. endGiven false means "to the end".
func bitRange(start, end int64, inBits bool, n int64) (lo, hi int64, ok bool) {
	total := n
	if inBits {
		total = n * 8
	}
	if start < 0 {
		start = max(total+start, 0)
	}
	if end < 0 {
		end = max(total+end, 0)
	}
	end = min(end, total-1)
	if start > end {
		return 0, 0, false
	}
	if inBits {
		return start, end, true
	}
	return start * 8, end*8 + 7, true
}

// parseRange parses a start, an end and a unit ("bit", "byte", or empty
// for bytes).
func parseRange(start, end, unit []byte) (s, e int64, inBits bool, err error) {
	var ok1, ok2 bool
	s, ok1 = ParseInt(start)
	e, ok2 = ParseInt(end)
	if !ok1 || !ok2 {
		return 0, 0, false, ErrNotInteger
	}
	switch string(bytes.ToLower(unit)) {
	case "", "byte":
	case "bit":
		inBits = true
	default:
		return 0, 0, false, errSyntax
	}
	return s, e, inBits, nil
}

func execBitCount(v env, c *Cmd) Result {
	start, end, inBits := int64(0), int64(-1), false
	if len(c.Args) == 3 {
		var err error
		if start, end, inBits, err = parseRange(c.Args[0], c.Args[1], c.Args[2]); err != nil {
			return resErr(err)
		}
	}
	e, err := stringOf(v)
	if err != nil || e == nil {
		return errOrZero(err)
	}
	lo, hi, ok := bitRange(start, end, inBits, int64(len(e.Str)))
	if !ok {
		return resInt(0)
	}
	return resInt(countBits(e.Str, lo, hi))
}

// countBits counts the set bits from bit lo to bit hi, inclusive.
func countBits(s []byte, lo, hi int64) int64 {
	n := int64(0)
	for i := lo; i <= hi; {
		if i&7 == 0 && i+7 <= hi {
			n += int64(bits.OnesCount8(s[i>>3]))
			i += 8
			continue
		}
		n += int64(bitAt(s, i))
		i++
	}
	return n
}

// execBitPos is BITPOS. Args[0] is the bit, then up to three arguments as
// given (start, end, unit), parsed only once the key is found to be a
// string, as redis does.
func execBitPos(v env, c *Cmd) Result {
	want := 0
	switch string(c.Args[0]) {
	case "1":
		want = 1
	case "0":
	default:
		return resErr(ErrBitValue)
	}
	e, err := stringOf(v)
	if err != nil {
		return resErr(err)
	}
	if e == nil {
		// A missing key is an infinite run of zeros.
		return resInt(int64(-want))
	}
	opt := c.Args[1:]
	if len(opt) > 3 {
		return resErr(errSyntax)
	}
	start, end, inBits, endGiven := int64(0), int64(-1), false, len(opt) >= 2
	if len(opt) > 0 {
		var ok bool
		if start, ok = ParseInt(opt[0]); !ok {
			return resErr(ErrNotInteger)
		}
	}
	if endGiven {
		var unit []byte
		if len(opt) == 3 {
			unit = opt[2]
		}
		var err error
		if start, end, inBits, err = parseRange(opt[0], opt[1], unit); err != nil {
			return resErr(err)
		}
	}
	lo, hi, ok := bitRange(start, end, inBits, int64(len(e.Str)))
	if !ok {
		return resInt(-1)
	}
	skip := byte(0)
	if want == 0 {
		skip = 0xff
	}
	for i := lo; i <= hi; {
		if i&7 == 0 && i+7 <= hi && e.Str[i>>3] == skip {
			i += 8
			continue
		}
		if bitAt(e.Str, i) == want {
			return resInt(i)
		}
		i++
	}
	// Looking for a clear bit with no end given, the string continues with
	// zeros after its last byte.
	if want == 1 || endGiven {
		return resInt(-1)
	}
	return resInt((hi/8 + 1) * 8)
}

func execBitOp(v env, c *Cmd) Result {
	op := string(bytes.ToLower(c.Args[0]))
	srcKeys := c.Args[1:]
	switch op {
	case "and", "or", "xor":
	case "not":
		if len(srcKeys) != 1 {
			return resErr(errBitOpNotOneKey)
		}
	default:
		return resErr(errSyntax)
	}
	entries, err := entriesOf(v, srcKeys, keyspace.TypeString)
	if err != nil {
		return resErr(err)
	}
	srcs := make([][]byte, len(entries))
	n := 0
	for i, e := range entries {
		if e != nil {
			srcs[i] = e.Str
			n = max(n, len(e.Str))
		}
	}
	if n == 0 {
		if v.ks.Get(v.db, v.key, v.h.Now) != nil {
			v.ks.Delete(v.db, v.key)
			v.ks.Notify(v.db, keyspace.EventGeneric, "del", v.key)
		}
		return resInt(0)
	}
	out := make([]byte, n)
	at := func(s []byte, i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	for i := range out {
		b := at(srcs[0], i)
		for _, s := range srcs[1:] {
			switch op {
			case "and":
				b &= at(s, i)
			case "or":
				b |= at(s, i)
			case "xor":
				b ^= at(s, i)
			}
		}
		if op == "not" {
			b = ^b
		}
		out[i] = b
	}
	v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeString, Str: out}, v.h.Now)
	v.ks.Notify(v.db, keyspace.EventString, "set", v.key)
	return resInt(int64(n))
}

// bitFieldOp is one BITFIELD operation as the front end normalized it.
type bitFieldOp struct {
	kind   string // get, set, incrby, overflow
	signed bool
	width  uint
	offset int64
	value  int64  // for set and incrby
	mode   string // for overflow: wrap, sat, fail
}

// parseBitFieldOps parses the normalized operations of an OpBitField;
// false means a malformed entry.
func parseBitFieldOps(args [][]byte) ([]bitFieldOp, bool) {
	ops := make([]bitFieldOp, 0, len(args)/4)
	for i := 0; i+3 < len(args); i += 4 {
		op := bitFieldOp{kind: string(args[i])}
		if op.kind == "overflow" {
			op.mode = string(args[i+3])
			if op.mode != "wrap" && op.mode != "sat" && op.mode != "fail" {
				return nil, false
			}
			ops = append(ops, op)
			continue
		}
		t := args[i+1]
		w, err := strconv.ParseUint(string(t[min(1, len(t)):]), 10, 8)
		if len(t) < 2 || (t[0] != 'i' && t[0] != 'u') || err != nil || w < 1 || w > 64 || (t[0] == 'u' && w > 63) {
			return nil, false
		}
		op.signed, op.width = t[0] == 'i', uint(w)
		off, ok := ParseInt(args[i+2])
		if !ok || off < 0 || off > maxBitOffset {
			return nil, false
		}
		op.offset = off
		switch op.kind {
		case "get":
		case "set", "incrby":
			if op.value, ok = ParseInt(args[i+3]); !ok {
				return nil, false
			}
		default:
			return nil, false
		}
		ops = append(ops, op)
	}
	return ops, true
}

// getField reads width bits at offset (bits past the end read as zero).
func getField(s []byte, offset int64, width uint) uint64 {
	var x uint64
	for i := int64(0); i < int64(width); i++ {
		x = x<<1 | uint64(bitAt(s, offset+i))
	}
	return x
}

func setField(s []byte, offset int64, width uint, x uint64) {
	for i := int64(0); i < int64(width); i++ {
		bit := x >> (uint64(width) - 1 - uint64(i)) & 1
		p := offset + i
		mask := byte(1) << (7 - uint(p&7))
		if bit == 1 {
			s[p>>3] |= mask
		} else {
			s[p>>3] &^= mask
		}
	}
}

// signExtend reads x as a signed number of width bits.
func signExtend(x uint64, width uint) int64 {
	if width < 64 && x&(1<<(width-1)) != 0 {
		x |= math.MaxUint64 << width
	}
	return int64(x)
}

// overflowSigned is redis's checkSignedBitfieldOverflow: whether value +
// incr leaves the range of a signed field of width bits, and the value to
// store instead under WRAP or SAT.
func overflowSigned(value, incr int64, width uint, mode string) (bool, int64) {
	maxV := int64(math.MaxInt64)
	if width < 64 {
		maxV = 1<<(width-1) - 1
	}
	minV := -maxV - 1
	maxIncr := int64(uint64(maxV) - uint64(value))
	minIncr := minV - value
	var limit int64
	switch {
	case value > maxV || (width != 64 && incr > maxIncr) || (value >= 0 && incr > 0 && incr > maxIncr):
		limit = maxV
	case value < minV || (width != 64 && incr < minIncr) || (value < 0 && incr < 0 && incr < minIncr):
		limit = minV
	default:
		return false, 0
	}
	if mode == "wrap" {
		return true, signExtend(uint64(value)+uint64(incr), width)
	}
	return true, limit
}

// overflowUnsigned is redis's checkUnsignedBitfieldOverflow.
func overflowUnsigned(value uint64, incr int64, width uint, mode string) (bool, uint64) {
	maxV := uint64(math.MaxUint64)
	if width < 64 {
		maxV = 1<<width - 1
	}
	maxIncr := int64(maxV - value)
	minIncr := -int64(value)
	var limit uint64
	switch {
	case value > maxV || (incr > 0 && incr > maxIncr):
		limit = maxV
	case incr < 0 && incr < minIncr:
		limit = 0
	default:
		return false, 0
	}
	if mode == "wrap" {
		return true, (value + uint64(incr)) & maxV
	}
	return true, limit
}

func execBitField(v env, c *Cmd) Result {
	ops, ok := parseBitFieldOps(c.Args)
	if !ok {
		return resErr(errSyntax)
	}
	var top int64 = -1 // the last bit a write reaches
	for _, op := range ops {
		if op.kind == "set" || op.kind == "incrby" {
			top = max(top, op.offset+int64(op.width)-1)
		}
	}
	if top >= 0 && c.Op == OpBitFieldRO {
		return resErr(errBitFieldGetOnly)
	}
	s, exp, err := stringForWrite(v)
	if err != nil {
		return resErr(err)
	}
	// A write makes room for its farthest bit first, whether or not it then
	// fails on overflow, creating the key if need be, as redis does.
	grew := false
	if top >= 0 {
		s, grew = growTo(s, top>>3+1)
	}
	out := make([]Result, 0, len(ops))
	changes := 0
	mode := "wrap"
	for _, op := range ops {
		if op.kind == "overflow" {
			mode = op.mode
			continue
		}
		raw := getField(s, op.offset, op.width)
		if op.kind == "get" {
			if op.signed {
				out = append(out, resInt(signExtend(raw, op.width)))
			} else {
				out = append(out, resInt(int64(raw)))
			}
			continue
		}
		var reply int64
		var store uint64
		var over bool
		if op.signed {
			old := signExtend(raw, op.width)
			var nv, limit int64
			if op.kind == "incrby" {
				over, limit = overflowSigned(old, op.value, op.width, mode)
				nv = old + op.value
				if over {
					nv = limit
				}
				reply = nv
			} else {
				over, limit = overflowSigned(op.value, 0, op.width, mode)
				nv = op.value
				if over {
					nv = limit
				}
				reply = old
			}
			store = uint64(nv)
		} else {
			var nv, limit uint64
			if op.kind == "incrby" {
				over, limit = overflowUnsigned(raw, op.value, op.width, mode)
				nv = raw + uint64(op.value)
				if over {
					nv = limit
				}
				reply = int64(nv)
			} else {
				over, limit = overflowUnsigned(uint64(op.value), 0, op.width, mode)
				nv = uint64(op.value)
				if over {
					nv = limit
				}
				reply = int64(raw)
			}
			store = nv
		}
		if over && mode == "fail" {
			out = append(out, resNil)
			continue
		}
		out = append(out, resInt(reply))
		setField(s, op.offset, op.width, store)
		// Writing the value a field already has is no change (no event),
		// unless the string had to grow for it.
		if grew || getField(s, op.offset, op.width) != raw {
			changes++
		}
	}
	if changes > 0 || grew {
		v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeString, Str: s, ExpireAt: exp}, v.h.Now)
	}
	if changes > 0 {
		v.ks.Notify(v.db, keyspace.EventString, "setbit", v.key)
	}
	return Result{Kind: KindArray, Array: out}
}

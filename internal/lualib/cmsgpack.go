package lualib

import (
	"encoding/binary"
	"math"

	lua "github.com/yuin/gopher-lua"
)

// cmsgpack is lua-cmsgpack 0.4.0 as redis ships it: pack turns each
// argument into MessagePack (integers in their smallest encoding, other
// numbers as float 32 when that is exact, tables whose keys are exactly
// 1..n as arrays and others as maps, tables nested deeper than 16 levels
// and unserialisable values as nil); unpack, unpack_one and unpack_limit
// decode (the bin and extension types are bad data to it).

// msgpackMaxNesting is the depth at which pack writes nil instead of a
// table.
const msgpackMaxNesting = 16

// luaMaxStack is C Lua 5.1's LUAI_MAXCSTACK: how many values a C function
// may push. unpack fails like redis's beyond it, whether the values are
// many results or deeply nested tables.
const luaMaxStack = 8000

// OpenCMsgpack returns a new cmsgpack library table.
func OpenCMsgpack(L *lua.LState) *lua.LTable {
	return newLib(L, map[string]lua.LGFunction{
		"pack":   msgpackPack,
		"unpack": func(L *lua.LState) int { return msgpackUnpack(L, 0, 0, true) },
		"unpack_one": func(L *lua.LState) int {
			return msgpackUnpack(L, 1, clampInt(optNumber(L, 2, "unpack_one", 0)), false)
		},
		"unpack_limit": msgpackUnpackLimit,
	}, map[string]string{
		"_NAME":        "cmsgpack",
		"_VERSION":     "lua-cmsgpack 0.4.0",
		"_COPYRIGHT":   "Copyright (C) 2012, Salvatore Sanfilippo",
		"_DESCRIPTION": "MessagePack C implementation for Lua",
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func msgpackPack(L *lua.LState) int {
	n := L.GetTop()
	if n == 0 {
		argError(L, 0, "pack", "MessagePack pack needs input.")
	}
	var buf []byte
	for i := 1; i <= n; i++ {
		buf = msgpackAppend(buf, L.Get(i), 0)
	}
	L.Push(lua.LString(buf))
	return 1
}

func msgpackAppend(b []byte, v lua.LValue, level int) []byte {
	switch v := v.(type) {
	case lua.LString:
		return msgpackAppendString(b, string(v))
	case lua.LBool:
		if v {
			return append(b, 0xc3)
		}
		return append(b, 0xc2)
	case lua.LNumber:
		return msgpackAppendNumber(b, float64(v))
	case *lua.LTable:
		if level == msgpackMaxNesting {
			return append(b, 0xc0)
		}
		if n, ok := msgpackArrayLen(v); ok {
			b = msgpackAppendHeader(b, n, 0x90, 0xdc, 0xdd)
			for i := 1; i <= n; i++ {
				b = msgpackAppend(b, v.RawGetInt(i), level+1)
			}
			return b
		}
		n := 0
		for k, _ := v.Next(lua.LNil); k != lua.LNil; k, _ = v.Next(k) {
			n++
		}
		b = msgpackAppendHeader(b, n, 0x80, 0xde, 0xdf)
		for k, e := v.Next(lua.LNil); k != lua.LNil; k, e = v.Next(k) {
			b = msgpackAppend(b, k, level+1)
			b = msgpackAppend(b, e, level+1)
		}
		return b
	}
	return append(b, 0xc0)
}

// msgpackArrayLen reports whether t's keys are exactly 1..n.
func msgpackArrayLen(t *lua.LTable) (int, bool) {
	count, maxKey := 0, 0.0
	for k, _ := t.Next(lua.LNil); k != lua.LNil; k, _ = t.Next(k) {
		n, ok := k.(lua.LNumber)
		if !ok || n < 1 || math.Trunc(float64(n)) != float64(n) {
			return 0, false
		}
		count++
		maxKey = max(maxKey, float64(n))
	}
	return count, maxKey == float64(count)
}

func msgpackAppendHeader(b []byte, n int, fix, b16, b32 byte) []byte {
	switch {
	case n < 16:
		return append(b, fix|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, b16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, b32), uint32(n))
}

func msgpackAppendString(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

func msgpackAppendNumber(b []byte, f float64) []byte {
	// An integral value in int64's range is an integer; the bound is
	// strict above because 2^63 itself is not an int64.
	if f >= -(1<<63) && f < 1<<63 && math.Trunc(f) == f {
		return msgpackAppendInt(b, int64(f))
	}
	if f32 := float32(f); float64(f32) == f {
		return binary.BigEndian.AppendUint32(append(b, 0xca), math.Float32bits(f32))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f))
}

func msgpackAppendInt(b []byte, n int64) []byte {
	if n >= 0 {
		switch {
		case n <= 127:
			return append(b, byte(n))
		case n <= math.MaxUint8:
			return append(b, 0xcc, byte(n))
		case n <= math.MaxUint16:
			return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(n))
		case n <= math.MaxUint32:
			return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(n))
		}
		return binary.BigEndian.AppendUint64(append(b, 0xcf), uint64(n))
	}
	switch {
	case n >= -32:
		return append(b, byte(int8(n)))
	case n >= math.MinInt8:
		return append(b, 0xd0, byte(int8(n)))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(int16(n)))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(int32(n)))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(n))
}

func msgpackUnpackLimit(L *lua.LState) int {
	limit := checkInt(L, 2, "unpack_limit")
	offset := clampInt(optNumber(L, 3, "unpack_limit", 0))
	return msgpackUnpack(L, limit, offset, limit == 0 && offset == 0)
}

// msgpackUnpack decodes up to limit values (all with all) from offset and
// pushes them, preceded unless all by the offset after them (-1 at the
// end of the input).
func msgpackUnpack(L *lua.LState, limit, offset int64, all bool) int {
	fn := "unpack"
	s := checkString(L, 1, fn)
	if offset < 0 || limit < 0 {
		raise(L, "Invalid request to unpack with offset of %d and limit of %d.", offset, len(s))
	}
	if offset > int64(len(s)) {
		raise(L, "Start offset %d greater than input length %d.", offset, len(s))
	}
	if all {
		limit = math.MaxInt32
	}
	d := msgpackDecoder{L: L, data: s, pos: int(offset)}
	var vals []lua.LValue
	for d.pos < len(s) && int64(len(vals)) < limit {
		if len(vals) >= luaMaxStack {
			raise(L, "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)")
		}
		vals = append(vals, d.value(len(vals)))
	}
	if !all {
		next := lua.LNumber(d.pos)
		if d.pos >= len(s) {
			next = -1
		}
		L.Push(next)
	}
	for _, v := range vals {
		L.Push(v)
	}
	return len(vals) + boolInt(!all)
}

type msgpackDecoder struct {
	L    *lua.LState
	data string
	pos  int
}

// take returns the next n bytes.
func (d *msgpackDecoder) take(n int) string {
	if n < 0 || len(d.data)-d.pos < n {
		raise(d.L, "Missing bytes in input.")
	}
	s := d.data[d.pos : d.pos+n]
	d.pos += n
	return s
}

func (d *msgpackDecoder) uint(n int) uint64 {
	s := d.take(n)
	var v uint64
	for i := 0; i < len(s); i++ {
		v = v<<8 | uint64(s[i])
	}
	return v
}

// value decodes one value; stack is how many values C Lua would hold on
// its stack meanwhile.
func (d *msgpackDecoder) value(stack int) lua.LValue {
	if stack >= luaMaxStack {
		raise(d.L, "stack overflow (in function mp_decode_to_lua_array)")
	}
	c := d.take(1)[0]
	switch {
	case c <= 0x7f:
		return lua.LNumber(c)
	case c >= 0xe0:
		return lua.LNumber(int8(c))
	case c&0xe0 == 0xa0:
		return lua.LString(d.take(int(c & 0x1f)))
	case c&0xf0 == 0x90:
		return d.array(int(c&0x0f), stack)
	case c&0xf0 == 0x80:
		return d.hash(int(c&0x0f), stack)
	}
	switch c {
	case 0xc0:
		return lua.LNil
	case 0xc2:
		return lua.LFalse
	case 0xc3:
		return lua.LTrue
	case 0xcc, 0xcd, 0xce, 0xcf:
		return lua.LNumber(d.uint(1 << (c - 0xcc)))
	case 0xd0:
		return lua.LNumber(int8(d.uint(1)))
	case 0xd1:
		return lua.LNumber(int16(d.uint(2)))
	case 0xd2:
		return lua.LNumber(int32(d.uint(4)))
	case 0xd3:
		return lua.LNumber(int64(d.uint(8)))
	case 0xca:
		return lua.LNumber(math.Float32frombits(uint32(d.uint(4))))
	case 0xcb:
		return lua.LNumber(math.Float64frombits(d.uint(8)))
	case 0xd9:
		return lua.LString(d.take(int(d.uint(1))))
	case 0xda:
		return lua.LString(d.take(int(d.uint(2))))
	case 0xdb:
		return lua.LString(d.take(int(d.uint(4))))
	case 0xdc:
		return d.array(int(d.uint(2)), stack)
	case 0xdd:
		return d.array(int(d.uint(4)), stack)
	case 0xde:
		return d.hash(int(d.uint(2)), stack)
	case 0xdf:
		return d.hash(int(d.uint(4)), stack)
	}
	raise(d.L, "Bad data format in input.")
	return nil
}

func (d *msgpackDecoder) array(n, stack int) lua.LValue {
	t := d.L.CreateTable(min(n, 1024), 0)
	for i := 1; i <= n; i++ {
		t.RawSetInt(i, d.value(stack+1))
	}
	return t
}

func (d *msgpackDecoder) hash(n, stack int) lua.LValue {
	t := d.L.CreateTable(0, min(n, 1024))
	for i := 0; i < n; i++ {
		k := d.value(stack + 1)
		v := d.value(stack + 2)
		switch k := k.(type) {
		case *lua.LNilType:
			d.L.Error(lua.LString("table index is nil"), 0)
		case lua.LNumber:
			if math.IsNaN(float64(k)) {
				d.L.Error(lua.LString("table index is NaN"), 0)
			}
		}
		t.RawSet(k, v)
	}
	return t
}

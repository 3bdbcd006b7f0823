package lualib

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// struct is Roberto Ierusalimschy's struct library (0.2) as redis ships
// it: pack(fmt, ...), unpack(fmt, s [, pos]) and size(fmt) over the
// format options
//
//	> <     big, little endian (little by default)
//	![n]    maximum alignment n (default 8); alignment starts at 1
//	x       a padding byte
//	b B     signed, unsigned char
//	h H     short (2 bytes)
//	l L T   long, unsigned long, size_t (8 bytes)
//	i[n] I[n]  integers of n bytes (default 4, at most 32)
//	f d     float, double
//	s       a zero-terminated string
//	c[n]    n bytes (default 1); c0 is the whole string in pack, the
//	        preceding unpacked number of bytes in unpack
//
// as on a 64-bit little-endian machine.

const (
	structMaxIntSize = 32
	structMaxAlign   = 8
)

type structHeader struct {
	big   bool
	align int
}

// OpenStruct returns a new struct library table.
func OpenStruct(L *lua.LState) *lua.LTable {
	return newLib(L, map[string]lua.LGFunction{
		"pack":   structPack,
		"unpack": structUnpack,
		"size":   structSize,
	}, nil)
}

// structNum reads the decimal number at the start of *f, def if none.
func structNum(L *lua.LState, f *string, def int) int {
	s := *f
	if s == "" || !isDigit(s[0]) {
		return def
	}
	a := 0
	for s != "" && isDigit(s[0]) {
		d := int(s[0] - '0')
		if a > (math.MaxInt32/10) || a*10 > math.MaxInt32-d {
			raise(L, "integral size overflow")
		}
		a = a*10 + d
		s = s[1:]
	}
	*f = s
	return a
}

// structOptSize is the size of option opt, reading its count from *f.
func structOptSize(L *lua.LState, opt byte, f *string) int {
	switch opt {
	case 'B', 'b', 'x':
		return 1
	case 'H', 'h':
		return 2
	case 'L', 'l', 'T', 'd':
		return 8
	case 'f':
		return 4
	case 'c':
		return structNum(L, f, 1)
	case 'i', 'I':
		n := structNum(L, f, 4)
		if n > structMaxIntSize {
			raise(L, "integral size %d is larger than limit of %d", n, structMaxIntSize)
		}
		return n
	}
	return 0
}

// structPadding is how many bytes align an option of size at offset.
func structPadding(offset int, h *structHeader, opt byte, size int) int {
	if size == 0 || opt == 'c' {
		return 0
	}
	size = min(size, h.align)
	return (size - (offset & (size - 1))) & (size - 1)
}

// structControl handles the options that are not values.
func structControl(L *lua.LState, fn string, opt byte, f *string, h *structHeader) {
	switch opt {
	case ' ':
	case '>':
		h.big = true
	case '<':
		h.big = false
	case '!':
		a := structNum(L, f, structMaxAlign)
		if a == 0 || a&(a-1) != 0 {
			raise(L, "alignment %d is not a power of 2", a)
		}
		h.align = a
	default:
		argError(L, 1, fn, fmt.Sprintf("invalid format option '%c'", opt))
	}
}

func structPack(L *lua.LState) int {
	f := checkString(L, 1, "pack")
	h := structHeader{align: 1}
	arg := 2
	var b []byte
	for f != "" {
		opt := f[0]
		f = f[1:]
		size := structOptSize(L, opt, &f)
		for pad := structPadding(len(b), &h, opt, size); pad > 0; pad-- {
			b = append(b, 0)
		}
		switch opt {
		case 'b', 'B', 'h', 'H', 'l', 'L', 'T', 'i', 'I':
			n := structNumber(L, arg)
			arg++
			var v uint64
			if n < 0 {
				v = uint64(clampInt(n))
			} else if n < math.MaxUint64 {
				v = uint64(n)
			} else {
				v = math.MaxUint64
			}
			b = appendStructInt(b, v, size, h.big)
		case 'x':
			b = append(b, 0)
		case 'f':
			bits := math.Float32bits(float32(structNumber(L, arg)))
			arg++
			b = appendOrder(b, h.big, func(o binary.AppendByteOrder) []byte { return o.AppendUint32(nil, bits) })
		case 'd':
			bits := math.Float64bits(structNumber(L, arg))
			arg++
			b = appendOrder(b, h.big, func(o binary.AppendByteOrder) []byte { return o.AppendUint64(nil, bits) })
		case 'c', 's':
			if arg > L.GetTop() {
				argError(L, arg, "pack", "string expected, got nil")
			}
			s := checkString(L, arg, "pack")
			arg++
			if size == 0 {
				size = len(s)
			}
			if len(s) < size {
				// lua_struct reports the argument after the string.
				argError(L, arg, "pack", "string too short")
			}
			b = append(b, s[:size]...)
			if opt == 's' {
				b = append(b, 0)
			}
		default:
			structControl(L, "pack", opt, &f, &h)
		}
	}
	L.Push(lua.LString(b))
	return 1
}

// structNumber is pack's argument n as a number. A missing one is nil,
// not "no value": lua_struct pushes a nil mark above its arguments.
func structNumber(L *lua.LState, n int) float64 {
	if n > L.GetTop() {
		argError(L, n, "pack", "number expected, got nil")
	}
	return checkNumber(L, n, "pack")
}

func appendOrder(b []byte, big bool, enc func(binary.AppendByteOrder) []byte) []byte {
	if big {
		return append(b, enc(binary.BigEndian)...)
	}
	return append(b, enc(binary.LittleEndian)...)
}

// appendStructInt writes the low size bytes of v (zeros beyond 8 bytes).
func appendStructInt(b []byte, v uint64, size int, big bool) []byte {
	buf := make([]byte, size)
	for i := 0; i < size; i++ {
		j := i
		if big {
			j = size - 1 - i
		}
		buf[j] = byte(v)
		v >>= 8
	}
	return append(b, buf...)
}

func structUnpack(L *lua.LState) int {
	f := checkString(L, 1, "unpack")
	data := checkString(L, 2, "unpack")
	pos := int64(1)
	if L.GetTop() >= 3 && L.Get(3) != lua.LNil {
		pos = checkInt(L, 3, "unpack")
	}
	if pos <= 0 {
		argError(L, 3, "unpack", "offset must be 1 or greater")
	}
	p := int(min(pos-1, int64(len(data))+1))
	h := structHeader{align: 1}
	var out []lua.LValue
	for f != "" {
		opt := f[0]
		f = f[1:]
		size := structOptSize(L, opt, &f)
		p += structPadding(p, &h, opt, size)
		if size > len(data) || p > len(data)-size {
			argError(L, 2, "unpack", "data string too short")
		}
		switch opt {
		case 'b', 'B', 'h', 'H', 'l', 'L', 'T', 'i', 'I':
			out = append(out, lua.LNumber(structInt(data[p:p+size], h.big, opt >= 'a')))
		case 'x':
		case 'f':
			v := orderOf(h.big).Uint32([]byte(data[p : p+4]))
			out = append(out, lua.LNumber(math.Float32frombits(v)))
		case 'd':
			v := orderOf(h.big).Uint64([]byte(data[p : p+8]))
			out = append(out, lua.LNumber(math.Float64frombits(v)))
		case 'c':
			if size == 0 {
				var n lua.LNumber
				ok := false
				if len(out) > 0 {
					n, ok = out[len(out)-1].(lua.LNumber)
				}
				if !ok {
					raise(L, "format 'c0' needs a previous size")
				}
				out = out[:len(out)-1]
				size = int(clampInt(float64(n)))
				if size < 0 || size > len(data) || p > len(data)-size {
					argError(L, 2, "unpack", "data string too short")
				}
			}
			out = append(out, lua.LString(data[p:p+size]))
		case 's':
			e := strings.IndexByte(data[p:], 0)
			if e < 0 {
				raise(L, "unfinished string in data")
			}
			out = append(out, lua.LString(data[p:p+e]))
			size = e + 1
		default:
			structControl(L, "unpack", opt, &f, &h)
		}
		p += size
	}
	for _, v := range out {
		L.Push(v)
	}
	L.Push(lua.LNumber(p + 1))
	return len(out) + 1
}

func orderOf(big bool) binary.ByteOrder {
	if big {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// structInt reads an integer of len(s) bytes (only the last 8 count).
func structInt(s string, big, signed bool) float64 {
	var v uint64
	for i := 0; i < len(s); i++ {
		j := i
		if !big {
			j = len(s) - 1 - i
		}
		v = v<<8 | uint64(s[j])
	}
	if !signed {
		return float64(v)
	}
	if size := len(s); size < 8 {
		if v&(1<<(size*8-1)) != 0 {
			v |= ^uint64(0) << (size * 8)
		}
	}
	return float64(int64(v))
}

func structSize(L *lua.LState) int {
	f := checkString(L, 1, "size")
	h := structHeader{align: 1}
	pos := 0
	for f != "" {
		opt := f[0]
		f = f[1:]
		size := structOptSize(L, opt, &f)
		pos += structPadding(pos, &h, opt, size)
		switch {
		case opt == 's':
			argError(L, 1, "size", "option 's' has no fixed size")
		case opt == 'c' && size == 0:
			argError(L, 1, "size", "option 'c0' has no fixed size")
		}
		if !isAlnum(opt) {
			structControl(L, "size", opt, &f, &h)
		}
		pos += size
	}
	L.Push(lua.LNumber(pos))
	return 1
}

func isAlnum(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

package lualib

import (
	"math"
	"math/bits"

	lua "github.com/yuin/gopher-lua"
)

// bit is LuaBitOp 1.0.2: operations on 32-bit integers, whose results are
// signed. An argument is converted as LuaBitOp does, by adding 2^52+2^51
// to the number and keeping the low 32 bits of the double: numbers round
// to the nearest integer (halves to even) and wrap modulo 2^32.

// OpenBit returns a new bit library table.
func OpenBit(L *lua.LState) *lua.LTable {
	unary := func(name string, f func(uint32) uint32) lua.LGFunction {
		return func(L *lua.LState) int {
			return pushBits(L, f(bitArg(L, 1, name)))
		}
	}
	fold := func(name string, f func(a, b uint32) uint32) lua.LGFunction {
		return func(L *lua.LState) int {
			b := bitArg(L, 1, name)
			for i := L.GetTop(); i > 1; i-- {
				b = f(b, bitArg(L, i, name))
			}
			return pushBits(L, b)
		}
	}
	shift := func(name string, f func(b uint32, n uint) uint32) lua.LGFunction {
		return func(L *lua.LState) int {
			b := bitArg(L, 1, name)
			return pushBits(L, f(b, uint(bitArg(L, 2, name)&31)))
		}
	}
	return newLib(L, map[string]lua.LGFunction{
		"tobit":  unary("tobit", func(b uint32) uint32 { return b }),
		"bnot":   unary("bnot", func(b uint32) uint32 { return ^b }),
		"bswap":  unary("bswap", bits.ReverseBytes32),
		"band":   fold("band", func(a, b uint32) uint32 { return a & b }),
		"bor":    fold("bor", func(a, b uint32) uint32 { return a | b }),
		"bxor":   fold("bxor", func(a, b uint32) uint32 { return a ^ b }),
		"lshift": shift("lshift", func(b uint32, n uint) uint32 { return b << n }),
		"rshift": shift("rshift", func(b uint32, n uint) uint32 { return b >> n }),
		"arshift": shift("arshift", func(b uint32, n uint) uint32 {
			return uint32(int32(b) >> n)
		}),
		"rol":   shift("rol", func(b uint32, n uint) uint32 { return bits.RotateLeft32(b, int(n)) }),
		"ror":   shift("ror", func(b uint32, n uint) uint32 { return bits.RotateLeft32(b, -int(n)) }),
		"tohex": bitToHex,
	}, nil)
}

// bitArg is LuaBitOp's barg: argument n as 32 bits.
func bitArg(L *lua.LState, n int, fn string) uint32 {
	f := checkNumber(L, n, fn)
	return uint32(math.Float64bits(f + 6755399441055744.0))
}

func pushBits(L *lua.LState, b uint32) int {
	L.Push(lua.LNumber(int32(b)))
	return 1
}

// bitToHex is tohex(x [, n]): the low n hex digits of x (8 by default,
// at most 8), in upper case when n is negative.
func bitToHex(L *lua.LState) int {
	b := bitArg(L, 1, "tohex")
	n := int32(8)
	if L.GetTop() >= 2 {
		n = int32(bitArg(L, 2, "tohex"))
	}
	digits := "0123456789abcdef"
	if n < 0 {
		n = -n
		digits = "0123456789ABCDEF"
	}
	n = min(n, 8)
	buf := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		buf[i] = digits[b&15]
		b >>= 4
	}
	L.Push(lua.LString(buf))
	return 1
}

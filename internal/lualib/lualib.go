// Package lualib implements, for gopher-lua, the Lua libraries redis-server
// loads into every script besides Lua's own: cjson, cmsgpack, bit (LuaBitOp)
// and struct. They are written against redis 7.0's behaviour — the bytes
// they produce, the numbers they accept and the error messages they raise —
// as recorded in the Redis front end's golden transcripts.
//
// Everything here is deterministic: scripts run on every node of a cluster
// and must produce the same bytes on each. Table traversal therefore always
// goes through LTable.Next, which follows insertion order, never ForEach,
// which ranges over Go maps. (C Lua's order for the hash part of a table
// differs again, so an object with several keys may be encoded in another
// order than redis-server would: see docs/COMPATIBILITY.md.)
//
// Each Open function builds a fresh library table in the given state; the
// configuration a script changes (cjson.encode_max_depth…) lives in that
// table's closures and dies with the state.
package lualib

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Open loads the four libraries into L's globals under redis's names.
func Open(L *lua.LState) {
	g := L.G.Global
	g.RawSetString("cjson", OpenCJSON(L))
	g.RawSetString("cmsgpack", OpenCMsgpack(L))
	g.RawSetString("bit", OpenBit(L))
	g.RawSetString("struct", OpenStruct(L))
}

// newLib builds a library table of functions and string fields.
func newLib(L *lua.LState, funcs map[string]lua.LGFunction, fields map[string]string) *lua.LTable {
	t := L.CreateTable(0, len(funcs)+len(fields))
	// Insertion order decides pairs() order: keep it independent of Go's
	// map order.
	for _, name := range sortedKeys(funcs) {
		t.RawSetString(name, L.NewFunction(funcs[name]))
	}
	for _, name := range sortedKeys(fields) {
		t.RawSetString(name, lua.LString(fields[name]))
	}
	return t
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// raise raises msg with the position of the Lua code that called the
// library function ("user_script:3: msg"), as luaL_error does.
func raise(L *lua.LState, format string, args ...any) {
	if len(args) == 0 {
		L.RaiseError("%s", format)
	}
	L.RaiseError(format, args...)
}

// argError is luaL_argerror: "bad argument #n to 'fn' (msg)".
func argError(L *lua.LState, n int, fn, msg string) {
	raise(L, "bad argument #%d to '%s' (%s)", n, fn, msg)
}

// typeName is C Lua's name for the type of argument n ("no value" past
// the last).
func typeName(L *lua.LState, n int) string {
	if n > L.GetTop() {
		return "no value"
	}
	return L.Get(n).Type().String()
}

// checkNumber is luaL_checknumber: a number, or a string that converts to
// one.
func checkNumber(L *lua.LState, n int, fn string) float64 {
	if n <= L.GetTop() {
		switch v := L.Get(n).(type) {
		case lua.LNumber:
			return float64(v)
		case lua.LString:
			if f, ok := strToNumber(string(v)); ok {
				return f
			}
		}
	}
	argError(L, n, fn, "number expected, got "+typeName(L, n))
	return 0
}

// optNumber is luaL_optnumber.
func optNumber(L *lua.LState, n int, fn string, def float64) float64 {
	if n > L.GetTop() || L.Get(n) == lua.LNil {
		return def
	}
	return checkNumber(L, n, fn)
}

// checkInt is luaL_checkinteger: the number truncated toward zero.
func checkInt(L *lua.LState, n int, fn string) int64 {
	return clampInt(checkNumber(L, n, fn))
}

func clampInt(f float64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

// checkString is luaL_checklstring: a string, or a number as a string.
func checkString(L *lua.LState, n int, fn string) string {
	if n <= L.GetTop() {
		switch v := L.Get(n).(type) {
		case lua.LString:
			return string(v)
		case lua.LNumber:
			return formatG(float64(v), 14)
		}
	}
	argError(L, n, fn, "string expected, got "+typeName(L, n))
	return ""
}

// strToNumber is Lua 5.1's string to number conversion: a decimal or
// hexadecimal number, surrounded by optional white space.
func strToNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if f, n := strtod(s); n == len(s) {
		return f, true
	}
	return 0, false
}

// strtod parses the longest prefix of s that C's strtod accepts (sign,
// then decimal digits with an optional fraction and exponent, a
// hexadecimal integer, inf, infinity or nan) and returns its value and
// length; length 0 means no number.
func strtod(s string) (float64, int) {
	i := 0
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	sign := func(f float64) float64 {
		if neg {
			return -f
		}
		return f
	}
	rest := strings.ToLower(s[i:])
	switch {
	case strings.HasPrefix(rest, "infinity"):
		return sign(math.Inf(1)), i + 8
	case strings.HasPrefix(rest, "inf"):
		return sign(math.Inf(1)), i + 3
	case strings.HasPrefix(rest, "nan"):
		return math.NaN(), i + 3
	case strings.HasPrefix(rest, "0x") && len(rest) > 2 && isHex(rest[2]):
		j := i + 2
		var f float64
		for j < len(s) && isHex(s[j]) {
			d, _ := strconv.ParseUint(s[j:j+1], 16, 8)
			f = f*16 + float64(d)
			j++
		}
		return sign(f), j
	}
	start := i
	digits := 0
	for i < len(s) && isDigit(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, 0
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			i = j
		}
	}
	// ParseFloat returns ±Inf (with an error) on overflow and 0 on
	// underflow, as strtod does.
	f, _ := strconv.ParseFloat(s[start:i], 64)
	return sign(f), i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isHex(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// formatG is C's "%.{prec}g".
func formatG(f float64, prec int) string {
	switch {
	case math.IsNaN(f):
		if math.Signbit(f) {
			return "-nan"
		}
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', prec, 64)
}

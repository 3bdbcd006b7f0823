package lualib

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
)

// cjson is lua-cjson 2.1.0 as redis ships it: encode, decode, null and the
// configuration functions, with its defaults (numbers with 14 significant
// digits, sparse arrays refused beyond a ratio of 2 past index 10, depth
// 1000 both ways, NaN and Inf refused on encode and accepted on decode).
type cjson struct {
	null           *lua.LUserData
	encodeMaxDepth int64
	decodeMaxDepth int64
	precision      int64
	sparseConvert  bool
	sparseRatio    int64
	sparseSafe     int64
	encodeInvalid  int64 // 0 off, 1 on (Infinity, NaN), 2 null
	decodeInvalid  bool
	keepBuffer     bool
}

// OpenCJSON returns a new cjson library table.
func OpenCJSON(L *lua.LState) *lua.LTable {
	return newCJSON(L, L.NewUserData())
}

func newCJSON(L *lua.LState, null *lua.LUserData) *lua.LTable {
	c := &cjson{null: null, encodeMaxDepth: 1000, decodeMaxDepth: 1000, precision: 14,
		sparseRatio: 2, sparseSafe: 10, decodeInvalid: true, keepBuffer: true}
	t := newLib(L, map[string]lua.LGFunction{
		"encode":                  c.encode,
		"decode":                  c.decode,
		"encode_sparse_array":     c.encodeSparseArray,
		"encode_max_depth":        c.intOption(&c.encodeMaxDepth, 1, math.MaxInt32),
		"decode_max_depth":        c.intOption(&c.decodeMaxDepth, 1, math.MaxInt32),
		"encode_number_precision": c.intOption(&c.precision, 1, 14),
		"encode_keep_buffer":      c.boolOption(&c.keepBuffer),
		"decode_invalid_numbers":  c.boolOption(&c.decodeInvalid),
		"encode_invalid_numbers":  c.encodeInvalidNumbers,
		"new": func(L *lua.LState) int {
			L.Push(newCJSON(L, null))
			return 1
		},
	}, map[string]string{"_NAME": "cjson", "_VERSION": "2.1.0"})
	t.RawSetString("null", null)
	return t
}

// optionArgs is lua-cjson's json_arg_init: at most n arguments.
func optionArgs(L *lua.LState, n int) {
	if L.GetTop() > n {
		argError(L, n+1, currentName(L), "found too many arguments")
	}
}

// currentName is the name the running Go function was called by, for
// argument errors of functions that share code.
func currentName(L *lua.LState) string {
	if dbg, ok := L.GetStack(0); ok {
		if _, err := L.GetInfo("n", dbg, lua.LNil); err == nil && dbg.Name != "" {
			return dbg.Name
		}
	}
	return "?"
}

func (c *cjson) intOption(setting *int64, lo, hi int64) lua.LGFunction {
	return func(L *lua.LState) int {
		optionArgs(L, 1)
		c.setInt(L, 1, setting, lo, hi)
		L.Push(lua.LNumber(*setting))
		return 1
	}
}

func (c *cjson) setInt(L *lua.LState, n int, setting *int64, lo, hi int64) {
	if L.Get(n) == lua.LNil {
		return
	}
	v := checkInt(L, n, currentName(L))
	if v < lo || v > hi {
		argError(L, 1, currentName(L), fmt.Sprintf("expected integer between %d and %d", lo, hi))
	}
	*setting = v
}

// enumOption is json_enum_option over the options off, on (and null when
// withNull): a boolean or an option name sets it; it returns a boolean for
// off and on, the name otherwise.
func enumOption(L *lua.LState, n int, setting *int64, withNull bool) lua.LValue {
	opts := []string{"off", "on"}
	if withNull {
		opts = append(opts, "null")
	}
	switch v := L.Get(n).(type) {
	case *lua.LNilType:
	case lua.LBool:
		*setting = 0
		if v {
			*setting = 1
		}
	default:
		s := checkString(L, n, currentName(L))
		found := false
		for i, o := range opts {
			if o == s {
				*setting, found = int64(i), true
			}
		}
		if !found {
			argError(L, n, currentName(L), "invalid option '"+s+"'")
		}
	}
	if *setting <= 1 {
		return lua.LBool(*setting == 1)
	}
	return lua.LString(opts[*setting])
}

func (c *cjson) boolOption(setting *bool) lua.LGFunction {
	return func(L *lua.LState) int {
		optionArgs(L, 1)
		var v int64
		if *setting {
			v = 1
		}
		r := enumOption(L, 1, &v, false)
		*setting = v == 1
		L.Push(r)
		return 1
	}
}

func (c *cjson) encodeInvalidNumbers(L *lua.LState) int {
	optionArgs(L, 1)
	L.Push(enumOption(L, 1, &c.encodeInvalid, true))
	return 1
}

func (c *cjson) encodeSparseArray(L *lua.LState) int {
	optionArgs(L, 3)
	var conv int64
	if c.sparseConvert {
		conv = 1
	}
	r := enumOption(L, 1, &conv, false)
	c.sparseConvert = conv == 1
	c.setInt(L, 2, &c.sparseRatio, 0, math.MaxInt32)
	c.setInt(L, 3, &c.sparseSafe, 0, math.MaxInt32)
	L.Push(r)
	L.Push(lua.LNumber(c.sparseRatio))
	L.Push(lua.LNumber(c.sparseSafe))
	return 3
}

func (c *cjson) encode(L *lua.LState) int {
	if L.GetTop() != 1 {
		argError(L, 1, "encode", "expected 1 argument")
	}
	var b strings.Builder
	c.appendValue(L, &b, L.Get(1), 0)
	L.Push(lua.LString(b.String()))
	return 1
}

// unserialisable raises lua-cjson's error for a value it cannot encode.
func unserialisable(L *lua.LState, v lua.LValue, reason string) {
	raise(L, "Cannot serialise %s: %s", v.Type().String(), reason)
}

func (c *cjson) appendValue(L *lua.LState, b *strings.Builder, v lua.LValue, depth int64) {
	switch v := v.(type) {
	case lua.LString:
		appendJSONString(b, string(v))
	case lua.LNumber:
		c.appendNumber(L, b, v)
	case lua.LBool:
		if v {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case *lua.LNilType:
		b.WriteString("null")
	case *lua.LTable:
		depth++
		if depth > c.encodeMaxDepth {
			raise(L, "Cannot serialise, excessive nesting (%d)", depth)
		}
		if n := c.arrayLength(L, v); n > 0 {
			b.WriteByte('[')
			for i := 1; i <= n; i++ {
				if i > 1 {
					b.WriteByte(',')
				}
				c.appendValue(L, b, v.RawGetInt(i), depth)
			}
			b.WriteByte(']')
			return
		}
		b.WriteByte('{')
		first := true
		for k, e := v.Next(lua.LNil); k != lua.LNil; k, e = v.Next(k) {
			if !first {
				b.WriteByte(',')
			}
			first = false
			switch k := k.(type) {
			case lua.LString:
				appendJSONString(b, string(k))
			case lua.LNumber:
				b.WriteByte('"')
				c.appendNumber(L, b, k)
				b.WriteByte('"')
			default:
				unserialisable(L, k, "table key must be a number or string")
			}
			b.WriteByte(':')
			c.appendValue(L, b, e, depth)
		}
		b.WriteByte('}')
	default:
		if v == c.null {
			b.WriteString("null")
			return
		}
		unserialisable(L, v, "type not supported")
	}
}

// arrayLength is the length of t as a JSON array: its largest key if all
// keys are integers from 1 and it is not too sparse, 0 to encode it as an
// object (an empty table is {}).
func (c *cjson) arrayLength(L *lua.LState, t *lua.LTable) int {
	var maxKey float64
	items := 0
	for k, _ := t.Next(lua.LNil); k != lua.LNil; k, _ = t.Next(k) {
		n, ok := k.(lua.LNumber)
		if !ok || n < 1 || math.Floor(float64(n)) != float64(n) {
			return 0
		}
		maxKey = max(maxKey, float64(n))
		items++
	}
	if c.sparseRatio > 0 && maxKey > float64(int64(items)*c.sparseRatio) && maxKey > float64(c.sparseSafe) {
		if !c.sparseConvert {
			unserialisable(L, t, "excessively sparse array")
		}
		return 0
	}
	return int(maxKey)
}

func (c *cjson) appendNumber(L *lua.LState, b *strings.Builder, n lua.LNumber) {
	f := float64(n)
	if math.IsInf(f, 0) || math.IsNaN(f) {
		switch c.encodeInvalid {
		case 0:
			unserialisable(L, n, "must not be NaN or Inf")
		case 1:
			switch {
			case math.IsNaN(f):
				b.WriteString("NaN")
			case f > 0:
				b.WriteString("Infinity")
			default:
				b.WriteString("-Infinity")
			}
			return
		default:
			b.WriteString("null")
			return
		}
	}
	b.WriteString(formatG(f, int(c.precision)))
}

// appendJSONString quotes s as lua-cjson does: ", \ and / escaped, the
// control characters and DEL as \b \t \n \f \r or \u00XX, other bytes
// (UTF-8 or not) as they are.
func appendJSONString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '"', '\\', '/':
			b.WriteByte('\\')
			b.WriteByte(ch)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if ch < 0x20 || ch == 0x7f {
				b.WriteString(`\u00`)
				b.WriteByte(hex[ch>>4])
				b.WriteByte(hex[ch&15])
			} else {
				b.WriteByte(ch)
			}
		}
	}
	b.WriteByte('"')
}

// JSON tokens, named as lua-cjson names them in its errors.
type jsonToken int

const (
	tObjBegin jsonToken = iota
	tObjEnd
	tArrBegin
	tArrEnd
	tString
	tNumber
	tBoolean
	tNull
	tColon
	tComma
	tEnd
	tError
)

var jsonTokenNames = [...]string{"T_OBJ_BEGIN", "T_OBJ_END", "T_ARR_BEGIN", "T_ARR_END", "T_STRING", "T_NUMBER", "T_BOOLEAN", "T_NULL", "T_COLON", "T_COMMA", "T_END", "T_ERROR"}

type token struct {
	typ   jsonToken
	index int // 0-based position, reported 1-based
	str   string
	num   float64
	b     bool
	err   string // for tError
}

type jsonParser struct {
	L     *lua.LState
	c     *cjson
	data  string
	pos   int
	depth int64
}

func (c *cjson) decode(L *lua.LState) int {
	if L.GetTop() != 1 {
		argError(L, 1, "decode", "expected 1 argument")
	}
	s := checkString(L, 1, "decode")
	if len(s) >= 2 && (s[0] == 0 || s[1] == 0) {
		raise(L, "JSON parser does not support UTF-16 or UTF-32")
	}
	p := &jsonParser{L: L, c: c, data: s}
	v := p.value(p.next())
	if t := p.next(); t.typ != tEnd {
		p.fail("the end", t)
	}
	L.Push(v)
	return 1
}

func (p *jsonParser) fail(expected string, t token) {
	found := t.err
	if t.typ != tError {
		found = jsonTokenNames[t.typ]
	}
	raise(p.L, "Expected %s but found %s at character %d", expected, found, t.index+1)
}

// at is the byte at i, 0 past the end: lua-cjson reads a C string, so a
// NUL byte ends the text too.
func (p *jsonParser) at(i int) byte {
	if i < len(p.data) {
		return p.data[i]
	}
	return 0
}

func (p *jsonParser) next() token {
	for {
		switch p.at(p.pos) {
		case ' ', '\t', '\n', '\r':
			p.pos++
			continue
		}
		break
	}
	t := token{index: p.pos}
	single := func(typ jsonToken) token { p.pos++; t.typ = typ; return t }
	ch := p.at(p.pos)
	switch ch {
	case 0:
		t.typ = tEnd
		return t
	case '{':
		return single(tObjBegin)
	case '}':
		return single(tObjEnd)
	case '[':
		return single(tArrBegin)
	case ']':
		return single(tArrEnd)
	case ':':
		return single(tColon)
	case ',':
		return single(tComma)
	case '"':
		return p.stringToken(t)
	}
	rest := p.data[p.pos:]
	switch {
	case ch == '-' || isDigit(ch):
		if !p.c.decodeInvalid && p.invalidNumber() {
			return p.errorToken("invalid number")
		}
		return p.numberToken(t)
	case strings.HasPrefix(rest, "true"):
		p.pos += 4
		t.typ, t.b = tBoolean, true
		return t
	case strings.HasPrefix(rest, "false"):
		p.pos += 5
		t.typ = tBoolean
		return t
	case strings.HasPrefix(rest, "null"):
		p.pos += 4
		t.typ = tNull
		return t
	case strings.IndexByte("+fiInNt", ch) >= 0 && p.c.decodeInvalid && p.invalidNumber():
		return p.numberToken(t)
	}
	return p.errorToken("invalid token")
}

func (p *jsonParser) errorToken(msg string) token {
	return token{typ: tError, index: p.pos, err: msg}
}

// invalidNumber reports a number JSON does not allow but strtod reads:
// a leading +, hexadecimal, leading zeros, inf and nan.
func (p *jsonParser) invalidNumber() bool {
	s := p.data[p.pos:]
	if strings.HasPrefix(s, "+") {
		return true
	}
	s = strings.TrimPrefix(s, "-")
	switch {
	case strings.HasPrefix(s, "0"):
		c := byte(0)
		if len(s) > 1 {
			c = s[1]
		}
		return c|0x20 == 'x' || isDigit(c)
	case s != "" && s[0] <= '9':
		return false
	}
	low := strings.ToLower(s)
	return strings.HasPrefix(low, "inf") || strings.HasPrefix(low, "nan")
}

func (p *jsonParser) numberToken(t token) token {
	f, n := strtod(cString(p.data[p.pos:]))
	if n == 0 {
		return p.errorToken("invalid number")
	}
	p.pos += n
	t.typ, t.num = tNumber, f
	return t
}

// cString is s up to its first NUL byte.
func cString(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

func (p *jsonParser) stringToken(t token) token {
	p.pos++ // the opening quote
	var b strings.Builder
	for {
		ch := p.at(p.pos)
		switch {
		case ch == '"':
			p.pos++
			t.typ, t.str = tString, b.String()
			return t
		case ch == 0:
			return p.errorToken("unexpected end of string")
		case ch != '\\':
			b.WriteByte(ch)
			p.pos++
			continue
		}
		switch esc := p.at(p.pos + 1); esc {
		case '"', '\\', '/':
			b.WriteByte(esc)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			n := p.unicodeEscape(&b)
			if n == 0 {
				return p.errorToken("invalid unicode escape code")
			}
			p.pos += n
			continue
		default:
			return p.errorToken("invalid escape code")
		}
		p.pos += 2
	}
}

// unicodeEscape decodes the \uXXXX (or surrogate pair) at p.pos into b as
// UTF-8 and returns its length, 0 if it is invalid.
func (p *jsonParser) unicodeEscape(b *strings.Builder) int {
	cp := p.hex4(p.pos + 2)
	if cp < 0 {
		return 0
	}
	n := 6
	if cp&0xF800 == 0xD800 {
		if cp&0x400 != 0 || p.at(p.pos+6) != '\\' || p.at(p.pos+7) != 'u' {
			return 0
		}
		lo := p.hex4(p.pos + 8)
		if lo < 0 || lo&0xFC00 != 0xDC00 {
			return 0
		}
		cp = ((cp&0x3FF)<<10 | lo&0x3FF) + 0x10000
		n = 12
	}
	var buf [4]byte
	b.Write(buf[:utf8.EncodeRune(buf[:], rune(cp))])
	return n
}

func (p *jsonParser) hex4(i int) int {
	if i+4 > len(p.data) {
		return -1
	}
	v, err := strconv.ParseUint(p.data[i:i+4], 16, 16)
	if err != nil || strings.ContainsAny(p.data[i:i+4], "+-") {
		return -1
	}
	return int(v)
}

func (p *jsonParser) value(t token) lua.LValue {
	switch t.typ {
	case tString:
		return lua.LString(t.str)
	case tNumber:
		return lua.LNumber(t.num)
	case tBoolean:
		return lua.LBool(t.b)
	case tNull:
		return p.c.null
	case tObjBegin:
		return p.object()
	case tArrBegin:
		return p.array()
	}
	p.fail("value", t)
	return nil
}

func (p *jsonParser) descend() {
	p.depth++
	if p.depth > p.c.decodeMaxDepth {
		raise(p.L, "Found too many nested data structures (%d) at character %d", p.depth, p.pos)
	}
}

func (p *jsonParser) object() lua.LValue {
	p.descend()
	obj := p.L.NewTable()
	t := p.next()
	if t.typ == tObjEnd {
		p.depth--
		return obj
	}
	for {
		if t.typ != tString {
			p.fail("object key string", t)
		}
		key := t.str
		if t = p.next(); t.typ != tColon {
			p.fail("colon", t)
		}
		obj.RawSetString(key, p.value(p.next()))
		t = p.next()
		if t.typ == tObjEnd {
			p.depth--
			return obj
		}
		if t.typ != tComma {
			p.fail("comma or object end", t)
		}
		t = p.next()
	}
}

func (p *jsonParser) array() lua.LValue {
	p.descend()
	arr := p.L.NewTable()
	t := p.next()
	if t.typ == tArrEnd {
		p.depth--
		return arr
	}
	for i := 1; ; i++ {
		arr.RawSetInt(i, p.value(t))
		t = p.next()
		if t.typ == tArrEnd {
			p.depth--
			return arr
		}
		if t.typ != tComma {
			p.fail("comma or array end", t)
		}
		t = p.next()
	}
}

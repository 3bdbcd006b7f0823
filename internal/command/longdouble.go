package command

import (
	"math/big"
	"strconv"
	"strings"
)

// INCRBYFLOAT and HINCRBYFLOAT compute as redis-server does on x86-64: in
// C's long double, the x87 80-bit extended format (a 64-bit mantissa),
// parsed with strtold and printed with "%.17Lf" less its trailing zeros.
// That is why 10.6 + 3000 is 3010.60000000000000009 there, and why a
// float64 would not do. The executor emulates the format with big.Float
// at 64 bits of precision, rounding to nearest even as the FPU does; the
// operations are exact integer arithmetic, so every node (whatever its CPU
// or Go version) computes the same bytes. Not emulated: the reduced
// precision of extended subnormals (below 3.4e-4932), which are refused.

const (
	extPrec = 64 // bits of an x87 extended mantissa
	// Exponents (of big.Float's MantExp, mantissa in [0.5, 1)) of the
	// extended range: the largest finite value is below 2^16384 and the
	// smallest normal is 2^-16382.
	extMaxExp = 16384
	extMinExp = -16381
	// maxLongDoubleChars is redis's MAX_LONG_DOUBLE_CHARS: longer input
	// is not a float.
	maxLongDoubleChars = 5 * 1024
)

func newExt() *big.Float { return new(big.Float).SetPrec(extPrec).SetMode(big.ToNearestEven) }

// parseLongDouble parses b as redis's string2ld does (strtold, with no
// leading space, nothing left over, and neither NaN nor a value out of
// range). Infinity parses: adding it fails later, as in redis.
func parseLongDouble(b []byte) (*big.Float, bool) {
	if len(b) == 0 || len(b) >= maxLongDoubleChars {
		return nil, false
	}
	s := string(b)
	neg := false
	switch s[0] {
	case '-':
		neg = true
		s = s[1:]
	case '+':
		s = s[1:]
	}
	var f *big.Float
	switch low := strings.ToLower(s); {
	case low == "inf" || low == "infinity":
		f = new(big.Float).SetInf(false)
	case strings.HasPrefix(low, "0x"):
		f = parseHexFloat(low[2:])
	default:
		f = parseDecimalFloat(s)
	}
	if f == nil {
		return nil, false
	}
	if neg {
		f.Neg(f)
	}
	return f, true
}

// parseDecimalFloat parses digits with an optional point and exponent,
// rounded once (exactly, through a rational) to the extended format.
func parseDecimalFloat(s string) *big.Float {
	mant, exp, ok := splitFloat(s, "0123456789", 'e')
	if !ok {
		return nil
	}
	digits := strings.Replace(mant, ".", "", 1)
	point := strings.IndexByte(mant, '.')
	if point < 0 {
		point = len(mant)
	}
	trimmed := strings.TrimLeft(digits, "0")
	if trimmed == "" {
		return newExt()
	}
	// The decimal exponent of the leading digit decides overflow and
	// underflow before an exact rational is built, which a huge exponent
	// would make enormous.
	lead := point - (len(digits) - len(trimmed)) - 1 + int(exp)
	switch {
	case lead > 4933:
		return nil
	case lead < -4952:
		return nil
	}
	r, ok := new(big.Rat).SetString(mant + "e" + strconv.FormatInt(exp, 10))
	if !ok {
		return nil
	}
	return inExtRange(newExt().SetRat(r))
}

// parseHexFloat parses strtold's hexadecimal form after "0x": hex digits
// with an optional point and a binary exponent after 'p'.
func parseHexFloat(s string) *big.Float {
	mant, exp, ok := splitFloat(s, "0123456789abcdef", 'p')
	if !ok {
		return nil
	}
	frac := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		frac = len(mant) - i - 1
		mant = mant[:i] + mant[i+1:]
	}
	n, ok := new(big.Int).SetString(mant, 16)
	if !ok {
		return nil
	}
	if n.Sign() == 0 {
		return newExt()
	}
	e := exp - 4*int64(frac)
	if top := e + int64(n.BitLen()); top > extMaxExp+1 || top < extMinExp-64 {
		return nil
	}
	f := newExt().SetInt(n)
	return inExtRange(f.SetMantExp(f, int(e)))
}

// splitFloat checks s is a mantissa of digits (at least one, with at most
// one point) and an optional exponent (expCh, an optional sign, digits),
// and returns both. Exponents beyond any finite value are clamped.
func splitFloat(s, digits string, expCh byte) (string, int64, bool) {
	mant, expPart, hasExp := strings.Cut(s, string(expCh))
	n, points := 0, 0
	for i := 0; i < len(mant); i++ {
		switch {
		case mant[i] == '.':
			points++
		case strings.IndexByte(digits, mant[i]) >= 0:
			n++
		default:
			return "", 0, false
		}
	}
	if n == 0 || points > 1 {
		return "", 0, false
	}
	var exp int64
	if hasExp {
		e := expPart
		neg := false
		if e != "" && (e[0] == '-' || e[0] == '+') {
			neg = e[0] == '-'
			e = e[1:]
		}
		if e == "" {
			return "", 0, false
		}
		for i := 0; i < len(e); i++ {
			if e[i] < '0' || e[i] > '9' {
				return "", 0, false
			}
			if exp < 1<<40 {
				exp = exp*10 + int64(e[i]-'0')
			}
		}
		if neg {
			exp = -exp
		}
	}
	return mant, exp, true
}

// inExtRange is f, or nil when f is beyond what an extended can hold
// (strtold's ERANGE, which string2ld refuses).
func inExtRange(f *big.Float) *big.Float {
	if f.Sign() == 0 || f.IsInf() {
		return f
	}
	if e := f.MantExp(nil); e > extMaxExp || e < extMinExp {
		return nil
	}
	return f
}

// addLongDouble is a + b in the extended format; ok is false when the
// result is NaN or infinite.
func addLongDouble(a, b *big.Float) (*big.Float, bool) {
	if a.IsInf() || b.IsInf() {
		return nil, false
	}
	sum := newExt().Add(a, b)
	if sum.Sign() != 0 && sum.MantExp(nil) > extMaxExp {
		return nil, false
	}
	return sum, true
}

// formatLongDouble prints f as redis's ld2string in LD_STR_HUMAN mode:
// "%.17Lf", trailing zeros and a trailing point removed, "-0" as "0".
func formatLongDouble(f *big.Float) []byte {
	s := f.Text('f', 17)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return []byte(s)
}

package command

import "testing"

// INCRBYFLOAT's arithmetic, beyond the golden transcripts: hexadecimal
// input, the ends of the extended range.
func TestLongDouble(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{"10.6", "3000", "3010.60000000000000009"},
		{"1", "0.333333333333333333333", "1.33333333333333333"},
		{"0x1p-2", "0", "0.25"},
		{"-1.5", "1.5", "0"},
		{"1e4000", "-1e4000", "0"},
	} {
		x, ok1 := parseLongDouble([]byte(c.a))
		y, ok2 := parseLongDouble([]byte(c.b))
		if !ok1 || !ok2 {
			t.Errorf("%s + %s: not parsed", c.a, c.b)
			continue
		}
		sum, ok := addLongDouble(x, y)
		if !ok {
			t.Errorf("%s + %s: overflow", c.a, c.b)
			continue
		}
		if got := string(formatLongDouble(sum)); got != c.want {
			t.Errorf("%s + %s = %s, want %s", c.a, c.b, got, c.want)
		}
	}
	for _, bad := range []string{"1.2e4933", "1e-4960", "nan", "0x", "1e+", "--1", "1 ", "٣"} {
		if _, ok := parseLongDouble([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	big, _ := parseLongDouble([]byte("1.1e4932"))
	if _, ok := addLongDouble(big, big); ok {
		t.Error("1.1e4932 * 2 did not overflow the extended range")
	}
}

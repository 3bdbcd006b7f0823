package units

import "testing"

func TestParseSize(t *testing.T) {
	good := map[string]int64{"0": 0, "100": 100, "1k": 1000, "1kb": 1024, "2MB": 2 << 20, "1g": 1e9, "3gb": 3 << 30, " 7b ": 7}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1x", "kb", "99999999999gb", "1.5mb"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded", in)
		}
	}
}

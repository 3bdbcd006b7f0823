// Package units parses the sizes written in configuration and in CONFIG SET.
package units

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSize parses a byte count written as redis.conf writes memory values:
// a number with an optional unit (b, k, kb, m, mb, g, gb; k = 1000,
// kb = 1024).
func ParseSize(v string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(v))
	mul := int64(1)
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1e9}, {"m", 1e6}, {"k", 1e3}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mul = strings.TrimSuffix(t, u.suffix), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mul {
		return 0, fmt.Errorf("invalid size %q", v)
	}
	return n * mul, nil
}

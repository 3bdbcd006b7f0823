package clustertest

import (
	"regexp"
	"strings"
	"testing"
)

// The memcached meta commands sent to a follower: every change is a log
// entry, so every node answers the same right after the follower replied.
func TestMetaCommandsThroughAFollower(t *testing.T) {
	c := Start(t, 3)
	follower := c.Others(c.Leader())[0].Cfg.MemcacheAddr
	expect := func(addr, req string, want *regexp.Regexp) string {
		t.Helper()
		got := memcacheRoundTrip(t, addr, req)
		if !want.MatchString(got) {
			t.Fatalf("%q via %s: %q, want %s", req, addr, got, want)
		}
		return got
	}
	everyNode := func(req string, want *regexp.Regexp) {
		t.Helper()
		for _, n := range c.Nodes {
			expect(n.Cfg.MemcacheAddr, req, want)
		}
	}

	expect(follower, "ms s 5 T60 F3 c\r\nhello\r\n", regexp.MustCompile(`^HD c[1-9][0-9]*\r\n$`))
	everyNode("mg s v f t k\r\n", regexp.MustCompile(`^VA 5 f3 t(59|60) ks\r\nhello\r\n$`))
	expect(follower, "ms s 1 MA\r\n!\r\n", regexp.MustCompile(`^HD\r\n$`))
	everyNode("mg s v\r\n", regexp.MustCompile(`^VA 6\r\nhello!\r\n$`))

	// mg with T touches through the log.
	expect(follower, "mg s T0 t\r\n", regexp.MustCompile(`^HD t-1\r\n$`))
	everyNode("mg s t\r\n", regexp.MustCompile(`^HD t-1\r\n$`))

	expect(follower, "ma n N0 J10 v\r\n", regexp.MustCompile(`^VA 2\r\n10\r\n$`))
	expect(follower, "ma n D5 v\r\n", regexp.MustCompile(`^VA 2\r\n15\r\n$`))
	everyNode("mg n v\r\n", regexp.MustCompile(`^VA 2\r\n15\r\n$`))

	// A CAS read on one follower deletes on another.
	cas := strings.TrimSuffix(strings.TrimPrefix(expect(follower, "mg n c\r\n", regexp.MustCompile(`^HD c[0-9]+\r\n$`)), "HD c"), "\r\n")
	other := c.Others(c.Leader())[1].Cfg.MemcacheAddr
	expect(other, "md n C1\r\n", regexp.MustCompile(`^EX\r\n$`))
	expect(other, "md n C"+cas+" q\r\nmn\r\n", regexp.MustCompile(`^MN\r\n$`))
	everyNode("mg n v\r\n", regexp.MustCompile(`^EN\r\n$`))
}

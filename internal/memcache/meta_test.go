package memcache_test

import (
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
)

// What the golden transcripts cannot hold: replies that depend on
// memcached's clock ticking, me's fields, and
// where hatcheck departs from memcached 1.6.18 on purpose.
func TestMetaHatcheckOnly(t *testing.T) {
	s := servertest.Start(t)
	c := dial(t, s.MemcacheAddr())
	steps := []struct{ req, want string }{
		{"ms k 3 T100 F9\r\nabc\r\n", `^HD\r\n$`},
		// t counts whole seconds left, rounded up as memcached's clock does.
		{"mg k t l f\r\n", `^HD t100 l0 f9\r\n$`},
		// t before T shows the old expiry, after it the new one.
		{"mg k t T50 s\r\n", `^HD t100 s3\r\n$`},
		{"mg k t\r\n", `^HD t50\r\n$`},
		// me: exp (negated seconds left, as memcached prints it), la, cas,
		// fetch.
		{"me k\r\n", `^ME k exp=-50 la=0 cas=[1-9][0-9]* fetch=yes\r\n$`},
		{"ms Zm9v 1 b\r\nx\r\n", `^HD\r\n$`},
		{"me Zm9v b\r\n", `^ME Zm9v exp=-1 la=0 cas=[1-9][0-9]* fetch=no\r\n$`},
		{"mg Zm9v b u\r\n", `^HD\r\n$`}, // u: not a fetch
		{"me Zm9v b\r\n", `^ME Zm9v exp=-1 la=0 cas=[1-9][0-9]* fetch=no\r\n$`},
		{"mg Zm9v b\r\n", `^HD\r\n$`},
		{"me Zm9v b\r\n", `^ME Zm9v exp=-1 la=0 cas=[1-9][0-9]* fetch=yes\r\n$`},
		// The win and stale flags with a TTL that the transcripts cannot
		// pin down (memcached's clock ticks while they are recorded).
		{"mg k h\r\n", `^HD h1\r\n$`},
		{"mg k R30\r\n", `^HD\r\n$`},         // 50 s left: not within R30
		{"mg k R60\r\n", `^HD W\r\n$`},       // within R60: this one recaches
		{"mg k R60 t\r\n", `^HD t50 Z\r\n$`}, // and only this one
		{"md k I T20\r\n", `^HD\r\n$`},
		{"mg k t\r\n", `^HD t20 X W\r\n$`},
		// A lower CAS with I stores a stale value that keeps the expiry
		// and the win sent.
		{"ms k 1 C1 I\r\nx\r\n", `^HD\r\n$`},
		{"mg k t v\r\n", `^VA 1 t20 Z X\r\nx\r\n$`},
		{"ms k 1 I\r\nx\r\n", `^HD\r\n$`}, // I without C changes nothing in memcached either
		// ma's T gives the item the new expiry.
		{"ma n N0 J1 T30 t v\r\n", `^VA 1 t30\r\n1\r\n$`},
		{"ma n T0 t\r\n", `^HD t-1\r\n$`},
		// memcached 1.6.18 keeps the low 32 bits of a length: it reads
		// "set k 0 0 4294967296" as length 0 and stores an empty value
		// (measured), which lets a client hide commands in what looks
		// like data. hatcheck refuses any length outside a signed 32-bit
		// integer.
		{"set k 0 0 4294967296\r\n\r\n", `^CLIENT_ERROR bad command line format\r\nERROR\r\n$`},
		{"ms k 4294967297\r\nx\r\n", `^CLIENT_ERROR bad command line format\r\nERROR\r\n$`},
		{"mn\r\n", `^MN\r\n$`},
	}
	for _, st := range steps {
		got := exchangeUntilQuiet(t, c, st.req)
		if !regexp.MustCompile(st.want).MatchString(got) {
			t.Errorf("%q: %q, want %s", st.req, got, st.want)
		}
	}
}

// exchangeUntilQuiet sends req, then a version marker, and returns what
// came before the marker's reply.
func exchangeUntilQuiet(t *testing.T, c net.Conn, req string) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req + "version\r\n")); err != nil {
		t.Fatal(err)
	}
	marker := regexp.MustCompile(`VERSION [^\r]*\r\n$`)
	var got []byte
	buf := make([]byte, 4096)
	for !marker.Match(got) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("%q: read: %v (have %q)", req, err, got)
		}
	}
	return marker.ReplaceAllString(string(got), "")
}

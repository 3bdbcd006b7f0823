package redis

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkRoundTrip measures the front end over loopback TCP against the
// in-memory node: clients each send one request and wait for its reply,
// the session mix of one SET (1 KB) to four GETs. It is the front end's
// cost per request (parse, dispatch, reply, the socket calls) without
// Raft; compare runs with benchstat.
func BenchmarkRoundTrip(b *testing.B) {
	for _, conns := range []int{1, 50} {
		b.Run("conns="+strconv.Itoa(conns), func(b *testing.B) {
			_, addr := serve(b, testConfig(), nil)
			value := strings.Repeat("v", 1024)
			set := "*3\r\n$3\r\nSET\r\n$4\r\nkey0\r\n$1024\r\n" + value + "\r\n"
			get := "*2\r\n$3\r\nGET\r\n$4\r\nkey0\r\n"
			b.SetParallelism(max(1, conns/2)) // ×GOMAXPROCS clients
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer nc.Close()
				r := bufio.NewReader(nc)
				buf := make([]byte, 2048)
				i := 0
				for pb.Next() {
					req, want := get, 1024+len("$1024\r\n\r\n")
					if i%5 == 0 {
						req, want = set, len("+OK\r\n")
					}
					i++
					if _, err := io.WriteString(nc, req); err != nil {
						b.Error(err)
						return
					}
					if _, err := io.ReadFull(r, buf[:want]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

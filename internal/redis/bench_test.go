package redis

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/hatcheck/hatcheck/internal/netserve"
)

// BenchmarkRoundTrip measures the front end over loopback TCP against the
// in-memory node: clients each send one request and wait for its reply,
// the session mix of one SET (1 KB) to four GETs. It is the front end's
// cost per request (parse, dispatch, reply, the socket calls) without
// Raft; compare runs with benchstat. driver=goroutine serves each
// connection on a goroutine of its own (the design before event loops),
// loops=N on N event loops; default is what a server runs (one loop per
// Go processor here), the name under which runs before event loops were
// recorded.
func BenchmarkRoundTrip(b *testing.B) {
	for _, conns := range []int{1, 50} {
		b.Run("default/conns="+strconv.Itoa(conns), func(b *testing.B) { roundTrips(b, testConfig(), conns) })
	}
	drivers := []struct {
		name  string
		loops int
	}{{"goroutine", 0}, {"loops=1", 1}, {"loops=2", 2}}
	for _, d := range drivers {
		for _, conns := range []int{1, 50} {
			b.Run(d.name+"/conns="+strconv.Itoa(conns), func(b *testing.B) {
				loops, err := netserve.NewLoops(d.loops, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = loops.Stop() })
				cfg := testConfig()
				cfg.Loops = loops
				roundTrips(b, cfg, conns)
			})
		}
	}
}

// roundTrips runs the mix from conns clients against a front end with cfg.
func roundTrips(b *testing.B, cfg Config, conns int) {
	_, addr := serve(b, cfg, nil)
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
		for i := 0; pb.Next(); i++ {
			// Each client's first request is the SET, so its GETs hit.
			req, want := get, len("$1024\r\n\r\n")+1024
			if i%5 == 0 {
				req, want = set, len("+OK\r\n")
			}
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
}

package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
)

// stepServer stands in for a server: it answers every request after a
// pause (longer for reads) and records, for each request, its kind and
// whether the client's next request had already arrived before this reply
// went out. It speaks just enough of each protocol for the bench's codecs.
type stepServer struct {
	protocol string
	ln       net.Listener
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns [][]arrival // per connection, in arrival order
}

// arrival is one request as the stepServer saw it.
type arrival struct {
	kind  string // lock, get, set, del, expire
	early bool   // the next request arrived before this one's reply was sent
}

// Pauses before a reply. A read waits much longer, so that a read's latency
// stands apart from the other requests' when each is timed on its own.
const (
	stepPause = 2 * time.Millisecond
	readPause = 20 * time.Millisecond
)

func startStepServer(t *testing.T, protocol string) *stepServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stepServer{protocol: protocol, ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, nil)
			n := len(s.conns) - 1
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				s.serve(c, n)
			}()
		}
	}()
	t.Cleanup(s.stop)
	return s
}

// stop closes the listener and waits until every connection has ended (the
// bench closes its connections when Run returns).
func (s *stepServer) stop() {
	s.ln.Close()
	s.wg.Wait()
}

func (s *stepServer) serve(c net.Conn, n int) {
	br := bufio.NewReader(c)
	for {
		kind, reply, err := s.readRequest(br)
		if err != nil {
			return // the bench closed the connection (or sent what the test then finds missing)
		}
		pause := stepPause
		if kind == "get" {
			pause = readPause
		}
		// Wait for the pause, watching whether anything more arrives.
		until := time.Now().Add(pause)
		early := br.Buffered() > 0
		if !early {
			_ = c.SetReadDeadline(until)
			_, err := br.Peek(1)
			early = err == nil
			_ = c.SetReadDeadline(time.Time{})
		}
		time.Sleep(time.Until(until))
		s.mu.Lock()
		s.conns[n] = append(s.conns[n], arrival{kind: kind, early: early})
		s.mu.Unlock()
		if _, err := c.Write(reply); err != nil {
			return
		}
	}
}

// readRequest reads one request and returns its kind and a reply the
// bench's codec accepts as a success or an expected miss.
func (s *stepServer) readRequest(br *bufio.Reader) (string, []byte, error) {
	switch s.protocol {
	case "redis":
		line, err := br.ReadString('\n')
		if err != nil {
			return "", nil, err
		}
		n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
		if err != nil || line[0] != '*' {
			return "", nil, fmt.Errorf("bad request line %q", line)
		}
		var args []string
		for i := 0; i < n; i++ {
			hdr, err := br.ReadString('\n')
			if err != nil {
				return "", nil, err
			}
			l, err := strconv.Atoi(strings.TrimSpace(hdr[1:]))
			if err != nil {
				return "", nil, err
			}
			b := make([]byte, l+2)
			if _, err := io.ReadFull(br, b); err != nil {
				return "", nil, err
			}
			args = append(args, string(b[:l]))
		}
		switch strings.ToUpper(args[0]) {
		case "GET":
			return "get", []byte("$-1\r\n"), nil
		case "SET":
			if len(args) > 3 && strings.EqualFold(args[3], "NX") {
				return "lock", []byte("+OK\r\n"), nil
			}
			return "set", []byte("+OK\r\n"), nil
		case "DEL":
			return "del", []byte(":1\r\n"), nil
		case "EXPIRE":
			return "expire", []byte(":1\r\n"), nil
		}
		return "", nil, fmt.Errorf("unexpected command %q", args)
	case "memcache-text":
		line, err := br.ReadString('\n')
		if err != nil {
			return "", nil, err
		}
		f := strings.Fields(line)
		switch f[0] {
		case "set", "add":
			n, _ := strconv.Atoi(f[4])
			if _, err := br.Discard(n + 2); err != nil {
				return "", nil, err
			}
			if f[0] == "add" {
				return "lock", []byte("STORED\r\n"), nil
			}
			return "set", []byte("STORED\r\n"), nil
		case "get":
			return "get", []byte("END\r\n"), nil
		case "delete":
			return "del", []byte("DELETED\r\n"), nil
		case "touch":
			return "expire", []byte("TOUCHED\r\n"), nil
		}
		return "", nil, fmt.Errorf("unexpected command %q", line)
	case "memcache-binary":
		var h [24]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return "", nil, err
		}
		if _, err := br.Discard(int(binary.BigEndian.Uint32(h[8:]))); err != nil {
			return "", nil, err
		}
		var r [24]byte
		r[0], r[1] = 0x81, h[1]
		copy(r[12:16], h[12:16]) // opaque
		kind := map[byte]string{binGet: "get", binSet: "set", binAdd: "lock", binDelete: "del", binTouch: "expire"}[h[1]]
		if kind == "" {
			return "", nil, fmt.Errorf("unexpected opcode %#x", h[1])
		}
		if kind == "get" {
			binary.BigEndian.PutUint16(r[6:], 0x01) // not found
		}
		return kind, r[:], nil
	}
	return "", nil, fmt.Errorf("protocol %q", s.protocol)
}

func (s *stepServer) arrivals() [][]arrival {
	s.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

var inTurnKinds = map[string][]string{
	"lock": {"lock", "get", "set", "del"}, "memcache-lock": {"lock", "get", "set", "del"}, "touch": {"get", "expire"},
}

// TestInTurnScenariosWaitForEachReply: in lock, memcache-lock and touch a
// session's next request reaches the server only after the server has
// answered the one before, in the handler's order, and each request type
// is timed on its own: the slow read does not show in the write's latency.
func TestInTurnScenariosWaitForEachReply(t *testing.T) {
	for _, c := range []struct{ protocol, scenario string }{
		{"redis", "lock"}, {"redis", "touch"},
		{"memcache-text", "memcache-lock"}, {"memcache-text", "touch"},
		{"memcache-binary", "memcache-lock"}, {"memcache-binary", "touch"},
	} {
		t.Run(c.protocol+"/"+c.scenario, func(t *testing.T) {
			srv := startStepServer(t, c.protocol)
			cfg := Config{Addrs: []string{srv.ln.Addr().String()}, Protocol: c.protocol, Scenario: c.scenario,
				Connections: 2, Pipeline: 1, ValueSize: 10, Keys: 10, TTL: time.Minute, Duration: 300 * time.Millisecond}
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := inTurnKinds[c.scenario]
			for ci, conn := range srv.arrivals() {
				if len(conn) < 2*len(want) {
					t.Fatalf("connection %d: only %d requests", ci, len(conn))
				}
				for i, a := range conn {
					if a.kind != want[i%len(want)] {
						t.Fatalf("connection %d: request %d is %s, want %s (sequence %v)", ci, i, a.kind, want[i%len(want)], conn)
					}
					if a.early {
						t.Fatalf("connection %d: request %d (%s) arrived before the reply to request %d was sent", ci, i+1, conn[min(i+1, len(conn)-1)].kind, i)
					}
				}
			}
			get, other := res.ByKind["get"], res.ByKind[want[len(want)-1]]
			if get.Count == 0 || other.Count == 0 {
				t.Fatalf("no figures: %+v", res.ByKind)
			}
			// Pipelined, the last request's latency would include the read's
			// 20 ms pause; in turn it is its own 2 ms.
			if other.P50us*2 > get.P50us {
				t.Fatalf("%s p50 %d µs is not well below get's %d µs: %+v", want[len(want)-1], other.P50us, get.P50us, res.ByKind)
			}
		})
	}
}

// TestPipelineWithInTurnScenarios: with --pipeline n a lock connection
// carries n sessions side by side; each step goes out for all n at once,
// and the next step only after all n replies.
func TestPipelineWithInTurnScenarios(t *testing.T) {
	srv := startStepServer(t, "redis")
	cfg := Config{Addrs: []string{srv.ln.Addr().String()}, Protocol: "redis", Scenario: "lock",
		Connections: 1, Pipeline: 3, ValueSize: 10, Keys: 10, TTL: time.Minute, Duration: 300 * time.Millisecond}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	conn := srv.arrivals()[0]
	want := inTurnKinds["lock"]
	if len(conn) < 3*len(want) {
		t.Fatalf("only %d requests", len(conn))
	}
	for i, a := range conn {
		step := i / 3
		if a.kind != want[step%len(want)] {
			t.Fatalf("request %d is %s, want %s (sequence %v)", i, a.kind, want[step%len(want)], conn)
		}
		// The first two of a step arrive with the next; the third waits
		// for its reply before the next step leaves.
		if last := i%3 == 2; a.early == last {
			t.Fatalf("request %d: early %v (sequence %v)", i, a.early, conn)
		}
	}
}

// TestMixIsStillPipelined: the plain scenarios keep sending --pipeline
// requests before reading the replies.
func TestMixIsStillPipelined(t *testing.T) {
	srv := startStepServer(t, "redis")
	cfg := Config{Addrs: []string{srv.ln.Addr().String()}, Protocol: "redis", Scenario: "mix",
		Connections: 1, Pipeline: 4, ValueSize: 10, Keys: 10, TTL: time.Minute, Duration: 200 * time.Millisecond}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	conn := srv.arrivals()[0]
	if len(conn) < 4 {
		t.Fatalf("only %d requests", len(conn))
	}
	for i, a := range conn[:len(conn)/4*4] {
		if last := i%4 == 3; a.early == last {
			t.Fatalf("request %d: early %v (sequence %v)", i, a.early, conn)
		}
	}
}

// TestRateCountsRequests: --rate is requests per second in total, also
// when a session is several requests sent in turn.
func TestRateCountsRequests(t *testing.T) {
	s := servertest.Start(t)
	cfg := quick(s.RedisAddr(), "redis", "lock")
	cfg.Rate, cfg.Duration, cfg.Prefill = 200, time.Second, false
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops < 120 || res.Ops > 215 {
		t.Fatalf("%d requests in %.1fs at --rate 200", res.Ops, res.Seconds)
	}
}

package netserve

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echoSession answers each line with the same line. "panic" panics;
// "slow" is answered "slow" by another goroutine 50 ms later (a request
// that waits for a completion), and the lines after it wait for it;
// "fast" is answered "fast" by a completion that comes before the call
// returns; "push" makes another goroutine push "pushed"; "quit" closes.
type echoSession struct {
	Waiter
	link     Link
	buf      []byte
	out      []byte
	stopping atomic.Bool
	closed   chan struct{}
}

func newEcho(l Link) *echoSession {
	e := &echoSession{link: l, closed: make(chan struct{})}
	e.Waiter.Link = l
	return e
}

func (e *echoSession) Run(in []byte) ([]byte, bool) {
	e.out = e.out[:0]
	e.buf = append(e.buf, in...)
	if e.Busy() && !e.Resume() {
		return nil, false // woken early: still waiting
	}
	for !e.stopping.Load() && !e.Busy() {
		i := bytes.IndexByte(e.buf, '\n')
		if i < 0 {
			break
		}
		line := string(e.buf[:i+1])
		e.buf = e.buf[i+1:]
		switch line {
		case "panic\n":
			panic("boom")
		case "quit\n":
			return e.out, true
		case "push\n":
			go e.link.Push([]byte("pushed\n"))
		case "slow\n":
			e.Await(func(done func(func())) {
				go func() {
					time.Sleep(50 * time.Millisecond)
					done(func() { e.out = append(e.out, "slow\n"...) })
				}()
			})
		case "fast\n":
			e.Await(func(done func(func())) { done(func() { e.out = append(e.out, "fast\n"...) }) })
		default:
			e.out = append(e.out, line...)
		}
	}
	return e.out, e.stopping.Load() && !e.Busy()
}

func (e *echoSession) Shutdown() { e.stopping.Store(true) }
func (e *echoSession) Closed()   { close(e.closed) }

// drivers runs a test under both drivers.
func drivers(t *testing.T, f func(t *testing.T, loops *Loops)) {
	for _, n := range []int{0, 2} {
		name := "goroutine"
		if n > 0 {
			name = "loops"
		}
		t.Run(name, func(t *testing.T) {
			loops, err := NewLoops(n, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = loops.Stop() })
			f(t, loops)
		})
	}
}

func start(t *testing.T, cfg Config) (*Server[*echoSession], string) {
	t.Helper()
	s := New[*echoSession](cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln, newEcho) }()
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
	})
	return s, ln.Addr().String()
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, line string) string {
	t.Helper()
	if _, err := c.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	got, _ := r.ReadString('\n')
	return got
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 500 {
			t.Fatal(what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClientLimitAndPanic(t *testing.T) {
	drivers(t, func(t *testing.T, loops *Loops) {
		s, addr := start(t, Config{Loops: loops, MaxClients: func() int { return 1 }, Refusal: []byte("full\n")})
		a, ar := dial(t, addr)
		if got := roundTrip(t, a, ar, "hi\n"); got != "hi\n" {
			t.Fatalf("echo: %q", got)
		}
		b, _ := dial(t, addr)
		if got, _ := io.ReadAll(b); string(got) != "full\n" {
			t.Fatalf("client over the limit got %q", got)
		}
		if s.Rejected() != 1 || s.Accepted() != 2 || s.Len() != 1 {
			t.Fatalf("rejected %d accepted %d len %d", s.Rejected(), s.Accepted(), s.Len())
		}
		// A panicking session is dropped and forgotten; the server goes on.
		if got := roundTrip(t, a, ar, "panic\n"); got != "" {
			t.Fatalf("panicking connection answered %q", got)
		}
		waitFor(t, "panicked connection still counted", func() bool { return s.Len() == 0 })
		c, cr := dial(t, addr)
		if got := roundTrip(t, c, cr, "again\n"); got != "again\n" {
			t.Fatalf("after a panic: %q", got)
		}
	})
}

// A request that waits for a completion holds back the replies after it,
// which leave in request order once it completes.
func TestRepliesInOrderAcrossCompletions(t *testing.T) {
	drivers(t, func(t *testing.T, loops *Loops) {
		_, addr := start(t, Config{Loops: loops})
		c, r := dial(t, addr)
		if _, err := c.Write([]byte("a\nslow\nb\nfast\nslow\nc\n")); err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		for range 6 {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			got.WriteString(line)
		}
		if want := "a\nslow\nb\nfast\nslow\nc\n"; got.String() != want {
			t.Fatalf("replies %q, want %q", got.String(), want)
		}
		// Pushed bytes reach the client too.
		if got := roundTrip(t, c, r, "push\n"); got != "pushed\n" {
			t.Fatalf("push: %q", got)
		}
	})
}

// Close lets the request in flight finish and be answered, then closes.
func TestCloseFinishesRequestInFlight(t *testing.T) {
	drivers(t, func(t *testing.T, loops *Loops) {
		s := New[*echoSession](Config{Loops: loops})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Serve(ln, newEcho) }()
		c, r := dial(t, ln.Addr().String())
		idle, ir := dial(t, ln.Addr().String())
		if got := roundTrip(t, idle, ir, "x\n"); got != "x\n" {
			t.Fatal(got)
		}
		if _, err := c.Write([]byte("slow\n")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "slow request not started", func() bool {
			busy := false
			s.Each(func(e *echoSession) { busy = busy || e.Busy() })
			return busy
		})
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(r); string(got) != "slow\n" {
			t.Fatalf("in-flight request answered %q before close", got)
		}
		if got, _ := io.ReadAll(ir); len(got) != 0 {
			t.Fatalf("idle client got %q", got)
		}
		if s.Len() != 0 {
			t.Fatalf("%d connections left after Close", s.Len())
		}
		if err := <-done; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		if err := s.Serve(ln, nil); err != ErrClosed {
			t.Fatalf("Serve after Close: %v", err)
		}
	})
}

// A silent client is closed after the idle timeout; a busy one is not.
func TestIdleTimeout(t *testing.T) {
	drivers(t, func(t *testing.T, loops *Loops) {
		var timeout atomic.Int64
		timeout.Store(int64(100 * time.Millisecond))
		s, addr := start(t, Config{Loops: loops, IdleTimeout: func() time.Duration { return time.Duration(timeout.Load()) }})
		c, r := dial(t, addr)
		start := time.Now()
		if got := roundTrip(t, c, r, "x\n"); got != "x\n" {
			t.Fatal(got)
		}
		if _, err := r.ReadString('\n'); err != io.EOF {
			t.Fatalf("idle client: %v, want EOF", err)
		}
		if took := time.Since(start); took < 100*time.Millisecond {
			t.Fatalf("closed after %v, before the timeout", took)
		}
		waitFor(t, "closed client still counted", func() bool { return s.Len() == 0 })
		// Turned off at run time: a client stays.
		timeout.Store(0)
		d, dr := dial(t, addr)
		time.Sleep(300 * time.Millisecond)
		if got := roundTrip(t, d, dr, "y\n"); got != "y\n" {
			t.Fatalf("without a timeout: %q", got)
		}
	})
}

// A session that asks to close has its last replies sent first.
func TestQuitFlushesReplies(t *testing.T) {
	drivers(t, func(t *testing.T, loops *Loops) {
		_, addr := start(t, Config{Loops: loops})
		c, r := dial(t, addr)
		if _, err := c.Write([]byte("a\nb\nquit\nnever\n")); err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(r); string(got) != "a\nb\n" {
			t.Fatalf("got %q", got)
		}
	})
}

package netserve

import (
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Loops is a set of event loops that serve accepted TCP connections. The
// accept loop of each Server stays a goroutine (it owns the listener, the
// client limit and the refusal); each accepted socket is then enrolled in
// the least loaded loop, which reads it when epoll says it is readable,
// runs its session and writes the replies, all on the loop's thread.
type Loops struct {
	cli *gnet.Client
}

// NewLoops starts n event loops; n <= 0 returns loops that are off, so
// every connection runs on the goroutine driver.
func NewLoops(n int, log *slog.Logger) (*Loops, error) {
	if n <= 0 {
		return &Loops{}, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cli, err := gnet.NewClient(&handler{}, gnet.WithNumEventLoop(n), gnet.WithLogger(gnetLogger{log}))
	if err != nil {
		return nil, err
	}
	if err := cli.Start(); err != nil {
		return nil, err
	}
	return &Loops{cli: cli}, nil
}

// On reports whether the loops run connections.
func (ls *Loops) On() bool { return ls != nil && ls.cli != nil }

// Stop ends the loops and closes the connections still on them.
func (ls *Loops) Stop() error {
	if !ls.On() {
		return nil
	}
	return ls.cli.Stop()
}

var (
	defaultLoopsOnce sync.Once
	defaultLoops     *Loops
	defaultLoopsErr  error
)

// DefaultLoops returns the process's shared event loops, started on first
// use, one per Go processor: what a front end uses when its configuration
// names none (the server names its own, see --event-loops). They live as
// long as the process, like Go's own network poller.
func DefaultLoops() (*Loops, error) {
	defaultLoopsOnce.Do(func() {
		defaultLoops, defaultLoopsErr = NewLoops(runtime.GOMAXPROCS(0), slog.Default())
	})
	return defaultLoops, defaultLoopsErr
}

// loopLink is a connection on an event loop. Its session runs only on
// that loop.
type loopLink struct {
	gc     atomic.Pointer[connBox] // set when the loop opens the connection
	remote net.Addr
	local  net.Addr
	last   atomic.Int64 // unix ns of the last input

	run    func([]byte) ([]byte, bool) // the session's Run
	closed func()                      // forgets the session, once
	panic  func(any, []byte)
}

func (l *loopLink) RemoteAddr() net.Addr { return l.remote }
func (l *loopLink) LocalAddr() net.Addr  { return l.local }

// connBox holds a gnet.Conn for an atomic pointer.
type connBox struct{ gnet.Conn }

// Wake queues a run of the session on its loop (gnet's Wake runs
// OnTraffic there; with no new input the session sees an empty read).
// Before the loop has opened the connection there is nothing to wake: the
// open runs the session anyway.
func (l *loopLink) Wake() {
	if b := l.gc.Load(); b != nil {
		_ = b.Wake(nil)
	}
}

func (l *loopLink) Push(b []byte) {
	gc := l.gc.Load()
	if gc == nil {
		return
	}
	_ = gc.AsyncWrite(b, func(c gnet.Conn, err error) error {
		if err == nil && c.OutboundBuffered() > PushLimit {
			return c.Close()
		}
		return nil
	})
}

func (l *loopLink) Close() {
	if b := l.gc.Load(); b != nil {
		_ = b.Close()
	}
}

func (l *loopLink) interrupt()           { l.Wake() }
func (l *loopLink) idleSince() time.Time { return time.Unix(0, l.last.Load()) }

// enrollConn hands an accepted TCP connection to the loops, with a new
// session.
func enrollConn[S Session](ls *Loops, s *Server[S], tc *net.TCPConn, newSession func(Link) S) error {
	l := &loopLink{remote: tc.RemoteAddr(), local: tc.LocalAddr(), panic: s.logPanic}
	l.last.Store(time.Now().UnixNano())
	sess := newSession(l)
	l.run = sess.Run
	var once sync.Once
	l.closed = func() {
		once.Do(func() {
			sess.Closed()
			s.remove(sess)
		})
	}
	if !s.add(sess, l) {
		tc.Close()
		sess.Closed()
		return nil
	}
	if _, err := ls.cli.EnrollContext(tc, l); err != nil {
		l.closed()
		return fmt.Errorf("enroll: %w", err)
	}
	return nil
}

// handler is the loops' gnet event handler; each connection's context is
// its *loopLink.
type handler struct {
	gnet.BuiltinEventEngine
}

func (h *handler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	l := c.Context().(*loopLink)
	l.gc.Store(&connBox{c})
	return h.serve(l, nil)
}

func (h *handler) OnTraffic(c gnet.Conn) gnet.Action {
	l := c.Context().(*loopLink)
	in, _ := c.Next(-1)
	if len(in) > 0 {
		l.last.Store(time.Now().UnixNano())
	}
	out, action := h.serve(l, in)
	if len(out) > 0 {
		if _, err := c.Write(out); err != nil {
			return gnet.Close
		}
	}
	return action
}

// serve runs the session and turns a panic into a closed connection.
func (h *handler) serve(l *loopLink, in []byte) (out []byte, action gnet.Action) {
	defer func() {
		if v := recover(); v != nil {
			l.panic(v, debug.Stack())
			out, action = nil, gnet.Close
		}
	}()
	out, done := l.run(in)
	if done {
		return out, gnet.Close
	}
	return out, gnet.None
}

func (h *handler) OnClose(c gnet.Conn, _ error) gnet.Action {
	c.Context().(*loopLink).closed()
	return gnet.None
}

// gnetLogger sends gnet's own log lines to slog.
type gnetLogger struct{ log *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) {
	g.log.Debug(fmt.Sprintf(f, a...), "component", "gnet")
}
func (g gnetLogger) Infof(f string, a ...any) { g.log.Debug(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Warnf(f string, a ...any) { g.log.Warn(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Errorf(f string, a ...any) {
	g.log.Error(fmt.Sprintf(f, a...), "component", "gnet")
}
func (g gnetLogger) Fatalf(f string, a ...any) {
	g.log.Error(fmt.Sprintf(f, a...), "component", "gnet")
}

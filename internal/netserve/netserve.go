// Package netserve runs the connections of a TCP front end: accepting,
// the client limit, idle timeouts, containing a panicking connection, and
// graceful shutdown. Everything here is protocol-free: a protocol package
// (redis, memcache) supplies a Session, a state machine over bytes, and
// netserve drives it.
//
// Two drivers run sessions. Plain TCP connections go to event loops
// (github.com/panjf2000/gnet/v2, one loop per Go processor by default): a
// loop reads what a socket has, hands it to the session and writes the
// replies, with no goroutine per connection or per request. Any other
// net.Conn (TLS, in-memory pipes, or every connection when event loops are
// turned off) runs on a goroutine of its own. A session behaves the same
// under both.
package netserve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("netserve: server closed")

// Session is one client's protocol state: bytes in, replies out. The
// driver calls Run, Shutdown's effect and Closed on one goroutine at a time
// (an event loop or the connection's goroutine); only Busy and Shutdown
// are called from others.
type Session interface {
	comparable
	// Run is handed the bytes the client sent since the last call (none
	// when the session was woken, see Link.Wake). It returns the replies to
	// send (the driver writes them before the next Run, so the session may
	// reuse the slice then) and whether to close the connection after
	// them. While a request waits for something (a commit, a read
	// barrier), Run keeps later input and returns; the completion calls
	// Link.Wake, and the next Run goes on where it stopped.
	Run(in []byte) (out []byte, done bool)
	// Busy reports whether a request is in flight: its completion will
	// wake the session. The idle timeout spares a busy session. Safe from
	// any goroutine.
	Busy() bool
	// Shutdown asks the session to finish the request in flight, if any,
	// and then to end: its next Run returns done. Safe from any goroutine;
	// the driver runs the session afterwards.
	Shutdown()
	// Closed is called once, after the connection has ended.
	Closed()
}

// Link is a session's handle on its connection.
type Link interface {
	RemoteAddr() net.Addr
	LocalAddr() net.Addr
	// Wake makes the driver call Run soon. Safe from any goroutine; a
	// completion calls it after storing its result.
	Wake()
	// Push sends bytes outside the request/reply flow (pub/sub messages),
	// after everything written before. Safe from any goroutine; the
	// driver owns b from now on. A client that stops reading is
	// disconnected once PushLimit bytes wait for it.
	Push(b []byte)
	// Close closes the connection at once. Safe from any goroutine.
	Close()
}

// link is a driver's connection as the server tracks it.
type link interface {
	Link
	// interrupt makes the driver run the session soon, even if it is
	// blocked waiting for input (used after Session.Shutdown).
	interrupt()
	// idleSince is when input last arrived.
	idleSince() time.Time
}

// PushLimit bounds the bytes waiting to be written to one client: a
// subscriber that does not read its messages is disconnected beyond it
// (redis-server's pub/sub client-output-buffer-limit hard limit).
const PushLimit = 32 << 20

// Config holds a Server's settings.
type Config struct {
	// MaxClients returns the client limit (0 = none); it is read for
	// every new connection, so a limit changed at run time applies.
	MaxClients func() int
	// IdleTimeout returns how long a client may stay silent (0 = for
	// ever); read on every sweep, so it too may change at run time.
	IdleTimeout func() time.Duration
	// Refusal is written to a client over the limit before it is closed,
	// in the protocol's own words.
	Refusal []byte
	// Loops runs plain TCP connections; nil means the process's shared
	// loops (see DefaultLoops). Loops that are off (NewLoops(0)) leave
	// every connection to the goroutine driver.
	Loops  *Loops
	Logger *slog.Logger
}

// Server tracks the connections of its listeners: one front end may serve
// several ports (plain TCP and TLS), with one client limit and one set of
// clients.
type Server[S Session] struct {
	cfg Config

	mu      sync.Mutex
	lns     []net.Listener
	conns   map[S]link
	closed  bool
	drained chan struct{} // closed when conns empties after Close
	sweeper chan struct{} // closed by Close to stop the idle sweep

	accepted atomic.Int64
	rejected atomic.Int64
}

// New returns a server; call Serve with a listener.
func New[S Session](cfg Config) *Server[S] {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxClients == nil {
		cfg.MaxClients = func() int { return 0 }
	}
	if cfg.IdleTimeout == nil {
		cfg.IdleTimeout = func() time.Duration { return 0 }
	}
	return &Server[S]{cfg: cfg, conns: map[S]link{}, sweeper: make(chan struct{})}
}

// Serve accepts connections until Close, running each with the session
// newSession makes for it. It returns nil after Close. It may be called
// for several listeners at once.
func (s *Server[S]) Serve(ln net.Listener, newSession func(Link) S) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.lns = append(s.lns, ln)
	first := len(s.lns) == 1
	s.mu.Unlock()
	loops := s.cfg.Loops
	if loops == nil {
		var err error
		if loops, err = DefaultLoops(); err != nil {
			s.cfg.Logger.Warn("event loops unavailable; serving each connection on its own goroutine", "err", err)
			loops = &Loops{}
		}
	}
	if first {
		go s.sweep()
	}
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.accepted.Add(1)
		s.mu.Lock()
		closed := s.closed
		max := s.cfg.MaxClients()
		tooMany := max > 0 && len(s.conns) >= max
		s.mu.Unlock()
		switch {
		case closed:
			nc.Close()
			continue
		case tooMany:
			s.rejected.Add(1)
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = nc.Write(s.cfg.Refusal)
			nc.Close()
			continue
		}
		if tc, ok := nc.(*net.TCPConn); ok && loops.On() {
			if err := enrollConn(loops, s, tc, newSession); err != nil {
				s.cfg.Logger.Warn("could not hand a connection to an event loop", "err", err)
			}
			continue
		}
		s.runConn(nc, newSession)
	}
}

// add registers a new session; it reports false (and the caller closes the
// connection) when the server is closing.
func (s *Server[S]) add(sess S, l link) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[sess] = l
	return true
}

// remove forgets a session whose connection ended.
func (s *Server[S]) remove(sess S) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, sess)
	if s.closed && len(s.conns) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

// logPanic reports a panic in a session; the caller closes its connection.
// A bug in one request must not take down the server and every other
// client with it.
func (s *Server[S]) logPanic(v any, stack []byte) {
	s.cfg.Logger.Error("panic serving client; connection closed", "panic", v, "stack", string(stack))
}

// sweep closes clients idle for longer than the idle timeout. A session
// with a request in flight is not idle.
func (s *Server[S]) sweep() {
	t := time.NewTicker(sweepEvery(s.cfg.IdleTimeout()))
	defer t.Stop()
	for {
		select {
		case <-s.sweeper:
			return
		case now := <-t.C:
			limit := s.cfg.IdleTimeout()
			t.Reset(sweepEvery(limit))
			if limit <= 0 {
				continue
			}
			var idle []link
			s.mu.Lock()
			for sess, l := range s.conns {
				if now.Sub(l.idleSince()) > limit && !sess.Busy() {
					idle = append(idle, l)
				}
			}
			s.mu.Unlock()
			for _, l := range idle {
				l.Close()
			}
		}
	}
}

// sweepEvery is how often idle clients are looked for: a tenth of the
// timeout, between 10 ms and 1 s.
func sweepEvery(limit time.Duration) time.Duration {
	return min(max(limit/10, 10*time.Millisecond), time.Second)
}

// Close stops accepting, lets every connection finish the request it is
// running, and waits for them until ctx ends; then it closes those left.
func (s *Server[S]) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.sweeper)
	}
	for _, ln := range s.lns {
		ln.Close()
	}
	drained := make(chan struct{})
	if len(s.conns) == 0 {
		close(drained)
	} else {
		s.drained = drained
	}
	links := make([]link, 0, len(s.conns))
	for sess, l := range s.conns {
		sess.Shutdown()
		links = append(links, l)
	}
	s.mu.Unlock()
	for _, l := range links {
		l.interrupt()
	}
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for _, l := range s.conns {
			l.Close()
		}
		s.mu.Unlock()
		<-drained
		return ctx.Err()
	}
}

// Len is the number of connected clients.
func (s *Server[S]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Each calls f for every connected client, holding the lock that keeps
// the set from changing: f must not block.
func (s *Server[S]) Each(f func(S)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.conns {
		f(sess)
	}
}

// Accepted is the number of connections accepted since start, refused
// ones included.
func (s *Server[S]) Accepted() int64 { return s.accepted.Load() }

// Rejected is the number of connections refused for the client limit.
func (s *Server[S]) Rejected() int64 { return s.rejected.Load() }

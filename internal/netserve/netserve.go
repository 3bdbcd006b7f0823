// Package netserve runs the connections of a TCP front end: accepting,
// the client limit, containing a panicking connection, and graceful
// shutdown. The protocol packages (redis, memcache) supply the connection
// type; everything here is protocol-free.
package netserve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("netserve: server closed")

// Conn is one client connection.
type Conn interface {
	comparable
	// Serve handles the client until it leaves or Shutdown is called.
	Serve()
	// Shutdown asks Serve to return once the request it is running is
	// answered. It is called from another goroutine.
	Shutdown()
	// Close closes the socket at once.
	Close() error
}

// Config holds a Server's settings.
type Config struct {
	// MaxClients returns the client limit (0 = none); it is read for
	// every new connection, so a limit changed at run time applies.
	MaxClients func() int
	// Refusal is written to a client over the limit before it is closed,
	// in the protocol's own words.
	Refusal []byte
	Logger  *slog.Logger
}

// Server tracks the connections of one listener.
type Server[C Conn] struct {
	cfg Config

	mu     sync.Mutex
	ln     net.Listener
	conns  map[C]struct{}
	closed bool
	wg     sync.WaitGroup

	accepted atomic.Int64
	rejected atomic.Int64
}

// New returns a server; call Serve with a listener.
func New[C Conn](cfg Config) *Server[C] {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxClients == nil {
		cfg.MaxClients = func() int { return 0 }
	}
	return &Server[C]{cfg: cfg, conns: map[C]struct{}{}}
}

// Serve accepts connections until Close, running each with newConn's
// connection in its own goroutine. It returns nil after Close.
func (s *Server[C]) Serve(ln net.Listener, newConn func(net.Conn) C) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.ln = ln
	s.mu.Unlock()
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
		c := newConn(nc)
		s.mu.Lock()
		closed := s.closed
		max := s.cfg.MaxClients()
		tooMany := max > 0 && len(s.conns) >= max
		if !closed && !tooMany {
			s.conns[c] = struct{}{}
			s.wg.Add(1)
		}
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
		go s.run(c)
	}
}

func (s *Server[C]) run(c C) {
	defer s.wg.Done()
	defer func() {
		// A bug in one request must not take down the server and every
		// other client with it: log it and drop this client.
		if v := recover(); v != nil {
			s.cfg.Logger.Error("panic serving client; connection closed", "panic", v, "stack", string(debug.Stack()))
			_ = c.Close()
		}
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	c.Serve()
}

// Close stops accepting, lets every connection finish the request it is
// running, and waits for them until ctx ends; then it closes those left.
func (s *Server[C]) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.Shutdown()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Each(func(c C) { _ = c.Close() })
		<-done
		return ctx.Err()
	}
}

// Len is the number of connected clients.
func (s *Server[C]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Each calls f for every connected client, holding the lock that keeps
// the set from changing: f must not block.
func (s *Server[C]) Each(f func(C)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		f(c)
	}
}

// Accepted is the number of connections accepted since start, refused
// ones included.
func (s *Server[C]) Accepted() int64 { return s.accepted.Load() }

// Rejected is the number of connections refused for the client limit.
func (s *Server[C]) Rejected() int64 { return s.rejected.Load() }

// YieldBeforeRead is called by a connection that has written its replies
// and is about to read the client's next request. That request is rarely
// there yet (the client has to receive the reply first), so reading at once
// mostly fails with EAGAIN, parks the goroutine on the netpoller and costs a
// wake-up later. Letting the other runnable connections go first gives the
// request time to arrive: under load the read then succeeds at once, and with
// nothing else runnable the yield returns immediately. Measured with
// `strace -c -f` on a read-only load of 50 connections: 1,114 of 19,191 reads
// returned EAGAIN and 749 futex calls before, 3 of 23,166 and 4 after; reads
// only, five same-run pairs: 47.6–74.9k → 62.5–89.0k ops/s.
func YieldBeforeRead() { runtime.Gosched() }

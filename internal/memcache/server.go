// Package memcache is the memcached front end: the text and binary
// protocols of memcached 1.6 over the replicated keyspace (database 0).
// The protocol is chosen per connection by its first byte, as memcached
// does: 0x80 starts a binary request, anything else is text.
package memcache

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
)

// Node is what the front end needs from the replicated store.
type Node interface {
	Write(ctx context.Context, tx command.Tx) (command.TxResult, error)
	Read(ctx context.Context, c *command.Cmd) (command.Result, error)
}

// Metrics receives the front end's observations.
type Metrics interface {
	Command(name string, d time.Duration, failed bool)
	Connections(delta int)
	Lookups(hits, misses int)
	Bytes(read, written int)
}

// Version is the memcached version reported by "version" and "stats";
// clients compare it to pick protocol features.
const Version = "1.6.18"

// Config holds the front end's settings.
type Config struct {
	RequirePass string // enables SASL PLAIN (binary) and "set"-based login (text)
	MaxClients  int
	Timeout     time.Duration // idle connections are closed; 0 = never
	MaxItemSize int           // largest value, like memcached -I (default 1 MB)
	Logger      *slog.Logger
	Metrics     Metrics
}

// Server serves the memcached protocols.
type Server struct {
	cfg     Config
	node    Node
	log     *slog.Logger
	started time.Time

	mu     sync.Mutex
	ln     net.Listener
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup

	totalConns atomic.Int64
	cmdGet     atomic.Int64
	cmdSet     atomic.Int64
	hits       atomic.Int64
	misses     atomic.Int64
	flushTimer *time.Timer
}

// New returns a server; call Serve with a listener.
func New(cfg Config, node Node) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxItemSize <= 0 {
		cfg.MaxItemSize = 1 << 20
	}
	return &Server{cfg: cfg, node: node, log: cfg.Logger, conns: map[*conn]struct{}{}, started: time.Now()}
}

// Serve accepts connections until Close; it returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("memcache: server closed")
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
		s.totalConns.Add(1)
		c := &conn{srv: s, nc: nc, authed: s.cfg.RequirePass == ""}
		s.mu.Lock()
		full := s.closed || (s.cfg.MaxClients > 0 && len(s.conns) >= s.cfg.MaxClients)
		if !full {
			s.conns[c] = struct{}{}
			s.wg.Add(1)
		}
		s.mu.Unlock()
		if full {
			// memcached answers this in text whatever the protocol.
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = nc.Write([]byte("SERVER_ERROR Too many open connections\r\n"))
			nc.Close()
			continue
		}
		go func() {
			defer s.wg.Done()
			defer func() {
				// A bug in one request must not take down the server and
				// every other client with it: log it and drop this client.
				if v := recover(); v != nil {
					s.log.Error("panic serving client; connection closed", "panic", v, "stack", string(debug.Stack()))
					c.nc.Close()
				}
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			c.serve()
		}()
	}
}

// Close stops accepting, lets each connection finish its current request,
// and waits for them until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	if s.flushTimer != nil {
		s.flushTimer.Stop()
	}
	for c := range s.conns {
		c.shutdown()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

func (s *Server) checkPassword(p []byte) bool {
	return subtle.ConstantTimeCompare(p, []byte(s.cfg.RequirePass)) == 1
}

func (s *Server) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// scheduleFlush runs flush_all with a delay: memcached invalidates items at
// that time; here the flush goes through the log when the delay is over.
func (s *Server) scheduleFlush(delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.flushTimer != nil {
		s.flushTimer.Stop()
	}
	s.flushTimer = time.AfterFunc(delay, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := s.node.Write(ctx, command.Tx{{Op: command.OpFlushDB}}); err != nil {
			s.log.Warn("delayed flush_all failed", "err", err)
		}
	})
}

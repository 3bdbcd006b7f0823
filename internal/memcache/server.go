// Package memcache is the memcached front end: the text and binary
// protocols of memcached 1.6 over the replicated keyspace (database 0).
// The protocol is chosen per connection by its first byte, as memcached
// does: 0x80 starts a binary request, anything else is text.
package memcache

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/netserve"
)

// Node is what the front end needs from the replicated store. Both
// methods call done exactly once, on any goroutine, perhaps before they
// return; done must not block. ReadAsync does not keep c after done.
type Node interface {
	WriteAsync(tx command.Tx, done func(command.TxResult, error))
	ReadAsync(c *command.Cmd, done func(command.Result, error))
	// ReadNow answers a read if it can at once (false: use ReadAsync).
	ReadNow(c *command.Cmd) (command.Result, bool)
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
	// Users, if set, are the ACL users (the Redis front end's): logins
	// check a user's password, and RequirePass is not used.
	Users       Users
	MaxClients  int
	Timeout     time.Duration // idle connections are closed; 0 = never
	MaxItemSize int           // largest value, like memcached -I (default 1 MB)
	Logger      *slog.Logger
	Metrics     Metrics
	// Loops serves plain TCP clients; nil means netserve.DefaultLoops.
	Loops *netserve.Loops
}

// Users checks logins against the ACL users.
type Users interface {
	// Authenticate reports whether pass is a password of user, an
	// enabled user.
	Authenticate(user, pass []byte) bool
	// HasUser reports whether a user of that name exists.
	HasUser(user []byte) bool
	// DefaultUserOpen reports whether the default user is on and needs
	// no password: then no login is needed (and only loopback clients
	// are served).
	DefaultUserOpen() bool
}

// Server serves the memcached protocols.
type Server struct {
	cfg     Config
	node    Node
	log     *slog.Logger
	started time.Time

	conns *netserve.Server[*conn]

	cmdGet atomic.Int64
	cmdSet atomic.Int64
	hits   atomic.Int64
	misses atomic.Int64

	mu         sync.Mutex // guards closed and flushTimer
	closed     bool
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
	return &Server{cfg: cfg, node: node, log: cfg.Logger, started: time.Now(),
		conns: netserve.New[*conn](netserve.Config{
			MaxClients:  func() int { return cfg.MaxClients },
			IdleTimeout: func() time.Duration { return cfg.Timeout },
			// memcached answers this in text whatever the protocol.
			Refusal: []byte("SERVER_ERROR Too many open connections\r\n"),
			Loops:   cfg.Loops,
			Logger:  cfg.Logger,
		})}
}

// Serve accepts connections until Close; it returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	return s.conns.Serve(ln, func(l netserve.Link) *conn {
		c := newConn(s, l)
		c.authed = s.open()
		return c
	})
}

// Close stops accepting, lets each connection finish its current request,
// and waits for them until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	if s.flushTimer != nil {
		s.flushTimer.Stop()
	}
	s.mu.Unlock()
	return s.conns.Close(ctx)
}

// open reports whether clients need no login.
func (s *Server) open() bool {
	if s.cfg.Users != nil {
		return s.cfg.Users.DefaultUserOpen()
	}
	return s.cfg.RequirePass == ""
}

// login checks a SASL or text login. With ACL users, a user name that is
// no user's at all means the default user (memcached clients must send some
// name; before ACL users any was accepted with the one password).
func (s *Server) login(user, pass []byte) bool {
	if u := s.cfg.Users; u != nil {
		if !u.HasUser(user) {
			user = []byte("default")
		}
		return u.Authenticate(user, pass)
	}
	return subtle.ConstantTimeCompare(pass, []byte(s.cfg.RequirePass)) == 1
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
		s.node.WriteAsync(command.Tx{{Op: command.OpFlushDB}}, func(res command.TxResult, err error) {
			if err == nil {
				err = res.Err
			}
			if err != nil {
				s.log.Warn("delayed flush_all failed", "err", err)
			}
		})
	})
}

// Package redis is the Redis-protocol front end: it parses RESP requests,
// keeps per-connection state (AUTH, SELECT, MULTI, client name), turns data
// commands into typed commands for the node and encodes the results as
// redis-server 7 does, byte for byte.
//
// Layout: server.go (Server, Config, Node), conn.go (a connection's state
// machine: parsing, dispatch, pipeline batches), table.go (the command
// table: one row per command with redis 7.0's arity, flags, ACL categories
// and key positions, built by New), data.go (what data commands share:
// running, batching, replies, the generic builders), reply.go (replies in
// the connection's protocol, RESP2 or RESP3), then one file per family
// holding its rows and functions: strings.go, keys.go, hashes.go,
// sets.go, transactions.go, connection.go, client.go (CLIENT),
// tracking.go (CLIENT TRACKING: client-side caching), server_cmds.go
// (INFO, ROLE, CONFIG, COMMAND, TIME), stats.go (INFO's counters, MEMORY,
// SLOWLOG), pubsub.go, scripting.go, sentinel.go and lists.go and
// zsets.go (with blocking.go, the clients waiting in BLPOP and the like).
// A new
// command is one row and one function in its family's file (and a row and
// a function in package command if it is a new kind of data command).
package redis

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/netserve"
)

// Node is what the front end needs from the replicated store.
//
// WriteAsync and ReadAsync call done exactly once, on any goroutine,
// perhaps before they return (a read on the leader); done must not block.
// ReadAsync does not keep c after done.
type Node interface {
	WriteAsync(tx command.Tx, done func(command.TxResult, error))
	ReadAsync(c *command.Cmd, done func(command.Result, error))
	// ReadNow answers a read if it can at once (false: use ReadAsync).
	ReadNow(c *command.Cmd) (command.Result, bool)
	MaxMemory() (int64, command.Policy)
	SetMaxMemory(bytes int64, p command.Policy)
	Info() NodeInfo
	// Role is Info().Role without asking anyone: HELLO's answer, given
	// on the event loop.
	Role() string
	// ViewNow is Info and Topology if the node can tell them without
	// asking other nodes (false: ask with Info and Topology, which may
	// wait).
	ViewNow() (NodeInfo, Topology, bool)
	Topology(ctx context.Context) Topology
}

// NodeInfo is the node state that INFO and ROLE report.
type NodeInfo struct {
	Role       string // "master" on the leader, "slave" elsewhere
	LeaderAddr string // the leader's Redis address; "" while none is known
	Keys       []int  // per database
	Volatile   []int
	UsedMemory int64
	Expired    uint64
	Evicted    uint64
	// ReplOffset is how far this node has applied the log (its applied
	// index): INFO's master_repl_offset. ReplicaOffsets are, on the
	// leader and when asked with Info, each member's match index by
	// member ID (Instance.ID); nil otherwise.
	ReplOffset     uint64
	ReplicaOffsets map[string]uint64
	AvgTTL         []int64 // per database, ms: an estimate from a sample
}

// Config holds the front end's settings. CONFIG SET may change Timeout,
// MaxClients and the memory settings at run time.
type Config struct {
	RequirePass   string
	MaxClients    int
	Timeout       time.Duration // idle clients are closed after this; 0 = never
	MaxBulk       int64         // proto-max-bulk-len
	MaxMultibulk  int
	MaxInline     int
	QueryBufLimit int   // client-query-buffer-limit
	MaxKeySize    int   // bytes; longer keys are refused
	MaxValueSize  int64 // bytes; longer values are refused
	Databases     int
	Version       string // hatcheck version, reported in INFO
	SentinelName  string // service name of the SENTINEL commands; default "hatcheck"
	Logger        *slog.Logger
	// Metrics, if set, is told about every command.
	Metrics Metrics
	// UsersReady, if set, reports whether the node has replayed the log
	// it had at start, and so knows its ACL users. Until then an AUTH
	// that fails answers LOADING (the user may not be known yet), not
	// WRONGPASS.
	UsersReady func() bool
	// Loops serves plain TCP clients; nil means netserve.DefaultLoops.
	Loops *netserve.Loops
}

// Metrics receives per-command observations.
type Metrics interface {
	Command(name string, d time.Duration, failed bool)
	Connections(delta int)
}

// Server serves the Redis protocol.
type Server struct {
	cfg     Config
	node    Node
	log     *slog.Logger
	started time.Time

	timeout    atomic.Int64 // ns
	maxClients atomic.Int64
	notify     atomic.Int64 // notify-keyspace-events flags
	encodings  sync.Map     // encoding settings set by CONFIG SET, name → value (see encodingParams)

	cmds     *table // built by New
	conns    *netserve.Server[*conn]
	hub      *hub
	blocking *blocking
	pause    *pause // CLIENT PAUSE (pause.go)
	xreads   *xreads
	track    *tracker // CLIENT TRACKING (tracking.go)

	nextID    atomic.Int64
	totalCmds atomic.Int64
	stats     stats // INFO's stats (stats.go)

	// ACL users (acl.go): the table of this node's users, replaced
	// whole when they change; usersMu orders the replacements.
	users   atomic.Pointer[userTable]
	usersMu sync.Mutex
	acllog  aclLog

	slowlog       slowlog
	slowlogSlower atomic.Int64 // slowlog-log-slower-than, µs (-1: off)
	slowlogMaxLen atomic.Int64 // slowlog-max-len
}

// New returns a server; call Serve with a listener.
func New(cfg Config, node Node) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SentinelName == "" {
		cfg.SentinelName = "hatcheck"
	}
	s := &Server{cfg: cfg, node: node, log: cfg.Logger, started: time.Now(), cmds: newTable(), hub: newHub(), track: newTracker()}
	s.blocking = newBlocking(s)
	s.pause = newPause()
	s.users.Store(s.buildUsers(0, nil))
	s.xreads = newXReads()
	s.hub.out = &s.stats.netOut
	s.slowlogSlower.Store(10000) // redis's defaults
	s.slowlogMaxLen.Store(128)
	s.timeout.Store(int64(cfg.Timeout))
	s.maxClients.Store(int64(cfg.MaxClients))
	s.conns = netserve.New[*conn](netserve.Config{
		MaxClients:  func() int { return int(s.maxClients.Load()) },
		IdleTimeout: func() time.Duration { return time.Duration(s.timeout.Load()) },
		Loops:       cfg.Loops,
		Refusal:     []byte("-ERR max number of clients reached\r\n"),
		Logger:      cfg.Logger,
	})
	return s
}

// Serve accepts connections until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.startRates()
	return s.conns.Serve(ln, func(l netserve.Link) *conn { return newConn(s, l) })
}

// Close stops accepting, lets every connection finish the command it is
// running, closes the connections and waits for them, or until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	err := s.conns.Close(ctx)
	s.hub.close()
	s.stopRates()
	return err
}

// Clients is the number of connected clients.
func (s *Server) Clients() int { return s.conns.Len() }

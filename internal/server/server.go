// Package server is the composition root: it builds the node and the front
// ends from a Config, opens the listeners in order and shuts everything
// down gracefully.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hatcheck/hatcheck/internal/admin"
	"github.com/hatcheck/hatcheck/internal/cluster"
	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/memcache"
	"github.com/hatcheck/hatcheck/internal/netserve"
	"github.com/hatcheck/hatcheck/internal/redis"
)

// Version is hatcheck's version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Server is a running node with its listeners.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	node     *cluster.Node
	redis    *redis.Server
	redisLn  net.Listener
	mc       *memcache.Server
	mcLn     net.Listener
	httpSrv  *http.Server
	httpLn   net.Listener
	loops    *netserve.Loops
	serveErr chan error
}

// NewLogger builds the logger the config asks for, writing to w.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Start opens the node and the listeners and starts serving. The caller
// must call Close.
func Start(cfg config.Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: logger, serveErr: make(chan error, 2)}
	fail := func(err error) (*Server, error) {
		s.closeListeners()
		if s.node != nil {
			_ = s.node.Close()
		}
		return nil, err
	}
	// Bind every listener first, the peer port too: the node tells the
	// others these addresses (Sentinel discovery), and a port clash must
	// fail before anything is written to the data dir or any cluster is
	// joined — every clash at once, each named by its flag.
	var errs []error
	listen := func(flag, addr string) net.Listener {
		if addr == "" {
			return nil // that port is off
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s %s: %w", flag, addr, err))
		}
		return ln
	}
	s.redisLn = listen("redis-addr", cfg.RedisAddr)
	s.mcLn = listen("memcache-addr", cfg.MemcacheAddr)
	s.httpLn = listen("http-addr", cfg.HTTPAddr)
	peerLn := listen("peer-addr", cfg.PeerAddr)
	if len(errs) > 0 {
		if peerLn != nil {
			peerLn.Close()
		}
		return fail(fmt.Errorf("cannot listen: %w", errors.Join(errs...)))
	}
	var err error
	peerHost := ""
	if cfg.PeerAdvertise != "" {
		peerHost, _, _ = net.SplitHostPort(cfg.PeerAdvertise)
	}
	meta := map[string]string{}
	redisAddr := ""
	if s.redisLn != nil {
		redisAddr = advertised(cfg.RedisAdvertise, s.redisLn.Addr(), peerHost)
		meta[metaRedis] = redisAddr
	}
	if s.httpLn != nil {
		meta["http"] = advertised("", s.httpLn.Addr(), peerHost)
	}
	if s.mcLn != nil {
		meta["memcache"] = advertised("", s.mcLn.Addr(), peerHost)
	}

	policy, _ := command.ParsePolicy(cfg.MaxMemoryPolicy)
	if s.node, err = cluster.Open(cluster.Config{
		NodeID: cfg.NodeID, DataDir: cfg.DataDir, PeerAddr: cfg.PeerAddr, PeerListener: peerLn, Advertise: cfg.PeerAdvertise,
		Join: cfg.JoinAddrs(), Secret: cfg.RequirePass, Meta: meta, UnsafeStaleReads: cfg.UnsafeStaleReads,
		Databases: cfg.Databases, MaxMemory: int64(cfg.MaxMemory), Policy: policy,
		FailoverWait: cfg.FailoverWait, ElectionTimeout: cfg.ElectionTimeout, CommitWait: cfg.CommitWait, SnapshotThreshold: cfg.SnapshotThreshold,
		TrailingLogs:   cfg.TrailingLogs,
		LogSegmentSize: int(cfg.LogSegmentSize), NearCacheBytes: cfg.NearCacheBytes, Logger: logger,
	}); err != nil {
		return fail(err)
	}
	node := s.node

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	admin.RegisterNode(reg, s.nodeStats)

	loops := loopCount(cfg.EventLoops, runtime.NumCPU())
	if s.redisLn == nil && s.mcLn == nil {
		loops = -1 // no client port: nothing to serve
	}
	if s.loops, err = netserve.NewLoops(loops, logger.With("component", "loops")); err != nil {
		return fail(fmt.Errorf("event loops: %w", err))
	}
	adapter := nodeAdapter{Node: node, selfRedis: redisAddr}
	s.redis = redis.New(redis.Config{
		RequirePass: cfg.RequirePass, MaxClients: cfg.MaxClients, Timeout: time.Duration(cfg.Timeout) * time.Second,
		MaxBulk: int64(cfg.ProtoMaxBulkLen), MaxMultibulk: 1024 * 1024, MaxInline: 64 * 1024,
		QueryBufLimit: int(cfg.QueryBufferLimit), MaxKeySize: int(cfg.MaxKeySize), MaxValueSize: int64(cfg.MaxValueSize),
		Databases: cfg.Databases, Version: Version, SentinelName: cfg.SentinelName,
		Logger: logger.With("frontend", "redis"), Metrics: admin.NewMetrics(reg, "redis"), Loops: s.loops,
	}, adapter)
	node.SetEvents(s.redis)
	announceLeaders(node, adapter, s.redis, cfg.SentinelName, logger)
	if s.mcLn != nil {
		s.mc = memcache.New(memcache.Config{
			RequirePass: cfg.RequirePass, MaxClients: cfg.MaxClients, Timeout: time.Duration(cfg.Timeout) * time.Second,
			MaxItemSize: int(cfg.MaxItemSize), Logger: logger.With("frontend", "memcache"),
			Metrics: admin.NewMetrics(reg, "memcache"), Loops: s.loops,
		}, node)
	}
	if s.redisLn != nil {
		go func() { s.serveErr <- s.redis.Serve(s.redisLn) }()
	}
	if s.mc != nil {
		go func() { s.serveErr <- s.mc.Serve(s.mcLn) }()
	}
	if s.httpLn != nil {
		s.httpSrv = &http.Server{Handler: admin.Handler(node, reg, clusterAPI{node}, admin.Options{Password: cfg.RequirePass, Pprof: cfg.Pprof}), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := s.httpSrv.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.serveErr <- err
			}
		}()
	}
	return s, nil
}

func (s *Server) closeListeners() {
	if s.redisLn != nil {
		s.redisLn.Close()
	}
	if s.httpLn != nil {
		s.httpLn.Close()
	}
	if s.mcLn != nil {
		s.mcLn.Close()
	}
}

// RedisAddr is the bound Redis address (useful with port 0); "" when not
// served.
func (s *Server) RedisAddr() string { return addrOf(s.redisLn) }

// MemcacheAddr is the bound memcached address ("" when not served).
func (s *Server) MemcacheAddr() string { return addrOf(s.mcLn) }

// HTTPAddr is the bound HTTP address ("" when not served).
func (s *Server) HTTPAddr() string { return addrOf(s.httpLn) }

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// PeerAddr is the bound peer address.
func (s *Server) PeerAddr() string { return s.node.PeerAddr() }

// Node is the underlying cluster node.
func (s *Server) Node() *cluster.Node { return s.node }

// Listeners describes the listeners, one line each, for the start-up banner.
func (s *Server) Listeners() []string {
	var l []string
	if s.redisLn != nil {
		l = append(l, "redis protocol on "+s.RedisAddr())
	}
	if s.mc != nil {
		l = append(l, "memcached protocol (text and binary) on "+s.MemcacheAddr())
	}
	if s.httpLn != nil {
		web := "http (health, metrics, cluster API) on http://"
		if s.cfg.Pprof {
			web = "http (health, metrics, cluster API, pprof) on http://"
		}
		l = append(l, web+s.HTTPAddr())
	}
	return append(l, "peer (raft) on "+s.PeerAddr())
}

// loopCount is the number of event loops for an --event-loops setting on
// a machine with cpus usable CPUs: one loop keeps one CPU busy, so more
// loops than CPUs only take turns.
func loopCount(setting, cpus int) int {
	if setting == 0 {
		return cpus
	}
	return setting
}

// Close shuts down gracefully: a leader first hands leadership to another
// voter (clients here are then served through the new leader), then the
// listeners stop accepting, clients finish the command they are running (up
// to ShutdownTimeout), and the node snapshots and closes.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.node.HandOver()
	var errs []error
	if err := s.redis.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("redis front end: %w", err))
	}
	if s.mc != nil {
		if err := s.mc.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("memcache front end: %w", err))
		}
	}
	if s.httpSrv != nil {
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.loops.Stop(); err != nil {
		errs = append(errs, fmt.Errorf("event loops: %w", err))
	}
	if err := s.node.Close(); err != nil {
		errs = append(errs, fmt.Errorf("node: %w", err))
	}
	return errors.Join(errs...)
}

// Abort stops the server the way a crash would (for tests): listeners and
// client connections close at once, the node stops without handing over
// leadership or taking a snapshot.
func (s *Server) Abort() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.redis.Close(ctx)
	if s.mc != nil {
		_ = s.mc.Close(ctx)
	}
	if s.httpSrv != nil {
		_ = s.httpSrv.Close()
	}
	_ = s.loops.Stop()
	return s.node.Abort()
}

// Run starts a server, prints one line per listener to banner, serves until
// ctx is done, then shuts down.
func Run(ctx context.Context, cfg config.Config, logger *slog.Logger, banner io.Writer) error {
	tuneRuntime(cfg, os.Getenv, logger)
	s, err := Start(cfg, logger)
	if err != nil {
		return err
	}
	for _, l := range s.Listeners() {
		fmt.Fprintln(banner, "hatcheck: "+l)
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err = <-s.serveErr:
		logger.Error("listener failed", "err", err)
	}
	if cerr := s.Close(); cerr != nil {
		return errors.Join(err, cerr)
	}
	logger.Info("stopped")
	return err
}

func (s *Server) nodeStats() admin.NodeStats {
	st := s.node.Stats()
	maxmem, _ := s.node.MaxMemory()
	return admin.NodeStats{
		IsLeader: st.State == "Leader", Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
		Snapshots: st.Snapshots, LastSnapshotSeconds: st.LastSnapshotDuration.Seconds(),
		Keys: st.Keys, UsedMemory: st.UsedMemory, MaxMemory: maxmem, Expired: st.Expired, Evicted: st.Evicted,
		NearCache: map[string]uint64{
			"hit": st.Near.Hits, "miss": st.Near.Misses, "uncacheable": st.Near.Uncacheable,
			"invalidation_sent": st.Near.InvalidationsSent, "invalidation_received": st.Near.InvalidationsReceived,
			"flush": st.Near.Flushes, "lease_waited_out": st.Near.LeaseWaits,
		},
		NearCacheBytes: st.Near.Bytes,
	}
}

// Package server is the composition root: it builds the node and the front
// ends from a Config, opens the listeners in order and shuts everything
// down gracefully.
package server

import (
	"context"
	"crypto/tls"
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
	"github.com/hatcheck/hatcheck/internal/cluster/raftlog"
	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/memcache"
	"github.com/hatcheck/hatcheck/internal/netserve"
	"github.com/hatcheck/hatcheck/internal/redis"
	"github.com/hatcheck/hatcheck/internal/tlsconf"
)

// Version is hatcheck's version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Server is a running node with its listeners.
type Server struct {
	cfg   config.Config
	log   *slog.Logger
	node  *cluster.Node
	redis *redis.Server
	mc    *memcache.Server
	// Each protocol's plain and TLS listener; nil when not served.
	redisLn, redisTLSLn net.Listener
	mcLn, mcTLSLn       net.Listener
	httpLn, httpTLSLn   net.Listener
	httpSrv             *http.Server
	certs               *tlsconf.Reloader // nil without TLS
	loops               *netserve.Loops
	load                *admin.LoadMeter // nil until Start succeeds
	serveErr            chan error
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
	return StartContext(context.Background(), cfg, logger)
}

// StartContext is Start that ctx can interrupt: once ctx is done, a start
// still opening the node stops at its next step (see
// cluster.Config.Startup), releases the ports and the data dir and
// returns an error that wraps ctx's.
func StartContext(ctx context.Context, cfg config.Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// One slot for each serving goroutine: the ports of three protocols,
	// plain and TLS.
	s := &Server{cfg: cfg, log: logger, serveErr: make(chan error, 6)}
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
	// The certificates are read before any port is bound: a missing or
	// broken file is the one error then.
	clientTLS, peerTLS, err := s.loadCerts()
	if err != nil {
		return fail(err)
	}
	var errs []error
	listen := func(flag, addr string, conf *tls.Config) net.Listener {
		if addr == "" {
			return nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s %s: %w", flag, addr, err))
			return nil
		}
		if conf != nil {
			return tls.NewListener(ln, conf)
		}
		return ln
	}
	s.redisLn = listen("redis-addr", cfg.RedisAddr, nil)
	s.redisTLSLn = listen("tls-redis-addr", cfg.TLSRedisAddr, clientTLS)
	s.mcLn = listen("memcache-addr", cfg.MemcacheAddr, nil)
	s.mcTLSLn = listen("tls-memcache-addr", cfg.TLSMemcacheAddr, clientTLS)
	s.httpLn = listen("http-addr", cfg.HTTPAddr, nil)
	s.httpTLSLn = listen("tls-http-addr", cfg.TLSHTTPAddr, clientTLS)
	peerLn := listen("peer-addr", cfg.PeerAddr, nil)
	if len(errs) > 0 {
		if peerLn != nil {
			peerLn.Close()
		}
		return fail(fmt.Errorf("cannot listen: %w", errors.Join(errs...)))
	}
	peerHost := ""
	if cfg.PeerAdvertise != "" {
		peerHost, _, _ = net.SplitHostPort(cfg.PeerAdvertise)
	}
	// The other nodes are told each protocol's plain address, or its TLS
	// one when the plain port is off (Sentinel discovery then hands
	// clients the TLS port); a protocol not served at all is not told.
	meta := map[string]string{}
	redisAddr := ""
	if ln := either(s.redisLn, s.redisTLSLn); ln != nil {
		redisAddr = advertised(cfg.RedisAdvertise, ln.Addr(), peerHost)
		meta[metaRedis] = redisAddr
	}
	if ln := either(s.httpLn, s.httpTLSLn); ln != nil {
		meta["http"] = advertised("", ln.Addr(), peerHost)
	}
	if ln := either(s.mcLn, s.mcTLSLn); ln != nil {
		meta["memcache"] = advertised("", ln.Addr(), peerHost)
	}

	if err := ctx.Err(); err != nil {
		if peerLn != nil {
			peerLn.Close()
		}
		return fail(fmt.Errorf("startup interrupted: %w", err))
	}
	policy, _ := command.ParsePolicy(cfg.MaxMemoryPolicy)
	if s.node, err = cluster.Open(cluster.Config{
		NodeID: cfg.NodeID, DataDir: cfg.DataDir, PeerAddr: cfg.PeerAddr, PeerListener: peerLn, Advertise: cfg.PeerAdvertise,
		Join: cfg.JoinAddrs(), Secret: cfg.RequirePass, PeerTLS: peerTLS, Meta: meta, UnsafeStaleReads: cfg.UnsafeStaleReads,
		Databases: cfg.Databases, MaxMemory: int64(cfg.MaxMemory), Policy: policy,
		FailoverWait: cfg.FailoverWait, ElectionTimeout: cfg.ElectionTimeout, CommitWait: cfg.CommitWait, SnapshotThreshold: cfg.SnapshotThreshold,
		TrailingLogs:   cfg.TrailingLogs,
		LogSegmentSize: int(cfg.LogSegmentSize), NearCacheBytes: cfg.NearCacheBytes, Logger: logger,
		ScriptCalls: redis.ScriptCalls(), Startup: ctx,
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
	redisMetrics := admin.NewMetrics(reg, "redis")
	redisMetrics.SetBlocking(redis.BlockingCommands())
	s.redis = redis.New(redis.Config{
		RequirePass: cfg.RequirePass, MaxClients: cfg.MaxClients, Timeout: time.Duration(cfg.Timeout) * time.Second,
		MaxBulk: int64(cfg.ProtoMaxBulkLen), MaxMultibulk: 1024 * 1024, MaxInline: 64 * 1024,
		QueryBufLimit: int(cfg.QueryBufferLimit), MaxKeySize: int(cfg.MaxKeySize), MaxValueSize: int64(cfg.MaxValueSize),
		Databases: cfg.Databases, Version: Version, SentinelName: cfg.SentinelName,
		Logger: logger.With("frontend", "redis"), Metrics: redisMetrics, Loops: s.loops,
		UsersReady: node.Replayed,
	}, adapter)
	s.redis.SetSlowlogSlowerThan(cfg.SlowlogLogSlowerThan)
	// The dashboard's slow commands follow slowlog-log-slower-than, for
	// both protocols, as CONFIG SET changes it.
	redisMetrics.SetSlowThreshold(s.redis.SlowThreshold)
	node.SetEvents(s.redis)
	announceLeaders(node, adapter, s.redis, cfg.SentinelName, logger)
	var mcMetrics *admin.Metrics
	if s.mcLn != nil || s.mcTLSLn != nil {
		mcMetrics = admin.NewMetrics(reg, "memcache")
		mcMetrics.SetSlowThreshold(s.redis.SlowThreshold)
		s.mc = memcache.New(memcache.Config{
			RequirePass: cfg.RequirePass, Users: s.redis, MaxClients: cfg.MaxClients, Timeout: time.Duration(cfg.Timeout) * time.Second,
			MaxItemSize: int(cfg.MaxItemSize), Logger: logger.With("frontend", "memcache"),
			Metrics: mcMetrics, Loops: s.loops,
		}, node)
	}
	// Each node measures its own load, which it reports in its info
	// replies for the dashboard; the commands that were slow become
	// events. (When the Redis front end keeps a SLOWLOG, its entries
	// can be recorded the same way: node.RecordEvent(cluster.EventSlow, …).)
	s.load = admin.NewLoadMeter(func(slow admin.SlowCommands) {
		node.RecordEvent(cluster.EventSlow, slow.String())
	}, redisMetrics, mcMetrics)
	node.SetLoad(func() cluster.Load { return cluster.Load(s.load.Load()) })
	s.load.Start()
	if either(s.httpLn, s.httpTLSLn) != nil {
		s.httpSrv = &http.Server{Handler: admin.Handler(node, reg, clusterAPI{node}, admin.Options{Password: cfg.RequirePass, Pprof: cfg.Pprof}), ReadHeaderTimeout: 10 * time.Second}
	}
	for _, ln := range []net.Listener{s.redisLn, s.redisTLSLn} {
		if ln != nil {
			go func() { s.serveErr <- s.redis.Serve(ln) }()
		}
	}
	for _, ln := range []net.Listener{s.mcLn, s.mcTLSLn} {
		if ln != nil {
			go func() { s.serveErr <- s.mc.Serve(ln) }()
		}
	}
	for _, ln := range []net.Listener{s.httpLn, s.httpTLSLn} {
		if ln != nil {
			go func() {
				if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					s.serveErr <- err
				}
			}()
		}
	}
	return s, nil
}

// loadCerts reads the certificate files when a TLS port or TLS between
// peers asks for them, and returns the client ports' and the peer port's
// configurations (nil when not used).
func (s *Server) loadCerts() (*tls.Config, func() *tls.Config, error) {
	cfg := s.cfg
	if cfg.TLSRedisAddr == "" && cfg.TLSMemcacheAddr == "" && cfg.TLSHTTPAddr == "" && !cfg.TLSPeers {
		return nil, nil, nil
	}
	var err error
	if s.certs, err = tlsconf.Load(tlsconf.Files{Cert: cfg.TLSCertFile, Key: cfg.TLSKeyFile, CA: cfg.TLSCACertFile}); err != nil {
		return nil, nil, err
	}
	client, err := s.certs.Server(tlsconf.ClientAuth(cfg.TLSAuthClients))
	if err != nil {
		return nil, nil, err
	}
	if !cfg.TLSPeers {
		return client, nil, nil
	}
	peer, err := s.certs.Peer()
	return client, peer, err
}

// either is the plain listener if there is one, else the TLS one.
func either(plain, secure net.Listener) net.Listener {
	if plain != nil {
		return plain
	}
	return secure
}

func (s *Server) closeListeners() {
	for _, ln := range []net.Listener{s.redisLn, s.redisTLSLn, s.mcLn, s.mcTLSLn, s.httpLn, s.httpTLSLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

// Reload reads the certificate files again (cmd/hatcheck calls it on
// SIGHUP). Connections already open keep going with the keys they agreed
// on; new ones, on every TLS port and between peers, get the new files.
// On an error the certificates in use stay. Without TLS it does nothing.
func (s *Server) Reload() error {
	if s.certs == nil {
		return nil
	}
	if err := s.certs.Reload(); err != nil {
		s.log.Error("certificates not reloaded; the previous ones stay in use", "err", err)
		return err
	}
	c := s.certs.Certificate()
	s.log.Info("certificates reloaded", "subject", c.Subject.String(), "not_after", c.NotAfter)
	return nil
}

// addr is a listener's address, "" for none.
func addr(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// RedisAddr is the bound Redis address (useful with port 0); "" when the
// plain port is off.
func (s *Server) RedisAddr() string { return addr(s.redisLn) }

// TLSRedisAddr is the bound Redis-over-TLS address ("" when not served).
func (s *Server) TLSRedisAddr() string { return addr(s.redisTLSLn) }

// MemcacheAddr is the bound memcached address ("" when not served).
func (s *Server) MemcacheAddr() string { return addr(s.mcLn) }

// TLSMemcacheAddr is the bound memcached-over-TLS address ("" when not
// served).
func (s *Server) TLSMemcacheAddr() string { return addr(s.mcTLSLn) }

// HTTPAddr is the bound HTTP address ("" when plain HTTP is off).
func (s *Server) HTTPAddr() string { return addr(s.httpLn) }

// TLSHTTPAddr is the bound HTTPS address ("" when not served).
func (s *Server) TLSHTTPAddr() string { return addr(s.httpTLSLn) }

// PeerAddr is the bound peer address.
func (s *Server) PeerAddr() string { return s.node.PeerAddr() }

// Node is the underlying cluster node.
func (s *Server) Node() *cluster.Node { return s.node }

// Listeners describes the listeners, one line each, for the start-up banner.
func (s *Server) Listeners() []string {
	var l []string
	line := func(what, addr string) {
		if addr != "" {
			l = append(l, what+addr)
		}
	}
	line("redis protocol on ", s.RedisAddr())
	line("redis protocol over TLS on ", s.TLSRedisAddr())
	line("memcached protocol (text and binary) on ", s.MemcacheAddr())
	line("memcached protocol (text and binary) over TLS on ", s.TLSMemcacheAddr())
	web := "http (dashboard, health, metrics, cluster API) on "
	if s.cfg.Pprof {
		web = "http (dashboard, health, metrics, cluster API, pprof) on "
	}
	if a := s.HTTPAddr(); a != "" {
		line(web, "http://"+a)
	}
	if a := s.TLSHTTPAddr(); a != "" {
		line(web, "https://"+a)
	}
	peer := "peer (raft) on "
	if s.cfg.TLSPeers {
		peer = "peer (raft) over mutual TLS on "
	}
	line(peer, s.PeerAddr())
	return l
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
	s.load.Close()
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
	s.load.Close()
	return s.node.Abort()
}

// ErrInterrupted is Run's error when ctx ended before the server started
// serving (SIGTERM during a slow start): a stop, not a failure.
var ErrInterrupted = errors.New("interrupted during startup")

// startupGrace is how long Run waits, once ctx is done, for a start to stop
// at its next step. A start stuck where it cannot notice (a read that does
// not return) is then left behind: the caller exits, and the kernel
// releases the data dir lock and the ports as it would after a crash at
// that point, which the data dir survives.
const startupGrace = 3 * time.Second

// Run starts a server, prints one line per listener to banner, serves until
// ctx is done, then shuts down. Each value received from reload reloads the
// certificates (Reload). If ctx ends while the server is starting, Run
// returns ErrInterrupted within startupGrace.
func Run(ctx context.Context, cfg config.Config, logger *slog.Logger, banner io.Writer, reload <-chan os.Signal) error {
	tuneRuntime(cfg, os.Getenv, logger)
	type started struct {
		s   *Server
		err error
	}
	startc := make(chan started, 1)
	go func() {
		s, err := StartContext(ctx, cfg, logger)
		startc <- started{s, err}
	}()
	var s *Server
	var err error
	select {
	case r := <-startc:
		s, err = r.s, r.err
	case <-ctx.Done():
		logger.Warn("interrupted during startup")
		select {
		case r := <-startc:
			if r.s != nil {
				// It had just started: stop it in order.
				_ = r.s.Close()
			}
		case <-time.After(startupGrace):
			logger.Warn("startup did not stop in time; exiting without waiting for it", "waited", startupGrace)
		}
		return ErrInterrupted
	}
	if err != nil {
		if ctx.Err() != nil {
			logger.Warn("interrupted during startup")
			return ErrInterrupted
		}
		return err
	}
	for _, l := range s.Listeners() {
		if cfg.LogFormat == "json" {
			// One format on every line: log collectors parse stdout too.
			logger.Info("listening", "on", l)
		} else {
			fmt.Fprintln(banner, "hatcheck: "+l)
		}
	}
serve:
	for {
		select {
		case <-ctx.Done():
			logger.Info("shutting down")
			break serve
		case err = <-s.serveErr:
			logger.Error("listener failed", "err", err)
			break serve
		case <-reload:
			_ = s.Reload() // logged; the certificates in use stay on an error
		}
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
		LogAppend:      appendHistogram(st.LogAppend),
		FollowerLag:    s.node.FollowerLag(),
	}
}

func appendHistogram(l raftlog.Latency) admin.LatencyHistogram {
	h := admin.LatencyHistogram{Count: l.Count, SumSeconds: l.Sum.Seconds(), Cumulative: l.Buckets}
	for _, b := range raftlog.AppendBuckets {
		h.Bounds = append(h.Bounds, b.Seconds())
	}
	return h
}

// Package config holds hatcheck's one Config: defaults, validation, and
// loading from a config file, HATCHECK_* environment variables and flags,
// in that order of precedence (flags win).
package config

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hatcheck/hatcheck/internal/units"
)

// Config is every setting of a node.
type Config struct {
	NodeID       string
	DataDir      string
	RedisAddr    string
	MemcacheAddr string
	HTTPAddr     string
	PeerAddr     string
	Join         string
	// Addresses other nodes and clients are told (default: the bound
	// address, with an unspecified host replaced by the peer host).
	PeerAdvertise  string
	RedisAdvertise string
	SentinelName   string // service name SENTINEL commands answer for
	RequirePass    string

	// TLS, with redis.conf's names. A TLS port serves beside the plain
	// one of its protocol, which may then be turned off (""). TLSPeers
	// makes the peer port mutual TLS, required beyond loopback.
	TLSRedisAddr    string
	TLSMemcacheAddr string
	TLSHTTPAddr     string
	TLSCertFile     string
	TLSKeyFile      string
	TLSCACertFile   string
	TLSAuthClients  string // no, optional or yes
	TLSPeers        bool

	MaxMemory       Size
	MaxMemoryPolicy string
	MaxClients      int
	Timeout         int // idle client seconds; 0 = never
	Databases       int

	ProtoMaxBulkLen  Size
	MaxKeySize       Size
	MaxValueSize     Size
	QueryBufferLimit Size
	MaxItemSize      Size
	// SlowlogLogSlowerThan is redis's slowlog-log-slower-than, in
	// microseconds (-1: off): the commands SLOWLOG keeps and the
	// dashboard's slow-command events. CONFIG SET changes it at run time.
	SlowlogLogSlowerThan int64

	FailoverWait      time.Duration
	ElectionTimeout   time.Duration
	CommitWait        time.Duration
	ShutdownTimeout   time.Duration
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration // ignored; see the flag
	TrailingLogs      uint64
	LogSegmentSize    Size

	// Procs is the Go scheduler's processor count (GOMAXPROCS); 0 means
	// the usable CPUs plus two. GCPercent is the Go garbage collector's
	// heap growth target (GOGC). The GOMAXPROCS and GOGC environment
	// variables, when set, win over both.
	Procs     int
	GCPercent int
	// Pprof serves Go's profiler on the HTTP port (behind the password).
	Pprof bool
	// EventLoops is how many event loops serve the Redis and memcached
	// ports: 0 means one per usable CPU, a negative number none (every
	// client on a goroutine of its own, as before event loops).
	EventLoops int

	// UnsafeStaleReads lets followers answer reads from their own state.
	// Tests only (it has no flag): it shows the linearizability checker
	// catching stale reads.
	UnsafeStaleReads bool
	// NearCacheBytes sizes the near-cache of an embedded node
	// (hatcheck.Config.NearCacheBytes; it has no flag: only the embedded
	// node's Get reads through it). 0: none.
	NearCacheBytes int64

	LogLevel  string
	LogFormat string
	Config    string // the config file read, if any
}

// Size is a byte count written like redis.conf's memory values (64mb, 1gb).
type Size int64

func (s Size) String() string { return strconv.FormatInt(int64(s), 10) }

// Set parses a size: a number with an optional unit (b, k, kb, m, mb, g, gb;
// k = 1000, kb = 1024).
func (s *Size) Set(v string) error {
	n, err := units.ParseSize(v)
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

// Default returns the settings a newcomer gets.
func Default() Config {
	return Config{
		DataDir:              "./hatcheck-data",
		RedisAddr:            "127.0.0.1:6379",
		MemcacheAddr:         "127.0.0.1:11211",
		HTTPAddr:             "127.0.0.1:7480",
		PeerAddr:             "127.0.0.1:7481",
		SentinelName:         "hatcheck",
		TLSAuthClients:       "no",
		MaxMemoryPolicy:      "noeviction",
		MaxClients:           10000,
		Databases:            16,
		ProtoMaxBulkLen:      512 << 20,
		MaxKeySize:           64 << 10,
		MaxValueSize:         512 << 20,
		QueryBufferLimit:     1 << 30,
		MaxItemSize:          1 << 20,
		SlowlogLogSlowerThan: 10000,
		FailoverWait:         5 * time.Second,
		ElectionTimeout:      500 * time.Millisecond,
		CommitWait:           100 * time.Microsecond,
		ShutdownTimeout:      10 * time.Second,
		SnapshotThreshold:    16384,
		SnapshotInterval:     30 * time.Second,
		TrailingLogs:         10240,
		LogSegmentSize:       64 << 20,
		GCPercent:            25,
		LogLevel:             "info",
		LogFormat:            "text",
	}
}

// ErrInvalid wraps every validation error.
var ErrInvalid = errors.New("invalid configuration")

// Validate checks the settings for consistency.
func (c *Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	if c.DataDir == "" {
		return bad("data-dir must be set")
	}
	if _, _, err := net.SplitHostPort(c.PeerAddr); err != nil {
		return bad("peer-addr %q: %v", c.PeerAddr, err)
	}
	// An empty client or HTTP address turns that port off (an embedded
	// node may serve no port at all).
	addrs := [][2]string{{"redis-addr", c.RedisAddr}, {"memcache-addr", c.MemcacheAddr}, {"http-addr", c.HTTPAddr},
		{"peer-advertise", c.PeerAdvertise}, {"redis-advertise", c.RedisAdvertise},
		{"tls-redis-addr", c.TLSRedisAddr}, {"tls-memcache-addr", c.TLSMemcacheAddr}, {"tls-http-addr", c.TLSHTTPAddr}}
	for _, j := range c.JoinAddrs() {
		addrs = append(addrs, [2]string{"join", j})
	}
	for _, a := range addrs {
		if a[1] == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a[1]); err != nil {
			return bad("%s %q: %v", a[0], a[1], err)
		}
	}
	for name, addr := range map[string]string{"http-addr": c.HTTPAddr, "tls-http-addr": c.TLSHTTPAddr} {
		if host, _, _ := net.SplitHostPort(addr); addr != "" && c.RequirePass == "" && !loopbackHost(host) {
			// The HTTP port can remove members and shows metrics: beyond
			// loopback it needs the password, which then guards it.
			return bad("%s %q is beyond loopback: set --requirepass (HATCHECK_REQUIREPASS), which then guards the HTTP port, or bind it to 127.0.0.1", name, addr)
		}
	}
	if err := c.validateTLS(); err != nil {
		return bad("%v", err)
	}
	if c.SentinelName == "" || strings.ContainsAny(c.SentinelName, " \t\r\n") {
		return bad("sentinel-name must be a non-empty word")
	}
	switch c.MaxMemoryPolicy {
	case "noeviction", "volatile-ttl", "volatile-lru", "allkeys-lru":
	default:
		return bad("maxmemory-policy %q: want noeviction, volatile-ttl, volatile-lru or allkeys-lru", c.MaxMemoryPolicy)
	}
	if c.MaxClients < 1 {
		return bad("maxclients must be at least 1")
	}
	if c.Timeout < 0 {
		return bad("timeout must not be negative")
	}
	if c.Databases < 1 || c.Databases > 256 {
		return bad("databases must be between 1 and 256")
	}
	if c.ProtoMaxBulkLen < 1024 || c.MaxKeySize < 1 || c.MaxValueSize < 1 || c.QueryBufferLimit < 1024 || c.MaxItemSize < 1024 {
		return bad("proto-max-bulk-len, client-query-buffer-limit and max-item-size must be at least 1kb, key and value sizes at least 1")
	}
	if c.SlowlogLogSlowerThan < -1 {
		return bad("slowlog-log-slower-than must be -1 (off) or more")
	}
	if c.LogSegmentSize < 64<<10 || c.LogSegmentSize > 1<<30 {
		return bad("log-segment-size must be between 64kb and 1gb")
	}
	if c.ElectionTimeout < 50*time.Millisecond {
		return bad("election-timeout must be at least 50ms")
	}
	if c.CommitWait < 0 || c.CommitWait > 100*time.Millisecond {
		return bad("commit-wait must be between 0 and 100ms")
	}
	if c.FailoverWait <= 0 || c.ShutdownTimeout <= 0 || c.SnapshotInterval <= 0 || c.SnapshotThreshold == 0 {
		return bad("failover-wait, shutdown-timeout, snapshot-interval and snapshot-threshold must be positive")
	}
	if c.EventLoops > 4096 {
		return bad("event-loops must be at most 4096")
	}
	if c.Procs < 0 || c.GCPercent < 1 {
		return bad("procs must be 0 (automatic) or more, gc-percent at least 1")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return bad("log-format %q: want text or json", c.LogFormat)
	}
	return nil
}

// JoinAddrs is --join split at its commas: the members to ask, in turn,
// for admission.
func (c *Config) JoinAddrs() []string {
	var addrs []string
	for _, a := range strings.Split(c.Join, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// validateTLS checks the TLS settings: a TLS port or TLS between peers
// needs the certificate and its key, verifying the other end needs the
// CA, and peers beyond loopback need TLS.
func (c *Config) validateTLS() error {
	for _, use := range []struct {
		name string
		on   bool
	}{{"tls-redis-addr", c.TLSRedisAddr != ""}, {"tls-memcache-addr", c.TLSMemcacheAddr != ""}, {"tls-http-addr", c.TLSHTTPAddr != ""}, {"tls-peers", c.TLSPeers}} {
		if use.on && (c.TLSCertFile == "" || c.TLSKeyFile == "") {
			return fmt.Errorf("%s needs --tls-cert-file and --tls-key-file", use.name)
		}
	}
	switch c.TLSAuthClients {
	case "no":
	case "optional", "yes":
		if c.TLSCACertFile == "" {
			return fmt.Errorf("tls-auth-clients %s needs --tls-ca-cert-file, the CA that signs the clients' certificates", c.TLSAuthClients)
		}
	default:
		return fmt.Errorf("tls-auth-clients %q: want no, optional or yes", c.TLSAuthClients)
	}
	if c.TLSPeers && c.TLSCACertFile == "" {
		return errors.New("tls-peers needs --tls-ca-cert-file, the CA that signs every node's certificate")
	}
	if c.TLSPeers {
		return nil
	}
	// Raft messages and forwarded commands carry every session: they
	// leave this machine only encrypted, between nodes that prove who
	// they are.
	peers := [][2]string{{"peer-addr", c.PeerAddr}, {"peer-advertise", c.PeerAdvertise}}
	for _, j := range c.JoinAddrs() {
		peers = append(peers, [2]string{"join", j})
	}
	for _, f := range peers {
		if host, _, _ := net.SplitHostPort(f[1]); f[1] != "" && !loopbackHost(host) {
			return fmt.Errorf("%s %q is beyond loopback: set --tls-peers (mutual TLS between the nodes, with --tls-cert-file, --tls-key-file and --tls-ca-cert-file), or keep every node on 127.0.0.1", f[0], f[1])
		}
	}
	return nil
}

// loopbackHost reports whether a listen host is only reachable from this
// machine: a loopback IP or "localhost". "" and 0.0.0.0 are every interface.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// FlagSet returns a flag set bound to c, with c's current values as defaults.
func (c *Config) FlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.NodeID, "node-id", c.NodeID, "node id (default: stored in the data dir, or generated on first start)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the Raft log, snapshots and node id")
	fs.StringVar(&c.RedisAddr, "redis-addr", c.RedisAddr, "Redis protocol listen address (empty: no Redis port)")
	fs.StringVar(&c.MemcacheAddr, "memcache-addr", c.MemcacheAddr, "memcached protocol listen address (empty: no memcached port)")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "HTTP listen address (health, readiness, metrics, cluster API; beyond loopback only with --requirepass; empty: no HTTP port)")
	fs.BoolVar(&c.Pprof, "pprof", c.Pprof, "serve Go's profiler under /debug/pprof/ on the HTTP port")
	fs.StringVar(&c.PeerAddr, "peer-addr", c.PeerAddr, "peer (Raft) listen address")
	fs.StringVar(&c.Join, "join", c.Join, "peer addresses of cluster members to join, comma-separated, tried in turn (a node with an empty data dir and no --join starts a new cluster)")
	fs.StringVar(&c.PeerAdvertise, "peer-advertise", c.PeerAdvertise, "peer address other nodes dial (default: the bound peer address)")
	fs.StringVar(&c.RedisAdvertise, "redis-advertise", c.RedisAdvertise, "Redis address SENTINEL and ROLE report for this node (default: the bound address)")
	fs.StringVar(&c.SentinelName, "sentinel-name", c.SentinelName, "service (master) name the SENTINEL commands answer for")
	fs.StringVar(&c.RequirePass, "requirepass", c.RequirePass, "password clients must AUTH with; required to accept non-loopback clients")
	fs.StringVar(&c.TLSRedisAddr, "tls-redis-addr", c.TLSRedisAddr, "Redis protocol over TLS listen address (like redis's tls-port; --redis-addr \"\" then turns the plain port off)")
	fs.StringVar(&c.TLSMemcacheAddr, "tls-memcache-addr", c.TLSMemcacheAddr, "memcached protocol over TLS listen address (--memcache-addr \"\" turns the plain port off)")
	fs.StringVar(&c.TLSHTTPAddr, "tls-http-addr", c.TLSHTTPAddr, "HTTPS listen address, serving what the HTTP port serves (--http-addr \"\" then turns plain HTTP off)")
	fs.StringVar(&c.TLSCertFile, "tls-cert-file", c.TLSCertFile, "PEM certificate (chain) of this node, for every TLS port and the peers; reloaded on SIGHUP")
	fs.StringVar(&c.TLSKeyFile, "tls-key-file", c.TLSKeyFile, "PEM private key of --tls-cert-file; reloaded on SIGHUP")
	fs.StringVar(&c.TLSCACertFile, "tls-ca-cert-file", c.TLSCACertFile, "PEM CA certificate(s) that sign the peers' and the clients' certificates; reloaded on SIGHUP")
	fs.StringVar(&c.TLSAuthClients, "tls-auth-clients", c.TLSAuthClients, "client certificates on the TLS client ports: no, optional (verified if sent) or yes (required)")
	fs.BoolVar(&c.TLSPeers, "tls-peers", c.TLSPeers, "mutual TLS between the nodes on the peer port (required beyond loopback)")
	fs.Var(&c.MaxMemory, "maxmemory", "memory limit for keys and values (0 = none), e.g. 512mb")
	fs.StringVar(&c.MaxMemoryPolicy, "maxmemory-policy", c.MaxMemoryPolicy, "noeviction, volatile-ttl, volatile-lru or allkeys-lru")
	fs.IntVar(&c.MaxClients, "maxclients", c.MaxClients, "maximum connected clients")
	fs.IntVar(&c.Timeout, "timeout", c.Timeout, "close clients idle for this many seconds (0 = never)")
	fs.IntVar(&c.Databases, "databases", c.Databases, "number of databases")
	fs.Var(&c.ProtoMaxBulkLen, "proto-max-bulk-len", "largest bulk string a request may carry")
	fs.Var(&c.MaxKeySize, "max-key-size", "largest key accepted")
	fs.Var(&c.MaxValueSize, "max-value-size", "largest value accepted")
	fs.Var(&c.QueryBufferLimit, "client-query-buffer-limit", "largest unprocessed input held for one client")
	fs.Var(&c.MaxItemSize, "max-item-size", "largest memcached item value (like memcached -I)")
	fs.Int64Var(&c.SlowlogLogSlowerThan, "slowlog-log-slower-than", c.SlowlogLogSlowerThan, "microseconds from which a command is slow: SLOWLOG keeps it and the dashboard's recent events report it (0: every command; -1: none; CONFIG SET changes it)")
	fs.DurationVar(&c.FailoverWait, "failover-wait", c.FailoverWait, "how long a request waits for a leader before failing")
	fs.DurationVar(&c.ElectionTimeout, "election-timeout", c.ElectionTimeout, "Raft heartbeat/election timeout: a leader unheard of for 1-2x this is replaced")
	fs.DurationVar(&c.CommitWait, "commit-wait", c.CommitWait, "how long the leader holds a log entry open for more writes when several clients write (group commit); a lone writer never waits; 0 = never")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long shutdown waits for clients to finish")
	fs.Uint64Var(&c.SnapshotThreshold, "snapshot-threshold", c.SnapshotThreshold, "log entries between snapshots")
	fs.DurationVar(&c.SnapshotInterval, "snapshot-interval", c.SnapshotInterval, "ignored (kept so that existing command lines start): a snapshot is taken as soon as --snapshot-threshold entries were applied")
	fs.Var(&c.LogSegmentSize, "log-segment-size", "size of one Raft log file (old entries are deleted a file at a time)")
	fs.Uint64Var(&c.TrailingLogs, "trailing-logs", c.TrailingLogs, "log entries kept behind a snapshot, so a briefly absent node catches up without a snapshot install")
	fs.IntVar(&c.Procs, "procs", c.Procs, "Go processors (GOMAXPROCS); 0 = usable CPUs + 2, so that Raft's fsync, which holds a processor while it blocks, never stalls clients on a small machine")
	fs.IntVar(&c.GCPercent, "gc-percent", c.GCPercent, "Go heap growth between collections in percent (GOGC); lower keeps resident memory closer to the live sessions at some CPU cost")
	fs.IntVar(&c.EventLoops, "event-loops", c.EventLoops, "event loops serving the client ports (0 = one per usable CPU; -1 = none: a goroutine per client)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	fs.StringVar(&c.Config, "config", c.Config, "config file: one \"name value\" per line, names as the flags")
	return fs
}

// EnvName is the environment variable for a flag: HATCHECK_ and the name
// upper-cased with dashes as underscores.
func EnvName(flagName string) string {
	return "HATCHECK_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Load parses args over the defaults, then fills every flag not given on
// the command line from its environment variable, else from the config
// file, and validates the result.
func Load(args []string, getenv func(string) string) (Config, error) {
	c := Default()
	fs := c.FlagSet("hatcheck serve")
	fs.SetOutput(io.Discard) // the caller reports the error, once; PrintUsage is -h
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected argument %q", ErrInvalid, fs.Arg(0))
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if !explicit["config"] {
		if v := getenv(EnvName("config")); v != "" {
			c.Config = v
		}
	}
	file := map[string]string{}
	if c.Config != "" {
		var err error
		if file, err = readFile(c.Config); err != nil {
			return c, err
		}
		for k := range file {
			if fs.Lookup(k) == nil || k == "config" {
				return c, fmt.Errorf("%w: %s: unknown setting %q", ErrInvalid, c.Config, k)
			}
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || explicit[f.Name] || f.Name == "config" {
			return
		}
		src, v := "", ""
		if ev := getenv(EnvName(f.Name)); ev != "" {
			src, v = EnvName(f.Name), ev
		} else if fv, ok := file[f.Name]; ok {
			src, v = c.Config, fv
		} else {
			return
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			// redis.conf writes switches as yes and no.
			switch v {
			case "yes":
				v = "true"
			case "no":
				v = "false"
			}
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%w: %s: %s: %v", ErrInvalid, src, f.Name, e)
		}
	})
	if err != nil {
		return c, err
	}
	return c, c.Validate()
}

// PrintUsage writes hatcheck serve's usage: every flag, its default and
// its meaning.
func PrintUsage(w io.Writer) {
	c := Default()
	fs := c.FlagSet("hatcheck serve")
	fs.SetOutput(w)
	fmt.Fprintln(w, "usage: hatcheck serve [flags]\n\nEvery flag is also HATCHECK_<NAME> in the environment and \"name value\" in the --config file.\n\nFlags:")
	fs.PrintDefaults()
}

// readFile reads "name value" lines; blank lines and # comments are skipped
// and a value may be double-quoted.
func readFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, val, _ := strings.Cut(line, " ")
		val = strings.TrimSpace(val)
		if uq, err := strconv.Unquote(val); err == nil && strings.HasPrefix(val, `"`) {
			val = uq
		}
		out[strings.TrimSpace(name)] = val
	}
	return out, sc.Err()
}

// Package admin serves hatcheck's HTTP endpoints: /healthz, /readyz,
// /metrics (Prometheus), /debug/pprof, the cluster API (/cluster) and the
// dashboard (/, with /cluster/overview).
package admin

import (
	"crypto/subtle"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Status is what the endpoints ask of the node.
type Status interface {
	// Ready reports whether the node has a leader and has applied its log.
	Ready() bool
	// Healthy is nil while the node can serve at all (a node removed from
	// its cluster cannot, and never will again).
	Healthy() error
}

// Options are the admin port's settings.
type Options struct {
	// Password, when set, guards every endpoint but /healthz and /readyz
	// (which a load balancer polls): requests must carry it as HTTP basic
	// auth, with any user name, as `hatcheck cluster` sends it.
	Password string
	// Pprof serves Go's profiler under /debug/pprof/. Off by default: a
	// profile shows the process's command line and can stall it.
	Pprof bool
}

// Handler returns the admin mux. cl may be nil (no cluster API); the
// dashboard is served when cl is an Overviewer.
func Handler(st Status, reg *prometheus.Registry, cl Cluster, opts Options) http.Handler {
	mux := http.NewServeMux()
	guard := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !authorized(r, opts.Password) {
				w.Header().Set("WWW-Authenticate", `Basic realm="hatcheck"`)
				http.Error(w, "password required", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	if cl != nil {
		clusterRoutes(mux, cl, opts.Password)
		if o, ok := cl.(Overviewer); ok {
			dashboardRoutes(mux, o, guard)
		}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := st.Healthy(); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !st.Ready() {
			http.Error(w, "not ready: no leader or log not applied yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", guard(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	if opts.Pprof {
		mux.Handle("/debug/pprof/", guard(http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/cmdline", guard(http.HandlerFunc(pprof.Cmdline)))
		mux.Handle("/debug/pprof/profile", guard(http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/symbol", guard(http.HandlerFunc(pprof.Symbol)))
		mux.Handle("/debug/pprof/trace", guard(http.HandlerFunc(pprof.Trace)))
	}
	return mux
}

// authorized reports whether r carries the password (any user name), in
// constant time; with no password every request is.
func authorized(r *http.Request, password string) bool {
	if password == "" {
		return true
	}
	_, p, ok := r.BasicAuth()
	return ok && subtle.ConstantTimeCompare([]byte(p), []byte(password)) == 1
}

// Metrics records front-end observations; it satisfies the front ends'
// Metrics interfaces.
//
// The labelled series a front end touches on every request are looked up
// once and kept: prometheus's WithLabelValues hashes the label values and
// takes a lock on each call, a cost paid per command otherwise.
type Metrics struct {
	commands *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	conns    prometheus.Gauge
	lookups  *prometheus.CounterVec
	bytes    *prometheus.CounterVec

	hits, misses, read, written prometheus.Counter
	perCommand                  sync.Map // command name → *commandMetrics

	protocol string
	slow     slowTally            // commands slower than SlowCommand, for LoadMeter
	blocking map[string]bool      // see SetBlocking
	slowOver func() time.Duration // see SetSlowThreshold
}

type commandMetrics struct{ latency prometheus.Observer }

// NewMetrics registers the front-end metrics on reg.
func NewMetrics(reg prometheus.Registerer, protocol string) *Metrics {
	labels := prometheus.Labels{"protocol": protocol}
	m := &Metrics{
		protocol: protocol,
		commands: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hatcheck_command_duration_seconds", Help: "Command latency by command name, including replication.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(25e-6, 2, 16),
		}, []string{"command"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hatcheck_command_errors_total", Help: "Commands answered with an error, by command name.", ConstLabels: labels,
		}, []string{"command"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hatcheck_connected_clients", Help: "Connected clients.", ConstLabels: labels,
		}),
	}
	m.lookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hatcheck_lookups_total", Help: "Key lookups by result (hit or miss).", ConstLabels: labels,
	}, []string{"result"})
	m.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hatcheck_network_bytes_total", Help: "Bytes read from and written to clients.", ConstLabels: labels,
	}, []string{"direction"})
	reg.MustRegister(m.commands, m.errors, m.conns, m.lookups, m.bytes)
	m.hits, m.misses = m.lookups.WithLabelValues("hit"), m.lookups.WithLabelValues("miss")
	m.read, m.written = m.bytes.WithLabelValues("read"), m.bytes.WithLabelValues("written")
	return m
}

// Lookups counts key lookups that found a value and that did not.
func (m *Metrics) Lookups(hits, misses int) {
	if hits > 0 {
		m.hits.Add(float64(hits))
	}
	if misses > 0 {
		m.misses.Add(float64(misses))
	}
}

// Bytes counts network traffic.
func (m *Metrics) Bytes(read, written int) {
	if read > 0 {
		m.read.Add(float64(read))
	}
	if written > 0 {
		m.written.Add(float64(written))
	}
}

// Command records one command.
func (m *Metrics) Command(name string, d time.Duration, failed bool) {
	v, ok := m.perCommand.Load(name)
	if !ok {
		v, _ = m.perCommand.LoadOrStore(name, &commandMetrics{latency: m.commands.WithLabelValues(name)})
	}
	v.(*commandMetrics).latency.Observe(d.Seconds())
	if th := m.slowThreshold(); th >= 0 && d >= th && !m.blocking[name] {
		m.noteSlow(name, d, th)
	}
	if failed {
		// Looked up when it happens: a command that never failed has no
		// error series.
		m.errors.WithLabelValues(name).Inc()
	}
}

// Connections adds delta to the connected-clients gauge.
func (m *Metrics) Connections(delta int) { m.conns.Add(float64(delta)) }

// NodeStats is the node state exported as metrics.
type NodeStats struct {
	IsLeader                        bool
	Term, CommitIndex, AppliedIndex uint64
	Snapshots                       uint64
	LastSnapshotSeconds             float64
	Keys                            []int
	UsedMemory, MaxMemory           int64
	Expired, Evicted                uint64
	// The near-cache's counters by event (hits, misses, …) and its size.
	NearCache      map[string]uint64
	NearCacheBytes int64
	// LogAppend is the histogram of appends to the Raft log (fsync
	// included): upper bounds in seconds and cumulative counts.
	LogAppend LatencyHistogram
	// FollowerLag is, on the leader, each other member's committed entries
	// not yet acknowledged, by member id.
	FollowerLag map[string]uint64
}

// LatencyHistogram is a histogram in Prometheus's shape.
type LatencyHistogram struct {
	Count      uint64
	SumSeconds float64
	Bounds     []float64 // seconds
	Cumulative []uint64  // per bound
}

// RegisterNode exports the node's state, read at every scrape.
func RegisterNode(reg prometheus.Registerer, stats func() NodeStats) {
	reg.MustRegister(&nodeCollector{stats: stats})
}

type nodeCollector struct{ stats func() NodeStats }

var (
	descLeader   = prometheus.NewDesc("hatcheck_raft_leader", "1 if this node is the Raft leader.", nil, nil)
	descTerm     = prometheus.NewDesc("hatcheck_raft_term", "Current Raft term.", nil, nil)
	descCommit   = prometheus.NewDesc("hatcheck_raft_commit_index", "Raft commit index.", nil, nil)
	descApplied  = prometheus.NewDesc("hatcheck_raft_applied_index", "Last log index applied to the keyspace.", nil, nil)
	descSnaps    = prometheus.NewDesc("hatcheck_snapshots_total", "Snapshots written since start.", nil, nil)
	descSnapDur  = prometheus.NewDesc("hatcheck_snapshot_last_duration_seconds", "How long writing the last snapshot took.", nil, nil)
	descKeys     = prometheus.NewDesc("hatcheck_keys", "Keys per database, including expired keys not yet deleted.", []string{"db"}, nil)
	descUsed     = prometheus.NewDesc("hatcheck_used_memory_bytes", "Accounted memory of keys and values.", nil, nil)
	descMax      = prometheus.NewDesc("hatcheck_maxmemory_bytes", "Configured memory limit (0 = none).", nil, nil)
	descExpired  = prometheus.NewDesc("hatcheck_expired_keys_total", "Keys deleted by active expiry on this node as leader.", nil, nil)
	descEvicted  = prometheus.NewDesc("hatcheck_evicted_keys_total", "Keys evicted for maxmemory on this node as leader.", nil, nil)
	descAppend   = prometheus.NewDesc("hatcheck_log_append_duration_seconds", "How long appending entries to the Raft log took, fsync included.", nil, nil)
	descLag      = prometheus.NewDesc("hatcheck_follower_lag_entries", "On the leader: committed log entries a member has not acknowledged yet.", []string{"member"}, nil)
	nodeDescList = []*prometheus.Desc{descLeader, descTerm, descCommit, descApplied, descSnaps, descSnapDur, descKeys, descUsed, descMax, descExpired, descEvicted, descNear, descNearBytes, descAppend, descLag}
)

// The near-cache's (see cluster.NearStats).
var (
	descNear      = prometheus.NewDesc("hatcheck_nearcache_events_total", "Near-cache events on this node: hits, misses, uncacheable misses, invalidations sent and received, flushes, leases waited out.", []string{"event"}, nil)
	descNearBytes = prometheus.NewDesc("hatcheck_nearcache_bytes", "Approximate size of the near-cache's entries.", nil, nil)
)

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range nodeDescList {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	leader := 0.0
	if s.IsLeader {
		leader = 1
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	cnt := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(descLeader, leader)
	g(descTerm, float64(s.Term))
	g(descCommit, float64(s.CommitIndex))
	g(descApplied, float64(s.AppliedIndex))
	cnt(descSnaps, float64(s.Snapshots))
	g(descSnapDur, s.LastSnapshotSeconds)
	for db, n := range s.Keys {
		g(descKeys, float64(n), strconv.Itoa(db))
	}
	g(descUsed, float64(s.UsedMemory))
	g(descMax, float64(s.MaxMemory))
	cnt(descExpired, float64(s.Expired))
	cnt(descEvicted, float64(s.Evicted))
	for ev, v := range s.NearCache {
		ch <- prometheus.MustNewConstMetric(descNear, prometheus.CounterValue, float64(v), ev)
	}
	g(descNearBytes, float64(s.NearCacheBytes))
	if h := s.LogAppend; len(h.Bounds) == len(h.Cumulative) {
		buckets := make(map[float64]uint64, len(h.Bounds))
		for i, b := range h.Bounds {
			buckets[b] = h.Cumulative[i]
		}
		ch <- prometheus.MustNewConstHistogram(descAppend, h.Count, h.SumSeconds, buckets)
	}
	for member, lag := range s.FollowerLag {
		g(descLag, float64(lag), member)
	}
}

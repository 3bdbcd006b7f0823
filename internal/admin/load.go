package admin

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Load is a node's recent client work: what the dashboard shows per node.
type Load struct {
	OpsPerSec float64 `json:"ops_per_sec"`
	// Command latency percentiles in seconds, replication included (0
	// when no command ran in the window).
	P50     float64 `json:"p50_seconds"`
	P99     float64 `json:"p99_seconds"`
	Clients int     `json:"clients"` // connected now, every protocol
}

// loadWindow is how far back Load looks: long enough that a second
// without commands does not read as idle, short enough that the dashboard
// shows a change within a few of its refreshes.
const loadWindow = 5 * time.Second

// SlowCommand is the latency from which a command counts as slow unless
// SetSlowThreshold says otherwise (redis's slowlog-log-slower-than
// default, 10 ms; the server passes the Redis front end's setting).
// hatcheck's latency includes replication: a write that waits for a slow
// disk or a lost quorum counts too, which is what the events list is for.
const SlowCommand = 10 * time.Millisecond

// slowEvery is how often at most LoadMeter reports slow commands: the
// first at once, then, while commands stay slow, one tally per interval,
// so that a node slow for minutes says so in a few lines.
const slowEvery = 10 * time.Second

// SlowCommands tallies the slow commands of an interval.
type SlowCommands struct {
	Count     int
	Threshold time.Duration // slower than this
	Over      time.Duration // the interval
	Slowest   time.Duration
	Command   string // the slowest one's name
	Protocol  string // and its protocol
}

func (s SlowCommands) String() string {
	what := "command"
	if s.Count > 1 {
		what = "commands"
	}
	return fmt.Sprintf("%d %s slower than %v in the last %v (slowest: %s %s, %v)",
		s.Count, what, s.Threshold, max(s.Over.Round(time.Second), time.Second), s.Protocol, s.Command, s.Slowest.Round(time.Millisecond/10))
}

// add merges t into s.
func (s *SlowCommands) add(t SlowCommands) {
	if t.Slowest > s.Slowest {
		s.Slowest, s.Command, s.Protocol = t.Slowest, t.Command, t.Protocol
	}
	if s.Threshold == 0 || (t.Threshold != 0 && t.Threshold < s.Threshold) {
		s.Threshold = t.Threshold
	}
	s.Count += t.Count
}

// LoadMeter measures the front ends' recent load from the metrics they
// already keep: once a second it samples the command latency histograms
// of the Metrics it watches, and Load reports operations per second and
// latency percentiles over the last loadWindow, as the difference between
// the newest sample and the one loadWindow before it. It also collects the
// slow commands the Metrics noted and passes each second's tally to its
// OnSlow hook. Start it once; Close stops it.
type LoadMeter struct {
	metrics []*Metrics
	onSlow  func(SlowCommands)

	mu      sync.Mutex
	samples []loadSample // ring, one per second; taken counts those written
	taken   int

	// Owned by Sample: slow commands not reported yet, since when, and
	// when the last report was.
	slow                   SlowCommands
	slowSince, lastSlowRep time.Time

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// loadSample is the sum of every watched command histogram at one time.
type loadSample struct {
	at    time.Time
	count uint64 // every command
	// The latency of every command but the blocking ones: the buckets'
	// upper bounds (seconds), cumulative counts per bound, and their total.
	bounds  []float64
	buckets []uint64
	timed   uint64
}

// SetSlowThreshold makes the commands at least as slow as what f returns
// count as slow (none when it is negative) instead of SlowCommand. f is
// called for every command: it should be an atomic load. Call it before
// the first command is recorded.
func (m *Metrics) SetSlowThreshold(f func() time.Duration) { m.slowOver = f }

func (m *Metrics) slowThreshold() time.Duration {
	if m.slowOver == nil {
		return SlowCommand
	}
	return m.slowOver()
}

// SetBlocking names the commands that wait for data by design (the Redis
// front end's blocking ones, redis.BlockingCommands): a BLPOP that waits
// 5 s for an element is not slow, so they count as operations but not in
// the latency percentiles or as slow commands (redis's SLOWLOG leaves out
// a blocked client's wait too). Call it before the first command is
// recorded.
func (m *Metrics) SetBlocking(names []string) {
	m.blocking = make(map[string]bool, len(names))
	for _, n := range names {
		m.blocking[n] = true
	}
}

// NewLoadMeter watches ms (nil entries are skipped). onSlow, if not nil,
// hears once a second about the commands slower than SlowCommand, from
// the meter's goroutine.
func NewLoadMeter(onSlow func(SlowCommands), ms ...*Metrics) *LoadMeter {
	l := &LoadMeter{onSlow: onSlow, samples: make([]loadSample, int(loadWindow/time.Second)+1),
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, m := range ms {
		if m != nil {
			l.metrics = append(l.metrics, m)
		}
	}
	return l
}

// Start samples once a second until Close.
func (l *LoadMeter) Start() {
	l.Sample(time.Now())
	go func() {
		defer close(l.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				l.Sample(now)
			case <-l.stop:
				return
			}
		}
	}()
}

// Close stops sampling and waits for the sampling goroutine. It may be
// called more than once.
func (l *LoadMeter) Close() {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
}

// Sample records the watched histograms' totals as of now and reports
// the slow commands noted since the last report, at most once per
// slowEvery. Samples are taken one at a time (Start's goroutine, or a
// test).
func (l *LoadMeter) Sample(now time.Time) {
	s := loadSample{at: now}
	for _, m := range l.metrics {
		m.addTo(&s)
		if t := m.takeSlow(); t.Count > 0 {
			if l.slow.Count == 0 {
				// They happened since the previous sample, a second ago.
				l.slowSince = now.Add(-time.Second)
			}
			l.slow.add(t)
		}
	}
	l.mu.Lock()
	l.samples[l.taken%len(l.samples)] = s
	l.taken++
	l.mu.Unlock()
	if l.slow.Count > 0 && now.Sub(l.lastSlowRep) >= slowEvery {
		l.slow.Over = now.Sub(l.slowSince)
		if l.onSlow != nil {
			l.onSlow(l.slow)
		}
		l.slow, l.lastSlowRep = SlowCommands{}, now
	}
}

// Load reports the load over the last loadWindow (or since the first
// sample, if younger). Clients are counted now.
func (l *LoadMeter) Load() Load {
	var ld Load
	for _, m := range l.metrics {
		ld.Clients += int(gaugeValue(m.conns))
	}
	l.mu.Lock()
	if l.taken < 2 {
		l.mu.Unlock()
		return ld
	}
	newest := l.samples[(l.taken-1)%len(l.samples)]
	oldest := l.samples[max(0, l.taken-len(l.samples))%len(l.samples)]
	l.mu.Unlock()
	secs := newest.at.Sub(oldest.at).Seconds()
	if secs <= 0 || newest.count < oldest.count {
		return ld
	}
	ld.OpsPerSec = float64(newest.count-oldest.count) / secs
	n := newest.timed - oldest.timed
	// A sample taken before any command ran has no buckets: zeros.
	if n > 0 && (oldest.buckets == nil || len(newest.buckets) == len(oldest.buckets)) {
		delta := make([]uint64, len(newest.buckets))
		for i := range delta {
			delta[i] = newest.buckets[i]
			if oldest.buckets != nil {
				delta[i] -= oldest.buckets[i]
			}
		}
		ld.P50 = quantile(0.5, newest.bounds, delta, n)
		ld.P99 = quantile(0.99, newest.bounds, delta, n)
	}
	return ld
}

// quantile estimates the q-quantile of n observations from cumulative
// bucket counts, as Prometheus's histogram_quantile does: linearly within
// the bucket that holds it; beyond the last bound, the last bound.
func quantile(q float64, bounds []float64, cum []uint64, n uint64) float64 {
	rank := q * float64(n)
	lower, below := 0.0, uint64(0)
	for i, c := range cum {
		if float64(c) >= rank {
			if c == below {
				return bounds[i]
			}
			return lower + (bounds[i]-lower)*(rank-float64(below))/float64(c-below)
		}
		lower, below = bounds[i], c
	}
	if len(bounds) == 0 {
		return 0
	}
	return bounds[len(bounds)-1]
}

// addTo adds m's command histograms, every command's, to s.
func (m *Metrics) addTo(s *loadSample) {
	ch := make(chan prometheus.Metric, 16)
	go func() {
		m.commands.Collect(ch)
		close(ch)
	}()
	for pm := range ch {
		var d dto.Metric
		if pm.Write(&d) != nil || d.Histogram == nil {
			continue
		}
		h := d.Histogram
		s.count += h.GetSampleCount()
		if m.blocking[commandLabel(&d)] {
			continue
		}
		s.timed += h.GetSampleCount()
		if s.bounds == nil {
			for _, b := range h.Bucket {
				s.bounds = append(s.bounds, b.GetUpperBound())
			}
			s.buckets = make([]uint64, len(s.bounds))
		}
		// Every series has the same buckets (NewMetrics).
		for i, b := range h.Bucket {
			if i < len(s.buckets) {
				s.buckets[i] += b.GetCumulativeCount()
			}
		}
	}
}

func commandLabel(d *dto.Metric) string {
	for _, l := range d.Label {
		if l.GetName() == "command" {
			return l.GetValue()
		}
	}
	return ""
}

func gaugeValue(g prometheus.Gauge) float64 {
	var d dto.Metric
	if g.Write(&d) != nil || d.Gauge == nil {
		return 0
	}
	return d.Gauge.GetValue()
}

// slowTally is what Metrics notes of slow commands between samples.
type slowTally struct {
	mu sync.Mutex
	t  SlowCommands
}

// noteSlow counts a slow command. It takes a lock, but only slow
// commands get here.
func (m *Metrics) noteSlow(name string, d, threshold time.Duration) {
	m.slow.mu.Lock()
	defer m.slow.mu.Unlock()
	m.slow.t.Count++
	if m.slow.t.Count == 1 || threshold < m.slow.t.Threshold {
		m.slow.t.Threshold = threshold
	}
	if d > m.slow.t.Slowest {
		m.slow.t.Slowest, m.slow.t.Command, m.slow.t.Protocol = d, name, m.protocol
	}
}

// takeSlow returns and resets the tally.
func (m *Metrics) takeSlow() SlowCommands {
	m.slow.mu.Lock()
	defer m.slow.mu.Unlock()
	t := m.slow.t
	m.slow.t = SlowCommands{}
	return t
}

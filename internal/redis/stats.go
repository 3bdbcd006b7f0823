package redis

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// What INFO's stats section and SLOWLOG report, kept by the front end:
// counters the connections add to, a sampler for the instantaneous
// rates, and the slow log.

// stats are the server's counters. Connections add to them from their
// drivers; INFO reads them.
type stats struct {
	hits, misses  atomic.Int64 // keyspace_hits, keyspace_misses (see countLookups)
	netIn, netOut atomic.Int64 // bytes read from and written to clients, pushes included

	rates rates
}

// Instantaneous rates as redis-server computes them: a sample every 100 ms
// of how much a counter grew, averaged over the last 16 samples (1.6 s).
const (
	rateEvery   = 100 * time.Millisecond
	rateSamples = 16
)

// rates samples the counters behind instantaneous_ops_per_sec and the
// kbps figures. The sampling goroutine runs from the first Serve to Close.
type rates struct {
	once, stopOnce sync.Once
	stop           chan struct{}
	done           chan struct{}

	mu   sync.Mutex
	ring [3][rateSamples]float64 // per second: commands, input bytes, output bytes
	last [3]int64
	at   time.Time
	n    int // samples taken, up to rateSamples
	idx  int
}

// startRates starts the sampler (once).
func (s *Server) startRates() {
	r := &s.stats.rates
	r.once.Do(func() {
		r.stop, r.done = make(chan struct{}), make(chan struct{})
		r.at = time.Now()
		go func() {
			defer close(r.done)
			t := time.NewTicker(rateEvery)
			defer t.Stop()
			for {
				select {
				case now := <-t.C:
					r.sample(now, [3]int64{s.totalCmds.Load(), s.stats.netIn.Load(), s.stats.netOut.Load()})
				case <-r.stop:
					return
				}
			}
		}()
	})
}

// stopRates stops the sampler, if it was started; Close may be called
// more than once.
func (s *Server) stopRates() {
	r := &s.stats.rates
	r.once.Do(func() {}) // no start after Close
	r.stopOnce.Do(func() {
		if r.stop != nil {
			close(r.stop)
			<-r.done
		}
	})
}

func (r *rates) sample(now time.Time, v [3]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	secs := now.Sub(r.at).Seconds()
	if secs <= 0 {
		return
	}
	for i := range v {
		// A counter reset by CONFIG RESETSTAT counts from zero.
		r.ring[i][r.idx] = float64(max(v[i]-r.last[i], 0)) / secs
	}
	r.last, r.at = v, now
	r.idx = (r.idx + 1) % rateSamples
	r.n = min(r.n+1, rateSamples)
}

// rate is the mean of counter i's samples, per second.
func (r *rates) rate(i int) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 {
		return 0
	}
	var sum float64
	for _, v := range r.ring[i][:r.n] {
		sum += v
	}
	return sum / float64(r.n)
}

// countLookups counts a read's key lookups for keyspace_hits and
// keyspace_misses. redis counts inside its lookup function; hatcheck's
// front end counts from the reply, one lookup per read command with a key:
// a null or an empty collection is a miss (an empty collection does not
// exist in redis), anything else but an error a hit; a reply with one
// element per key (MGET, the row's perKey) counts each element.
func (c *conn) countLookups(spec *cmdSpec, r command.Result) {
	if spec.flags&flagReadOnly == 0 || !spec.hasKeys() {
		return
	}
	st := &c.srv.stats
	switch {
	case r.Kind == command.KindError:
	case r.Kind == command.KindArray && spec.perKey:
		var miss int64
		for _, e := range r.Array {
			if e.Kind == command.KindNil {
				miss++
			}
		}
		st.misses.Add(miss)
		st.hits.Add(int64(len(r.Array)) - miss)
	case r.Kind == command.KindNil, r.Kind == command.KindArray && len(r.Array) == 0:
		st.misses.Add(1)
	default:
		st.hits.Add(1)
	}
}

// The slow log (SLOWLOG, slowlog-log-slower-than, slowlog-max-len).
// hatcheck measures a command from its dispatch to its reply, the wait
// for the log commit included: that is its latency, and what an operator
// looking for slow commands needs to see. redis measures the execution
// alone, which in hatcheck is a small part of a write.

const (
	slowlogMaxArgs  = 32  // redis's SLOWLOG_ENTRY_MAX_ARGC
	slowlogMaxBytes = 128 // redis's SLOWLOG_ENTRY_MAX_STRING
)

type slowEntry struct {
	id     int64
	at     int64 // unix seconds
	micros int64
	args   []string
	addr   string
	name   string
}

type slowlog struct {
	mu      sync.Mutex
	entries []slowEntry // newest first
	nextID  int64
}

// SetSlowlogSlowerThan sets slowlog-log-slower-than, in microseconds (-1:
// off), as CONFIG SET does; the server starts with redis's 10000.
func (s *Server) SetSlowlogSlowerThan(us int64) { s.slowlogSlower.Store(max(us, -1)) }

// SlowThreshold is slowlog-log-slower-than as it is now, as a duration;
// negative when the slow log is off. The dashboard's slow-command events
// follow it.
func (s *Server) SlowThreshold() time.Duration {
	us := s.slowlogSlower.Load()
	if us < 0 {
		return -1
	}
	return time.Duration(us) * time.Microsecond
}

// slowlogRecord logs a command that took d, if that is over the threshold.
func (c *conn) slowlogRecord(spec *cmdSpec, args [][]byte, start time.Time, d time.Duration) {
	s := c.srv
	limit := s.slowlogSlower.Load()
	if limit < 0 || d.Microseconds() < limit || spec.flags&flagSkipSlowlog != 0 || len(args) == 0 {
		return
	}
	n := min(len(args), slowlogMaxArgs)
	e := slowEntry{at: start.Unix(), micros: d.Microseconds(), args: make([]string, n), addr: c.addr, name: c.name.Load().(string)}
	for i := 0; i < n; i++ {
		a := args[i]
		switch {
		case n != len(args) && i == n-1:
			e.args[i] = fmt.Sprintf("... (%d more arguments)", len(args)-n+1)
		case redacted(spec, args, i):
			e.args[i] = "(redacted)"
		case len(a) > slowlogMaxBytes:
			e.args[i] = string(a[:slowlogMaxBytes]) + fmt.Sprintf("... (%d more bytes)", len(a)-slowlogMaxBytes)
		default:
			e.args[i] = string(a)
		}
	}
	l := &s.slowlog
	l.mu.Lock()
	defer l.mu.Unlock()
	e.id = l.nextID
	l.nextID++
	l.entries = append([]slowEntry{e}, l.entries...)
	if max := s.slowlogMaxLen.Load(); int64(len(l.entries)) > max {
		l.entries = l.entries[:max]
	}
}

// redacted reports whether argument i is a password, which the slow log
// does not keep (AUTH's arguments, HELLO's after AUTH), as redis 7.0.
func redacted(spec *cmdSpec, args [][]byte, i int) bool {
	switch spec.name {
	case "auth":
		return i > 0
	case "hello":
		for j := 2; j+2 < len(args); j++ {
			if eq(args[j], "auth") && (i == j+1 || i == j+2) {
				return true
			}
		}
	}
	return false
}

var slowlogSubcommands = map[string]int{"get": -2, "len": 2, "reset": 2, "help": 2}

func runSlowlog(c *conn, a [][]byte) {
	sub, ok := c.subcommand(a, "slowlog", slowlogSubcommands)
	if !ok {
		return
	}
	c.lastCmd.Store(subcommandName("slowlog", sub))
	l := &c.srv.slowlog
	switch sub {
	case "len":
		l.mu.Lock()
		n := len(l.entries)
		l.mu.Unlock()
		c.out = resp.AppendInt(c.out, int64(n))
	case "reset":
		l.mu.Lock()
		l.entries = nil
		l.mu.Unlock()
		c.out = resp.AppendSimple(c.out, "OK")
	case "get":
		count := int64(10)
		if len(a) > 3 {
			c.out = resp.AppendError(c.out, "ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.")
			return
		}
		if len(a) == 3 {
			n, ok := parseInt(a[2])
			if !ok || n < -1 {
				c.out = resp.AppendError(c.out, "ERR count should be greater than or equal to -1")
				return
			}
			count = n
		}
		l.mu.Lock()
		entries := l.entries
		if count >= 0 && int64(len(entries)) > count {
			entries = entries[:count]
		}
		entries = append([]slowEntry(nil), entries...)
		l.mu.Unlock()
		c.out = resp.AppendArray(c.out, len(entries))
		for _, e := range entries {
			c.out = resp.AppendArray(c.out, 6)
			c.out = resp.AppendInt(c.out, e.id)
			c.out = resp.AppendInt(c.out, e.at)
			c.out = resp.AppendInt(c.out, e.micros)
			c.out = resp.AppendArray(c.out, len(e.args))
			for _, arg := range e.args {
				c.out = resp.AppendBulkString(c.out, arg)
			}
			c.out = resp.AppendBulkString(c.out, e.addr)
			c.out = resp.AppendBulkString(c.out, e.name)
		}
	case "help":
		c.out = resp.AppendArray(c.out, 12)
		for _, l := range []string{
			"SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GET [<count>]",
			"    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
			"    Entries are made of:",
			"    id, timestamp, time in microseconds, arguments array, client IP and port,",
			"    client name",
			"LEN",
			"    Return the length of the slowlog.",
			"RESET",
			"    Reset the slowlog.",
			"HELP",
			"    Prints this help.",
		} {
			c.out = resp.AppendSimple(c.out, l)
		}
	}
}

var memorySubcommands = map[string]int{"usage": -3, "help": 2}

// runMemory answers MEMORY USAGE key [SAMPLES n] from the keyspace's
// accounting of the key (entry overhead, key and value bytes, a per-field
// overhead for hashes and sets: what maxmemory counts), which is an
// estimate as redis's is; SAMPLES is checked and otherwise ignored, since
// the accounting is exact for every field.
func runMemory(c *conn, a [][]byte) {
	sub, ok := c.subcommand(a, "memory", memorySubcommands)
	if !ok {
		return
	}
	c.lastCmd.Store(subcommandName("memory", sub))
	if sub == "help" {
		c.out = resp.AppendArray(c.out, 14)
		for _, l := range []string{
			"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"DOCTOR", "    Return memory problems reports.",
			"MALLOC-STATS", "    Return internal statistics report from the memory allocator.",
			"PURGE", "    Attempt to purge dirty pages for reclamation by the allocator.",
			"STATS", "    Return information about the memory usage of the server.",
			"USAGE <key> [SAMPLES <count>]",
			"    Return memory in bytes used by <key> and its value. Nested values are",
			"    sampled up to <count> times (default: 5, 0 means sample all).",
			"HELP", "    Prints this help.",
		} {
			c.out = resp.AppendSimple(c.out, l)
		}
		return
	}
	for j := 3; j < len(a); j += 2 {
		if !eq(a[j], "samples") || j+1 >= len(a) {
			c.out = resp.AppendError(c.out, errSyntax)
			return
		}
		n, ok := parseInt(a[j+1])
		if !ok {
			c.out = resp.AppendError(c.out, errNotInteger)
			return
		}
		if n < 0 {
			c.out = resp.AppendError(c.out, errSyntax)
			return
		}
	}
	if msg := c.keyCheck(a[2]); msg != "" {
		c.out = resp.AppendError(c.out, msg)
		return
	}
	cmd := c.cmd(command.OpObject, a[2], []byte("memory-usage"), nil)
	reply := func(r command.Result) {
		if r.Kind == command.KindError {
			c.out = resp.AppendError(c.out, errorText(r.Err, "memory"))
			return
		}
		c.out = appendReply(c.out, r, c.protocol(), shapeArray)
	}
	if r, ok := c.readNow(cmd); ok {
		reply(r)
		return
	}
	c.read(cmd, reply)
}

// infoKbps formats a byte rate as INFO's kbps, with two decimals.
func infoKbps(bytesPerSec float64) string { return strconv.FormatFloat(bytesPerSec/1024, 'f', 2, 64) }

// trackingTotals are INFO's tracking_total_keys, _items and _prefixes.
func (t *tracker) totals() (keys, items, prefixes int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, set := range t.keys {
		items += len(set)
	}
	return len(t.keys), items, len(t.prefixes)
}

// pubsubTotals are INFO's pubsub_channels and pubsub_patterns.
func (h *hub) totals() (channels, patterns int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs), len(h.patterns)
}

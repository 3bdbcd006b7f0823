// Package bench is hatcheck's load generator for session workloads over
// the Redis protocol and the memcached text and binary protocols
// (`hatcheck bench`). Each connection runs in its own goroutine with raw,
// pre-encoded requests and optional pipelining; latencies go into
// HdrHistograms per request type. The scenarios whose requests depend on
// each other's replies (locking, touch) send them in turn, as PHP does.
package bench

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Config describes one run.
type Config struct {
	Addrs       []string // connections are spread over these
	Protocol    string   // redis, memcache-text, memcache-binary
	Password    string   // Redis AUTH, if set
	Scenario    string   // see Scenarios
	Connections int
	// Pipeline is, for the plain scenarios, the requests sent before reading
	// their replies; for those that go in turn (InTurn), the sessions a
	// connection runs side by side, one step of all of them at a time.
	Pipeline  int
	ValueSize int
	Keys      int // distinct session ids
	TTL       time.Duration
	Duration  time.Duration
	Warmup    time.Duration // run, but not measured, before Duration
	Prefill   bool          // write every key once before the run
	Rate      int           // total requests per second to aim at; 0 = as fast as possible
	// WaitReplicas, over Redis, follows every write with WAIT n 100 and
	// counts the write done when WAIT answers (a master + replica setup
	// made to acknowledge like a replicated store).
	WaitReplicas int
	Progress     io.Writer // a line per second while prefilling and running; nil = none

	// progressInterval is the time between prefill progress lines; 0 = a
	// second. Tests shorten it.
	progressInterval time.Duration
}

func (c *Config) progressEvery() time.Duration {
	if c.progressInterval > 0 {
		return c.progressInterval
	}
	return time.Second
}

// Scenarios lists the workloads, as the session handlers send them. In
// touch, lock and memcache-lock a session's requests go in turn (InTurn).
var Scenarios = map[string]string{
	"mix":           "SET k v EX ttl : GET k = 1:4 (a session read on every request, written on one in five)",
	"writes":        "SET k v EX ttl only",
	"reads":         "GET k only",
	"login":         "new sessions: SET k v NX EX ttl on fresh session ids",
	"touch":         "GET k, then EXPIRE k ttl (PHP's lazy write), each after the reply to the one before",
	"lock":          "PHP's locking: SET k_LOCK NX PX 30000, GET k, SET k v EX ttl, DEL k_LOCK, each after the reply to the one before",
	"memcache-lock": "php-memcached's locking: add k.lock, get k, set k, delete k.lock, each after the reply to the one before",
}

// Stats are one request type's figures.
type Stats struct {
	Count  int64   `json:"count"`
	PerSec float64 `json:"per_sec"`
	P50us  int64   `json:"p50_us"`
	P99us  int64   `json:"p99_us"`
	P999us int64   `json:"p999_us"`
	MaxUs  int64   `json:"max_us"`
}

// Result is a run's outcome.
type Result struct {
	Config   Config           `json:"-"`
	Scenario string           `json:"scenario"`
	Protocol string           `json:"protocol"`
	Seconds  float64          `json:"seconds"`
	Ops      int64            `json:"ops"`
	PerSec   float64          `json:"ops_per_sec"`
	Errors   int64            `json:"errors"`
	All      Stats            `json:"all"`
	ByKind   map[string]Stats `json:"by_kind"`
}

func (c *Config) check() error {
	if len(c.Addrs) == 0 {
		return errors.New("no address")
	}
	if _, ok := Scenarios[c.Scenario]; !ok {
		return fmt.Errorf("unknown scenario %q", c.Scenario)
	}
	if c.WaitReplicas > 0 && c.Protocol != "redis" {
		return errors.New("WAIT needs the Redis protocol")
	}
	if c.Scenario == "memcache-lock" && c.Protocol == "redis" {
		return errors.New("scenario memcache-lock needs a memcached protocol")
	}
	if c.Connections < 1 || c.Pipeline < 1 || c.ValueSize < 1 || c.Keys < 1 || c.Duration <= 0 || c.TTL < time.Second {
		return errors.New("connections, pipeline, value size, keys and duration must be positive, ttl at least 1s")
	}
	return nil
}

// SessionKey is the key of session i, shaped like the handler's: a prefix
// and 32 hex digits.
func SessionKey(protocol string, i int) []byte {
	sum := sha1.Sum([]byte(strconv.Itoa(i)))
	prefix := "PHPREDIS_SESSION:"
	if strings.HasPrefix(protocol, "memcache") {
		prefix = "memc.sess.key."
	}
	return []byte(prefix + hex.EncodeToString(sum[:16]))
}

// histogram covers 1 µs to 60 s with 3 significant digits.
func newHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, 60_000_000, 3) }

// worker is one connection's state.
type worker struct {
	cfg   *Config
	codec codec
	conn  net.Conn
	br    *bufio.Reader
	rng   *rand.Rand
	value []byte
	hist  [numKinds]*hdrhistogram.Histogram
	ops   atomic.Int64
	errs  atomic.Int64
	out   []byte
	batch []request // one round's sessions, each session's requests in order
	step  []request // the requests of one step of the sessions that go in turn
	seq   uint32    // the last request's id (the binary protocol's opaque)
	next  time.Time // when the next request may go out, with a Rate
	// perRequest is the time between two requests of this connection that
	// keeps all connections together at Rate; 0 = as fast as possible.
	perRequest time.Duration
	waitN      []byte   // WaitReplicas as text
	fresh      int      // next fresh session id for "login"
	keys       [][]byte // the session ids, shared by the workers
}

// Run runs the benchmark until cfg.Warmup+cfg.Duration has passed or ctx
// ends.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.check(); err != nil {
		return Result{}, err
	}
	cd, err := newCodec(cfg.Protocol)
	if err != nil {
		return Result{}, err
	}
	keys := make([][]byte, cfg.Keys)
	for i := range keys {
		keys[i] = SessionKey(cfg.Protocol, i)
	}
	workers := make([]*worker, cfg.Connections)
	for i := range workers {
		w := &worker{cfg: &cfg, codec: cd, rng: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))),
			value: []byte(strings.Repeat("s", cfg.ValueSize)), fresh: cfg.Keys + i*1_000_000_000, keys: keys,
			waitN: strconv.AppendInt(nil, int64(cfg.WaitReplicas), 10)}
		if err := w.dial(cfg.Addrs[i%len(cfg.Addrs)]); err != nil {
			for _, o := range workers[:i] {
				o.conn.Close()
			}
			return Result{}, err
		}
		defer w.conn.Close()
		for k := range w.hist {
			w.hist[k] = newHistogram()
		}
		workers[i] = w
	}
	if cfg.Prefill {
		if err := prefill(workers); err != nil {
			return Result{}, fmt.Errorf("prefill: %w", err)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.Warmup+cfg.Duration)
	defer cancel()
	measureFrom := time.Now().Add(cfg.Warmup)
	var wg sync.WaitGroup
	errc := make(chan error, len(workers))
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(ctx, measureFrom); err != nil && ctx.Err() == nil {
				errc <- err
				cancel()
			}
		}()
	}
	stopProgress := progress(cfg.Progress, workers, measureFrom)
	wg.Wait()
	stopProgress()
	close(errc)
	if err := <-errc; err != nil {
		return Result{}, err
	}
	return summarize(cfg, workers, time.Since(measureFrom)), nil
}

func (w *worker) dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	w.conn, w.br = c, bufio.NewReaderSize(c, 64<<10)
	if w.cfg.Password != "" && w.cfg.Protocol == "redis" {
		if _, err := c.Write(appendCommand(nil, []byte("AUTH"), []byte(w.cfg.Password))); err != nil {
			return err
		}
		if failed, err := readRESP(w.br); err != nil || failed {
			c.Close()
			return fmt.Errorf("AUTH failed at %s: %v", addr, err)
		}
	}
	return nil
}

// session appends one session's requests to the batch, in the order the
// handler sends them. Every session of a scenario has the same number of
// requests, which run relies on to split a round into steps.
func (w *worker) session() {
	cfg := w.cfg
	ttl := int(cfg.TTL / time.Second)
	key := w.keys[w.rng.IntN(cfg.Keys)]
	add := func(k Kind, key, value []byte, ttl int) {
		w.batch = append(w.batch, request{kind: k, key: key, value: value, ttl: ttl})
	}
	switch cfg.Scenario {
	case "mix":
		if w.rng.IntN(5) == 0 {
			add(OpSet, key, w.value, ttl)
		} else {
			add(OpGet, key, nil, 0)
		}
	case "writes":
		add(OpSet, key, w.value, ttl)
	case "reads":
		add(OpGet, key, nil, 0)
	case "login":
		w.fresh++
		add(OpSetNX, SessionKey(cfg.Protocol, w.fresh), w.value, ttl)
	case "touch":
		add(OpGet, key, nil, 0)
		add(OpExpire, key, nil, ttl)
	case "lock", "memcache-lock":
		lock := append(append([]byte{}, key...), "_LOCK"...)
		lockTTL := 30000 // ms (SET NX PX), phpredis's default lock expiry
		if cfg.Protocol != "redis" {
			lock = append(append([]byte{}, key...), ".lock"...)
			lockTTL = 30 // seconds (add's exptime)
		}
		add(OpLock, lock, []byte("1"), lockTTL)
		add(OpGet, key, nil, 0)
		add(OpSet, key, w.value, ttl)
		add(OpDel, lock, nil, 0)
	}
}

// InTurn reports whether the scenario's requests of one session are sent
// one at a time, each after the reply to the one before, as PHP's session
// handlers send them: a handler learns from the lock's reply whether it may
// read, and reads before it writes. Measuring such a session as a pipeline
// would give every request type the latency of the whole session.
func InTurn(scenario string) bool {
	switch scenario {
	case "touch", "lock", "memcache-lock":
		return true
	}
	return false
}

// run sends rounds of Pipeline sessions and reads their replies until ctx
// ends. For the plain scenarios a session is one request and a round is
// one pipeline of Pipeline requests. For the scenarios that go in turn
// (InTurn), a round is Pipeline sessions side by side: their first requests
// go out together, and each session's next request only after every reply
// of that step has been read, so within a session request n+1 never leaves
// before the reply to request n has arrived.
func (w *worker) run(ctx context.Context, measureFrom time.Time) error {
	if w.cfg.Rate > 0 {
		w.perRequest = time.Duration(float64(time.Second) * float64(w.cfg.Connections) / float64(w.cfg.Rate))
	}
	w.next = time.Now()
	go func() {
		<-ctx.Done()
		_ = w.conn.SetDeadline(time.Now()) // unblock a pending read
	}()
	for ctx.Err() == nil {
		w.batch = w.batch[:0]
		for i := 0; i < w.cfg.Pipeline; i++ {
			w.session()
		}
		if !InTurn(w.cfg.Scenario) {
			if err := w.exchange(w.batch, measureFrom); err != nil {
				return err
			}
			continue
		}
		steps := len(w.batch) / w.cfg.Pipeline
		for s := 0; s < steps && ctx.Err() == nil; s++ {
			w.step = w.step[:0]
			for i := s; i < len(w.batch); i += steps {
				w.step = append(w.step, w.batch[i])
			}
			if err := w.exchange(w.step, measureFrom); err != nil {
				return err
			}
		}
	}
	return nil
}

// exchange sends reqs in one write, then reads and checks every reply, and
// records each request's latency from the write to its reply. With a Rate
// it first waits for the requests' turn.
func (w *worker) exchange(reqs []request, measureFrom time.Time) error {
	if w.perRequest > 0 {
		if d := time.Until(w.next); d > 0 {
			time.Sleep(d)
		}
		w.next = w.next.Add(time.Duration(len(reqs)) * w.perRequest)
	}
	w.out = w.out[:0]
	for i := range reqs {
		w.seq++
		reqs[i].id = w.seq
		w.out = w.codec.encode(w.out, &reqs[i])
		if w.waits(&reqs[i]) {
			w.out = appendCommand(w.out, bWAIT, w.waitN, bWaitTimeout)
		}
	}
	start := time.Now()
	if _, err := w.conn.Write(w.out); err != nil {
		return err
	}
	for i := range reqs {
		failed, err := w.codec.read(w.br, &reqs[i])
		if err == nil && w.waits(&reqs[i]) {
			var f bool
			f, err = readRESP(w.br)
			failed = failed || f
		}
		if err != nil {
			return err
		}
		now := time.Now()
		if now.Before(measureFrom) {
			continue
		}
		w.ops.Add(1)
		if failed {
			w.errs.Add(1)
		}
		_ = w.hist[reqs[i].kind].RecordValue(max(now.Sub(start).Microseconds(), 1))
	}
	return nil
}

var bWAIT, bWaitTimeout = []byte("WAIT"), []byte("100")

// waits reports whether r is followed by a WAIT.
func (w *worker) waits(r *request) bool {
	return w.cfg.WaitReplicas > 0 && r.kind != OpGet
}

// prefill writes every key once, spread over the workers, pipelined. With
// a Progress writer it reports how far it has got (see prefillProgress).
func prefill(workers []*worker) error {
	cfg := workers[0].cfg
	n := cfg.Keys
	var done atomic.Int64
	stop := prefillProgress(cfg.Progress, &done, n, cfg.progressEvery())
	var wg sync.WaitGroup
	errc := make(chan error, len(workers))
	for wi, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ttl := int(w.cfg.TTL / time.Second)
			for i := wi; i < n; {
				w.out = w.out[:0]
				var reqs []request
				for j := 0; j < 64 && i < n; j++ {
					w.seq++
					reqs = append(reqs, request{kind: OpSet, key: w.keys[i], value: w.value, ttl: ttl, id: w.seq})
					w.out = w.codec.encode(w.out, &reqs[len(reqs)-1])
					i += len(workers)
				}
				if _, err := w.conn.Write(w.out); err != nil {
					errc <- err
					return
				}
				for k := range reqs {
					failed, err := w.codec.read(w.br, &reqs[k])
					if err == nil && failed {
						err = errors.New("server refused a write")
					}
					if err != nil {
						errc <- err
						return
					}
				}
				done.Add(int64(len(reqs)))
			}
		}()
	}
	wg.Wait()
	close(errc)
	err := <-errc
	stop(err == nil)
	return err
}

// prefillProgress writes "prefill: 340000/1000000 keys (34%)" to out every
// interval while the prefill runs (loading a million sessions takes a
// while), reading the count of keys written from done. The returned
// function stops it; called with true it writes a last line with the total
// time. out is the progress stream (stderr), never the result's (stdout),
// so --json output stays intact. A nil out writes nothing.
func prefillProgress(out io.Writer, done *atomic.Int64, total int, every time.Duration) (stop func(finished bool)) {
	if out == nil {
		return func(bool) {}
	}
	start := time.Now()
	line := func(n int64) string {
		return fmt.Sprintf("prefill: %d/%d keys (%d%%)", n, total, n*100/int64(total))
	}
	quit := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				fmt.Fprintln(out, line(done.Load()))
			}
		}
	}()
	return func(finished bool) {
		close(quit)
		<-exited
		if finished {
			fmt.Fprintf(out, "%s in %.1fs\n", line(done.Load()), time.Since(start).Seconds())
		}
	}
}

// progress prints a line per second; the returned function stops it.
func progress(out io.Writer, workers []*worker, measureFrom time.Time) func() {
	if out == nil {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				var ops, errs int64
				for _, w := range workers {
					ops += w.ops.Load()
					errs += w.errs.Load()
				}
				phase := "measuring"
				if now.Before(measureFrom) {
					phase = "warming up"
				}
				fmt.Fprintf(out, "%s: %d ops/s, %d errors\n", phase, ops-last, errs)
				last = ops
			}
		}
	}()
	return func() { close(stop); <-done }
}

func stats(h *hdrhistogram.Histogram, secs float64) Stats {
	return Stats{Count: h.TotalCount(), PerSec: float64(h.TotalCount()) / secs,
		P50us: h.ValueAtQuantile(50), P99us: h.ValueAtQuantile(99), P999us: h.ValueAtQuantile(99.9), MaxUs: h.Max()}
}

func summarize(cfg Config, workers []*worker, measured time.Duration) Result {
	secs := measured.Seconds()
	all := newHistogram()
	var byKind [numKinds]*hdrhistogram.Histogram
	r := Result{Config: cfg, Scenario: cfg.Scenario, Protocol: cfg.Protocol, Seconds: secs, ByKind: map[string]Stats{}}
	for k := range byKind {
		byKind[k] = newHistogram()
	}
	for _, w := range workers {
		r.Ops += w.ops.Load()
		r.Errors += w.errs.Load()
		for k, h := range w.hist {
			byKind[k].Merge(h)
			all.Merge(h)
		}
	}
	r.PerSec = float64(r.Ops) / secs
	r.All = stats(all, secs)
	for k, h := range byKind {
		if h.TotalCount() > 0 {
			r.ByKind[Kind(k).String()] = stats(h, secs)
		}
	}
	return r
}

// WriteText prints the result as a table.
func (r Result) WriteText(w io.Writer) {
	c := r.Config
	shape := fmt.Sprintf("pipeline %d", c.Pipeline)
	if InTurn(r.Scenario) {
		shape = fmt.Sprintf("%d session(s) per connection, each request sent after the reply to the one before and timed on its own", c.Pipeline)
	}
	fmt.Fprintf(w, "%s over %s, %d connections, %s, %d-byte values, %d keys, %.1fs measured\n",
		r.Scenario, r.Protocol, c.Connections, shape, c.ValueSize, c.Keys, r.Seconds)
	fmt.Fprintf(w, "%-8s %12s %10s %10s %10s %10s\n", "request", "ops/s", "p50 µs", "p99 µs", "p99.9 µs", "max µs")
	kinds := make([]string, 0, len(r.ByKind))
	for k := range r.ByKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	row := func(name string, s Stats) {
		fmt.Fprintf(w, "%-8s %12.0f %10d %10d %10d %10d\n", name, s.PerSec, s.P50us, s.P99us, s.P999us, s.MaxUs)
	}
	for _, k := range kinds {
		row(k, r.ByKind[k])
	}
	row("all", r.All)
	fmt.Fprintf(w, "errors: %d\n", r.Errors)
}

// WriteJSON prints the result as JSON.
func (r Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

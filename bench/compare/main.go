// Command compare runs hatcheck side by side with redis-server and
// memcached on this machine and rewrites the results in BENCHMARKS.md:
//
//	go run ./bench/compare            # installs redis-server and memcached with apt-get if missing
//
// Every server runs on loopback pinned to CPU 0 and the load generator
// (hatcheck bench) on CPU 1, where the machine has two CPUs. Each round runs
// every workload against every server in turn (A B A B …), so slow drifts
// of the machine hit all of them alike; the table reports the median over
// the rounds, the min–max, and the median of the per-round ratios.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	rounds   = flag.Int("rounds", 3, "rounds (each runs every workload against every server)")
	duration = flag.Duration("duration", 5*time.Second, "measured time per run")
	warmup   = flag.Duration("warmup", time.Second, "unmeasured time before each run")
	keys     = flag.Int("keys", 100000, "distinct sessions")
	valueSz  = flag.Int("value-size", 1024, "session size")
	conns    = flag.Int("connections", 50, "client connections")
	memory   = flag.Bool("memory", true, "also measure memory per session (100k and 1M sessions)")
	output   = flag.String("o", "BENCHMARKS.md", "file whose results section is rewritten")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// server is one process (or group of processes) under test.
type server struct {
	name   string
	addr   string // Redis address (memcached's for memcached)
	mcAddr string // hatcheck's memcached address
	pid    int    // the process whose memory is measured
	procs  []*exec.Cmd
}

func (s *server) stop() {
	for _, p := range s.procs {
		_ = p.Process.Kill()
		_ = p.Wait()
	}
}

// workload is one row of the table: a reference server and hatcheck.
type workload struct {
	name       string
	ref, hc    string // server names
	protocol   string
	scenario   string
	pipeline   int
	refWait    int // WAIT replicas for the reference
	refProto   string
	targetNote string
}

var workloads = []workload{
	{name: "mix 1:4, pipeline 1 (Redis protocol)", ref: "redis", hc: "hatcheck", protocol: "redis", scenario: "mix", pipeline: 1, targetNote: "≥ 1.0×"},
	{name: "mix 1:4, pipeline 1 (memcached text)", ref: "memcached", hc: "hatcheck", protocol: "memcache-text", scenario: "mix", pipeline: 1, targetNote: "≥ 1.0×"},
	// php-memcached, the more common memcached session handler, speaks the binary protocol.
	{name: "mix 1:4, pipeline 1 (memcached binary)", ref: "memcached", hc: "hatcheck", protocol: "memcache-binary", scenario: "mix", pipeline: 1, targetNote: "≥ 1.0×"},
	{name: "mix 1:4, pipeline 16", ref: "redis", hc: "hatcheck", protocol: "redis", scenario: "mix", pipeline: 16, targetNote: "≥ 0.8×"},
	{name: "writes only (both durable)", ref: "redis-aof", hc: "hatcheck", protocol: "redis", scenario: "writes", pipeline: 1, targetNote: "≥ 2×"},
	{name: "3 nodes, mix 1:4", ref: "redis+replica", hc: "hatcheck-cluster", protocol: "redis", scenario: "mix", pipeline: 1, refWait: 1, targetNote: "≥ 1.0×"},
	{name: "3 nodes, writes only", ref: "redis+replica", hc: "hatcheck-cluster", protocol: "redis", scenario: "writes", pipeline: 1, refWait: 1, targetNote: "≥ 1.0×"},
	{name: "3 nodes, mix 1:4 (context)", ref: "redis+replica-aof", hc: "hatcheck-cluster", protocol: "redis", scenario: "mix", pipeline: 1, refWait: 1, targetNote: "—"},
	{name: "3 nodes, writes only (context)", ref: "redis+replica-aof", hc: "hatcheck-cluster", protocol: "redis", scenario: "writes", pipeline: 1, refWait: 1, targetNote: "—"},
}

// result is one bench run's summary (hatcheck bench --json).
type result struct {
	PerSec float64 `json:"ops_per_sec"`
	Errors int64   `json:"errors"`
	All    struct {
		P99us int64 `json:"p99_us"`
	} `json:"all"`
}

type env struct {
	dir      string
	hatcheck string
	twoCPUs  bool
	servers  map[string]*server
}

func run() error {
	for _, bin := range []string{"redis-server", "memcached"} {
		if err := ensure(bin); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "hatcheck-compare")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e := &env{dir: dir, hatcheck: filepath.Join(dir, "hatcheck"), twoCPUs: runtime.NumCPU() >= 2, servers: map[string]*server{}}
	fmt.Fprintln(os.Stderr, "building hatcheck")
	if out, err := exec.Command("go", "build", "-o", e.hatcheck, "./cmd/hatcheck").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	defer func() {
		for _, s := range e.servers {
			s.stop()
		}
	}()
	if err := e.startAll(); err != nil {
		return err
	}

	type cell struct{ ref, hc []result }
	cells := make([]cell, len(workloads))
	for round := 1; round <= *rounds; round++ {
		for i, w := range workloads {
			for _, side := range []string{"ref", "hc"} {
				name, proto, wait := w.hc, w.protocol, 0
				if side == "ref" {
					name, wait = w.ref, w.refWait
				}
				s := e.servers[name]
				addr := s.addr
				if proto != "redis" {
					addr = s.memcacheAddr()
				}
				fmt.Fprintf(os.Stderr, "round %d/%d: %s against %s\n", round, *rounds, w.name, name)
				r, err := e.bench(addr, proto, w.scenario, w.pipeline, wait, round == 1)
				if err != nil {
					return fmt.Errorf("%s against %s: %w", w.name, name, err)
				}
				if side == "ref" {
					cells[i].ref = append(cells[i].ref, r)
				} else {
					cells[i].hc = append(cells[i].hc, r)
				}
			}
		}
	}
	for _, s := range e.servers {
		s.stop()
	}
	e.servers = map[string]*server{}

	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s. Command: `go run ./bench/compare` (%d rounds, %v per run after %v warm-up, %d connections, %d-byte values, %d sessions, servers on CPU 0 and the load generator on CPU 1: %v).\n\n",
		time.Now().UTC().Format("2006-01-02"), machine(), *rounds, *duration, *warmup, *conns, *valueSz, *keys, e.twoCPUs)
	b.WriteString("| workload | reference | reference ops/s (min–max) | hatcheck ops/s (min–max) | ratio (median of rounds) | p99 µs ref / hatcheck | target |\n|---|---|---|---|---|---|---|\n")
	for i, w := range workloads {
		c := cells[i]
		var ratios []float64
		for r := range c.ref {
			ratios = append(ratios, c.hc[r].PerSec/c.ref[r].PerSec)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2f× | %d / %d | %s |\n", w.name, describe(w.ref, w.refWait),
			spread(c.ref), spread(c.hc), median(ratios), medianP99(c.ref), medianP99(c.hc), w.targetNote)
	}
	if *memory {
		b.WriteString("\nMemory (RSS of the server process after loading the sessions with `SET k <1 KB> EX 1800`, or memcached `set`, divided by the number of sessions; the idle RSS is subtracted):\n\n| server | 100,000 sessions | 1,000,000 sessions |\n|---|---|---|\n")
		for _, name := range []string{"redis", "memcached", "hatcheck"} {
			m, err := e.memory(name)
			if err != nil {
				return fmt.Errorf("memory of %s: %w", name, err)
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", name, m[0], m[1])
		}
	}
	fmt.Print(b.String())
	return rewrite(*output, b.String())
}

func describe(name string, wait int) string {
	switch name {
	case "redis":
		return "redis-server 7, no persistence"
	case "redis-aof":
		return "redis-server 7, appendfsync always"
	case "memcached":
		return "memcached 1.6, 4 threads"
	case "redis+replica":
		return fmt.Sprintf("redis-server master + replica, WAIT %d 100 after each write", wait)
	case "redis+replica-aof":
		return fmt.Sprintf("redis-server master + replica, both appendfsync always, WAIT %d 100 after each write", wait)
	}
	return name
}

func (s *server) memcacheAddr() string {
	if s.name == "memcached" {
		return s.addr
	}
	return s.mcAddr
}

func spread(rs []result) string {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = r.PerSec
	}
	sort.Float64s(v)
	return fmt.Sprintf("%.0f (%.0f–%.0f)", median(v), v[0], v[len(v)-1])
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func medianP99(rs []result) int64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = float64(r.All.P99us)
	}
	return int64(median(v))
}

// ensure installs a missing server with apt-get (CI and fresh machines).
func ensure(bin string) error {
	if _, err := exec.LookPath(bin); err == nil {
		return nil
	}
	pkg := map[string]string{"redis-server": "redis-server", "memcached": "memcached"}[bin]
	fmt.Fprintf(os.Stderr, "%s missing: apt-get install %s\n", bin, pkg)
	_ = exec.Command("apt-get", "update", "-qq").Run()
	if out, err := exec.Command("apt-get", "install", "-y", "-qq", "--no-install-recommends", pkg).CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install %s: %v\n%s", pkg, err, out)
	}
	return nil
}

func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("%d × %s, %s/%s, %s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func port(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// pinned returns a command pinned to cpu when the machine has two CPUs.
func (e *env) pinned(cpu string, name string, args ...string) *exec.Cmd {
	if e.twoCPUs {
		if tp, err := exec.LookPath("taskset"); err == nil {
			return exec.Command(tp, append([]string{"-c", cpu, name}, args...)...)
		}
	}
	return exec.Command(name, args...)
}

func (e *env) start(s *server, name string, args ...string) error {
	cmd := e.pinned("0", name, args...)
	logf, err := os.Create(filepath.Join(e.dir, strings.ReplaceAll(s.name, "+", "-")+strconv.Itoa(len(s.procs))+".log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	s.procs = append(s.procs, cmd)
	return nil
}

func waitPing(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not come up", addr)
}

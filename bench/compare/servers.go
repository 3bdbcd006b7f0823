package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// startAll starts every server of the comparison.
func (e *env) startAll() error {
	for _, name := range []string{"redis", "redis-aof", "memcached", "hatcheck", "redis+replica", "redis+replica-aof", "hatcheck-cluster"} {
		s, err := e.startServer(name)
		if err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		e.servers[name] = s
	}
	return nil
}

// freshDir returns an empty data directory for the server called name.
// Every start is fresh: the memory measurement starts the same server again
// after the throughput rounds, and hatcheck would restore their sessions and
// log from a reused directory (its 100,000-session figure was 3.5–6.9 KB per
// session that way, 1.7 KB from an empty one).
func freshDir(base, name string) (string, error) {
	dir := filepath.Join(base, "srv-"+strings.ReplaceAll(name, "+", "-"))
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return dir, os.MkdirAll(dir, 0o700)
}

func (e *env) startServer(name string) (*server, error) {
	s := &server{name: name, addr: freeAddr()}
	dir, err := freshDir(e.dir, name)
	if err != nil {
		return nil, err
	}
	redisArgs := func(addr, dir string) []string {
		return []string{"--port", port(addr), "--bind", "127.0.0.1", "--save", "", "--dir", dir, "--protected-mode", "no"}
	}
	switch name {
	case "redis":
		err = e.start(s, "redis-server", append(redisArgs(s.addr, dir), "--appendonly", "no")...)
	case "redis-aof":
		err = e.start(s, "redis-server", append(redisArgs(s.addr, dir), "--appendonly", "yes", "--appendfsync", "always")...)
	case "redis+replica", "redis+replica-aof":
		// The -aof pair writes every command to an fsync'd AOF on both
		// sides, for context: WAIT proves only that the replica received
		// a write, while a hatcheck follower has fsync'd it.
		persist := []string{"--appendonly", "no"}
		if name == "redis+replica-aof" {
			persist = []string{"--appendonly", "yes", "--appendfsync", "always"}
		}
		if err = e.start(s, "redis-server", append(redisArgs(s.addr, dir), persist...)...); err == nil {
			rdir := filepath.Join(dir, "replica")
			_ = os.MkdirAll(rdir, 0o700)
			err = e.start(s, "redis-server", append(append(redisArgs(freeAddr(), rdir), persist...),
				"--replicaof", "127.0.0.1", port(s.addr))...)
		}
	case "memcached":
		args := []string{"-l", "127.0.0.1", "-p", port(s.addr), "-U", "0", "-m", "4096"}
		if os.Geteuid() == 0 {
			args = append(args, "-u", "root")
		}
		err = e.start(s, "memcached", args...)
	case "hatcheck":
		s.mcAddr = freeAddr()
		err = e.start(s, e.hatcheck, "--data-dir", dir, "--redis-addr", s.addr, "--memcache-addr", s.mcAddr,
			"--http-addr", freeAddr(), "--peer-addr", freeAddr(), "--log-level", "warn")
	case "hatcheck-cluster":
		// Clients use the first node; followers are there to replicate.
		s.mcAddr = freeAddr()
		peer := freeAddr()
		err = e.start(s, e.hatcheck, "--node-id", "n1", "--data-dir", filepath.Join(dir, "n1"), "--redis-addr", s.addr,
			"--memcache-addr", s.mcAddr, "--http-addr", freeAddr(), "--peer-addr", peer, "--log-level", "warn")
		for i := 2; i <= 3 && err == nil; i++ {
			err = e.start(s, e.hatcheck, "--node-id", "n"+strconv.Itoa(i), "--data-dir", filepath.Join(dir, "n"+strconv.Itoa(i)),
				"--redis-addr", freeAddr(), "--memcache-addr", "", "--http-addr", freeAddr(), "--peer-addr", freeAddr(),
				"--join", peer, "--log-level", "warn")
		}
	}
	if err != nil {
		s.stop()
		return nil, err
	}
	s.pid = s.procs[0].Process.Pid
	if err := waitPing(s.addr, 30*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	if name == "hatcheck-cluster" || strings.HasPrefix(name, "redis+replica") {
		if err := waitReplicated(name, s.addr); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}

// waitReplicated waits until the master has a connected replica (Redis) or
// the cluster has three voters answering.
func waitReplicated(name, addr string) error {
	cl := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2})
	defer cl.Close()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		info, _ := cl.Info(context.Background(), "replication").Result()
		want := "connected_slaves:1"
		if name == "hatcheck-cluster" {
			want = "connected_slaves:2"
		}
		if strings.Contains(info, want) && (name == "hatcheck-cluster" || strings.Contains(info, "state=online")) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s: replicas did not come up", name)
}

// bench runs hatcheck bench, pinned to CPU 1, and returns its summary.
func (e *env) bench(addr, protocol, scenario string, pipeline, wait int, prefill bool) (result, error) {
	args := []string{"bench", "--addr", addr, "--protocol", protocol, "--scenario", scenario,
		"--pipeline", strconv.Itoa(pipeline), "--connections", strconv.Itoa(*conns), "--value-size", strconv.Itoa(*valueSz),
		"--keys", strconv.Itoa(*keys), "--duration", duration.String(), "--warmup", warmup.String(),
		"--prefill=" + strconv.FormatBool(prefill), "--json", "--quiet"}
	if wait > 0 {
		args = append(args, "--wait-replicas", strconv.Itoa(wait))
	}
	cmd := e.pinned("1", e.hatcheck, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("%v: %s", err, stderr.String())
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		return result{}, err
	}
	if r.Errors > 0 {
		return r, fmt.Errorf("%d errors", r.Errors)
	}
	return r, nil
}

// memory loads 100k, then 1M sessions into a fresh server and reports
// the growth of its RSS per session.
func (e *env) memory(name string) ([2]string, error) {
	var out [2]string
	s, err := e.startServer(name)
	if err != nil {
		return out, err
	}
	defer s.stop()
	time.Sleep(500 * time.Millisecond)
	idle, err := rss(s.pid)
	if err != nil {
		return out, err
	}
	protocol := "redis"
	if name == "memcached" {
		protocol = "memcache-binary"
	}
	for i, n := range []int{100000, 1000000} {
		fmt.Fprintf(os.Stderr, "memory: loading %d sessions into %s\n", n, name)
		args := []string{"bench", "--addr", s.addr, "--protocol", protocol, "--scenario", "writes",
			"--keys", strconv.Itoa(n), "--value-size", "1024", "--duration", "1ms", "--warmup", "0s", "--prefill", "--json", "--quiet"}
		cmd := e.pinned("1", e.hatcheck, args...)
		if b, err := cmd.CombinedOutput(); err != nil {
			return out, fmt.Errorf("load: %v: %s", err, b)
		}
		time.Sleep(time.Second)
		r, err := rss(s.pid)
		if err != nil {
			return out, err
		}
		out[i] = fmt.Sprintf("%d B/session (RSS %d MB)", (r-idle)/int64(n), r>>20)
	}
	return out, nil
}

// rss reads a process's resident set size.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// Markers delimiting the section of BENCHMARKS.md that compare rewrites.
const (
	beginMark = "<!-- compare:begin -->"
	endMark   = "<!-- compare:end -->"
)

// rewrite replaces the results section of path.
func rewrite(path, results string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s … %s section", path, beginMark, endMark)
	}
	s = s[:i+len(beginMark)] + "\n" + results + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

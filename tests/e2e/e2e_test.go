// Package e2e runs the built hatcheck binary as a user would: start it,
// talk to it with go-redis and redis-cli, kill it, restart it.
package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/testbin"
)

var binary string

func TestMain(m *testing.M) { testbin.Main(m, &binary, "../..", "-race") }

type proc struct {
	cmd       *exec.Cmd
	redisAddr string
	mcAddr    string
	httpAddr  string
	banner    chan string
	stderr    *testbin.LockedBuffer
}

// start runs hatcheck serve with the data dir and fresh ports, plus extra
// args, and waits until it answers PING.
func start(t *testing.T, dataDir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{redisAddr: testbin.FreeAddr(t), mcAddr: testbin.FreeAddr(t), httpAddr: testbin.FreeAddr(t)}
	return p.run(t, dataDir, testbin.FreeAddr(t), env, args...)
}

// startOn is start on the given Redis and peer addresses, with no
// memcached or HTTP port.
func startOn(t *testing.T, dataDir, redisAddr, peerAddr string, args ...string) *proc {
	t.Helper()
	return (&proc{redisAddr: redisAddr}).run(t, dataDir, peerAddr, nil, args...)
}

// run starts hatcheck serve on p's addresses and waits until it answers
// PING.
func (p *proc) run(t *testing.T, dataDir, peerAddr string, env []string, args ...string) *proc {
	t.Helper()
	p.banner, p.stderr = make(chan string, 10), &testbin.LockedBuffer{}
	all := append([]string{"serve", "--data-dir", dataDir, "--redis-addr", p.redisAddr, "--memcache-addr", p.mcAddr,
		"--http-addr", p.httpAddr, "--peer-addr", peerAddr}, args...)
	p.cmd = exec.Command(binary, all...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.stderr
	out, _ := p.cmd.StdoutPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.banner <- sc.Text()
		}
		close(p.banner)
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	c := goredis.NewClient(&goredis.Options{Addr: p.redisAddr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	// Any reply, NOAUTH included, means the server is serving.
	for err := c.Ping(context.Background()).Err(); err != nil && !isReply(err); err = c.Ping(context.Background()).Err() {
		if time.Now().After(deadline) {
			t.Fatalf("hatcheck did not answer; stderr:\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

func (p *proc) client(t *testing.T) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: p.redisAddr, MaxRetries: -1, PoolSize: 64})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestBannerAndVersion(t *testing.T) {
	p := start(t, t.TempDir(), nil)
	var lines []string
	want := []string{
		"hatcheck: redis protocol on " + p.redisAddr,
		"hatcheck: memcached protocol (text and binary) on " + p.mcAddr,
		"hatcheck: http (dashboard, health, metrics, cluster API) on http://" + p.httpAddr,
		"hatcheck: peer (raft) on ",
	}
	for range want {
		lines = append(lines, <-p.banner)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("banner line %d = %q, want prefix %q", i, lines[i], w)
		}
	}
	out, err := exec.Command(binary, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "hatcheck ") {
		t.Fatalf("version: %q %v", out, err)
	}
}

// TestKill9LosesNoAcknowledgedWrite writes 20,000 keys with TTLs from many
// clients, kills the process with SIGKILL while writes are still going,
// restarts it on the same data dir and checks that every write that was
// acknowledged is there with its TTL.
func TestKill9LosesNoAcknowledgedWrite(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, nil, "--snapshot-threshold", "4096")
	c := p.client(t)
	ctx := context.Background()
	const n, workers = 20000, 32
	acked := make(chan int, n)
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		go func(w int) {
			defer func() { done <- struct{}{} }()
			for i := w; i < n; i += workers {
				if err := c.Set(ctx, fmt.Sprint("session:", i), fmt.Sprint("value-", i), time.Hour).Err(); err != nil {
					return
				}
				acked <- i
			}
		}(w)
	}
	// Kill once most writes are acknowledged, so some are in flight.
	for len(acked) < n*9/10 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	for w := 0; w < workers; w++ {
		<-done
	}
	close(acked)
	if len(acked) < n*9/10 {
		t.Fatalf("only %d acknowledged", len(acked))
	}

	p2 := start(t, dir, nil)
	c2 := p2.client(t)
	checked := 0
	for i := range acked {
		v, err := c2.Get(ctx, fmt.Sprint("session:", i)).Result()
		if err != nil || v != fmt.Sprint("value-", i) {
			t.Fatalf("acknowledged key session:%d = %q, %v after kill -9", i, v, err)
		}
		if i%500 == 0 {
			ttl, _ := c2.TTL(ctx, fmt.Sprint("session:", i)).Result()
			if ttl < 50*time.Minute || ttl > time.Hour {
				t.Fatalf("session:%d ttl %v after restart", i, ttl)
			}
		}
		checked++
	}
	t.Logf("%d acknowledged writes survived kill -9", checked)
}

func TestSIGTERMShutsDownCleanly(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, nil)
	c := p.client(t)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		c.Set(ctx, fmt.Sprint("k", i), i, 0)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "snapshot complete") || !strings.Contains(p.stderr.String(), "msg=stopped") {
		t.Fatalf("no snapshot or clean stop in log:\n%s", p.stderr)
	}
	p2 := start(t, dir, nil)
	if v, _ := p2.client(t).Get(ctx, "k99").Result(); v != "99" {
		t.Fatalf("k99 = %q after restart", v)
	}
}

func TestRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-cli not installed; .ci/run must install redis-tools")
		}
		t.Skip("redis-cli not installed")
	}
	p := start(t, t.TempDir(), nil)
	host, port, _ := net.SplitHostPort(p.redisAddr)
	run := redisCLI(t, cli, "-h", host, "-p", port)
	if got := run("SET", "greeting", "hello world", "EX", "60"); got != "OK" {
		t.Fatalf("SET: %q", got)
	}
	if got := run("GET", "greeting"); got != "hello world" {
		t.Fatalf("GET: %q", got)
	}
	if got := run("TTL", "greeting"); got != "60" {
		t.Fatalf("TTL: %q", got)
	}
	if got := run("INFO", "keyspace"); !strings.Contains(got, "db0:keys=1,expires=1") {
		t.Fatalf("INFO keyspace: %q", got)
	}
	// redis-cli sends a pipe of commands as one stream.
	cmd := exec.Command(cli, "-h", host, "-p", port)
	cmd.Stdin = strings.NewReader("HSET h a 1\nHGET h a\nDBSIZE\n")
	out, err := cmd.Output()
	if err != nil || string(out) != "1\n1\n2\n" {
		t.Fatalf("piped: %q %v", out, err)
	}
}

// redisCLI runs cli with the options opts and then a command's arguments,
// and returns its output.
func redisCLI(t *testing.T, cli string, opts ...string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, err := exec.Command(cli, append(append([]string{}, opts...), args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v %v: %v\n%s", opts, args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
}

func TestConfigFileEnvAndFlags(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "hatcheck.conf")
	os.WriteFile(cfgFile, []byte("# test\nrequirepass from-file\nmaxclients 7\ndatabases 4\n"), 0o600)
	// Environment beats the file, flags beat the environment.
	p := start(t, filepath.Join(dir, "data"), []string{"HATCHECK_REQUIREPASS=from-env", "HATCHECK_MAXCLIENTS=8"},
		"--config", cfgFile, "--maxclients", "9")
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: p.redisAddr, Password: "from-env"})
	defer c.Close()
	got, err := c.ConfigGet(ctx, "maxclients").Result()
	if err != nil || got["maxclients"] != "9" {
		t.Fatalf("maxclients %v %v", got, err)
	}
	if got, _ := c.ConfigGet(ctx, "databases").Result(); got["databases"] != "4" {
		t.Fatalf("databases %v", got)
	}
	if err := c.Do(ctx, "SELECT", "4").Err(); err == nil || err.Error() != "ERR DB index is out of range" {
		t.Fatalf("select 4 of 4: %v", err)
	}

	bad := exec.Command(binary, "serve", "--maxmemory-policy", "allkeys-random")
	out, err := bad.CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "maxmemory-policy") {
		t.Fatalf("bad policy: exit %d %q", code, out)
	}
	bad = exec.Command(binary, "serve", "--config", filepath.Join(dir, "missing.conf"))
	if code := exitCode(bad.Run()); code != 2 {
		t.Fatalf("missing config file: exit %d", code)
	}
	os.WriteFile(cfgFile, []byte("no-such-setting 1\n"), 0o600)
	out, err = exec.Command(binary, "serve", "--config", cfgFile).CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "no-such-setting") {
		t.Fatalf("unknown setting: exit %d %q", code, out)
	}
}

func TestNodeIDIsKeptWithData(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, nil, "--node-id", "alpha")
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
	out, err := exec.Command(binary, "serve", "--data-dir", dir, "--node-id", "beta",
		"--redis-addr", testbin.FreeAddr(t), "--memcache-addr", testbin.FreeAddr(t),
		"--http-addr", testbin.FreeAddr(t), "--peer-addr", testbin.FreeAddr(t)).CombinedOutput()
	if exitCode(err) == 0 || !strings.Contains(string(out), `holds "alpha"`) {
		t.Fatalf("node id change accepted: %v %s", err, out)
	}
}

func isReply(err error) bool {
	var re goredis.Error
	return errors.As(err, &re)
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

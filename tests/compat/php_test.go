// Package compat runs real session handlers against hatcheck: the client
// libraries that applications use, installed from Debian (see .ci/run), with
// only the server address changed.
package compat

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/clustertest"
	"github.com/hatcheck/hatcheck/internal/server/servertest"
)

// need skips the test when a tool is missing, except in CI, where .ci/run
// must have installed it.
func need(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		missing(t, name, pkg)
	}
}

// missing skips the test for want (from Debian pkg), or fails it in CI.
func missing(t *testing.T, want, pkg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not installed; .ci/run must install %s", want, pkg)
	}
	t.Skipf("%s not installed (Debian %s)", want, pkg)
}

// phpModules lists the PHP extensions that are loaded.
func phpModules(t *testing.T) string {
	out, err := exec.Command("php", "-m").Output()
	if err != nil {
		t.Fatalf("php -m: %v", err)
	}
	return string(out)
}

// phpHandler is one way to configure PHP's sessions.
type phpHandler struct {
	name   string
	module string // PHP extension it needs
	pass   string // server password (--requirepass), if any
	ini    func(addr string) []string
}

// php-memcached gives up on a held lock after 5 waits of 150 ms; on a
// loaded CI machine six PHP processes queueing for one session can take
// longer than that, so the tests allow more waits (locking stays on).
const lockRetries = "memcached.sess_lock_retries=100"

var memcacheHandlers = []phpHandler{
	{"php-memcached binary", "memcached", "", func(addr string) []string {
		// Binary protocol is php-memcached's default; say so anyway.
		return []string{"session.save_handler=memcached", "session.save_path=" + addr, "memcached.sess_binary_protocol=1", lockRetries}
	}},
	{"php-memcached text", "memcached", "", func(addr string) []string {
		return []string{"session.save_handler=memcached", "session.save_path=" + addr, "memcached.sess_binary_protocol=0", lockRetries}
	}},
	{"php-memcached SASL", "memcached", "s3cret", func(addr string) []string {
		return []string{"session.save_handler=memcached", "session.save_path=" + addr,
			"memcached.sess_sasl_username=app", "memcached.sess_sasl_password=s3cret", lockRetries}
	}},
	{"pecl memcache", "memcache", "", func(addr string) []string {
		// pecl memcache gives up on a server after 1 s by default, less
		// than a leader election on a loaded machine: allow 10.
		return []string{"session.save_handler=memcache", `session.save_path="tcp://` + addr + `?timeout=10"`}
	}},
}

// TestPHPMemcachedSessions runs a session's whole life through PHP's
// memcached-protocol handlers: create, read from a new process,
// concurrent requests serialized by the handler's lock, id regeneration,
// expiry and destroy. The keys are checked through the Redis protocol,
// which sees the same keyspace.
func TestPHPMemcachedSessions(t *testing.T) {
	need(t, "php", "php-cli")
	mods := phpModules(t)
	for _, h := range memcacheHandlers {
		t.Run(h.name, func(t *testing.T) {
			if !strings.Contains(mods, "\n"+h.module+"\n") {
				if os.Getenv("CI") != "" {
					t.Fatalf("PHP extension %s not loaded; .ci/run must install php-%s", h.module, h.module)
				}
				t.Skipf("PHP extension %s not loaded", h.module)
			}
			t.Parallel()
			s := servertest.Start(t, func(c *servertest.Config) { c.RequirePass = h.pass })
			rc := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr(), Password: h.pass})
			t.Cleanup(func() { rc.Close() })
			p := phpRunner{t: t, ini: h.ini(s.MemcacheAddr())}
			testSessionLife(t, p, rc)
			if h.pass != "" {
				// With a wrong password the handler cannot read a session.
				id := p.run(false, "create")
				var a []string
				for _, kv := range h.ini(s.MemcacheAddr()) {
					a = append(a, "-d", strings.Replace(kv, "password="+h.pass, "password=wrong", 1))
				}
				out, err := exec.Command("php", append(a, "php/session.php", "read", id)...).CombinedOutput()
				if err == nil || !strings.Contains(string(out), "AUTHENTICATION FAILURE") {
					t.Fatalf("wrong SASL password: %v\n%s", err, out)
				}
			}
		})
	}
}

type phpRunner struct {
	t   *testing.T
	ini []string
}

// Every PHP handler here locks the session for the length of a request.
func (phpRunner) locks() bool { return true }

func (phpRunner) stored(id string) string { return id }

func (phpRunner) expires() bool { return true }

// run runs one PHP request and returns its output; short sessions live
// shortTTL seconds.
func (p phpRunner) run(short bool, args ...string) string {
	p.t.Helper()
	var a []string
	ini := append([]string{}, p.ini...)
	if short {
		ini = append(ini, "session.gc_maxlifetime="+strconv.Itoa(shortTTL))
	}
	for _, kv := range ini {
		a = append(a, "-d", kv)
	}
	a = append(append(a, "php/session.php"), args...)
	cmd := exec.Command("php", a...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		p.t.Fatalf("php %v: %v\nstdout: %s\nstderr: %s", args, err, out, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// sessionKeys lists the keys that hold a session's data (lock keys aside).
func sessionKeys(t *testing.T, rc *goredis.Client, id string) []string {
	t.Helper()
	keys, err := rc.Keys(context.Background(), "*"+id+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var data []string
	for _, k := range keys {
		if !strings.Contains(strings.ToLower(k), "lock") {
			data = append(data, k)
		}
	}
	return data
}

// TestPHPMemcachedSessionsOnCluster runs the same session life against a
// three-node cluster, with every node in the handler's server list, as an
// application would configure it: php-memcached hashes sessions across the
// nodes (ketama), pecl memcache picks one per key; either way each node
// serves every key, so the session is the same whichever node a request
// reaches.
func TestPHPMemcachedSessionsOnCluster(t *testing.T) {
	need(t, "php", "php-cli")
	mods := phpModules(t)
	c := clustertest.Start(t, 3)
	var plain, tcp []string
	for _, n := range c.Nodes {
		plain = append(plain, n.Cfg.MemcacheAddr)
		tcp = append(tcp, "tcp://"+n.Cfg.MemcacheAddr)
	}
	handlers := []struct {
		name, module string
		ini          []string
	}{
		{"php-memcached binary", "memcached", []string{"session.save_handler=memcached",
			"session.save_path=" + strings.Join(plain, ","), "memcached.sess_binary_protocol=1", lockRetries}},
		// pecl memcache writes a session and resets its lock on
		// session_redundancy servers (default 2), one after the other.
		// hatcheck's nodes share one keyspace, so the second "set lock 0"
		// would release a lock another request has taken since: with
		// hatcheck, which replicates by itself, redundancy must be 1.
		{"pecl memcache", "memcache", []string{"session.save_handler=memcache",
			"session.save_path=" + strings.Join(tcp, ","), "memcache.session_redundancy=1"}},
	}
	rc := c.Nodes[2].Client()
	for _, h := range handlers {
		t.Run(h.name, func(t *testing.T) {
			if !strings.Contains(mods, "\n"+h.module+"\n") {
				missing(t, "PHP extension "+h.module, "php-"+h.module)
			}
			testSessionLife(t, phpRunner{t: t, ini: h.ini}, rc)
		})
	}
}

// phpredis's session handler (Debian php-redis): SETEX/GET/DEL, and with
// redis.session.locking_enabled its lock: SET <key>_LOCK NX PX, released by
// the Lua script of CLIENTS.md through EVALSHA (EVAL when the server lacks
// it).
func phpRedisHandlers(addr, pass string) []phpHandler {
	path := "tcp://" + addr
	if pass != "" {
		path += "?auth=" + pass
	}
	base := []string{"session.save_handler=redis", `session.save_path="` + path + `"`}
	locking := append(append([]string{}, base...), "redis.session.locking_enabled=1",
		"redis.session.lock_retries=-1", "redis.session.lock_wait_time=20000")
	name := "phpredis"
	if pass != "" {
		name += " AUTH"
	}
	return []phpHandler{
		{name: name + " locking", module: "redis", pass: pass, ini: func(string) []string { return locking }},
	}
}

func TestPHPRedisSessions(t *testing.T) {
	need(t, "php", "php-cli")
	if !strings.Contains(phpModules(t), "\nredis\n") {
		missing(t, "PHP extension redis", "php-redis")
	}
	for _, pass := range []string{"", "s3cret"} {
		s := servertest.Start(t, func(c *servertest.Config) { c.RequirePass = pass })
		for _, h := range phpRedisHandlers(s.RedisAddr(), pass) {
			t.Run(h.name, func(t *testing.T) {
				rc := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr(), Password: pass})
				t.Cleanup(func() { rc.Close() })
				testSessionLife(t, phpRunner{t: t, ini: h.ini("")}, rc)
				// The lock release went through the replicated script cache.
				if ok, err := rc.ScriptExists(context.Background(), "b70c2384248f88e6b75b9f89241a180f856ad852").Result(); err != nil || !ok[0] {
					t.Fatalf("phpredis's lock release script is not cached: %v %v", ok, err)
				}
			})
		}
	}
}

// On a cluster, phpredis talks to one node; the leader is killed between
// requests, and the session written before is read after, then the whole
// life runs on the new configuration.
func TestPHPRedisSessionsAcrossFailover(t *testing.T) {
	need(t, "php", "php-cli")
	if !strings.Contains(phpModules(t), "\nredis\n") {
		missing(t, "PHP extension redis", "php-redis")
	}
	testFailoverLife(t, func(via *clustertest.Node) sessionRunner {
		return phpRunner{t: t, ini: phpRedisHandlers(via.Cfg.RedisAddr, "")[0].ini("")}
	})
}

// TestPHPMemcachedSessionsAcrossFailover points each memcached-protocol
// handler at one follower, kills the leader after a session was written,
// reads it back and runs the whole life on the surviving nodes.
func TestPHPMemcachedSessionsAcrossFailover(t *testing.T) {
	need(t, "php", "php-cli")
	mods := phpModules(t)
	for _, h := range memcacheHandlers {
		if h.pass != "" {
			continue // SASL is covered on a single node
		}
		t.Run(h.name, func(t *testing.T) {
			if !strings.Contains(mods, "\n"+h.module+"\n") {
				missing(t, "PHP extension "+h.module, "php-"+h.module)
			}
			testFailoverLife(t, func(via *clustertest.Node) sessionRunner {
				return phpRunner{t: t, ini: h.ini(via.Cfg.MemcacheAddr)}
			})
		})
	}
}

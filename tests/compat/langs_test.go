package compat

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/clustertest"
	"github.com/hatcheck/hatcheck/internal/server/servertest"
)

// scriptRunner runs a request through a handler in another language: a
// script taking ACTION [ID], the server in HATCHECK_ADDR (and
// HATCHECK_PASSWORD), the session lifetime in SESSION_TTL.
type scriptRunner struct {
	t      *testing.T
	cmd    []string
	addr   string
	pass   string
	keyFor func(id string) string // nil: the id itself
	noTTL  bool                   // the handler never expires sessions
	lock   bool                   // the handler locks a session for a request
	env    []string               // more environment
}

func (r scriptRunner) expires() bool { return !r.noTTL }

func (r scriptRunner) locks() bool { return r.lock }

func (r scriptRunner) stored(id string) string {
	if r.keyFor == nil {
		return id
	}
	return r.keyFor(id)
}

func (r scriptRunner) run(short bool, args ...string) string {
	r.t.Helper()
	ttl := "1440"
	if short {
		ttl = strconv.Itoa(shortTTL)
	}
	cmd := exec.Command(r.cmd[0], append(append([]string{}, r.cmd[1:]...), args...)...)
	cmd.Env = append(os.Environ(), "HATCHECK_ADDR="+r.addr, "HATCHECK_PASSWORD="+r.pass, "SESSION_TTL="+ttl)
	cmd.Env = append(cmd.Env, r.env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		r.t.Fatalf("%v %v: %v\nstdout: %s\nstderr: %s", r.cmd, args, err, out, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// handler is one session handler in another language.
type handler struct {
	name   string
	cmd    []string
	check  []string // command that fails when the library is missing
	pkg    string   // where it comes from (for the skip/fail message)
	keyFor func(id string) string
	noTTL  bool
}

var handlers = []handler{
	// Request Tracker's session store; Apache::Session has no lifetime
	// (RT purges old sessions itself).
	{name: "Apache::Session::Browseable::Redis (Perl)", cmd: []string{"perl", "perl/apache_session.pl"},
		check: []string{"perl", "-MApache::Session::Browseable::Redis", "-MRedis::Fast", "-e", "1"},
		pkg:   "Debian libapache-session-browseable-perl libredis-fast-perl", noTTL: true},
	{name: "django-redis (Python)", cmd: []string{"/usr/bin/python3", "python/django_session.py"},
		check: []string{"/usr/bin/python3", "-c", "import django_redis"}, pkg: "Debian python3-django-redis"},
	{name: "Flask-Session (Python)", cmd: []string{"/usr/bin/python3", "python/flask_session_app.py"},
		check: []string{"/usr/bin/python3", "-c", "import flask_session"}, pkg: "Debian python3-flask-session"},
	{name: "redis-rack (Ruby)", cmd: []string{"ruby", "ruby/rack_session.rb"},
		check: []string{"ruby", "-e", `require "rack/session/redis"`}, pkg: "Debian ruby-redis-rack",
		// Rack stores a session under "2::" and the SHA-256 of its id.
		keyFor: func(id string) string {
			sum := sha256.Sum256([]byte(id))
			return "2::" + hex.EncodeToString(sum[:])
		}},
	{name: "connect-redis (Node)", cmd: []string{"node", "node/session.js"},
		check: []string{"node", "-e", `require("./node/node_modules/connect-redis")`}, pkg: "npm ci in tests/compat/node",
		// The cookie is "s:<id>.<signature>", URL-encoded; the key sess:<id>.
		keyFor: func(cookie string) string {
			v, _ := url.QueryUnescape(cookie)
			v = strings.TrimPrefix(v, "s:")
			if i := strings.LastIndexByte(v, '.'); i > 0 {
				v = v[:i]
			}
			return "sess:" + v
		}},
}

func (h handler) available(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(h.cmd[0]); err != nil {
		missing(t, h.cmd[0], h.pkg)
	}
	if out, err := exec.Command(h.check[0], h.check[1:]...).CombinedOutput(); err != nil {
		missing(t, h.name+" ("+strings.TrimSpace(string(out))+")", h.pkg)
	}
}

// TestHandlerSessions runs each handler's session life against a single
// node, with and without a password.
func TestHandlerSessions(t *testing.T) {
	for _, pass := range []string{"", "s3cret"} {
		s := servertest.Start(t, func(c *servertest.Config) { c.RequirePass = pass })
		rc := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr(), Password: pass})
		t.Cleanup(func() { rc.Close() })
		for _, h := range handlers {
			name := h.name
			if pass != "" {
				name += " AUTH"
			}
			t.Run(name, func(t *testing.T) {
				h.available(t)
				t.Parallel() // separate processes, separate sessions
				testSessionLife(t, scriptRunner{t: t, cmd: h.cmd, addr: s.RedisAddr(), pass: pass, keyFor: h.keyFor, noTTL: h.noTTL}, rc)
			})
		}
	}
}

// TestHandlerSessionsAcrossFailover points each handler at one node of a
// three-node cluster, kills the leader after a session was written, reads
// it back, and runs the whole life on the surviving nodes.
func TestHandlerSessionsAcrossFailover(t *testing.T) {
	for _, h := range handlers {
		t.Run(h.name, func(t *testing.T) {
			h.available(t)
			testFailoverLife(t, func(via *clustertest.Node) sessionRunner {
				return scriptRunner{t: t, cmd: h.cmd, addr: via.Cfg.RedisAddr, keyFor: h.keyFor, noTTL: h.noTTL}
			})
		})
	}
}

// spymemcached is the Java memcached client under memcached-session-manager
// (Tomcat); java/SpySession.java does a request its way, compiled here with
// the JDK's javac against Debian's jar.
const spyJar = "/usr/share/java/spymemcached.jar"

func spyRunner(t *testing.T) func(addr, protocol string) scriptRunner {
	t.Helper()
	need(t, "javac", "default-jdk-headless")
	if _, err := os.Stat(spyJar); err != nil {
		missing(t, spyJar, "libspymemcached-java")
	}
	dir := t.TempDir()
	if out, err := exec.Command("javac", "-d", dir, "-cp", spyJar, "java/SpySession.java").CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	return func(addr, protocol string) scriptRunner {
		return scriptRunner{t: t, cmd: []string{"java", "-cp", spyJar + ":" + dir, "SpySession"}, addr: addr,
			lock: true, env: []string{"HATCHECK_PROTOCOL=" + protocol}}
	}
}

func TestSpymemcachedSessions(t *testing.T) {
	spy := spyRunner(t)
	s := servertest.Start(t)
	rc := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr()})
	t.Cleanup(func() { rc.Close() })
	for _, protocol := range []string{"binary", "text"} {
		t.Run(protocol, func(t *testing.T) {
			r := spy(s.MemcacheAddr(), protocol)
			r.t = t
			testSessionLife(t, r, rc)
		})
	}
}

func TestSpymemcachedSessionsAcrossFailover(t *testing.T) {
	spy := spyRunner(t)
	testFailoverLife(t, func(via *clustertest.Node) sessionRunner { return spy(via.Cfg.MemcacheAddr, "binary") })
}

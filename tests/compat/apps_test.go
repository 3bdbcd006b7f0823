package compat

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/clustertest"
	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// Applications that keep more than sessions in hatcheck: Django's cache
// through django-redis (python/django_cache.py) and python3-rq
// (python/rq_app.py). Each runs first against the real redis-server, the
// reference: a failure there is the test's or the client's, not hatcheck's.

// pyApp runs one step of a Python application (a script in python/) with
// the server in HATCHECK_ADDR (and HATCHECK_PASSWORD) and more environment.
type pyApp struct {
	py     string
	script string
	addr   string
	pass   string
	env    []string
}

// run runs the step and returns its output, or fails the test with the
// output and stderr, saying which server (where) was behind it.
func (a pyApp) run(t *testing.T, where string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.py, append([]string{a.script}, args...)...)
	cmd.Dir = "python" // the worker imports rq_jobs from here
	cmd.Env = append(os.Environ(), "HATCHECK_ADDR="+a.addr, "HATCHECK_PASSWORD="+a.pass, "PYTHONDONTWRITEBYTECODE=1")
	cmd.Env = append(cmd.Env, a.env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v against %s: %v\nstdout: %s\nstderr: %s", a.script, args, where, err, out, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// redisServer starts the real redis-server as the reference, with a
// password if pass is set, and returns its address.
func redisServer(t *testing.T, pass string) string {
	t.Helper()
	need(t, "redis-server", "redis-server")
	port := transcript.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}
	if pass != "" {
		args = append(args, "--requirepass", pass)
	}
	transcript.StartServer(t, addr, "redis-server", args...)
	return addr
}

func djangoCache(t *testing.T) string {
	t.Helper()
	py := python(t)
	if out, err := exec.Command(py, "-c", "import django_redis").CombinedOutput(); err != nil {
		missing(t, "django-redis ("+strings.TrimSpace(string(out))+")", "python3-django-redis")
	}
	return py
}

// TestDjangoRedisCache runs a Django application's cache API through
// django-redis, and its sessions in that cache, against redis-server and
// then hatcheck, without and with a password (python/django_cache.py).
func TestDjangoRedisCache(t *testing.T) {
	py := djangoCache(t)
	for _, pass := range []string{"", "s3cret"} {
		suffix := ""
		if pass != "" {
			suffix = " AUTH"
		}
		t.Run("redis-server"+suffix, func(t *testing.T) {
			a := pyApp{py: py, script: "django_cache.py", addr: redisServer(t, pass), pass: pass, env: []string{"KEY_PREFIX=ref"}}
			if got := a.run(t, "redis-server (the reference: the test or django-redis is at fault)", "all"); got != "ok" {
				t.Fatalf("printed %q", got)
			}
		})
		t.Run("hatcheck"+suffix, func(t *testing.T) {
			s := servertest.Start(t, func(c *servertest.Config) { c.RequirePass = pass })
			a := pyApp{py: py, script: "django_cache.py", addr: s.RedisAddr(), pass: pass, env: []string{"KEY_PREFIX=hc"}}
			if got := a.run(t, "hatcheck", "all"); got != "ok" {
				t.Fatalf("printed %q", got)
			}
		})
	}
}

// TestDjangoRedisCacheAcrossFailover points django-redis at a follower of
// a three-node cluster, stores cache values and a session, kills the
// leader, reads them back and runs the whole cache API on the survivors.
func TestDjangoRedisCacheAcrossFailover(t *testing.T) {
	py := djangoCache(t)
	c := clustertest.Start(t, 3)
	leader := c.Leader()
	via := c.Others(leader)[0]
	a := pyApp{py: py, script: "django_cache.py", addr: via.Cfg.RedisAddr, env: []string{"KEY_PREFIX=fo"}}
	key := a.run(t, "hatcheck", "write")
	leader.Kill()
	t.Logf("killed the leader %s", leader.ID)
	if got := a.run(t, "hatcheck", "read", key); got != "ok" {
		t.Fatalf("read printed %q", got)
	}
	if got := a.run(t, "hatcheck", "all"); got != "ok" {
		t.Fatalf("all printed %q", got)
	}
}

func rqApp(t *testing.T) string {
	t.Helper()
	py := python(t)
	if out, err := exec.Command(py, "-c", "import rq").CombinedOutput(); err != nil {
		missing(t, "rq ("+strings.TrimSpace(string(out))+")", "python3-rq")
	}
	return py
}

// rqLife enqueues a run's jobs, runs a burst worker (a separate process
// that forks a work horse per job; it exits when the queues are empty) and
// checks the results. between runs after the jobs were enqueued.
func rqLife(t *testing.T, a pyApp, where string, between func()) {
	t.Helper()
	if got := a.run(t, where, "enqueue"); got != "ok" {
		t.Fatalf("enqueue printed %q", got)
	}
	if between != nil {
		between()
	}
	a.run(t, where, "work")
	if got := a.run(t, where, "check"); got != "ok" {
		t.Fatalf("check printed %q", got)
	}
}

// rqHashResults makes rq keep results in the job's hash, as it does with
// a server older than Redis 5; rq 1.12 and later keep a result in a
// stream (XADD … MAXLEN ~ 10 inside MULTI, XREVRANGE, XLEN) when the
// server says it is Redis 5 or later, as redis-server and hatcheck do.
const rqHashResults = "RQ_RESULTS_IN_HASH=1"

// TestRQ runs a python3-rq application (python/rq_app.py): jobs with
// results, a failing job, retries, a dependency chain, scheduled and
// canceled jobs, result and job TTLs, a burst worker. redis-server runs
// it as rq does by default and with results in the job hash; hatcheck
// with results in the job hash (with and without a password), and as rq
// does by default, with results in streams.
func TestRQ(t *testing.T) {
	py := rqApp(t)
	t.Run("redis-server", func(t *testing.T) {
		addr := redisServer(t, "")
		rqLife(t, pyApp{py: py, script: "rq_app.py", addr: addr, env: []string{"RUN=streams"}}, "redis-server (the reference)", nil)
		rqLife(t, pyApp{py: py, script: "rq_app.py", addr: addr, env: []string{"RUN=hash", rqHashResults}}, "redis-server (the reference)", nil)
	})
	for _, pass := range []string{"", "s3cret"} {
		suffix := ""
		if pass != "" {
			suffix = " AUTH"
		}
		t.Run("hatcheck"+suffix, func(t *testing.T) {
			s := servertest.Start(t, func(c *servertest.Config) { c.RequirePass = pass })
			rqLife(t, pyApp{py: py, script: "rq_app.py", addr: s.RedisAddr(), pass: pass, env: []string{"RUN=hash", rqHashResults}}, "hatcheck", nil)
		})
	}
	t.Run("hatcheck streams", func(t *testing.T) {
		s := servertest.Start(t)
		rqLife(t, pyApp{py: py, script: "rq_app.py", addr: s.RedisAddr(), env: []string{"RUN=streams"}}, "hatcheck", nil)
	})
}

// TestRQAcrossFailover enqueues through a follower of a three-node
// cluster, kills the leader, then runs the worker and checks the results
// on the survivors; rq keeps the results in streams, as it does by
// default.
func TestRQAcrossFailover(t *testing.T) {
	py := rqApp(t)
	c := clustertest.Start(t, 3)
	leader := c.Leader()
	via := c.Others(leader)[0]
	rqLife(t, pyApp{py: py, script: "rq_app.py", addr: via.Cfg.RedisAddr, env: []string{"RUN=fo"}}, "hatcheck", func() {
		leader.Kill()
		t.Logf("killed the leader %s", leader.ID)
	})
}

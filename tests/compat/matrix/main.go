// Command matrix turns the compatibility suite's results into the table in
// docs/COMPATIBILITY.md:
//
//	go test -json -count=1 ./tests/compat | go run ./tests/compat/matrix
//
// It reads `go test -json` events on stdin and rewrites the section between
// the matrix markers: ✓ passed, ✗ failed, "skipped" (library missing), and
// — where the suite has no such test (the handler has no password, say).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// row is one handler and the tests (full names, subtests with /) behind
// its three columns; an empty name means no such test.
type row struct {
	handler                string
	single, auth, failover string
}

var rows = []row{
	{"PHP phpredis `redis` handler with `redis.session.locking_enabled=1` (lock released by EVALSHA)",
		"TestPHPRedisSessions/phpredis_locking", "TestPHPRedisSessions/phpredis_AUTH_locking", "TestPHPRedisSessionsAcrossFailover"},
	{"PHP php-memcached, binary protocol (SASL PLAIN with a password)",
		"TestPHPMemcachedSessions/php-memcached_binary", "TestPHPMemcachedSessions/php-memcached_SASL", "TestPHPMemcachedSessionsAcrossFailover/php-memcached_binary"},
	{"PHP php-memcached, text protocol",
		"TestPHPMemcachedSessions/php-memcached_text", "", "TestPHPMemcachedSessionsAcrossFailover/php-memcached_text"},
	{"PHP pecl memcache (`memcache.session_redundancy=1` on a cluster)",
		"TestPHPMemcachedSessions/pecl_memcache", "", "TestPHPMemcachedSessionsAcrossFailover/pecl_memcache"},
	{"Perl Apache::Session::Browseable::Redis over Redis::Fast (Request Tracker; no expiry of its own)",
		"TestHandlerSessions/Apache::Session::Browseable::Redis_(Perl)", "TestHandlerSessions/Apache::Session::Browseable::Redis_(Perl)_AUTH", "TestHandlerSessionsAcrossFailover/Apache::Session::Browseable::Redis_(Perl)"},
	{"Python Django cache sessions with django-redis",
		"TestHandlerSessions/django-redis_(Python)", "TestHandlerSessions/django-redis_(Python)_AUTH", "TestHandlerSessionsAcrossFailover/django-redis_(Python)"},
	{"Python Django cache API with django-redis (`lock`, `incr` in Lua, `keys`, `delete_pattern` over SCAN)",
		"TestDjangoRedisCache/hatcheck", "TestDjangoRedisCache/hatcheck_AUTH", "TestDjangoRedisCacheAcrossFailover"},
	{"Python Flask-Session, Redis interface",
		"TestHandlerSessions/Flask-Session_(Python)", "TestHandlerSessions/Flask-Session_(Python)_AUTH", "TestHandlerSessionsAcrossFailover/Flask-Session_(Python)"},
	{"Ruby Rack::Session::Redis (redis-rack)",
		"TestHandlerSessions/redis-rack_(Ruby)", "TestHandlerSessions/redis-rack_(Ruby)_AUTH", "TestHandlerSessionsAcrossFailover/redis-rack_(Ruby)"},
	{"Node express-session + connect-redis (node-redis)",
		"TestHandlerSessions/connect-redis_(Node)", "TestHandlerSessions/connect-redis_(Node)_AUTH", "TestHandlerSessionsAcrossFailover/connect-redis_(Node)"},
	{"Go scs + goredisstore",
		"TestGoHandlerSessions/scs_goredisstore", "TestGoHandlerSessions/scs_goredisstore_AUTH", "TestGoHandlerSessionsAcrossFailover/scs_goredisstore"},
	{"Go redistore (gorilla/sessions)",
		"TestGoHandlerSessions/redistore", "TestGoHandlerSessions/redistore_AUTH", "TestGoHandlerSessionsAcrossFailover/redistore"},
	{"Java spymemcached, binary protocol (memcached-session-manager's client and `add` lock)",
		"TestSpymemcachedSessions/binary", "", "TestSpymemcachedSessionsAcrossFailover"},
	{"Java spymemcached, text protocol",
		"TestSpymemcachedSessions/text", "", ""},
	{"Java Spring Session `RedisIndexedSessionRepository` (replayed with go-redis; keyevent `del`/`expired`, created pattern)",
		"TestJavaSessionReplays/Spring_RedisIndexedSessionRepository", "", "TestJavaSessionReplaysAcrossFailover/Spring_RedisIndexedSessionRepository"},
	{"Java Redisson Tomcat manager (replayed; expiry script NOSCRIPT → SCRIPT LOAD → EVALSHA)",
		"TestJavaSessionReplays/Redisson", "", "TestJavaSessionReplaysAcrossFailover/Redisson"},
	{"Sentinel: redis-py", "", "", "TestRedisPySentinelFollowsLeader"},
	{"Sentinel: Perl Redis.pm", "", "", "TestPerlRedisSentinelFollowsLeader"},
	{"Sentinel: ioredis", "", "", "TestIORedisSentinelFollowsLeader"},
	{"Job queue: redis-py workers, BLMOVE to a processing list and LREM (blocked on followers)", "", "", "TestRedisPyJobQueueThroughFailover"},
	{"Job queue: python3-rq 1.13, burst worker, registries, `depends_on`, scheduled jobs (results in the job hash: see below)",
		"TestRQ/hatcheck", "TestRQ/hatcheck_AUTH", "TestRQAcrossFailover"},
}

const (
	begin = "<!-- matrix:begin -->"
	end   = "<!-- matrix:end -->"
)

func main() {
	doc := "docs/COMPATIBILITY.md"
	if len(os.Args) > 1 {
		doc = os.Args[1]
	}
	results := map[string]string{}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev struct{ Action, Test string }
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Test == "" {
			continue
		}
		switch ev.Action {
		case "pass":
			results[ev.Test] = "✓"
		case "fail":
			results[ev.Test] = "✗ failed"
		case "skip":
			results[ev.Test] = "skipped"
		}
	}
	var b strings.Builder
	b.WriteString(begin + "\n| handler | single node | with password | cluster, leader killed mid-flow |\n|---|---|---|---|\n")
	missing := 0
	for _, r := range rows {
		cell := func(test string) string {
			if test == "" {
				return "—"
			}
			if v, ok := results[test]; ok {
				return v
			}
			missing++
			return "not run"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.handler, cell(r.single), cell(r.auth), cell(r.failover))
	}
	b.WriteString(end)
	src, err := os.ReadFile(doc)
	if err != nil {
		fatal(err)
	}
	i, j := strings.Index(string(src), begin), strings.Index(string(src), end)
	if i < 0 || j < i {
		fatal(fmt.Errorf("%s lacks the %s … %s markers", doc, begin, end))
	}
	out := string(src[:i]) + b.String() + string(src[j+len(end):])
	if err := os.WriteFile(doc, []byte(out), 0o644); err != nil {
		fatal(err)
	}
	if missing > 0 {
		fatal(fmt.Errorf("%d cells name tests that did not run: the table and the suite disagree", missing))
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "matrix:", err)
	os.Exit(1)
}

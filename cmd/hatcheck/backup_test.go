package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// runEnv is run with HATCHECK_REQUIREPASS set for the subcommands that
// read the environment.
func runEnv(t *testing.T, pass string, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("HATCHECK_REQUIREPASS", pass)
	var out, errOut strings.Builder
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// mcSet stores a memcached item with client flags over the text protocol.
func mcSet(t *testing.T, addr, pass, key, val string, flags int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if pass != "" { // hatcheck's text-protocol auth: a set of any key with "user pass"
		fmt.Fprintf(c, "set auth 0 0 %d\r\nu %s\r\n", len(pass)+2, pass)
		if line, _ := r.ReadString('\n'); line != "STORED\r\n" {
			t.Fatalf("memcached auth: %q", line)
		}
	}
	fmt.Fprintf(c, "set %s %d 0 %d\r\n%s\r\n", key, flags, len(val), val)
	if line, _ := r.ReadString('\n'); line != "STORED\r\n" {
		t.Fatalf("memcached set: %q", line)
	}
}

func mcGet(t *testing.T, addr, key string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "get %s\r\n", key)
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}

// TestBackupAndRestoreRoundTrip backs up a running node over its HTTP
// port, restores the file into a new data dir, starts a node on it and
// finds every key, its type, its expiry and its memcached flags, and the
// function libraries; redis-server loads the same file, libraries too.
func TestBackupAndRestoreRoundTrip(t *testing.T) {
	src := servertest.Start(t, func(c *config.Config) { c.RequirePass = "pw" })
	ctx := context.Background()
	rc := goredis.NewClient(&goredis.Options{Addr: src.RedisAddr(), Password: "pw", Protocol: 2})
	defer rc.Close()
	for i := range 300 {
		if err := rc.Set(ctx, fmt.Sprint("sess:", i), strings.Repeat("v", i), time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rc.HSet(ctx, "h", "f1", "v1", "f2", "v2")
	rc.SAdd(ctx, "s", "a", "b", "c")
	rc.RPush(ctx, "queue", "j1", "j2", "j3")
	rc.ZAdd(ctx, "ranks", goredis.Z{Score: 0.1, Member: "a"}, goredis.Z{Score: math.Inf(-1), Member: "low"}, goredis.Z{Score: 1e300, Member: "b"})
	rc.Set(ctx, "forever", "x", 0)
	rc.Set(ctx, "short", "gone soon", 10*time.Millisecond)
	db2 := goredis.NewClient(&goredis.Options{Addr: src.RedisAddr(), Password: "pw", DB: 2, Protocol: 2})
	defer db2.Close()
	db2.Set(ctx, "in-db-2", "two", 0)
	mcSet(t, src.MemcacheAddr(), "pw", "php-sess", "a:1:{s:1:\"x\";i:1;}", 42)
	for _, lib := range backupLibs {
		if err := rc.FunctionLoad(ctx, lib).Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // "short" expires

	file := filepath.Join(t.TempDir(), "b.rdb")
	if code, _, stderr := runEnv(t, "wrong", "backup", "--http-addr", src.HTTPAddr(), file); code != 1 || !strings.Contains(stderr, "password required") {
		t.Fatalf("backup with a wrong password: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("a failed backup left a file: %v", err)
	}
	code, stdout, stderr := runEnv(t, "pw", "backup", file, "--http-addr", src.HTTPAddr())
	if code != 0 || !strings.HasPrefix(stdout, "backed up 307 keys and 2 function libraries") {
		t.Fatalf("backup: exit %d, %q, %q", code, stdout, stderr)
	}
	if leftovers, _ := filepath.Glob(file + ".*.tmp"); len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	code, stdout, stderr = runEnv(t, "", "restore", "--data-dir", dir, file)
	if code != 0 || !strings.HasPrefix(stdout, "restored 307 keys into "+dir) || !strings.Contains(stdout, "\nrestored 2 function libraries\n") {
		t.Fatalf("restore: exit %d, %q, %q", code, stdout, stderr)
	}
	if code, _, stderr := runEnv(t, "", "restore", "--data-dir", dir, file); code != 1 || !strings.Contains(stderr, "not empty") {
		t.Fatalf("restore into a used data dir: exit %d, %q", code, stderr)
	}

	dst := servertest.Start(t, func(c *config.Config) { c.DataDir = dir })
	dc := goredis.NewClient(&goredis.Options{Addr: dst.RedisAddr(), Protocol: 2})
	defer dc.Close()
	if v, err := dc.Get(ctx, "sess:250").Result(); err != nil || v != strings.Repeat("v", 250) {
		t.Fatalf("GET sess:250 = %q, %v", v, err)
	}
	if ttl := dc.PTTL(ctx, "sess:250").Val(); ttl < 59*time.Minute || ttl > time.Hour {
		t.Fatalf("PTTL sess:250 = %v, want about an hour", ttl)
	}
	if ttl := dc.PTTL(ctx, "forever").Val(); ttl != -1 {
		t.Fatalf("PTTL forever = %v, want none", ttl)
	}
	if h := dc.HGetAll(ctx, "h").Val(); len(h) != 2 || h["f2"] != "v2" {
		t.Fatalf("HGETALL h = %v", h)
	}
	if n := dc.SCard(ctx, "s").Val(); n != 3 {
		t.Fatalf("SCARD s = %d", n)
	}
	if l := dc.LRange(ctx, "queue", 0, -1).Val(); strings.Join(l, ",") != "j1,j2,j3" {
		t.Fatalf("LRANGE queue = %v", l)
	}
	if z := dc.ZRangeWithScores(ctx, "ranks", 0, -1).Val(); fmt.Sprint(z) != "[{-Inf low} {0.1 a} {1e+300 b}]" {
		t.Fatalf("ZRANGE ranks = %v", z)
	}
	if n := dc.Exists(ctx, "short").Val(); n != 0 {
		t.Fatal("an expired key was restored")
	}
	if got := mcGet(t, dst.MemcacheAddr(), "php-sess"); got != "VALUE php-sess 42 18\r\n" {
		t.Fatalf("memcached item after restore: %q, want its flags 42 kept", got)
	}
	d2 := goredis.NewClient(&goredis.Options{Addr: dst.RedisAddr(), DB: 2, Protocol: 2})
	defer d2.Close()
	if v := d2.Get(ctx, "in-db-2").Val(); v != "two" {
		t.Fatalf("db 2: %q", v)
	}
	checkFunctions(t, "restored hatcheck", dc)

	// The way out: redis-server loads the backup.
	bin := transcript.Reference(t, "redis-server", "redis-server", false)
	if bin == "" {
		return
	}
	port := transcript.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	transcript.StartServer(t, addr, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", filepath.Dir(file),
		"--dbfilename", filepath.Base(file), "--save", "", "--appendonly", "no")
	redis := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2})
	defer redis.Close()
	if n := redis.DBSize(ctx).Val(); n != 306 {
		t.Fatalf("redis-server loaded %d keys in db 0, want 306", n)
	}
	if z := redis.ZRangeWithScores(ctx, "ranks", 0, -1).Val(); fmt.Sprint(z) != "[{-Inf low} {0.1 a} {1e+300 b}]" {
		t.Fatalf("redis-server: ZRANGE ranks = %v", z)
	}
	if v := redis.Get(ctx, "php-sess").Val(); v != "a:1:{s:1:\"x\";i:1;}" {
		t.Fatalf("redis-server: php-sess = %q", v)
	}
	checkFunctions(t, "redis-server", redis)
}

// TestRestoreFromRedisServer: the way in, from a file redis-server saved,
// sorted sets and streams included. A stream's consumer groups, which
// hatcheck does not hold, fail the restore, naming the key and the flag;
// with --skip-unsupported everything else is restored — that stream's
// entries too — and the groups are counted. The function libraries
// redis-server saved are restored: FCALL runs them.
func TestRestoreFromRedisServer(t *testing.T) {
	bin := transcript.Reference(t, "redis-server", "redis-server", false)
	if bin == "" {
		t.Skip("redis-server not installed")
	}
	rdir := t.TempDir()
	port := transcript.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	transcript.StartServer(t, addr, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", rdir, "--save", "", "--appendonly", "no")
	ctx := context.Background()
	rc := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2})
	defer rc.Close()
	rc.Set(ctx, "counter", "12345", 0)
	rc.Set(ctx, "sess", strings.Repeat("session data ", 50), time.Hour)
	rc.HSet(ctx, "h", "a", "1")
	rc.SAdd(ctx, "ids", 1, 2, 3)
	rc.RPush(ctx, "queue", "job1", "job2")
	rc.ZAdd(ctx, "ranks", goredis.Z{Score: 1, Member: "a"}, goredis.Z{Score: 0.5, Member: "b"})
	rc.Set(ctx, "forever", "x", 0)
	for _, lib := range backupLibs {
		if err := rc.FunctionLoad(ctx, lib).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 250 {
		rc.XAdd(ctx, &goredis.XAddArgs{Stream: "events", Values: []any{"k", i, "other", "v"}})
	}
	rc.XTrimMaxLen(ctx, "events", 170)
	rc.XAdd(ctx, &goredis.XAddArgs{Stream: "xids", ID: "5-5", Values: []string{"k", "v"}})
	rc.Do(ctx, "XSETID", "xids", "80-0", "ENTRIESADDED", "12", "MAXDELETEDID", "4-0")
	rc.XAdd(ctx, &goredis.XAddArgs{Stream: "audit", Values: []string{"k", "v"}})
	rc.XGroupCreate(ctx, "audit", "g", "0")
	rc.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"audit", ">"}})
	if err := rc.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(rdir, "dump.rdb")

	dir := filepath.Join(t.TempDir(), "d")
	code, _, stderr := runEnv(t, "", "restore", "--data-dir", dir, file)
	if code != 1 || !strings.Contains(stderr, `key "audit" is a stream with consumer groups`) || !strings.Contains(stderr, "--skip-unsupported") {
		t.Fatalf("restore with a stream's consumer group: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a failed restore left its data dir: %v", err)
	}
	code, stdout, stderr := runEnv(t, "", "restore", "--skip-unsupported", "--data-dir", dir, file)
	if code != 0 || stdout != "restored 10 keys into "+dir+" (0 had expired)\nrestored 2 function libraries\nskipped 1: stream consumer group\n" {
		t.Fatalf("restore --skip-unsupported: exit %d, %q, %q", code, stdout, stderr)
	}
	s := servertest.Start(t, func(c *config.Config) { c.DataDir = dir })
	hc := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr(), Protocol: 2})
	defer hc.Close()
	if v := hc.Get(ctx, "counter").Val(); v != "12345" {
		t.Fatalf("counter = %q", v)
	}
	if v := hc.Get(ctx, "sess").Val(); v != strings.Repeat("session data ", 50) {
		t.Fatalf("the LZF-compressed session = %q", v)
	}
	if m := hc.SMembers(ctx, "ids").Val(); len(m) != 3 {
		t.Fatalf("the intset = %v", m)
	}
	if l := hc.LRange(ctx, "queue", 0, -1).Val(); strings.Join(l, ",") != "job1,job2" {
		t.Fatalf("the quicklist = %v", l)
	}
	if z := hc.ZRangeWithScores(ctx, "ranks", 0, -1).Val(); fmt.Sprint(z) != "[{0.5 b} {1 a}]" {
		t.Fatalf("the sorted set = %v", z)
	}
	for _, k := range []string{"events", "xids", "audit"} {
		if got, want := streamState(t, hc, k), streamState(t, rc, k); got != want {
			t.Errorf("restored %s is\n%.1000s\nwant %.1000s", k, got, want)
		}
	}
	if n := hc.DBSize(ctx).Val(); n != 10 {
		t.Fatalf("DBSIZE %d after the restore, want 10", n)
	}
	checkFunctions(t, "hatcheck restored from redis-server", hc)
}

// backupLibs are two function libraries, with a function each.
var backupLibs = []string{
	"#!lua name=greet\nredis.register_function('hello', function(keys, args) return 'hello ' .. args[1] end)",
	"#!lua name=kv\nredis.register_function{function_name='getkey', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}}",
}

// checkFunctions checks that c's server holds backupLibs: FUNCTION LIST
// names them with their code, and FCALL runs them.
func checkFunctions(t *testing.T, who string, c *goredis.Client) {
	t.Helper()
	ctx := context.Background()
	libs, err := c.FunctionList(ctx, goredis.FunctionListQuery{WithCode: true}).Result()
	if err != nil {
		t.Fatalf("%s: FUNCTION LIST: %v", who, err)
	}
	code := map[string]string{}
	for _, l := range libs {
		code[l.Name] = l.Code
	}
	if len(code) != 2 || code["greet"] != backupLibs[0] || code["kv"] != backupLibs[1] {
		t.Fatalf("%s: FUNCTION LIST WITHCODE = %+v, want the two libraries", who, libs)
	}
	if v, err := c.FCall(ctx, "hello", nil, "world").Text(); err != nil || v != "hello world" {
		t.Fatalf("%s: FCALL hello = %q, %v", who, v, err)
	}
	if v, err := c.FCallRO(ctx, "getkey", []string{"forever"}).Text(); err != nil || v != "x" {
		t.Fatalf("%s: FCALL_RO getkey forever = %q, %v", who, v, err)
	}
}

// streamState is what a stream holds, as XLEN, XRANGE and XINFO STREAM
// (its bookkeeping) give it.
func streamState(t *testing.T, c *goredis.Client, key string) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, cmd := range [][]any{{"TYPE", key}, {"XLEN", key}, {"XRANGE", key, "-", "+"}} {
		v, err := c.Do(ctx, cmd...).Result()
		fmt.Fprint(&b, v, err, "\n")
	}
	info, err := c.Do(ctx, "XINFO", "STREAM", key).Slice()
	if err != nil {
		t.Fatalf("XINFO STREAM %s: %v", key, err)
	}
	for i := 0; i+1 < len(info); i += 2 {
		switch info[i] {
		case "length", "last-generated-id", "max-deleted-entry-id", "entries-added", "recorded-first-entry-id", "first-entry", "last-entry":
			fmt.Fprint(&b, info[i], " ", info[i+1], "\n")
		}
	}
	return b.String()
}

// A backup carries streams (python3-rq keeps its job results in them):
// redis-server loads the backup with the streams as hatcheck held them
// (XLEN, XRANGE, XINFO STREAM's last-generated-id and the rest of its
// bookkeeping), and so does a hatcheck restored from it, expiry included.
func TestBackupCarriesStreams(t *testing.T) {
	src := servertest.Start(t)
	rc := goredis.NewClient(&goredis.Options{Addr: src.RedisAddr(), Protocol: 2})
	defer rc.Close()
	ctx := context.Background()
	do := func(args ...any) {
		t.Helper()
		if err := rc.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	do("SET", "k", "v")
	do("XADD", "rq:results:1", "*", "type", "2", "return_value", "gAVLAS4=")
	do("PEXPIRE", "rq:results:1", "3600000")
	for i := range 300 {
		do("XADD", "events", fmt.Sprintf("%d-%d", 1700000000000+i/2, i%2), "n", i, "payload", strings.Repeat("p", i%30))
	}
	do("XDEL", "events", "1700000000000-0", "1700000000050-1", "1700000000149-1")
	do("XADD", "ids", "3-0", "f", "v")
	do("XSETID", "ids", "90-9", "ENTRIESADDED", "33", "MAXDELETEDID", "2-2")
	do("XADD", "emptied", "1-0", "f", "v")
	do("XDEL", "emptied", "1-0")
	streams := []string{"rq:results:1", "events", "ids", "emptied"}
	want := map[string]string{}
	for _, k := range streams {
		want[k] = streamState(t, rc, k)
	}

	file := filepath.Join(t.TempDir(), "b.rdb")
	code, stdout, stderr := runEnv(t, "", "backup", "--http-addr", src.HTTPAddr(), file)
	if code != 0 || !strings.HasPrefix(stdout, "backed up 5 keys") {
		t.Fatalf("backup with streams: exit %d, %q, %q", code, stdout, stderr)
	}

	bin := transcript.Reference(t, "redis-server", "redis-server", false)
	if bin != "" {
		port := transcript.FreePort(t)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		transcript.StartServer(t, addr, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", filepath.Dir(file),
			"--dbfilename", filepath.Base(file), "--save", "", "--appendonly", "no", "--sanitize-dump-payload", "yes")
		redis := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2})
		defer redis.Close()
		if n := redis.DBSize(ctx).Val(); n != 5 {
			t.Fatalf("redis-server loaded %d keys, want 5", n)
		}
		for _, k := range streams {
			if got := streamState(t, redis, k); got != want[k] {
				t.Errorf("redis-server: %s is\n%.1000s\nwant %.1000s", k, got, want[k])
			}
		}
		if ttl := redis.PTTL(ctx, "rq:results:1").Val(); ttl < 59*time.Minute || ttl > time.Hour {
			t.Errorf("redis-server: PTTL rq:results:1 = %v", ttl)
		}
	}

	dir := filepath.Join(t.TempDir(), "restored")
	code, stdout, stderr = runEnv(t, "", "restore", "--data-dir", dir, file)
	if code != 0 || !strings.HasPrefix(stdout, "restored 5 keys into "+dir) {
		t.Fatalf("restore: exit %d, %q, %q", code, stdout, stderr)
	}
	dst := servertest.Start(t, func(c *config.Config) { c.DataDir = dir })
	dc := goredis.NewClient(&goredis.Options{Addr: dst.RedisAddr(), Protocol: 2})
	defer dc.Close()
	for _, k := range streams {
		if got := streamState(t, dc, k); got != want[k] {
			t.Errorf("restored hatcheck: %s is\n%.1000s\nwant %.1000s", k, got, want[k])
		}
	}
	if ttl := dc.PTTL(ctx, "rq:results:1").Val(); ttl < 59*time.Minute || ttl > time.Hour {
		t.Errorf("restored hatcheck: PTTL rq:results:1 = %v", ttl)
	}
}

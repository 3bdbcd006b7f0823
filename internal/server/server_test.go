package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/server"
	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/testbin"
)

func newClient(t *testing.T, s *server.Server, opts ...func(*goredis.Options)) *goredis.Client {
	o := &goredis.Options{Addr: s.RedisAddr(), MaxRetries: -1}
	for _, f := range opts {
		f(o)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestGoRedisSessionFlow(t *testing.T) {
	s := servertest.Start(t)
	c := newClient(t, s)
	ctx := context.Background()
	key := "PHPREDIS_SESSION:0123456789abcdef0123456789abcdef"
	if err := c.SetEx(ctx, key, "user|s:5:\"alice\";", 1440*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, key).Result(); err != nil || v != "user|s:5:\"alice\";" {
		t.Fatalf("get: %q %v", v, err)
	}
	if ok, err := c.SetNX(ctx, key+"_LOCK", "host|123", 30*time.Second).Result(); err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	if ok, _ := c.SetNX(ctx, key+"_LOCK", "other|1", 30*time.Second).Result(); ok {
		t.Fatal("second lock acquired")
	}
	if ttl, _ := c.TTL(ctx, key).Result(); ttl < 1439*time.Second || ttl > 1440*time.Second {
		t.Fatalf("ttl %v", ttl)
	}
	if n, _ := c.Expire(ctx, key, time.Hour).Result(); !n {
		t.Fatal("expire")
	}
	if n, _ := c.Del(ctx, key, key+"_LOCK").Result(); n != 2 {
		t.Fatalf("del %d", n)
	}
	if _, err := c.Get(ctx, key).Result(); !errors.Is(err, goredis.Nil) {
		t.Fatalf("after del: %v", err)
	}
	// Spring Session's hash layout.
	hk := "spring:session:sessions:abc"
	if err := c.HSet(ctx, hk, "creationTime", 1, "maxInactiveInterval", 1800, "sessionAttr:user", "bob").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.PExpireAt(ctx, hk, time.Now().Add(time.Hour)).Err(); err != nil {
		t.Fatal(err)
	}
	all, _ := c.HGetAll(ctx, hk).Result()
	if all["sessionAttr:user"] != "bob" || len(all) != 3 {
		t.Fatalf("hgetall %v", all)
	}
	if err := c.Rename(ctx, hk, hk+"2").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename(ctx, "nokey", "x").Err(); err == nil || err.Error() != "ERR no such key" {
		t.Fatalf("rename missing: %v", err)
	}
}

func TestPipelineAndTransaction(t *testing.T) {
	s := servertest.Start(t)
	c := newClient(t, s)
	ctx := context.Background()
	cmds, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i := 0; i < 200; i++ {
			p.Set(ctx, fmt.Sprint("k", i), i, 0)
			p.Get(ctx, fmt.Sprint("k", i))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if v := cmds[2*i+1].(*goredis.StringCmd).Val(); v != fmt.Sprint(i) {
			t.Fatalf("pipelined get %d = %q", i, v)
		}
	}
	// redis-rack's new-session sequence; go-redis TxPipelined is MULTI/EXEC.
	res, err := c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.SetNX(ctx, "rack:session:new", "data", 0)
		p.Expire(ctx, "rack:session:new", time.Minute)
		return nil
	})
	if err != nil || !res[0].(*goredis.BoolCmd).Val() || !res[1].(*goredis.BoolCmd).Val() {
		t.Fatalf("tx: %v %v", res, err)
	}
}

func TestConcurrentIncrementsAreAtomic(t *testing.T) {
	s := servertest.Start(t)
	c := newClient(t, s, func(o *goredis.Options) { o.PoolSize = 50 })
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				if err := c.Incr(ctx, "counter").Err(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n, _ := c.Get(ctx, "counter").Int(); n != 2000 {
		t.Fatalf("counter = %d, want 2000", n)
	}
}

func TestActiveExpiryDeletesUnreadKeys(t *testing.T) {
	s := servertest.Start(t)
	c := newClient(t, s)
	ctx := context.Background()
	for i := 0; i < 300; i++ {
		c.Set(ctx, fmt.Sprint("short", i), "v", 50*time.Millisecond)
	}
	c.Set(ctx, "long", "v", time.Hour)
	// DBSIZE counts keys that are stored, expired or not: it drops only
	// when the leader's expiry cycle deletes them through the log.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := c.DBSize(ctx).Result()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dbsize still %d", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s.Node().Stats().Expired != 300 {
		t.Fatalf("expired counter %d", s.Node().Stats().Expired)
	}
}

func TestMaxMemoryNoEviction(t *testing.T) {
	s := servertest.Start(t)
	c := newClient(t, s)
	ctx := context.Background()
	if err := c.ConfigSet(ctx, "maxmemory", "200kb").Err(); err != nil {
		t.Fatal(err)
	}
	val := strings.Repeat("x", 1024)
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = c.Set(ctx, fmt.Sprint("k", i), val, 0).Err()
	}
	if err == nil || err.Error() != "OOM command not allowed when used memory > 'maxmemory'." {
		t.Fatalf("want OOM, got %v", err)
	}
	if err := c.Get(ctx, "k1").Err(); err != nil {
		t.Fatalf("reads must still work: %v", err)
	}
	if err := c.Del(ctx, "k1", "k2", "k3").Err(); err != nil {
		t.Fatalf("deletes must still work: %v", err)
	}
}

func TestMaxMemoryAllKeysLRU(t *testing.T) {
	s := servertest.Start(t)
	c := newClient(t, s)
	ctx := context.Background()
	c.ConfigSet(ctx, "maxmemory", "300kb")
	c.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru")
	val := strings.Repeat("x", 1024)
	for i := 0; i < 1000; i++ {
		if err := c.Set(ctx, fmt.Sprint("k", i), val, 0).Err(); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	st := s.Node().Stats()
	if st.Evicted == 0 {
		t.Fatal("nothing evicted")
	}
	// Eviction runs before each batch, so usage can overshoot by at most
	// what the batches in flight carry; with one client that is one write.
	if st.UsedMemory > 300*1024+4096 {
		t.Fatalf("used %d bytes over a 300kb limit", st.UsedMemory)
	}
	if v, _ := c.Get(ctx, "k999").Result(); v != val {
		t.Fatal("the newest key was evicted")
	}
}

func TestAuthAndAdminEndpoints(t *testing.T) {
	s := servertest.Start(t, func(c *servertest.Config) { c.RequirePass = "hunter2" })
	ctx := context.Background()
	bad := newClient(t, s)
	if err := bad.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Fatalf("unauthenticated ping: %v", err)
	}
	good := newClient(t, s, func(o *goredis.Options) { o.Password = "hunter2" })
	if err := good.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// The probes answer anyone; the rest needs the password (any user).
	httpGet := func(path string, auth bool) (*http.Response, error) {
		req, _ := http.NewRequest("GET", "http://"+s.HTTPAddr()+path, nil)
		if auth {
			req.SetBasicAuth("metrics", "hunter2")
		}
		return http.DefaultClient.Do(req)
	}
	if resp, err := httpGet("/metrics", false); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/metrics without the password: %v %v", resp, err)
	}
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/readyz":  "ready",
		"/metrics": `hatcheck_command_duration_seconds_count{command="set",protocol="redis"} 1`,
	} {
		resp, err := httpGet(path, path == "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d, missing %q", path, resp.StatusCode, want)
		}
	}
	if err := good.Do(ctx, "NOSUCHCOMMAND").Err(); err == nil {
		t.Fatal("an unknown command succeeded")
	}
	for _, want := range []string{"hatcheck_raft_leader 1", `hatcheck_keys{db="0"} 1`, "hatcheck_raft_applied_index",
		`hatcheck_command_errors_total{command="(unknown)",protocol="redis"} 1`,
		`hatcheck_log_append_duration_seconds_bucket{le="+Inf"}`, "hatcheck_log_append_duration_seconds_count"} {
		resp, _ := httpGet("/metrics", true)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The password must never appear in CONFIG GET or INFO.
	cfg, _ := good.ConfigGet(ctx, "*").Result()
	info, _ := good.Info(ctx).Result()
	if strings.Contains(fmt.Sprint(cfg)+info, "hunter2") {
		t.Fatal("password leaked")
	}
}

func TestRestartKeepsData(t *testing.T) {
	cfg := servertest.Options(t)
	cfg.SnapshotThreshold = 50 // so that the restart restores a snapshot and a log tail
	s, err := server.Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for !s.Node().Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr()})
	for i := 0; i < 500; i++ {
		c.Set(ctx, fmt.Sprint("k", i), i, time.Hour)
	}
	c.HSet(ctx, "h", "f", "v")
	c.SAdd(ctx, "s", "m")
	c.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Node().Stats().Snapshots == 0 {
		t.Fatal("no snapshot taken")
	}
	s2 := servertest.StartConfig(t, cfg)
	c2 := newClient(t, s2)
	for i := 0; i < 500; i++ {
		if v, _ := c2.Get(ctx, fmt.Sprint("k", i)).Result(); v != fmt.Sprint(i) {
			t.Fatalf("k%d = %q after restart", i, v)
		}
	}
	if ttl, _ := c2.TTL(ctx, "k1").Result(); ttl <= 59*time.Minute {
		t.Fatalf("ttl lost: %v", ttl)
	}
	if v, _ := c2.HGet(ctx, "h", "f").Result(); v != "v" {
		t.Fatal("hash lost")
	}
	if ok, _ := c2.SIsMember(ctx, "s", "m").Result(); !ok {
		t.Fatal("set lost")
	}
}

func TestServerCommands(t *testing.T) {
	s := servertest.Start(t)
	c := newClient(t, s)
	ctx := context.Background()
	c.Set(ctx, "k", "v", time.Hour)
	info, err := c.Info(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	// The fields clients read: ioredis checks loading:0, redis-py and
	// Sentinel clients read role, Spring and others redis_version.
	for _, want := range []string{"# Server\r\nredis_version:7.0.15\r\n", "\r\nloading:0\r\n", "\r\nrole:master\r\n",
		"\r\ndb0:keys=1,expires=1,avg_ttl=3", "\r\n# CPU\r\nused_cpu_sys:", "\r\nconnected_clients:1\r\n", "\r\nmaxmemory_policy:noeviction\r\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q", want)
		}
	}
	if sec, _ := c.Info(ctx, "keyspace").Result(); strings.Contains(sec, "# Server") || !strings.Contains(sec, "# Keyspace") {
		t.Errorf("INFO keyspace: %q", sec)
	}
	role, err := c.Do(ctx, "ROLE").Slice()
	if err != nil || len(role) != 3 || role[0] != "master" {
		t.Fatalf("ROLE %v %v", role, err)
	}
	n, err := c.Do(ctx, "COMMAND", "COUNT").Int()
	if err != nil || n < 70 {
		t.Fatalf("COMMAND COUNT %d %v", n, err)
	}
	ci, err := c.Command(ctx).Result()
	if err != nil || ci["set"] == nil || ci["set"].Arity != -3 || ci["get"].FirstKeyPos != 1 || !ci["get"].ReadOnly {
		t.Fatalf("COMMAND: %v %+v", err, ci["set"])
	}
	tm, err := c.Time(ctx).Result()
	if err != nil || time.Since(tm).Abs() > time.Minute {
		t.Fatalf("TIME %v %v", tm, err)
	}
	c.Do(ctx, "CLIENT", "SETNAME", "worker-1")
	list, _ := c.ClientList(ctx).Result()
	if !strings.Contains(list, "name=worker-1") {
		t.Fatalf("CLIENT LIST %q", list)
	}
	if err := c.Do(ctx, "CLIENT", "SETINFO", "lib-name", "go-redis").Err(); err != nil {
		t.Fatal(err)
	}
	cfg, _ := c.ConfigGet(ctx, "maxmemory*").Result()
	if cfg["maxmemory"] != "0" || cfg["maxmemory-policy"] != "noeviction" {
		t.Fatalf("CONFIG GET maxmemory*: %v", cfg)
	}
}

func TestMaxMemoryVolatileTTL(t *testing.T) {
	s := servertest.Start(t, func(c *servertest.Config) {
		c.MaxMemory = 300 << 10
		c.MaxMemoryPolicy = "volatile-ttl"
	})
	c := newClient(t, s)
	ctx := context.Background()
	val := strings.Repeat("x", 1024)
	// Keys without a TTL are never evicted by volatile-ttl.
	for i := 0; i < 50; i++ {
		c.Set(ctx, fmt.Sprint("keep", i), val, 0)
	}
	for i := 0; i < 600; i++ {
		// Later keys live longer; the shortest TTLs go first.
		if err := c.Set(ctx, fmt.Sprint("v", i), val, time.Duration(1000+i)*time.Second).Err(); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	for i := 0; i < 50; i++ {
		if err := c.Get(ctx, fmt.Sprint("keep", i)).Err(); err != nil {
			t.Fatalf("keep%d evicted: %v", i, err)
		}
	}
	if err := c.Get(ctx, "v599").Err(); err != nil {
		t.Fatal("longest-lived key evicted")
	}
	if s.Node().Stats().Evicted == 0 {
		t.Fatal("nothing evicted")
	}
}

func TestScanLikeConnectRedis(t *testing.T) {
	s := servertest.Start(t)
	c := newClient(t, s)
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		c.Set(ctx, fmt.Sprint("sess:", i), i, time.Hour)
		c.Set(ctx, fmt.Sprint("other:", i), i, 0)
	}
	seen := map[string]bool{}
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, "sess:*", 100).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 {
			vals, err := c.MGet(ctx, keys...).Result()
			if err != nil || len(vals) != len(keys) {
				t.Fatalf("mget: %v", err)
			}
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, "sess:") {
				t.Fatalf("SCAN MATCH returned %q", k)
			}
			seen[k] = true
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	if len(seen) != 1000 {
		t.Fatalf("scan found %d of 1000 sessions", len(seen))
	}
	keys, _ := c.Keys(ctx, "sess:1?").Result()
	if len(keys) != 10 {
		t.Fatalf("KEYS sess:1? = %d keys", len(keys))
	}
}

func TestMemcacheListenerCanBeTurnedOff(t *testing.T) {
	on := servertest.Start(t)
	if on.MemcacheAddr() == "" || !strings.Contains(strings.Join(on.Listeners(), "\n"), "memcached protocol (text and binary) on "+on.MemcacheAddr()) {
		t.Fatalf("memcached listener missing: %q %v", on.MemcacheAddr(), on.Listeners())
	}
	off := servertest.Start(t, func(c *servertest.Config) { c.MemcacheAddr = "" })
	if off.MemcacheAddr() != "" || strings.Contains(strings.Join(off.Listeners(), "\n"), "memcached") {
		t.Fatalf("--memcache-addr \"\" still serves memcached: %q %v", off.MemcacheAddr(), off.Listeners())
	}
}

func TestEveryClientPortCanBeTurnedOff(t *testing.T) {
	s := servertest.Start(t, func(c *servertest.Config) { c.RedisAddr, c.MemcacheAddr, c.HTTPAddr = "", "", "" })
	if s.RedisAddr() != "" || s.MemcacheAddr() != "" || s.HTTPAddr() != "" {
		t.Fatalf("ports open: redis %q memcache %q http %q", s.RedisAddr(), s.MemcacheAddr(), s.HTTPAddr())
	}
	if l := s.Listeners(); len(l) != 1 || !strings.HasPrefix(l[0], "peer (raft) on ") {
		t.Fatalf("Listeners = %q, want the peer port alone", l)
	}
}

// rawPipeline sends req in one write and reads until the reply is as long
// as want.
func rawPipeline(t *testing.T, addr, req string, wantLen int) string {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, wantLen)
	if _, err := io.ReadFull(nc, got); err != nil {
		t.Fatalf("read: %v (got %q)", err, got)
	}
	return string(got)
}

// A pipeline's writes, and the reads after them, share one log entry, and
// every reply still comes back in order, errors included.
func TestPipelinedWritesShareOneLogEntry(t *testing.T) {
	s := servertest.Start(t)
	var req, want strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&req, "SET k%d v%d\r\nGET k%d\r\n", i, i, i)
		fmt.Fprintf(&want, "+OK\r\n$%d\r\nv%d\r\n", len(fmt.Sprint("v", i)), i)
		if i == 50 {
			// An unknown command, a failing data command and an arity
			// error in the middle answer in their place.
			req.WriteString("NOSUCH x\r\nINCR k50\r\nGET\r\nINCR n\r\n")
			want.WriteString("-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n" +
				"-ERR value is not an integer or out of range\r\n" +
				"-ERR wrong number of arguments for 'get' command\r\n:1\r\n")
		}
	}
	before := s.Node().Stats().AppliedIndex
	if got := rawPipeline(t, s.RedisAddr(), req.String(), want.Len()); got != want.String() {
		t.Fatalf("replies differ:\n got %q\nwant %q", got, want.String())
	}
	// 101 writes; one at a time they would take 101 entries.
	if n := s.Node().Stats().AppliedIndex - before; n > 8 {
		t.Errorf("the pipeline took %d log entries, want a few", n)
	}
}

// Over maxmemory a batch is refused whole; its commands then run one by
// one, so the reads and deletes in it still answer.
func TestPipelineBatchOverMaxMemory(t *testing.T) {
	s := servertest.Start(t)
	c := newClient(t, s)
	ctx := context.Background()
	if err := c.Set(ctx, "a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	val := strings.Repeat("x", 4096)
	if err := c.ConfigSet(ctx, "maxmemory", "100kb").Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; c.Set(ctx, fmt.Sprint("fill", i), val, 0).Err() == nil; i++ {
	}
	req := "SET b 2\r\nGET a\r\nDEL fill0\r\nGET a\r\n"
	want := "-OOM command not allowed when used memory > 'maxmemory'.\r\n$1\r\n1\r\n:1\r\n$1\r\n1\r\n"
	if got := rawPipeline(t, s.RedisAddr(), req, len(want)); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// Optimistic locking with WATCH, as go-redis's Watch helper does it: of
// concurrent read-modify-write transactions on one key, exactly the
// committed ones count.
func TestWatchOptimisticIncrement(t *testing.T) {
	s := servertest.Start(t)
	c := newClient(t, s)
	ctx := context.Background()
	var committed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				err := c.Watch(ctx, func(tx *goredis.Tx) error {
					n, err := tx.Get(ctx, "counter").Int()
					if err != nil && !errors.Is(err, goredis.Nil) {
						return err
					}
					_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
						p.Set(ctx, "counter", n+1, 0)
						return nil
					})
					return err
				}, "counter")
				switch {
				case err == nil:
					committed.Add(1)
				case errors.Is(err, goredis.TxFailedErr):
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	n, err := c.Get(ctx, "counter").Int64()
	if err != nil || n != committed.Load() || n == 0 {
		t.Fatalf("counter %d (%v), committed transactions %d", n, err, committed.Load())
	}
	t.Logf("%d of 100 transactions committed", n)
}

// Every port that cannot be bound is reported in one error, named by its
// flag, before anything is written to the data dir.
func TestBusyPortsReportedTogetherBeforeDataDir(t *testing.T) {
	busy := func() (net.Listener, string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln, ln.Addr().String()
	}
	_, redisAddr := busy()
	_, peerAddr := busy()
	cfg := servertest.Options(t)
	cfg.RedisAddr, cfg.PeerAddr = redisAddr, peerAddr
	_, err := server.Start(cfg, nil)
	if err == nil {
		t.Fatal("started on busy ports")
	}
	for _, want := range []string{"--redis-addr " + redisAddr, "--peer-addr " + peerAddr} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "--http-addr") {
		t.Errorf("error names a free port: %q", err)
	}
	if entries, _ := os.ReadDir(cfg.DataDir); len(entries) != 0 {
		t.Errorf("data dir written before the ports were checked: %v", entries)
	}
	// The free ports it bound were released: a server starts on them.
	cfg.RedisAddr, cfg.PeerAddr = "127.0.0.1:0", "127.0.0.1:0"
	s, err := server.Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// With --log-format json every line hatcheck prints is JSON: the listeners
// are logged, not printed as a banner; with text they are the banner.
func TestRunPrintsOneFormat(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		cfg := servertest.Options(t)
		cfg.LogFormat = format
		var logs testbin.LockedBuffer
		var banner testbin.LockedBuffer
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- server.Run(ctx, cfg, server.NewLogger(cfg, &logs), &banner, nil) }()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(logs.String()+banner.String(), "redis protocol on") {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not started: %s", format, logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if format == "json" {
			if banner.String() != "" {
				t.Errorf("json: plain text on stdout: %q", banner.String())
			}
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				if !json.Valid([]byte(line)) {
					t.Errorf("json: a line that is not JSON: %q", line)
				}
			}
		} else if !strings.HasPrefix(banner.String(), "hatcheck: redis protocol on ") {
			t.Errorf("text: banner %q", banner.String())
		}
	}
}

// TestSlowThresholdFollowsSlowlogSetting: the dashboard's slow-command
// events use slowlog-log-slower-than, from the flag at start and from
// CONFIG SET while running.
func TestSlowThresholdFollowsSlowlogSetting(t *testing.T) {
	s := servertest.Start(t, func(c *servertest.Config) { c.SlowlogLogSlowerThan = -1 })
	c := newClient(t, s)
	ctx := context.Background()
	if got, err := c.ConfigGet(ctx, "slowlog-log-slower-than").Result(); err != nil || got["slowlog-log-slower-than"] != "-1" {
		t.Fatalf("CONFIG GET slowlog-log-slower-than = %v, %v; want -1 from the flag", got, err)
	}
	if err := c.ConfigSet(ctx, "slowlog-log-slower-than", "0").Err(); err != nil {
		t.Fatal(err)
	}
	// Every command is slow now; the load meter reports them within a
	// second or so.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		for _, e := range s.Node().Events() {
			if e.Kind == "slow" {
				if !strings.Contains(e.Text, "slower than 0s") {
					t.Fatalf("slow event %q, want the threshold CONFIG SET gave (0s)", e.Text)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slow event with slowlog-log-slower-than 0; events: %+v", s.Node().Events())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

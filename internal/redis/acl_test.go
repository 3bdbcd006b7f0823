package redis_test

import (
	"bufio"
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// A user changed by another connection between MULTI and EXEC: EXEC
// checks each queued command again and answers NOPERM in its slot, as
// redis-server 7.0 does (compared with it when it is installed); and a
// connected client gets the new permissions at its next command.
func TestACLChangedBetweenMultiAndExec(t *testing.T) {
	scenario := func(t *testing.T, addr string) []string {
		dial := func() (net.Conn, *bufio.Reader) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c, bufio.NewReader(c)
		}
		admin, ar := dial()
		app, pr := dial()
		var out []string
		do := func(c net.Conn, r *bufio.Reader, line string) {
			req, err := encodeInline(line)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(req); err != nil {
				t.Fatal(err)
			}
			reply, err := ReadReply(r)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			out = append(out, line+" -> "+string(reply))
		}
		do(admin, ar, "ACL SETUSER app1 on nopass ~app1:* &c* +@all")
		do(app, pr, "AUTH app1 x")
		do(app, pr, "MULTI")
		do(app, pr, "SET app1:a 1")
		do(app, pr, "GET app1:a")
		do(app, pr, "PUBLISH c1 m")
		do(app, pr, "PING")
		do(admin, ar, "ACL SETUSER app1 -set resetkeys ~other resetchannels")
		do(app, pr, "EXEC")
		do(app, pr, "GET app1:a")
		do(app, pr, "GET other")
		do(admin, ar, "ACL DELUSER app1")
		return out
	}
	srv := servertest.Start(t)
	got := scenario(t, srv.RedisAddr())
	if bin := transcript.Reference(t, "redis-server", "redis-server", false); bin != "" {
		want := scenario(t, startRedisServer(t, bin, ""))
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("hatcheck: %q\nredis-server: %q", got[i], want[i])
			}
		}
		return
	}
	if want := "EXEC -> *4\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand\r\n"; len(got) < 9 || got[8][:len(want)] != want {
		t.Errorf("EXEC: %q", got[8])
	}
}

// A subscriber whose user loses one of its channels is disconnected, as
// redis-server 7.0 does; one whose channels all stay allowed is not.
func TestACLRevokedChannelClosesSubscriber(t *testing.T) {
	scenario := func(t *testing.T, addr string) []string {
		var out []string
		dial := func() func(line string) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			r := bufio.NewReader(c)
			return func(line string) {
				if line != "read" {
					req, _ := encodeInline(line)
					if _, err := c.Write(req); err != nil {
						out = append(out, line+" -> (closed)")
						return
					}
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				reply, err := ReadReply(r)
				if err != nil {
					out = append(out, line+" -> (closed)")
					return
				}
				out = append(out, line+" -> "+string(reply))
			}
		}
		admin, kept, lost := dial(), dial(), dial()
		admin("ACL SETUSER app1 on nopass resetchannels &news.* &sport +@all ~*")
		kept("AUTH app1 x")
		kept("SUBSCRIBE news.a")
		lost("AUTH app1 x")
		lost("PSUBSCRIBE news.*")
		admin("ACL SETUSER app1 resetchannels &news.a &sport")
		lost("PING")
		kept("PING")
		return out
	}
	srv := servertest.Start(t)
	got := scenario(t, srv.RedisAddr())
	if want := "PING -> (closed)"; got[6] != want {
		t.Errorf("the subscriber to a revoked pattern: %q", got[6])
	}
	if want := "PING -> *2\r\n$4\r\npong\r\n$0\r\n\r\n"; got[7] != want {
		t.Errorf("the subscriber to a channel still allowed: %q", got[7])
	}
	if bin := transcript.Reference(t, "redis-server", "redis-server", false); bin != "" {
		want := scenario(t, startRedisServer(t, bin, ""))
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("hatcheck: %q\nredis-server: %q", got[i], want[i])
			}
		}
	}
}

// ACL CAT <category> lists what hatcheck's table says; compared with
// redis-server 7.0, restricted to the commands (and subcommands) hatcheck
// has, every category holds the same commands.
func TestACLCatMatchesRedis(t *testing.T) {
	bin := transcript.Reference(t, "redis-server", "redis-server", false)
	if bin == "" {
		t.Skip("redis-server is not installed")
	}
	srv := servertest.Start(t)
	ctx := context.Background()
	hc := goredis.NewClient(&goredis.Options{Addr: srv.RedisAddr()})
	rc := goredis.NewClient(&goredis.Options{Addr: startRedisServer(t, bin, "")})
	defer hc.Close()
	defer rc.Close()
	cats, err := rc.Do(ctx, "ACL", "CAT").StringSlice()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := hc.Do(ctx, "ACL", "CAT").StringSlice(); err != nil || !slices.Equal(got, cats) {
		t.Fatalf("ACL CAT: %q %v, redis-server %q", got, err, cats)
	}
	have := map[string]bool{}
	for _, cat := range cats {
		names, err := hc.Do(ctx, "ACL", "CAT", cat).StringSlice()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			have[n] = true
		}
	}
	all, _ := hc.Do(ctx, "COMMAND", "LIST").StringSlice()
	for _, n := range all {
		have[n] = true
	}
	for _, cat := range cats {
		got, _ := hc.Do(ctx, "ACL", "CAT", cat).StringSlice()
		// SENTINEL: redis-server has it only in Sentinel mode.
		got = slices.DeleteFunc(got, func(n string) bool { return n == "sentinel" })
		want, _ := rc.Do(ctx, "ACL", "CAT", cat).StringSlice()
		want = slices.DeleteFunc(want, func(n string) bool {
			// Containers: redis lists their subcommands; hatcheck too.
			return !have[n] && !have[strings.SplitN(n, "|", 2)[0]]
		})
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("ACL CAT %s:\n hatcheck %q\n redis    %q", cat, got, want)
		}
	}
}

// CLIENT INFO and LIST show the user a connection authenticated as, and
// CLIENT KILL USER closes its connections.
func TestClientListShowsTheUser(t *testing.T) {
	srv := servertest.Start(t)
	ctx := context.Background()
	admin := goredis.NewClient(&goredis.Options{Addr: srv.RedisAddr(), PoolSize: 1})
	defer admin.Close()
	if err := admin.Do(ctx, "ACL", "SETUSER", "app1", "on", ">pw", "~*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	app := goredis.NewClient(&goredis.Options{Addr: srv.RedisAddr(), Username: "app1", Password: "pw", PoolSize: 1, MaxRetries: -1})
	defer app.Close()
	info, err := app.Do(ctx, "CLIENT", "INFO").Text()
	if err != nil || !strings.Contains(info, " user=app1 ") {
		t.Fatalf("CLIENT INFO as app1: %q %v", info, err)
	}
	if info, _ := admin.Do(ctx, "CLIENT", "INFO").Text(); !strings.Contains(info, " user=default ") {
		t.Fatalf("CLIENT INFO as default: %q", info)
	}
	app.Close()
	raw, err := net.Dial("tcp", srv.RedisAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	r := bufio.NewReader(raw)
	req, _ := encodeInline("AUTH app1 pw")
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := raw.Write(req); err != nil {
		t.Fatal(err)
	}
	if reply, err := ReadReply(r); err != nil || string(reply) != "+OK\r\n" {
		t.Fatalf("AUTH app1: %q %v", reply, err)
	}
	if n, err := admin.Do(ctx, "CLIENT", "KILL", "USER", "app1").Int(); err != nil || n != 1 {
		t.Fatalf("CLIENT KILL USER app1: %d %v", n, err)
	}
	if b, err := r.ReadByte(); err == nil {
		t.Fatalf("app1's connection survived CLIENT KILL USER (read %q)", b)
	}
}

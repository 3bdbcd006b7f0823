package compat

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
)

// TestRedisPyACLUser: redis-py (Debian python3-redis) connects with
// username= and password= as an ACL user (AUTH user pass), and gets
// redis's NoPermissionError for a key outside its pattern and for a
// command outside its rules.
func TestRedisPyACLUser(t *testing.T) {
	py := python(t)
	if err := exec.Command(py, "-c", "import redis").Run(); err != nil {
		missing(t, "python module redis", "python3-redis")
	}
	s := servertest.Start(t, func(c *servertest.Config) { c.RequirePass = "s3cret" })
	rc := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr(), Password: "s3cret"})
	t.Cleanup(func() { rc.Close() })
	if err := rc.Do(context.Background(), "ACL", "SETUSER", "app1", "on", ">pw1", "~app1:*", "+@all", "-@dangerous").Err(); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(s.RedisAddr())
	out, err := exec.Command(py, "python/acl_user.py", host, port, "app1", "pw1").CombinedOutput()
	if err != nil {
		t.Fatalf("redis-py as app1: %v\n%s", err, out)
	}
	want := "whoami app1\n" +
		"get v\n" +
		"other NOPERM this user has no permissions to access one of the keys used as arguments\n" +
		"flushall NOPERM this user has no permissions to run the 'flushall' command\n"
	if got := strings.ReplaceAll(string(out), "b'app1'", "app1"); got != want {
		t.Fatalf("redis-py as app1:\n%s\nwant\n%s", got, want)
	}
	if v, err := rc.Get(context.Background(), "app1:sess").Result(); err != nil || v != "v" {
		t.Fatalf("app1's write, read as default: %q %v", v, err)
	}
	// A wrong password is refused.
	if out, err := exec.Command(py, "python/acl_user.py", host, port, "app1", "nope").CombinedOutput(); err == nil || !strings.Contains(string(out), "invalid username-password pair") {
		t.Fatalf("redis-py with a wrong password: %v\n%s", err, out)
	}
}

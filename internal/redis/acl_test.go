package redis_test

import (
	"bufio"
	"net"
	"testing"
	"time"

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

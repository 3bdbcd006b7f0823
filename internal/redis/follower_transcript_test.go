package redis_test

import (
	"bufio"
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/clustertest"
	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/resp"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// TestTranscriptsThroughAFollower replays every golden transcript (the same
// files and .golden replies as TestTranscripts) through a follower of a
// three-node cluster: its writes go through the leader and the log, its
// reads wait for a read barrier, and every reply must still be
// redis-server's, byte for byte. The files run one after another on one
// cluster (one more, started with the password, for "#! requirepass"
// files), with the replicated state (keys, scripts, functions, ACL users,
// the ACL log) reset between them. A step marked "#@ single-node REASON"
// is sent but its reply not compared, and a file with "#! single-node
// REASON" is skipped, the reason logged: both are for what a follower answers
// differently by design (its role, replicas for WAIT), never for a reply
// that differs only because the command went through a follower.
func TestTranscriptsThroughAFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	files, _ := filepath.Glob("testdata/transcripts/*.txt")
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	type cluster struct {
		follower *clustertest.Node
		admin    *admin
	}
	clusters := map[string]*cluster{}
	top := t
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".txt")
		t.Run(name, func(t *testing.T) {
			f := transcript.Load(t, path, encodeInline)
			if why, ok := f.Directives["single-node"]; ok {
				t.Skipf("single node only: %s", why)
			}
			pass := f.Directives["requirepass"]
			c := clusters[pass]
			if c == nil {
				cl := clustertest.Start(top, 3, func(cfg *config.Config) { cfg.RequirePass = pass })
				leader := cl.Leader()
				c = &cluster{cl.Others(leader)[0], dialAdmin(top, leader.Cfg.RedisAddr, pass)}
				clusters[pass] = c
			}
			follower := c.follower
			c.admin.reset(t, pass)
			got := play(t, follower.Cfg.RedisAddr, f.Steps)
			for i, s := range f.Steps {
				if s.SingleNode != "" {
					t.Logf("%s: compared on a single node only: %s", s.Line, s.SingleNode)
				}
				if strings.HasPrefix(strings.ToUpper(s.Line), "HELLO") {
					got[i] = bytes.Replace(got[i], []byte(followerRole), []byte(leaderRole), 1)
				}
			}
			transcript.CheckFollower(t, "a follower", f, strings.TrimSuffix(path, ".txt")+".golden", got)
			// The ACL log is each node's own: the follower's is emptied
			// now, so that this connection is long gone when the next
			// transcript lists or kills clients.
			c.admin.reset(t, pass)
			a := dialAdmin(t, follower.Cfg.RedisAddr, pass)
			a.do(t, "ACL", "LOG", "RESET")
			a.conn.Close()
		})
	}
}

// HELLO's reply names the node's role: a follower's is "slave", by
// design (its ROLE and INFO replication say so too); the replay reads it
// as a single node's.
const (
	followerRole = "$4\r\nrole\r\n$5\r\nslave\r\n"
	leaderRole   = "$4\r\nrole\r\n$6\r\nmaster\r\n"
)

// admin is a connection to a cluster's leader opened (and authenticated)
// before any transcript ran on it, through which the state is reset: a
// transcript may leave the default user off or with another password, or
// kill the clients of its node.
type admin struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialAdmin(t *testing.T, addr, pass string) *admin {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	a := &admin{conn, bufio.NewReader(conn)}
	if pass != "" {
		a.do(t, "AUTH", pass)
	}
	return a
}

func (a *admin) do(t *testing.T, args ...string) []byte {
	t.Helper()
	_ = a.conn.SetDeadline(time.Now().Add(30 * time.Second))
	req := resp.AppendArray(nil, len(args))
	for _, arg := range args {
		req = resp.AppendBulk(req, []byte(arg))
	}
	if _, err := a.conn.Write(req); err != nil {
		t.Fatal(err)
	}
	reply, err := resp.ReadReply(a.r)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	if len(reply) > 0 && reply[0] == '-' {
		t.Fatalf("%v: %q", args, reply)
	}
	return reply
}

// reset gives the next transcript what a new server has: no keys in any
// database, no cached scripts, no function libraries, only the default
// user (with the server's password, if any) and an empty ACL log on the
// leader (the follower's is reset apart).
func (a *admin) reset(t *testing.T, pass string) {
	t.Helper()
	a.do(t, "FLUSHALL")
	a.do(t, "SCRIPT", "FLUSH")
	a.do(t, "FUNCTION", "FLUSH")
	for _, line := range strings.Split(string(a.do(t, "ACL", "USERS")), "\r\n") {
		if line != "" && line[0] != '*' && line[0] != '$' && line != "default" {
			a.do(t, "ACL", "DELUSER", line)
		}
	}
	auth := "nopass"
	if pass != "" {
		auth = ">" + pass
	}
	a.do(t, "ACL", "SETUSER", "default", "resetpass", "resetkeys", "resetchannels", "clearselectors", "-@all", "on", auth, "~*", "&*", "+@all")
	a.do(t, "ACL", "LOG", "RESET")
}

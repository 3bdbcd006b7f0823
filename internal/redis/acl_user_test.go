package redis

import (
	"bufio"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Users built from ACL SETUSER rules describe themselves as redis-server
// 7.0.15 does in ACL LIST (outputs recorded from it; where redis lists
// several single commands it does so in its hash table's order, so these
// cases have at most one).
func TestACLUserDescribeMatchesRedis(t *testing.T) {
	tb := newTable()
	cases := []struct{ rules, want string }{
		{"", "off resetchannels -@all"},
		{"on nopass ~* &* +@all", "on nopass ~* &* +@all"},
		{"on >pw ~app1:* +@all -@dangerous", "on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~app1:* resetchannels +@all -@dangerous"},
		{"on nopass %R~r:* %W~w:* %RW~b:* &ch* -@all +get", "on nopass %R~r:* %W~w:* ~b:* resetchannels &ch* -@all +get"},
		{"reset +@read -get ~*", "off sanitize-payload ~* resetchannels -@all +@read -get"},
		{"+@all -@write +set", "off resetchannels +@all -@write +set"},
		{"-@all +select|0", "off resetchannels -@all +select|0"},
		{"-@all +select|0 +select|1 -select +get +get", "off resetchannels -@all +get"},
		{"-@all +config|get", "off resetchannels -@all +config|get"},
		{"+@all -config|set -@admin", "off resetchannels +@all -@admin"},
		{"on >a >b <a %R~x %W~x", "on #3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d ~x resetchannels -@all"},
		{"allkeys resetkeys ~k allchannels resetchannels &c nocommands allcommands", "off ~k resetchannels &c +@all"},
	}
	for _, tc := range cases {
		u, msg := setUser(tb, nil, "u", fields(tc.rules))
		if msg != "" {
			t.Fatalf("%s: %s", tc.rules, msg)
		}
		if got := u.describe(tb); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.rules, got, tc.want)
		}
	}
}

func fields(s string) [][]byte {
	var out [][]byte
	for _, f := range strings.Fields(s) {
		out = append(out, []byte(f))
	}
	return out
}

func TestACLUserRuleErrorsMatchRedis(t *testing.T) {
	tb := newTable()
	cases := []struct{ rules, want string }{
		{"~a allkeys %X~a", "ERR Error in ACL SETUSER modifier '%X~a': Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"},
		{"resetkeys %X~a", "ERR Error in ACL SETUSER modifier '%X~a': Syntax error"},
		{"+@nope", "ERR Error in ACL SETUSER modifier '+@nope': Unknown command or category name in ACL"},
		{"foo", "ERR Error in ACL SETUSER modifier 'foo': Syntax error"},
		{"+nosuch", "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"},
		{"<nope", "ERR Error in ACL SETUSER modifier '<nope': The password you are trying to remove from the user does not exist"},
		{"#abc", "ERR Error in ACL SETUSER modifier '#abc': The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"},
		{"&* &x", "ERR Error in ACL SETUSER modifier '&x': Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"},
		{"+get|", "ERR Error in ACL SETUSER modifier '+get|': Syntax error"},
		{"+config|nosuch", "ERR Error in ACL SETUSER modifier '+config|nosuch': Unknown command or category name in ACL"},
		{"+config|get|x", "ERR Error in ACL SETUSER modifier '+config|get|x': Allowing first-arg of a subcommand is not supported"},
	}
	for _, tc := range cases {
		if _, msg := setUser(tb, nil, "u", fields(tc.rules)); msg != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.rules, msg, tc.want)
		}
	}
}

// The check: the default user runs without any test; others by bitmap,
// first arguments, key patterns (read/write) and channels.
func TestACLUserChecks(t *testing.T) {
	tb := newTable()
	all, _ := setUser(tb, nil, "default", fields("on nopass ~* &* +@all"))
	if !all.free {
		t.Fatal("+@all ~* &* must need no check")
	}
	u, _ := setUser(tb, nil, "u", fields("on >p %R~r:* ~app:* &news.* -@all +get +set +select|0 +subscribe +psubscribe +publish +@admin -config|set +client -client|kill"))
	if u.free || !u.checkPassword([]byte("p")) || u.checkPassword([]byte("q")) {
		t.Fatal("password")
	}
	check := func(line string, want, wantPos int) {
		t.Helper()
		args := fields(line)
		got, pos, _ := u.canRun(tb, tb.lookup(args[0]), args)
		if got != want || pos != wantPos {
			t.Errorf("%s: %d at %d, want %d at %d", line, got, pos, want, wantPos)
		}
	}
	check("get app:1", aclOK, 0)
	check("get r:1", aclOK, 0)
	check("set r:1 v", aclDeniedKey, 1)
	check("set app:1 v", aclOK, 0)
	check("get other", aclDeniedKey, 1)
	check("del app:1", aclDeniedCmd, 0)
	check("select 0", aclOK, 0)
	check("select 1", aclDeniedCmd, 0)
	check("auth x", aclOK, 0)
	check("subscribe news.a news.b", aclOK, 0)
	check("subscribe news.a sport", aclDeniedChannel, 2)
	check("psubscribe news.*", aclOK, 0)
	check("psubscribe news.a", aclDeniedChannel, 1)
	check("publish sport m", aclDeniedChannel, 1)
	check("config get x", aclOK, 0)
	check("config set x y", aclDeniedCmd, 0)
	check("config nosuch", aclDeniedCmd, 0)      // the container's bit
	check("client setinfo lib-name x", aclOK, 0) // +client
	check("client id", aclOK, 0)
	check("client kill 1.2.3.4:5", aclDeniedCmd, 0)
	dangerous, _ := setUser(tb, nil, "d", fields("on nopass ~* &* +@all -@dangerous"))
	for _, line := range []string{"config set a b", "acl setuser x", "flushall", "client kill 1.2.3.4:5"} {
		args := fields(line)
		if r, _, _ := dangerous.canRun(tb, tb.lookup(args[0]), args); r != aclDeniedCmd {
			t.Errorf("-@dangerous: %s allowed", line)
		}
	}
	for _, line := range []string{"config help", "get k", "client id"} {
		args := fields(line)
		if r, _, _ := dangerous.canRun(tb, tb.lookup(args[0]), args); r != aclOK {
			t.Errorf("-@dangerous: %s refused", line)
		}
	}
}

// Until the node has replayed its log (and so knows its users), an AUTH
// that fails answers LOADING, not WRONGPASS: the user may be in the part
// of the log not applied yet. The open default user serves as before.
func TestAuthWaitsForTheUsers(t *testing.T) {
	var ready atomic.Bool
	cfg := testConfig()
	cfg.UsersReady = ready.Load
	_, addr := serve(t, cfg, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	ask := func(req string) string {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return line
	}
	if got := ask("PING\r\n"); got != "+PONG\r\n" {
		t.Fatalf("PING before the users are known: %q", got)
	}
	if got := ask("AUTH app1 x\r\n"); got != "-LOADING Redis is loading the dataset in memory\r\n" {
		t.Fatalf("AUTH of an unknown user before the users are known: %q", got)
	}
	if got := ask("AUTH default x\r\n"); got != "+OK\r\n" {
		t.Fatalf("AUTH default before the users are known: %q", got)
	}
	ready.Store(true)
	if got := ask("AUTH app1 x\r\n"); got != "-WRONGPASS invalid username-password pair or user is disabled.\r\n" {
		t.Fatalf("AUTH of an unknown user once they are: %q", got)
	}
}

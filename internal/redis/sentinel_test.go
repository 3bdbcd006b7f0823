package redis

import (
	"strconv"
	"strings"
	"testing"
)

// bulks encodes a RESP2 array of bulk strings.
func bulks(items ...string) string {
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(items)) + "\r\n")
	for _, s := range items {
		b.WriteString("$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n")
	}
	return b.String()
}

func cmd(args ...string) string { return bulks(args...) }

func threeNodes() Topology {
	return Topology{Epoch: 7, Self: "127.0.0.1:6380", Leader: "127.0.0.1:6379", Members: []Instance{
		{ID: "n1", Addr: "127.0.0.1:6379", Leader: true},
		{ID: "n2", Addr: "127.0.0.1:6380"},
		{ID: "n3", Addr: "127.0.0.1:6381"},
	}}
}

func TestSentinelCommands(t *testing.T) {
	node := newMemNode()
	node.topo = threeNodes()
	node.role = "slave"
	_, addr := serveNode(t, testConfig(), nil, node)
	c := dial(t, addr)

	c.send(cmd("SENTINEL", "get-master-addr-by-name", "hatcheck"))
	c.expect(bulks("127.0.0.1", "6379"))
	c.send(cmd("sentinel", "GET-MASTER-ADDR-BY-NAME", "other"))
	c.expect("*-1\r\n")

	c.send(cmd("SENTINEL", "masters"))
	c.expect("*1\r\n" + bulks(masterFields("hatcheck", threeNodes())...))
	c.send(cmd("SENTINEL", "master", "hatcheck"))
	c.expect(bulks(masterFields("hatcheck", threeNodes())...))
	c.send(cmd("SENTINEL", "master", "other"))
	c.expect("-ERR No such master with that name\r\n")

	// Sentinels are the other members, by ip:port name.
	c.send(cmd("SENTINEL", "sentinels", "hatcheck"))
	c.expect("*2\r\n" + bulks(sentinelFields(Instance{ID: "n1", Addr: "127.0.0.1:6379"})...) +
		bulks(sentinelFields(Instance{ID: "n3", Addr: "127.0.0.1:6381"})...))
	// Replicas are the members other than the leader; "slaves" is the old name.
	for _, sub := range []string{"replicas", "slaves"} {
		c.send(cmd("SENTINEL", sub, "hatcheck"))
		c.expect("*2\r\n" + bulks(replicaFields(Instance{ID: "n2", Addr: "127.0.0.1:6380"}, threeNodes())...) +
			bulks(replicaFields(Instance{ID: "n3", Addr: "127.0.0.1:6381"}, threeNodes())...))
	}
	c.send(cmd("SENTINEL", "bogus"))
	c.expect("-ERR Unknown sentinel subcommand 'bogus'\r\n")
	c.send(cmd("SENTINEL", "sentinels"))
	c.expect("-ERR wrong number of arguments for 'sentinel|sentinels' command\r\n")

	c.send(cmd("ROLE"))
	c.expect("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:0\r\n")

	// While no leader is known, a client is told to ask another sentinel and
	// the master is reported down.
	noLeader := threeNodes()
	noLeader.Leader = ""
	noLeader.Members[0].Leader = false
	node.setTopology(noLeader)
	c.send(cmd("SENTINEL", "get-master-addr-by-name", "hatcheck"))
	c.expect("-IDONTKNOW I have not enough information to reply. Please ask another Sentinel.\r\n")
	fields := masterFields("hatcheck", noLeader)
	if fields[9] != "master,s_down,o_down" {
		t.Fatalf("flags without a leader: %q", fields[9])
	}
	c.send(cmd("ROLE"))
	c.expect("*5\r\n$5\r\nslave\r\n$0\r\n\r\n:-1\r\n$7\r\nconnect\r\n:0\r\n")
}

func TestSentinelFieldsAreWhatClientsParse(t *testing.T) {
	f := masterFields("hatcheck", threeNodes())
	m := map[string]string{}
	for i := 0; i+1 < len(f); i += 2 {
		m[f[i]] = f[i+1]
	}
	// redis-py converts these to int and checks flags; go-redis and Redis.pm
	// read name, ip and port.
	want := map[string]string{"name": "hatcheck", "ip": "127.0.0.1", "port": "6379", "flags": "master",
		"num-slaves": "2", "num-other-sentinels": "2", "quorum": "2", "config-epoch": "7"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("master field %s = %q, want %q", k, m[k], v)
		}
	}
	if len(m["runid"]) != 40 {
		t.Errorf("runid %q is not 40 hex digits", m["runid"])
	}
}

func TestRoleOnLeaderListsReplicas(t *testing.T) {
	node := newMemNode()
	node.topo = threeNodes()
	_, addr := serveNode(t, testConfig(), nil, node)
	c := dial(t, addr)
	c.send(cmd("ROLE"))
	c.expect("*3\r\n$6\r\nmaster\r\n:0\r\n*2\r\n" + bulks("127.0.0.1", "6380", "0") + bulks("127.0.0.1", "6381", "0"))
}

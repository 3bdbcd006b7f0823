package redis

import (
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/hatcheck/hatcheck/internal/resp"
)

// Sentinel-compatible discovery. Every node answers the SENTINEL commands
// that Sentinel-aware clients send, for one service name: the "master" is
// the Raft leader, the "replicas" are the other members, and every member
// is also a "sentinel" (clients configured with any node addresses as
// sentinels find the others through SENTINEL sentinels).

// Topology is the cluster as discovery commands report it.
type Topology struct {
	Epoch   uint64     // the Raft term, reported as config-epoch
	Self    string     // this node's Redis address
	Leader  string     // the leader's Redis address; "" while none is known
	Members []Instance // every member whose Redis address is known, this node included
}

// Instance is one member.
type Instance struct {
	ID     string
	Addr   string // Redis address, host:port
	Leader bool
}

// discoveryTimeout bounds how long a discovery command waits for other
// members to describe themselves.
const discoveryTimeout = time.Second

// Sentinel discovery. redis-server has no SENTINEL command outside
// Sentinel mode, so COMMAND INFO reports it without flags.
func sentinelCommands() []*cmdSpec {
	return []*cmdSpec{{name: "sentinel", arity: -2, run: runSentinel}}
}

// Replicas are the members other than the leader.
func (t Topology) Replicas() []Instance {
	var out []Instance
	for _, m := range t.Members {
		if !m.Leader {
			out = append(out, m)
		}
	}
	return out
}

func runSentinel(c *conn, a [][]byte) {
	c.withNodeView(func(v nodeView) { sentinelReply(c, a, v.t) })
}

// sentinelReply answers a SENTINEL command from the cluster's topology.
func sentinelReply(c *conn, a [][]byte, t Topology) {
	sub := strings.ToLower(string(a[1]))
	name := c.srv.cfg.SentinelName
	// known checks the <master name> argument of the subcommands that take
	// one; unknown names get Sentinel's reply for them (ifUnknown).
	known := func(ifUnknown func()) bool {
		if len(a) != 3 {
			c.out = resp.AppendError(c.out, "ERR wrong number of arguments for 'sentinel|"+sub+"' command")
			return false
		}
		if string(a[2]) != name {
			ifUnknown()
			return false
		}
		return true
	}
	noSuchMaster := func() { c.out = resp.AppendError(c.out, "ERR No such master with that name") }
	switch sub {
	case "get-master-addr-by-name":
		if !known(func() { c.appendNullArray() }) {
			return
		}
		if t.Leader == "" {
			c.out = resp.AppendError(c.out, "IDONTKNOW I have not enough information to reply. Please ask another Sentinel.")
			return
		}
		host, port := splitHostPort(t.Leader)
		c.out = resp.AppendArray(c.out, 2)
		c.out = resp.AppendBulkString(c.out, host)
		c.out = resp.AppendBulkString(c.out, strconv.Itoa(port))
	case "masters":
		if len(a) != 2 {
			c.out = resp.AppendError(c.out, "ERR wrong number of arguments for 'sentinel|masters' command")
			return
		}
		c.out = resp.AppendArray(c.out, 1)
		c.out = appendFields(c.out, masterFields(name, t))
	case "master":
		if known(noSuchMaster) {
			c.out = appendFields(c.out, masterFields(name, t))
		}
	case "replicas", "slaves":
		if !known(noSuchMaster) {
			return
		}
		var rows [][]string
		for _, m := range t.Replicas() {
			rows = append(rows, replicaFields(m, t))
		}
		c.out = appendRows(c.out, rows)
	case "sentinels":
		if !known(noSuchMaster) {
			return
		}
		var rows [][]string
		for _, m := range t.Members {
			if m.Addr != t.Self {
				rows = append(rows, sentinelFields(m))
			}
		}
		c.out = appendRows(c.out, rows)
	case "myid":
		c.out = resp.AppendBulkString(c.out, runID(t.Self))
	default:
		c.out = resp.AppendError(c.out, "ERR Unknown sentinel subcommand '"+clip(a[1])+"'")
	}
}

// masterFields describes the leader as Sentinel describes a master. While
// no leader is known the master is reported down (s_down, o_down) at the
// last address, like a Sentinel during a failover.
func masterFields(name string, t Topology) []string {
	addr, flags := t.Leader, "master"
	if addr == "" {
		flags = "master,s_down,o_down"
	}
	host, port := splitHostPort(addr)
	replicas := len(t.Replicas())
	return []string{
		"name", name, "ip", host, "port", strconv.Itoa(port), "runid", runID(addr), "flags", flags,
		"link-pending-commands", "0", "link-refcount", "1", "last-ping-sent", "0",
		"last-ok-ping-reply", "0", "last-ping-reply", "0", "down-after-milliseconds", "1000",
		"info-refresh", "0", "role-reported", "master", "role-reported-time", "0",
		"config-epoch", strconv.FormatUint(t.Epoch, 10), "num-slaves", strconv.Itoa(replicas),
		"num-other-sentinels", strconv.Itoa(max(len(t.Members)-1, 0)),
		"quorum", strconv.Itoa(len(t.Members)/2 + 1), "failover-timeout", "5000", "parallel-syncs", "1",
	}
}

func replicaFields(m Instance, t Topology) []string {
	host, port := splitHostPort(m.Addr)
	lhost, lport := splitHostPort(t.Leader)
	status := "ok"
	if t.Leader == "" {
		status = "err"
	}
	return []string{
		"name", m.Addr, "ip", host, "port", strconv.Itoa(port), "runid", runID(m.Addr), "flags", "slave",
		"link-pending-commands", "0", "link-refcount", "1", "last-ping-sent", "0",
		"last-ok-ping-reply", "0", "last-ping-reply", "0", "down-after-milliseconds", "1000",
		"info-refresh", "0", "role-reported", "slave", "role-reported-time", "0",
		"master-link-down-time", "0", "master-link-status", status,
		"master-host", lhost, "master-port", strconv.Itoa(lport),
		"slave-priority", "100", "slave-repl-offset", "0", "replica-announced", "1",
	}
}

func sentinelFields(m Instance) []string {
	host, port := splitHostPort(m.Addr)
	return []string{
		"name", m.Addr, "ip", host, "port", strconv.Itoa(port), "runid", runID(m.Addr), "flags", "sentinel",
		"link-pending-commands", "0", "link-refcount", "1", "last-ping-sent", "0",
		"last-ok-ping-reply", "0", "last-ping-reply", "0", "down-after-milliseconds", "1000",
		"last-hello-message", "0", "voted-leader", "?", "voted-leader-epoch", "0",
	}
}

// runID is a stable 40-hex-digit id for an instance, as Sentinel reports
// run ids.
func runID(addr string) string {
	sum := sha1.Sum([]byte(addr))
	return hex.EncodeToString(sum[:])
}

func appendFields(dst []byte, kv []string) []byte {
	dst = resp.AppendArray(dst, len(kv))
	for _, s := range kv {
		dst = resp.AppendBulkString(dst, s)
	}
	return dst
}

func appendRows(dst []byte, rows [][]string) []byte {
	dst = resp.AppendArray(dst, len(rows))
	for _, r := range rows {
		dst = appendFields(dst, r)
	}
	return dst
}

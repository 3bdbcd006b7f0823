package redis

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
	"github.com/hatcheck/hatcheck/internal/units"
)

// Server commands.
func serverCommands() []*cmdSpec {
	return []*cmdSpec{
		{name: "info", arity: -1, flags: flagLoading | flagStale, acl: aclDangerous, tips: []string{"nondeterministic_output", policyAllShards, "response_policy:special"}, run: runInfo},
		{name: "role", arity: 1, flags: flagNoScript | flagLoading | flagStale | flagFast, acl: aclAdmin | aclDangerous, run: runRole},
		{name: "wait", arity: 3, flags: flagNoScript, acl: aclConnection, tips: []string{policyAllShards, "response_policy:agg_min"}, run: runWait},
		{name: "time", arity: 1, flags: flagLoading | flagStale | flagFast, tips: tipsNondeterministic, run: runTime},
		{name: "config", arity: -2, run: runConfig},
		{name: "command", arity: -1, flags: flagLoading | flagStale, acl: aclConnection, tips: tipsOutputOrder, run: runCommand},
		{name: "memory", arity: -2, run: runMemory},
		{name: "slowlog", arity: -2, run: runSlowlog},
	}
}

// nodeView is what the discovery commands report: the node's state and
// the members' Redis addresses, which may take asking them.
type nodeView struct {
	info NodeInfo
	t    Topology
}

// withNodeView runs k with the node's view: at once when the node knows
// every member's address, else after fetching it off the connection's
// loop (the first time a member is asked, or after it failed to answer).
func (c *conn) withNodeView(k func(v nodeView)) {
	if info, t, ok := c.srv.node.ViewNow(); ok {
		k(nodeView{info: info, t: t})
		return
	}
	offload(c, func() nodeView {
		ctx, cancel := context.WithTimeout(context.Background(), discoveryTimeout)
		defer cancel()
		return nodeView{info: c.srv.node.Info(), t: c.srv.node.Topology(ctx)}
	}, k)
}

// withFullNodeView is withNodeView always asked off the connection's
// loop, with Info's details (the replicas' offsets).
func (c *conn) withFullNodeView(k func(v nodeView)) {
	offload(c, func() nodeView {
		info := c.srv.node.Info()
		if _, t, ok := c.srv.node.ViewNow(); ok {
			return nodeView{info: info, t: t}
		}
		ctx, cancel := context.WithTimeout(context.Background(), discoveryTimeout)
		defer cancel()
		return nodeView{info: info, t: c.srv.node.Topology(ctx)}
	}, k)
}

func runRole(c *conn, _ [][]byte) {
	c.withNodeView(func(v nodeView) { roleReply(c, v) })
}

func roleReply(c *conn, v nodeView) {
	t := v.t
	if v.info.Role == "master" {
		c.out = resp.AppendArray(c.out, 3)
		c.out = resp.AppendBulkString(c.out, "master")
		c.out = resp.AppendInt(c.out, 0)
		replicas := t.Replicas()
		c.out = resp.AppendArray(c.out, len(replicas))
		for _, m := range replicas {
			host, port := splitHostPort(m.Addr)
			c.out = resp.AppendArray(c.out, 3)
			c.out = resp.AppendBulkString(c.out, host)
			c.out = resp.AppendBulkString(c.out, strconv.Itoa(port))
			c.out = resp.AppendBulkString(c.out, "0")
		}
		return
	}
	host, port := splitHostPort(t.Leader)
	state := "connected"
	if t.Leader == "" {
		state, port = "connect", -1
	}
	c.out = resp.AppendArray(c.out, 5)
	c.out = resp.AppendBulkString(c.out, "slave")
	c.out = resp.AppendBulkString(c.out, host)
	c.out = resp.AppendInt(c.out, int64(port))
	c.out = resp.AppendBulkString(c.out, state)
	c.out = resp.AppendInt(c.out, 0)
}

func splitHostPort(addr string) (string, int) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr, 0
	}
	p, _ := strconv.Atoi(addr[i+1:])
	return addr[:i], p
}

// infoSections lists INFO's sections in redis-server's order; "default"
// and "all" select all of them here, since none is expensive.
var infoSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "cluster", "keyspace"}

var sectionTitles = map[string]string{
	"server": "Server", "clients": "Clients", "memory": "Memory", "persistence": "Persistence",
	"stats": "Stats", "replication": "Replication", "cpu": "CPU", "cluster": "Cluster", "keyspace": "Keyspace",
}

func runInfo(c *conn, a [][]byte) {
	want := map[string]bool{}
	for _, s := range a[1:] {
		want[strings.ToLower(string(s))] = true
	}
	all := len(want) == 0 || want["all"] || want["default"] || want["everything"]
	view := c.withNodeView
	if all || want["replication"] {
		// The replicas' offsets take asking the Raft loop: never on the
		// connection's loop.
		view = c.withFullNodeView
	}
	view(func(v nodeView) {
		var b strings.Builder
		for _, sec := range infoSections {
			if !all && !want[sec] {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("\r\n")
			}
			c.infoSection(&b, sec, v)
		}
		c.appendVerbatim(b.String())
	})
}

func (c *conn) infoSection(b *strings.Builder, sec string, v nodeView) {
	s := c.srv
	info := v.info
	line := func(k string, v any) { fmt.Fprintf(b, "%s:%v\r\n", k, v) }
	b.WriteString("# " + sectionTitles[sec] + "\r\n")
	switch sec {
	case "server":
		line("redis_version", RedisVersion)
		line("hatcheck_version", s.cfg.Version)
		line("redis_mode", "standalone")
		line("os", runtime.GOOS+" "+runtime.GOARCH)
		line("arch_bits", strconv.IntSize)
		line("go_version", runtime.Version())
		line("process_id", os.Getpid())
		line("tcp_port", c.localPort())
		line("uptime_in_seconds", int(time.Since(s.started).Seconds()))
		line("uptime_in_days", int(time.Since(s.started).Hours()/24))
	case "clients":
		line("connected_clients", s.Clients())
		line("cluster_connections", 0)
		line("maxclients", s.maxClients.Load())
		line("client_recent_max_input_buffer", 0)
		line("client_recent_max_output_buffer", 0)
		// Waiting in a blocking command, or held by CLIENT PAUSE (redis
		// counts both).
		line("blocked_clients", s.blocking.n.Load()+int64(s.pause.heldCount()))
		line("tracking_clients", s.track.clients.Load())
		line("clients_in_timeout_table", 0)
	case "memory":
		max, policy := s.node.MaxMemory()
		line("used_memory", info.UsedMemory)
		line("used_memory_human", humanBytes(info.UsedMemory))
		line("maxmemory", max)
		line("maxmemory_human", humanBytes(max))
		line("maxmemory_policy", policy)
	case "persistence":
		// Every acknowledged write is in the fsync'd Raft log.
		line("loading", 0)
		line("async_loading", 0)
		line("rdb_changes_since_last_save", 0)
		line("rdb_bgsave_in_progress", 0)
		line("aof_enabled", 1)
		line("aof_rewrite_in_progress", 0)
	case "stats":
		r := &s.stats.rates
		line("total_connections_received", s.conns.Accepted())
		line("total_commands_processed", s.totalCmds.Load())
		line("instantaneous_ops_per_sec", int64(r.rate(0)+0.5))
		line("total_net_input_bytes", s.stats.netIn.Load())
		line("total_net_output_bytes", s.stats.netOut.Load())
		line("instantaneous_input_kbps", infoKbps(r.rate(1)))
		line("instantaneous_output_kbps", infoKbps(r.rate(2)))
		line("rejected_connections", s.conns.Rejected())
		line("expired_keys", info.Expired)
		line("evicted_keys", info.Evicted)
		line("keyspace_hits", s.stats.hits.Load())
		line("keyspace_misses", s.stats.misses.Load())
		channels, patterns := s.hub.totals()
		line("pubsub_channels", channels)
		line("pubsub_patterns", patterns)
		keys, items, prefixes := s.track.totals()
		line("tracking_total_keys", keys)
		line("tracking_total_items", items)
		line("tracking_total_prefixes", prefixes)
	case "replication":
		line("role", info.Role)
		t := v.t
		if info.Role == "master" {
			replicas := t.Replicas()
			line("connected_slaves", len(replicas))
			for i, m := range replicas {
				// A replica's offset is how much of the log it holds
				// (Raft's match index), known when INFO asked for it.
				host, port := splitHostPort(m.Addr)
				line("slave"+strconv.Itoa(i), fmt.Sprintf("ip=%s,port=%d,state=online,offset=%d,lag=0", host, port, info.ReplicaOffsets[m.ID]))
			}
		} else {
			host, port := splitHostPort(t.Leader)
			status := "up"
			if t.Leader == "" {
				status = "down"
			}
			line("master_host", host)
			line("master_port", port)
			line("master_link_status", status)
			line("master_last_io_seconds_ago", 0)
			line("master_sync_in_progress", 0)
			line("slave_repl_offset", info.ReplOffset)
			line("slave_read_only", 0)
		}
		line("master_failover_state", "no-failover")
		// The log's applied index on this node: on the leader what it has
		// applied, on a follower how far it has caught up.
		line("master_repl_offset", info.ReplOffset)
	case "cpu":
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		line("used_cpu_sys", fmt.Sprintf("%.6f", time.Duration(ru.Stime.Nano()).Seconds()))
		line("used_cpu_user", fmt.Sprintf("%.6f", time.Duration(ru.Utime.Nano()).Seconds()))
	case "cluster":
		line("cluster_enabled", 0)
	case "keyspace":
		for db, n := range info.Keys {
			if n > 0 {
				var ttl int64
				if db < len(info.AvgTTL) {
					ttl = info.AvgTTL[db]
				}
				fmt.Fprintf(b, "db%d:keys=%d,expires=%d,avg_ttl=%d\r\n", db, n, info.Volatile[db], ttl)
			}
		}
	}
}

func runTime(c *conn, _ [][]byte) {
	now := time.Now()
	c.out = resp.AppendArray(c.out, 2)
	c.out = resp.AppendBulkString(c.out, strconv.FormatInt(now.Unix(), 10))
	c.out = resp.AppendBulkString(c.out, strconv.Itoa(now.Nanosecond()/1000))
}

func (c *conn) localPort() int {
	_, p := splitHostPort(c.link.LocalAddr().String())
	return p
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

// configParams are the parameters CONFIG GET reports, in redis's naming.
func (c *conn) configParams() map[string]string {
	s := c.srv
	max, policy := s.node.MaxMemory()
	params := map[string]string{
		"maxmemory":                 strconv.FormatInt(max, 10),
		"maxmemory-policy":          policy.String(),
		"maxmemory-samples":         "5",
		"notify-keyspace-events":    formatNotify(int(s.notify.Load())),
		"databases":                 strconv.Itoa(s.cfg.Databases),
		"timeout":                   strconv.FormatInt(s.timeout.Load()/int64(time.Second), 10),
		"maxclients":                strconv.FormatInt(s.maxClients.Load(), 10),
		"proto-max-bulk-len":        strconv.FormatInt(s.cfg.MaxBulk, 10),
		"client-query-buffer-limit": strconv.Itoa(s.cfg.QueryBufLimit),
		"port":                      strconv.Itoa(c.localPort()),
		"appendonly":                "yes",
		"appendfsync":               "always",
		"save":                      "",
		"protected-mode":            yesNo(s.DefaultUserOpen()),
		"cluster-enabled":           "no",
		"slowlog-log-slower-than":   strconv.FormatInt(s.slowlogSlower.Load(), 10),
		"slowlog-max-len":           strconv.FormatInt(s.slowlogMaxLen.Load(), 10),
	}
	for _, p := range encodingParams {
		v := p.def
		if got, ok := s.encodings.Load(p.name); ok {
			v = got.(string)
		}
		params[p.name] = v
		if p.alias != "" {
			params[p.alias] = v
		}
	}
	return params
}

// encodingParam is one of redis's encoding thresholds (and its older
// name). CONFIG SET accepts them with redis's checks and CONFIG GET
// reports them, so that clients and tools that tune them keep working,
// but they change nothing: hatcheck's values have no listpack, intset or
// quicklist layout, and OBJECT ENCODING reports what redis's defaults
// would give (see docs/COMPATIBILITY.md).
type encodingParam struct {
	name, alias string
	min, max    int64
	memory      bool // a memory value ("1k"), not a plain integer
	def         string
}

// encodingParams are redis 7.0's, and 7.2's set-max-listpack-*, which
// clients written for 7.2 set.
var encodingParams = []encodingParam{
	{"hash-max-listpack-entries", "hash-max-ziplist-entries", 0, math.MaxInt64, false, "512"},
	{"hash-max-listpack-value", "hash-max-ziplist-value", 0, math.MaxInt64, true, "64"},
	{"set-max-intset-entries", "", 0, math.MaxInt64, false, "512"},
	{"set-max-listpack-entries", "", 0, math.MaxInt64, false, "128"},
	{"set-max-listpack-value", "", 0, math.MaxInt64, true, "64"},
	{"zset-max-listpack-entries", "zset-max-ziplist-entries", 0, math.MaxInt64, false, "128"},
	{"zset-max-listpack-value", "zset-max-ziplist-value", 0, math.MaxInt64, true, "64"},
	{"list-max-listpack-size", "list-max-ziplist-size", math.MinInt32, math.MaxInt32, false, "-2"},
	{"list-compress-depth", "", 0, math.MaxInt32, false, "0"},
}

// encodingParamOf finds an encoding setting by either of its names.
func encodingParamOf(name string) (encodingParam, bool) {
	for _, p := range encodingParams {
		if name == p.name || (p.alias != "" && name == p.alias) {
			return p, true
		}
	}
	return encodingParam{}, false
}

// parse checks a value as redis's CONFIG SET does and returns it as
// CONFIG GET will report it, or the reason it is refused.
func (p encodingParam) parse(val string) (string, string) {
	var n int64
	if p.memory {
		m, err := units.ParseSize(val)
		if err != nil {
			return "", "argument must be a memory value"
		}
		n = m
	} else {
		m, ok := parseInt([]byte(val))
		if !ok {
			return "", "argument couldn't be parsed into an integer"
		}
		n = m
	}
	if n < p.min || n > p.max {
		return "", fmt.Sprintf("argument must be between %d and %d inclusive", p.min, p.max)
	}
	return strconv.FormatInt(n, 10), ""
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func runConfig(c *conn, a [][]byte) {
	sub := strings.ToLower(string(a[1]))
	if _, ok := configSubcommands[sub]; ok {
		c.lastCmd.Store(subcommandName("config", sub))
	}
	switch sub {
	case "get":
		if len(a) < 3 {
			c.out = resp.AppendError(c.out, arityError("config|get"))
			return
		}
		params := c.configParams()
		names := make([]string, 0, len(params))
		for n := range params {
			for _, p := range a[2:] {
				if command.Match([]byte(strings.ToLower(string(p))), []byte(n)) {
					names = append(names, n)
					break
				}
			}
		}
		slices.Sort(names)
		c.appendMap(len(names))
		for _, n := range names {
			c.out = resp.AppendBulkString(c.out, n)
			c.out = resp.AppendBulkString(c.out, params[n])
		}
	case "set":
		if len(a) < 4 || len(a)%2 != 0 {
			c.out = resp.AppendError(c.out, arityError("config|set"))
			return
		}
		for i := 2; i < len(a); i += 2 {
			if msg := c.configCheck(strings.ToLower(string(a[i])), string(a[i+1])); msg != "" {
				c.out = resp.AppendError(c.out, msg)
				return
			}
		}
		for i := 2; i < len(a); i += 2 {
			c.configSet(strings.ToLower(string(a[i])), string(a[i+1]))
		}
		c.out = resp.AppendSimple(c.out, "OK")
	case "resetstat":
		// The counters INFO's stats report, as redis resets them.
		s := c.srv
		s.totalCmds.Store(0)
		s.stats.hits.Store(0)
		s.stats.misses.Store(0)
		s.stats.netIn.Store(0)
		s.stats.netOut.Store(0)
		c.out = resp.AppendSimple(c.out, "OK")
	case "rewrite":
		c.out = resp.AppendError(c.out, "ERR The server is running without a config file")
	default:
		c.out = resp.AppendError(c.out, unknownSubcommand(a[1], "CONFIG"))
	}
}

// configSubcommands are CONFIG's subcommands (CLIENT LIST names them).
var configSubcommands = map[string]bool{"get": true, "set": true, "resetstat": true, "rewrite": true}

// configCheck validates a CONFIG SET pair without applying it, so that a
// multi-parameter CONFIG SET applies all or nothing.
func (c *conn) configCheck(name, val string) string {
	bad := func(reason string) string {
		return "ERR CONFIG SET failed (possibly related to argument '" + name + "') - " + reason
	}
	switch name {
	case "maxmemory":
		if _, err := units.ParseSize(val); err != nil {
			return bad("argument must be a memory value")
		}
	case "maxmemory-policy":
		if _, ok := command.ParsePolicy(strings.ToLower(val)); !ok {
			// redis lists eight policies here; hatcheck has these four.
			return bad("argument(s) must be one of the following: volatile-lru, volatile-ttl, allkeys-lru, noeviction")
		}
	case "timeout", "maxclients":
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return bad("argument couldn't be parsed into an integer")
		}
		if lo := map[string]int64{"timeout": 0, "maxclients": 1}[name]; n < lo || n > math.MaxInt32 {
			return bad(fmt.Sprintf("argument must be between %d and %d inclusive", lo, math.MaxInt32))
		}
	case "slowlog-log-slower-than", "slowlog-max-len":
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return bad("argument couldn't be parsed into an integer")
		}
		if lo := map[string]int64{"slowlog-log-slower-than": -1, "slowlog-max-len": 0}[name]; n < lo {
			return bad(fmt.Sprintf("argument must be between %d and %d inclusive", lo, int64(math.MaxInt64)))
		}
	case "notify-keyspace-events":
		if _, ok := parseNotify(val); !ok {
			return bad("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
		}
	default:
		p, ok := encodingParamOf(name)
		if !ok {
			return "ERR Unknown option or number of arguments for CONFIG SET - '" + name + "'"
		}
		if _, reason := p.parse(val); reason != "" {
			return bad(reason)
		}
	}
	return ""
}

func (c *conn) configSet(name, val string) {
	s := c.srv
	switch name {
	case "maxmemory":
		n, _ := units.ParseSize(val)
		_, p := s.node.MaxMemory()
		s.node.SetMaxMemory(n, p)
	case "maxmemory-policy":
		p, _ := command.ParsePolicy(strings.ToLower(val))
		m, _ := s.node.MaxMemory()
		s.node.SetMaxMemory(m, p)
	case "timeout":
		n, _ := strconv.ParseInt(val, 10, 64)
		s.timeout.Store(n * int64(time.Second))
	case "maxclients":
		n, _ := strconv.ParseInt(val, 10, 64)
		s.maxClients.Store(n)
	case "notify-keyspace-events":
		f, _ := parseNotify(val)
		s.notify.Store(int64(f))
	case "slowlog-log-slower-than":
		n, _ := strconv.ParseInt(val, 10, 64)
		s.slowlogSlower.Store(n)
	case "slowlog-max-len":
		// Applied to the log when the next entry is added, as in redis.
		n, _ := strconv.ParseInt(val, 10, 64)
		s.slowlogMaxLen.Store(n)
	default:
		if p, ok := encodingParamOf(name); ok {
			v, _ := p.parse(val)
			s.encodings.Store(p.name, v)
		}
	}
}

// runCommand answers COMMAND from the table: COUNT, INFO, DOCS, GETKEYS and
// LIST, in redis 7.0's shape (see appendCommandInfo for what INFO leaves
// out).
func runCommand(c *conn, a [][]byte) {
	t := c.srv.cmds
	if len(a) == 1 {
		c.appendCommandInfos(t.names)
		return
	}
	sub, ok := c.subcommand(a, "command", commandSubcommands)
	if !ok {
		return
	}
	switch sub {
	case "count":
		c.out = resp.AppendInt(c.out, int64(len(t.names)))
	case "info":
		names := t.names
		if len(a) > 2 {
			names = make([]string, len(a)-2)
			for i, n := range a[2:] {
				names[i] = string(n)
			}
		}
		c.appendCommandInfos(names)
	case "docs":
		// Every command's docs are an empty map: clients use COMMAND DOCS
		// for help texts only, and redis's are large. Unknown names are
		// left out, as redis-server does.
		var specs []*cmdSpec
		if len(a) == 2 {
			for _, n := range t.names {
				specs = append(specs, t.byName[n])
			}
		}
		for _, n := range a[2:] {
			if s := t.lookup(n); s != nil {
				specs = append(specs, s)
			}
		}
		c.appendMap(len(specs))
		for _, s := range specs {
			c.out = resp.AppendBulkString(c.out, s.name)
			c.appendMap(0)
		}
	case "getkeys":
		s := t.lookup(a[2])
		switch {
		case s == nil:
			c.out = resp.AppendError(c.out, "ERR Invalid command specified")
		case !s.hasKeys():
			c.out = resp.AppendError(c.out, "ERR The command has no key arguments")
		case !s.arityOK(len(a) - 2):
			c.out = resp.AppendError(c.out, "ERR Invalid number of arguments specified for command")
		default:
			keys, ok := s.keysIn(a[2:])
			if !ok && s.flags&flagNoMandatoryKeys == 0 {
				c.out = resp.AppendError(c.out, "ERR Invalid arguments specified for command")
				return
			}
			c.out = resp.AppendArray(c.out, len(keys))
			for _, k := range keys {
				c.out = resp.AppendBulk(c.out, k)
			}
		}
	case "list":
		c.commandList(a[2:])
	}
}

// commandSubcommands are COMMAND's subcommands with their arities.
var commandSubcommands = map[string]int{"count": 2, "info": -2, "docs": -2, "getkeys": -4, "list": -2}

// commandList answers COMMAND LIST [FILTERBY MODULE name|ACLCAT cat|PATTERN p].
func (c *conn) commandList(filter [][]byte) {
	t := c.srv.cmds
	keep := func(*cmdSpec) bool { return true }
	switch {
	case len(filter) == 0:
	case len(filter) == 3 && eq(filter[0], "filterby") && eq(filter[1], "module"):
		keep = func(*cmdSpec) bool { return false } // no modules
	case len(filter) == 3 && eq(filter[0], "filterby") && eq(filter[1], "aclcat"):
		cat := aclCats(0)
		for i, n := range aclNames {
			if eq(filter[2], n[1:]) {
				cat = 1 << i
			}
		}
		keep = func(s *cmdSpec) bool { return s.categories()&cat != 0 }
	case len(filter) == 3 && eq(filter[0], "filterby") && eq(filter[1], "pattern"):
		pattern := bytes.ToLower(filter[2])
		keep = func(s *cmdSpec) bool { return command.Match(pattern, []byte(s.name)) }
	default:
		c.out = resp.AppendError(c.out, errSyntax)
		return
	}
	var names []string
	for _, n := range t.names {
		if keep(t.byName[n]) {
			names = append(names, n)
		}
	}
	c.out = resp.AppendArray(c.out, len(names))
	for _, n := range names {
		c.out = resp.AppendBulkString(c.out, n)
	}
}

// appendCommandInfos writes COMMAND INFO's reply for names: each command's
// description, or a null for a name that is none.
func (c *conn) appendCommandInfos(names []string) {
	c.out = resp.AppendArray(c.out, len(names))
	for _, n := range names {
		if s := c.srv.cmds.lookup([]byte(n)); s != nil {
			c.out = appendCommandInfo(c.out, c.protocol(), s)
		} else {
			c.appendNull()
		}
	}
}

// appendCommandInfo writes redis 7.0's ten-element command description:
// name, arity, flags, first key, last key, key step, ACL categories, tips,
// key specifications and subcommands. Everything but the last two is
// redis-server's own for the same command (checked against a recording of
// it, testdata/command_info.golden). Key specifications are left empty:
// the first/last/step triple says the same for every command hatcheck has,
// and EVAL's movable keys are flagged movablekeys, so clients ask COMMAND
// GETKEYS. Subcommands are left empty: clients look up commands, not
// subcommands, by name. In RESP3 the flags, categories, tips, key
// specifications and subcommands are sets, as redis-server 7.0 sends them.
func appendCommandInfo(out []byte, proto int, s *cmdSpec) []byte {
	set := resp.AppendArray
	if proto == 3 {
		set = resp.AppendSet
	}
	out = resp.AppendArray(out, 10)
	out = resp.AppendBulkString(out, s.name)
	out = resp.AppendInt(out, int64(s.arity))
	out = appendBitNames(out, set, uint32(s.flags), flagNames)
	out = resp.AppendInt(out, int64(s.keys.first))
	out = resp.AppendInt(out, int64(s.keys.last))
	out = resp.AppendInt(out, int64(s.keys.step))
	out = appendBitNames(out, set, uint32(s.categories()), aclNames)
	out = set(out, len(s.tips))
	for _, tip := range s.tips {
		out = resp.AppendBulkString(out, tip)
	}
	out = set(out, 0)  // key specifications
	return set(out, 0) // subcommands
}

// appendBitNames writes the names of the bits set in v as a collection
// (header: an array or a set) of status replies, in bit order.
func appendBitNames(out []byte, header func([]byte, int) []byte, v uint32, names []string) []byte {
	n := 0
	for i := range names {
		if v&(1<<i) != 0 {
			n++
		}
	}
	out = header(out, n)
	for i, name := range names {
		if v&(1<<i) != 0 {
			out = resp.AppendSimple(out, name)
		}
	}
	return out
}

// replicaWaiter is the node's side of WAIT (cluster.Node.WaitReplicas): a
// node without it has no replicas.
type replicaWaiter interface {
	WaitReplicas(ctx context.Context, want int) (int, error)
}

// runWait is WAIT numreplicas timeout: how many voters other than the
// leader have applied every write acknowledged before it, waiting up to
// timeout ms (0: as long as it takes) for numreplicas of them. Inside
// MULTI it counts without waiting, as redis does.
func runWait(c *conn, a [][]byte) {
	want, ok := parseInt(a[1])
	if !ok {
		c.out = resp.AppendError(c.out, errNotInteger)
		return
	}
	ms, ok := parseInt(a[2])
	switch {
	case !ok:
		c.out = resp.AppendError(c.out, "ERR timeout is not an integer or out of range")
		return
	case ms < 0:
		c.out = resp.AppendError(c.out, "ERR timeout is negative")
		return
	case ms > int64(maxBlock/time.Millisecond):
		ms = 0 // longer than any wait: as long as it takes
	}
	if c.inExec {
		want = math.MinInt64
	}
	offload(c, func() int64 {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if ms > 0 {
			ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		}
		defer cancel()
		w, ok := c.srv.node.(replicaWaiter)
		if !ok {
			if want > 0 {
				<-ctx.Done()
			}
			return 0
		}
		n, _ := w.WaitReplicas(ctx, int(max(min(want, math.MaxInt32), math.MinInt32)))
		return int64(n)
	}, func(n int64) { c.out = resp.AppendInt(c.out, n) })
}

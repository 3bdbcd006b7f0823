package redis

import (
	"strings"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// Streams, without consumer groups (XGROUP, XREADGROUP, XACK, XPENDING,
// XCLAIM, XAUTOCLAIM and XINFO GROUPS/CONSUMERS are unknown). The
// arguments after the key go to the executor as sent; it parses them in
// redis's order (see command/streams.go), so a request with two faults
// gets redis-server's error, also inside MULTI.
func streamCommands() []*cmdSpec {
	const w, r, acl = flagWrite, flagReadOnly, aclStream
	return []*cmdSpec{
		{name: "xadd", arity: -5, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, tips: tipsNondeterministic, build: buildKeyValues(command.OpXAdd)},
		{name: "xtrim", arity: -4, flags: w, acl: acl, keys: oneKey, tips: tipsNondeterministic, build: buildOneKey(command.OpXTrim)},
		{name: "xdel", arity: -3, flags: w | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpXDel)},
		{name: "xsetid", arity: -3, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpXSetID)},
		{name: "xlen", arity: 2, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpXLen)},
		{name: "xrange", arity: -4, flags: r, acl: acl, keys: oneKey, build: buildOneKey(command.OpXRange)},
		{name: "xrevrange", arity: -4, flags: r, acl: acl, keys: oneKey, build: buildXRevRange},
		{name: "xread", arity: -4, flags: r | flagBlocking | flagMovableKeys, acl: acl, keysOf: xreadKeys, build: buildXRead, reply: replyXRead, wait: xreadWait},
		{name: "xinfo", arity: -2, build: buildXInfo, reply: replyXInfo},
	}
}

func buildXRevRange(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpXRange, a[1], a[2:]...)
	cmd.Flags = command.FlagRev
	return cmd, c.keyCheck(a[1])
}

// xreadKeys finds XREAD's keys: the first half of what follows STREAMS.
func xreadKeys(a [][]byte) ([][]byte, bool) {
	x, err := command.ParseXRead(a[1:])
	if err != nil {
		return nil, false
	}
	return x.Keys, true
}

func buildXRead(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpXRead, nil, a[1:]...)
	if c.srv.node == nil { // a script's redis.call: no BLOCK
		if _, err := command.ParseXReadInScript(string(a[0]), a[1:]); err != nil {
			if msg := errorText(err, "xread"); strings.Contains(msg, "BLOCK option") {
				return cmd, msg
			}
		}
	}
	if x, err := command.ParseXRead(a[1:]); err == nil {
		return cmd, c.keyCheck(x.Keys...)
	}
	return cmd, ""
}

// replyXRead frames XREAD's [key, entries] pairs: an array of pairs in
// RESP2, a map in RESP3.
func replyXRead(c *conn, r command.Result) {
	if r.Kind != command.KindArray || (len(r.Array) == 0 && r.Int == -1) || !c.resp3() {
		c.out = appendReply(c.out, r, c.protocol(), shapeArray)
		return
	}
	c.out = resp.AppendMap(c.out, len(r.Array))
	for _, kv := range r.Array {
		c.out = appendReply(c.out, kv.Array[0], 3, shapeArray)
		c.out = appendReply(c.out, kv.Array[1], 3, shapeArray)
	}
}

// xinfoArities are XINFO's subcommands and their arities.
var xinfoArities = map[string]int{"help": 2, "stream": -3, "groups": 3, "consumers": 4}

// buildXInfo builds XINFO's subcommands as one read of the key; HELP
// reads nothing, and replyXInfo writes its text.
func buildXInfo(c *conn, a [][]byte) (command.Cmd, string) {
	sub := strings.ToLower(string(a[1]))
	arity, ok := xinfoArities[sub]
	switch {
	case !ok:
		return command.Cmd{}, unknownSubcommand(a[1], "XINFO")
	case !arityOK(arity, len(a)):
		return command.Cmd{}, arityError("xinfo|" + sub)
	case sub == "help":
		return c.cmd(command.OpXInfo, nil, a[1]), ""
	}
	return c.cmd(command.OpXInfo, a[2], append([][]byte{a[1]}, a[3:]...)...), c.keyCheck(a[2])
}

// replyXInfo answers XINFO HELP (the executor's OK), and the others as
// their results (STREAM's a map in RESP3).
func replyXInfo(c *conn, r command.Result) {
	if r.Kind != command.KindOK {
		shape := shapeMap // STREAM's fields
		if len(r.Array) == 0 {
			shape = shapeArray // GROUPS: none
		}
		c.out = appendReply(c.out, r, c.protocol(), shape)
		return
	}
	lines := []string{
		"XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"CONSUMERS <key> <groupname>",
		"    Show consumers of <groupname>.",
		"GROUPS <key>",
		"    Show the stream consumer groups.",
		"STREAM <key> [FULL [COUNT <count>]",
		"    Show information about the stream.",
		"HELP",
		"    Prints this help.",
	}
	c.out = resp.AppendArray(c.out, len(lines))
	for _, l := range lines {
		c.out = resp.AppendSimple(c.out, l)
	}
}

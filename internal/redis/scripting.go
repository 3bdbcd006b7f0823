package redis

import (
	"strings"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// Scripting: EVAL and EVALSHA are data commands whose script runs inside
// the log's Apply on every node (see command/scripting.go); SCRIPT LOAD and
// FLUSH go through the log too, so the script cache is the same on every
// node. FUNCTION answers as an empty function library.

// Scripting commands.
func scriptingCommands() []*cmdSpec {
	eval := flagNoScript | flagStale | flagSkipMonitor | flagNoMandatoryKeys | flagMovableKeys
	return []*cmdSpec{
		{name: "eval", arity: -3, flags: eval, acl: aclScripting, keysOf: evalKeys, build: buildEval(command.OpEval)},
		{name: "evalsha", arity: -3, flags: eval, acl: aclScripting, keysOf: evalKeys, build: buildEval(command.OpEvalSha)},
		// Reads: any node serves them after its read barrier.
		{name: "eval_ro", arity: -3, flags: eval | flagReadOnly, acl: aclScripting, keysOf: evalKeys, build: buildEval(command.OpEvalRO)},
		{name: "evalsha_ro", arity: -3, flags: eval | flagReadOnly, acl: aclScripting, keysOf: evalKeys, build: buildEval(command.OpEvalShaRO)},
		// Container commands: their subcommands have their own flags.
		{name: "script", arity: -2, run: runScript},
		{name: "function", arity: -2, run: runFunction},
	}
}

// evalKeys are EVAL's keys: numkeys of them after the script.
func evalKeys(a [][]byte) ([][]byte, bool) {
	n, ok := parseInt(a[2])
	if !ok || n < 0 || n > int64(len(a)-3) {
		return nil, false
	}
	return a[3 : 3+n], true
}

func buildEval(op command.Op) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(op, nil, a[1:]...)
		n, ok := parseInt(a[2])
		switch {
		case !ok:
			return cmd, errNotInteger
		case n < 0:
			return cmd, "ERR Number of keys can't be negative"
		case n > int64(len(a)-3):
			return cmd, "ERR Number of keys can't be greater than number of args"
		}
		cmd.N = n
		// Args: the body (or SHA), then the keys and arguments.
		cmd.Args = append([][]byte{a[1]}, a[3:]...)
		if msg := c.keyCheck(a[3 : 3+n]...); msg != "" {
			return cmd, msg
		}
		return cmd, ""
	}
}

// scriptLimits are the limits of commands called from scripts. Scripts
// run on every node alike, so they cannot depend on one node's settings:
// keys and values are bounded by the protocol's bulk limit only.
var scriptLimits = Config{MaxKeySize: 512 << 20, MaxValueSize: 512 << 20, MaxBulk: 512 << 20}

// ScriptCalls returns the parser for the commands scripts call
// (redis.call): it builds a request's command with the same table and
// builders as client requests, and renders the reply the way a client
// would get it. The composition root gives it to every node's executor
// (cluster.Config.ScriptCalls), since every node runs the scripts in the
// log.
func ScriptCalls() command.CallBuilder {
	srv := &Server{cfg: scriptLimits, cmds: newTable()}
	return srv.scriptCall
}

func (s *Server) scriptCall(db uint8, args [][]byte) (command.Cmd, func(command.Result) []byte, string) {
	spec := s.cmds.lookup(args[0])
	switch {
	case spec == nil:
		return command.Cmd{}, nil, "ERR Unknown Redis command called from script"
	case !spec.data || spec.flags&flagNoScript != 0:
		return command.Cmd{}, nil, "ERR This Redis command is not allowed from script"
	case !spec.arityOK(len(args)):
		return command.Cmd{}, nil, "ERR Wrong number of args calling Redis command from script"
	}
	c := &conn{srv: s}
	c.db.Store(int32(db))
	cmd, msg := spec.build(c, args)
	if msg != "" {
		return cmd, nil, msg
	}
	render := func(r command.Result) []byte {
		c.out = c.out[:0]
		c.replyResult(spec, r)
		return c.out
	}
	return cmd, render, ""
}

func runScript(c *conn, a [][]byte) {
	sub := strings.ToLower(string(a[1]))
	switch {
	case sub == "load" && len(a) == 3:
		c.writeOK(command.Tx{c.cmd(command.OpScriptLoad, nil, a[2])}, func(res command.TxResult) {
			c.replyResult(&cmdSpec{name: "script"}, res.Results[0])
		})
	case sub == "exists" && len(a) >= 3:
		cmd := c.cmd(command.OpScriptExists, nil, a[2:]...)
		c.read(cmd, func(r command.Result) { c.out = appendResult(c.out, r) })
	case sub == "flush" && len(a) <= 3:
		if len(a) == 3 && !eq(a[2], "sync") && !eq(a[2], "async") {
			c.out = resp.AppendError(c.out, "ERR SCRIPT FLUSH only support SYNC|ASYNC option")
			return
		}
		c.writeOK(command.Tx{c.cmd(command.OpScriptFlush, nil)}, func(command.TxResult) {
			c.out = resp.AppendSimple(c.out, "OK")
		})
	case sub == "help" && len(a) == 2:
		c.out = appendHelp(c.out, "SCRIPT",
			"EXISTS <sha1> [<sha1> ...]", "    Return information about the existence of the scripts in the script cache.",
			"FLUSH [ASYNC|SYNC]", "    Flush the Lua scripts cache.",
			"LOAD <script>", "    Load a script into the scripts cache without executing it.")
	case sub == "load" || sub == "exists" || sub == "flush":
		c.out = resp.AppendError(c.out, "ERR wrong number of arguments for 'script|"+sub+"' command")
	default:
		c.out = resp.AppendError(c.out, unknownSubcommand(a[1], "SCRIPT"))
	}
}

// runFunction answers FUNCTION as an empty library: hatcheck has no
// functions, only EVAL scripts.
func runFunction(c *conn, a [][]byte) {
	sub := strings.ToLower(string(a[1]))
	switch {
	case sub == "flush" && len(a) <= 3:
		c.out = resp.AppendSimple(c.out, "OK")
	case sub == "list":
		c.out = resp.AppendArray(c.out, 0)
	default:
		c.out = resp.AppendError(c.out, unknownSubcommand(a[1], "FUNCTION"))
	}
}

// appendHelp renders a HELP reply like redis-server's.
func appendHelp(out []byte, cmd string, lines ...string) []byte {
	lines = append([]string{cmd + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"}, lines...)
	lines = append(lines, "HELP", "    Print this help.")
	out = resp.AppendArray(out, len(lines))
	for _, l := range lines {
		out = resp.AppendSimple(out, l)
	}
	return out
}

package redis

import (
	"strings"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// Scripting: EVAL and EVALSHA are data commands whose script runs inside
// the log's Apply on every node (see command/scripting.go); SCRIPT LOAD and
// FLUSH go through the log too, so the script cache is the same on every
// node. FUNCTION LOAD, DELETE, FLUSH and RESTORE go through the log too
// (see command/functions.go); FCALL is a data command like EVAL.

// Scripting commands.
func scriptingCommands() []*cmdSpec {
	eval := flagNoScript | flagStale | flagSkipMonitor | flagNoMandatoryKeys | flagMovableKeys
	return []*cmdSpec{
		{name: "eval", arity: -3, flags: eval | flagMayReplicate, acl: aclScripting, keysOf: evalKeys, build: buildEval(command.OpEval)},
		{name: "evalsha", arity: -3, flags: eval | flagMayReplicate, acl: aclScripting, keysOf: evalKeys, build: buildEval(command.OpEvalSha)},
		// Reads: any node serves them after its read barrier.
		{name: "eval_ro", arity: -3, flags: eval | flagReadOnly, acl: aclScripting, keysOf: evalKeys, build: buildEval(command.OpEvalRO)},
		{name: "evalsha_ro", arity: -3, flags: eval | flagReadOnly, acl: aclScripting, keysOf: evalKeys, build: buildEval(command.OpEvalShaRO)},
		{name: "fcall", arity: -3, flags: eval | flagMayReplicate, acl: aclScripting, keysOf: evalKeys, build: buildFCall(command.OpFCall)},
		{name: "fcall_ro", arity: -3, flags: eval | flagReadOnly, acl: aclScripting, keysOf: evalKeys, build: buildFCall(command.OpFCallRO)},
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

func (s *Server) scriptCall(db uint8, user [][]byte, args [][]byte) (command.Cmd, func(command.Result, int) []byte, string) {
	spec := s.cmds.lookup(args[0])
	switch {
	case spec == nil:
		return command.Cmd{}, nil, "ERR Unknown Redis command called from script"
	case !spec.data || spec.flags&flagNoScript != 0:
		return command.Cmd{}, nil, "ERR This Redis command is not allowed from script"
	case !spec.arityOK(len(args)):
		return command.Cmd{}, nil, "ERR Wrong number of args calling Redis command from script"
	}
	if user != nil {
		if msg := s.scriptACL(user, spec, args); msg != "" {
			return command.Cmd{}, nil, msg
		}
	}
	c := &conn{srv: s}
	c.db.Store(int32(db))
	cmd, msg := spec.build(c, args)
	if msg != "" {
		return cmd, nil, msg
	}
	if spec.flags&flagWrite != 0 && !cmd.Op.IsWrite() {
		cmd.Flags |= command.FlagWriteCommand
	}
	render := func(r command.Result, proto int) []byte {
		c.proto.Store(int32(proto)) // the script's (redis.setresp)
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

// runFunction runs the FUNCTION subcommands: those that change the
// libraries go through the log, the others are reads.
func runFunction(c *conn, a [][]byte) {
	sub := strings.ToLower(string(a[1]))
	write := func(args ...[]byte) {
		c.writeOK(command.Tx{c.cmd(command.OpFunction, nil, args...)}, func(res command.TxResult) {
			c.replyResult(&cmdSpec{name: "function"}, res.Results[0])
		})
	}
	read := func(args ...[]byte) {
		c.read(c.cmd(command.OpFunctionRead, nil, args...), func(r command.Result) { c.out = appendResult(c.out, r) })
	}
	arities := map[string]int{"load": -3, "delete": 3, "flush": -2, "list": -2, "dump": 2, "restore": -3, "stats": 2, "kill": 2, "help": 2}
	if arity, ok := arities[sub]; ok && !arityOK(arity, len(a)) {
		c.out = resp.AppendError(c.out, arityError("function|"+sub))
		return
	}
	switch sub {
	case "load":
		replace := false
		for _, o := range a[2 : len(a)-1] {
			if !eq(o, "replace") {
				c.out = resp.AppendError(c.out, "ERR Unknown option given: "+string(o))
				return
			}
			replace = true
		}
		var flag []byte
		if replace {
			flag = []byte("replace")
		}
		write([]byte("load"), flag, a[len(a)-1])
	case "delete":
		write([]byte("delete"), a[2])
	case "flush":
		if len(a) > 3 || (len(a) == 3 && !eq(a[2], "sync") && !eq(a[2], "async")) {
			c.out = resp.AppendError(c.out, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
			return
		}
		write([]byte("flush"))
	case "restore":
		policy := "append"
		if len(a) > 4 {
			c.out = resp.AppendError(c.out, "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
			return
		}
		if len(a) == 4 {
			policy = strings.ToLower(string(a[3]))
			if policy != "flush" && policy != "append" && policy != "replace" {
				c.out = resp.AppendError(c.out, "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
				return
			}
		}
		write([]byte("restore"), a[2], []byte(policy))
	case "list":
		var pattern, withCode []byte
		for i := 2; i < len(a); i++ {
			switch {
			case eq(a[i], "withcode"):
				withCode = []byte("withcode")
			case eq(a[i], "libraryname"):
				if i+1 >= len(a) {
					c.out = resp.AppendError(c.out, "ERR library name argument was not given")
					return
				}
				i++
				pattern = a[i]
			default:
				c.out = resp.AppendError(c.out, "ERR Unknown argument "+string(a[i]))
				return
			}
		}
		read([]byte("list"), pattern, withCode)
	case "dump", "stats":
		read([]byte(sub))
	case "kill":
		c.out = resp.AppendError(c.out, "NOTBUSY No scripts in execution right now.")
	case "help":
		// Not appendHelp: FUNCTION's last line is worded differently.
		lines := append([]string{"FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"}, functionHelp...)
		lines = append(lines, "HELP", "    Prints this help.")
		c.out = resp.AppendArray(c.out, len(lines))
		for _, l := range lines {
			c.out = resp.AppendSimple(c.out, l)
		}
	default:
		c.out = resp.AppendError(c.out, unknownSubcommand(a[1], "FUNCTION"))
	}
}

// functionHelp is FUNCTION HELP's text, as redis 7.0 words it.
var functionHelp = []string{
	"LOAD [REPLACE] <FUNCTION CODE>",
	"    Create a new library with the given library name and code.",
	"DELETE <LIBRARY NAME>",
	"    Delete the given library.",
	"LIST [LIBRARYNAME PATTERN] [WITHCODE]",
	"    Return general information on all the libraries:",
	"    * Library name",
	"    * The engine used to run the Library",
	"    * Library description",
	"    * Functions list",
	"    * Library code (if WITHCODE is given)",
	"    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
	"STATS",
	"    Return information about the current function running:",
	"    * Function name",
	"    * Command used to run the function",
	"    * Duration in MS that the function is running",
	"    If no function is running, return nil",
	"    In addition, returns a list of available engines.",
	"KILL",
	"    Kill the current running function.",
	"FLUSH [ASYNC|SYNC]",
	"    Delete all the libraries.",
	"    When called without the optional mode argument, the behavior is determined by the",
	"    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
	"    * ASYNC: Asynchronously flush the libraries.",
	"    * SYNC: Synchronously flush the libraries.",
	"DUMP",
	"    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
	"RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
	"    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
	"    control how to handle existing libraries (default APPEND):",
	"    * FLUSH: delete all existing libraries.",
	"    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
	"    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
	"      libraries with the new libraries (notice that even on this option there is a chance of failure",
	"      in case of functions name collision with another library).",
}

// buildFCall builds FCALL and FCALL_RO, whose key count errors differ
// from EVAL's.
func buildFCall(op command.Op) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(op, nil)
		n, ok := parseInt(a[2])
		switch {
		case !ok:
			return cmd, "ERR Bad number of keys provided"
		case n < 0:
			return cmd, "ERR Number of keys can't be negative"
		case n > int64(len(a)-3):
			return cmd, "ERR Number of keys can't be greater than number of args"
		}
		cmd.N = n
		cmd.Args = append([][]byte{a[1]}, a[3:]...)
		return cmd, c.keyCheck(a[3 : 3+n]...)
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

package command

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/hatcheck/hatcheck/internal/keyspace"
	"github.com/hatcheck/hatcheck/internal/lualib"
)

// Scripts (EVAL, EVALSHA) run inside Apply on every node, so everything a
// script can observe must be replicated state: the keys, its arguments and
// the batch time. The sandbox therefore has no os, io, load*, require or
// print; math.random is a fixed-seed generator (the same numbers on every
// node, as in redis 7); global variables cannot be created; commands that
// read the clock or the node (TIME, INFO…) are not callable, because the
// Redis front end's CallBuilder offers data commands only; the random ones
// (RANDOMKEY, SPOP, SRANDMEMBER, HRANDFIELD) choose from a generator
// seeded by the log entry (see random.go); and
// the running time is bounded by counting Lua VM instructions rather than
// by a clock, so that every node stops a runaway script at the same point.
//
// Each run gets a fresh Lua state: nothing a script does to its globals or
// library tables can leak into the next one (or differ between a node that
// ran it and one that restored a snapshot). Compiled code is cached by SHA.

// MaxScriptInstructions is the number of Lua VM instructions a script may
// execute. It is fixed, not configured: nodes must agree on it.
const MaxScriptInstructions = 100_000_000

// scriptInstructionLimit is MaxScriptInstructions, lowered by tests only.
var scriptInstructionLimit int64 = MaxScriptInstructions

// ReplyError is an error whose text is the complete protocol error reply
// (code and message), such as a script's {err=…} or NOSCRIPT.
type ReplyError string

func (e ReplyError) Error() string { return string(e) }

// ErrNoScript is EVALSHA of a script no node has cached.
var ErrNoScript = ReplyError("NOSCRIPT No matching script. Please use EVAL.")

// A CallBuilder turns the arguments of redis.call into a command, the way
// the Redis front end parses a request, and returns how its reply is
// rendered in RESP. A non-empty msg is the error reply for arguments it
// refuses (unknown or disallowed command, wrong arity, syntax). The Redis
// front end provides it (redis.ScriptCalls); the composition root passes it
// to every node's executor (NewExecutor), since followers run scripts too.
//
// user, if not nil, is the ACL user the script runs as (its name, then
// its rules, from OpACLAs): the builder refuses what the user may not run.
type CallBuilder func(db uint8, user [][]byte, args [][]byte) (cmd Cmd, render func(r Result, proto int) []byte, msg string)

// Scripting: EVAL, EVALSHA and the SCRIPT subcommands that change or read
// the replicated script cache.
var scriptingOps = []opRow{
	{op: OpEval, name: "eval", flags: opWrite | opItem | opNoScript, args: argShape{1, 1}, check: checkScriptKeys, exec: execScript},
	{op: OpEvalSha, name: "evalsha", flags: opWrite | opItem | opNoScript, args: argShape{1, 1}, check: checkScriptKeys, exec: execScript},
	{op: OpScriptLoad, name: "script-load", flags: opWrite | opItem, args: argShape{1, 1}, exec: execScriptLoad},
	{op: OpScriptFlush, name: "script-flush", flags: opWrite | opItem, exec: execScriptFlush},
	{op: OpScriptExists, name: "script-exists", flags: opItem, args: argShape{1, 1}, exec: execScriptExists},
	// EVAL_RO and EVALSHA_RO are reads: served by any node after its read
	// barrier, never through the log, so their scripts may call no
	// command that writes, and EVAL_RO does not add its script to the
	// replicated cache (redis-server's does).
	{op: OpEvalRO, name: "eval_ro", flags: opItem | opNoScript, args: argShape{1, 1}, check: checkScriptKeys, exec: execScript},
	{op: OpEvalShaRO, name: "evalsha_ro", flags: opItem | opNoScript, args: argShape{1, 1}, check: checkScriptKeys, exec: execScript},
}

// ErrReadOnlyScript is a write command called by a read-only script.
var ErrReadOnlyScript = ReplyError("ERR Write commands are not allowed from read-only scripts.")

// checkScriptKeys refuses a key count the arguments cannot hold.
func checkScriptKeys(c *Cmd) error {
	if c.N < 0 || c.N > int64(len(c.Args)-1) {
		return fmt.Errorf("script with %d keys and %d arguments", c.N, len(c.Args))
	}
	return nil
}

func execScriptLoad(v env, c *Cmd) Result {
	sha := ScriptSHA(c.Args[0])
	if _, err := v.x.compile(sha, c.Args[0]); err != nil {
		return resErr(compileError(err))
	}
	v.ks.StoreScript(sha, c.Args[0])
	return resBulk([]byte(sha))
}

func execScriptFlush(v env, _ *Cmd) Result {
	v.ks.FlushScripts()
	v.x.protos.Clear()
	return resOK
}

func execScriptExists(v env, c *Cmd) Result {
	arr := make([]Result, len(c.Args))
	for i, sha := range c.Args {
		_, ok := v.ks.Script(strings.ToLower(string(sha)))
		arr[i] = resBool(ok)
	}
	return Result{Kind: KindArray, Array: arr}
}

func compileError(err error) error {
	return ReplyError("ERR Error compiling script (new function): " + oneLine(err.Error()))
}

// ScriptSHA is the cache key of a script body: its SHA1 in lower-case hex.
func ScriptSHA(body []byte) string {
	s := sha1.Sum(body)
	return hex.EncodeToString(s[:])
}

// compile returns the script's compiled code, from the executor's cache
// if it was compiled before.
func (x *Executor) compile(sha string, body []byte) (*lua.FunctionProto, error) {
	return x.compileChunk(sha, body, scriptChunk)
}

// compileChunk compiles body under the chunk name, cached under key.
func (x *Executor) compileChunk(key string, body []byte, name string) (*lua.FunctionProto, error) {
	if p, ok := x.protos.Load(key); ok {
		return p.(*lua.FunctionProto), nil
	}
	chunk, err := parse.Parse(strings.NewReader(string(body)), name)
	if err != nil {
		return nil, err
	}
	p, err := lua.Compile(chunk, name)
	if err != nil {
		return nil, err
	}
	x.protos.Store(key, p)
	return p, nil
}

// execScript runs EVAL, EVALSHA or their read-only forms: Args[0] is the
// body or the SHA, then N keys, then the arguments.
func execScript(v env, c *Cmd) Result {
	var body []byte
	var sha string
	if c.Op == OpEval || c.Op == OpEvalRO {
		body = c.Args[0]
		sha = ScriptSHA(body)
	} else {
		sha = strings.ToLower(string(c.Args[0]))
		var ok bool
		if body, ok = v.ks.Script(sha); !ok {
			return resErr(ErrNoScript)
		}
	}
	proto, err := v.x.compile(sha, body)
	if err != nil {
		return resErr(compileError(err))
	}
	if c.Op == OpEval {
		v.ks.StoreScript(sha, body)
	}
	r := &scriptRun{x: v.x, ks: v.ks, h: v.h, db: c.DB, id: sha, chunk: scriptChunk, readOnly: c.Op == OpEvalRO || c.Op == OpEvalShaRO}
	return r.run(proto, c.Args[1:1+c.N], c.Args[1+c.N:])
}

type scriptRun struct {
	x     *Executor
	ks    *keyspace.Keyspace
	h     Header
	db    uint8
	id    string // what the error reply names: the SHA, or the function
	chunk string // scriptChunk or functionChunk
	L     *lua.LState
	line  int    // where the last error was raised, for the reply
	seed  uint64 // math.random state
	steps budget
	// readOnly: EVAL_RO and EVALSHA_RO, which run as reads, under the
	// keyspace's read lock: a command that writes is refused.
	readOnly bool
	// resp is the protocol redis.call's replies are read in, 2 unless
	// the script called redis.setresp(3). It changes conversions only:
	// every node runs the script alike, so it cannot make them diverge.
	resp int
}

// budget is a context whose Done is called by gopher-lua before every VM
// instruction: it counts them and stops the script after the limit.
type budget struct {
	left int64
	done chan struct{}
}

func (b *budget) Deadline() (time.Time, bool) { return time.Time{}, false }
func (b *budget) Value(any) any               { return nil }
func (b *budget) Done() <-chan struct{} {
	if b.left--; b.left < 0 {
		return b.done
	}
	return nil
}
func (b *budget) Err() error {
	return fmt.Errorf("Script exceeded the limit of %d Lua instructions", scriptInstructionLimit)
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// The chunk names scripts and function libraries are compiled under, as
// redis names them in error messages.
const (
	scriptChunk   = "user_script"
	functionChunk = "user_function"
)

func (r *scriptRun) run(proto *lua.FunctionProto, keys, argv [][]byte) Result {
	L := r.open()
	defer L.Close()
	r.sandbox(keys, argv)
	L.Push(L.NewFunctionFromProto(proto))
	if err := L.PCall(0, 1, nil); err != nil {
		return resErr(ReplyError(r.errorReply(err)))
	}
	ret := L.Get(-1)
	L.Pop(1)
	return r.toResult(ret, 0)
}

// open starts the run's Lua state, its random generator and its budget.
func (r *scriptRun) open() *lua.LState {
	L := lua.NewState(lua.Options{SkipOpenLibs: true, CallStackSize: 256, RegistrySize: 1024, RegistryMaxSize: 1 << 20})
	r.L = L
	r.resp = 2
	r.seed = 0x2545F4914F6CDD1D
	r.steps = budget{left: scriptInstructionLimit, done: closedChan}
	L.SetContext(&r.steps)
	return L
}

// sandbox loads the libraries and the redis table; keys and argv become
// KEYS and ARGV unless nil (functions get them as arguments).
func (r *scriptRun) sandbox(keys, argv [][]byte) {
	L := r.L
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	lualib.Open(L)
	g := L.G.Global
	for _, name := range []string{"dofile", "loadfile", "load", "loadstring", "require", "module", "print", "setfenv", "getfenv", "rawset", "collectgarbage", "newproxy", "_printregs"} {
		g.RawSetString(name, lua.LNil)
	}
	math := g.RawGetString("math").(*lua.LTable)
	math.RawSetString("random", L.NewFunction(r.random))
	math.RawSetString("randomseed", L.NewFunction(func(L *lua.LState) int { r.seed = uint64(L.CheckInt64(1)) | 1; return 0 }))
	g.RawSetString("error", L.NewFunction(r.raise))
	g.RawSetString("pcall", L.NewFunction(pcallErrString(g.RawGetString("pcall").(*lua.LFunction).GFunction)))

	redis := L.NewTable()
	redis.RawSetString("call", L.NewFunction(func(L *lua.LState) int { return r.call(L, true) }))
	redis.RawSetString("pcall", L.NewFunction(func(L *lua.LState) int { return r.call(L, false) }))
	redis.RawSetString("error_reply", L.NewFunction(func(L *lua.LState) int {
		L.Push(errTable(L, errorReplyText(L.CheckString(1))))
		return 1
	}))
	redis.RawSetString("status_reply", L.NewFunction(func(L *lua.LState) int {
		t := L.NewTable()
		t.RawSetString("ok", lua.LString(L.CheckString(1)))
		L.Push(t)
		return 1
	}))
	redis.RawSetString("sha1hex", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(ScriptSHA([]byte(L.CheckString(1)))))
		return 1
	}))
	redis.RawSetString("setresp", L.NewFunction(r.setResp))
	redis.RawSetString("log", L.NewFunction(func(*lua.LState) int { return 0 }))
	for name, v := range map[string]lua.LNumber{"LOG_DEBUG": 0, "LOG_VERBOSE": 1, "LOG_NOTICE": 2, "LOG_WARNING": 3} {
		redis.RawSetString(name, v)
	}
	g.RawSetString("redis", redis)
	// The libraries refuse new fields, as redis 7's read-only tables do.
	// (Replacing an existing field is not refused: gopher-lua has no
	// read-only tables. It cannot leak either: each run has its own state.)
	ro := L.NewTable()
	ro.RawSetString("__newindex", L.NewFunction(readonly))
	for _, lib := range []string{"string", "table", "math", "redis", "cjson", "cmsgpack", "bit", "struct"} {
		L.SetMetatable(g.RawGetString(lib), ro)
	}
	if keys != nil {
		g.RawSetString("KEYS", bytesTable(L, keys))
		g.RawSetString("ARGV", bytesTable(L, argv))
	}

	// Globals are read-only, and reading an unknown one is an error, as
	// in redis 7.
	mt := L.NewTable()
	mt.RawSetString("__newindex", L.NewFunction(readonly))
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("Script attempted to access nonexistent global variable '%s'", L.CheckString(2))
		return 0
	}))
	mt.RawSetString("__metatable", lua.LString("readonly"))
	L.SetMetatable(g, mt)
}

// setResp is redis.setresp(2|3): the protocol of redis.call's replies,
// and of the script's booleans (see toResult).
func (r *scriptRun) setResp(L *lua.LState) int {
	fail := func(msg string) int {
		r.line = whereLine(L.Where(1))
		L.Error(errTable(L, msg), 0)
		return 0
	}
	if L.GetTop() != 1 {
		return fail("ERR redis.setresp() requires one argument.")
	}
	n := int(lua.LVAsNumber(L.Get(1))) // lua_tonumber: "3" is 3, "x" is 0
	if n != 2 && n != 3 {
		return fail("ERR RESP version must be 2 or 3.")
	}
	r.resp = n
	return 0
}

func readonly(L *lua.LState) int {
	L.RaiseError("Attempt to modify a readonly table")
	return 0
}

func bytesTable(L *lua.LState, vals [][]byte) *lua.LTable {
	t := L.CreateTable(len(vals), 0)
	for _, v := range vals {
		t.Append(lua.LString(v))
	}
	return t
}

func errTable(L *lua.LState, msg string) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("err", lua.LString(msg))
	return t
}

// errorReplyText is redis.error_reply's rule: a message without an error
// code gets ERR.
func errorReplyText(msg string) string {
	msg = strings.TrimPrefix(msg, "-")
	if !strings.Contains(msg, " ") {
		return "ERR " + msg
	}
	return msg
}

// random is math.random over a fixed-seed xorshift generator.
func (r *scriptRun) random(L *lua.LState) int {
	r.seed ^= r.seed << 13
	r.seed ^= r.seed >> 7
	r.seed ^= r.seed << 17
	f := float64(r.seed>>11) / (1 << 53)
	switch L.GetTop() {
	case 0:
		L.Push(lua.LNumber(f))
	case 1:
		L.Push(lua.LNumber(1 + math.Floor(f*float64(L.CheckInt64(1)))))
	default:
		lo, hi := L.CheckInt64(1), L.CheckInt64(2)
		L.Push(lua.LNumber(float64(lo) + math.Floor(f*float64(hi-lo+1))))
	}
	return 1
}

// raise replaces error() so that the line of an error raised with a table
// ({err=…}) is known for the reply.
func (r *scriptRun) raise(L *lua.LState) int {
	r.line = whereLine(L.Where(1))
	v := L.Get(1)
	if s, ok := v.(lua.LString); ok && L.OptInt(2, 1) > 0 {
		// C Lua's luaL_where names no position for a C function
		// (pcall(error, "x") raises "x"); gopher-lua's Where says "[G]:".
		if w := L.Where(1); w != "[G]:" {
			L.Error(lua.LString(w+" "+string(s)), 0)
		}
		L.Error(s, 0)
	}
	L.Error(v, 0)
	return 0
}

// pcallErrString wraps Lua's pcall as redis 7.0 does (script_lua.c's
// luaRedisPcall): an error object that is a table with a string (or
// number) err field, as redis.call raises its refusals, is returned as
// that field, so that scripts written for older redis, whose errors were
// strings, see the message. Other error objects come back as they are.
func pcallErrString(pcall lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		n := pcall(L)
		if n != 2 || L.Get(-2) != lua.LFalse {
			return n
		}
		if t, ok := L.Get(-1).(*lua.LTable); ok {
			switch e := L.GetField(t, "err").(type) {
			case lua.LString, lua.LNumber:
				L.Pop(1)
				L.Push(e)
			}
		}
		return n
	}
}

// whereLine extracts N from gopher-lua's "user_script:N:" position.
func whereLine(w string) int {
	w = strings.TrimSuffix(w, ":")
	if i := strings.LastIndexByte(w, ':'); i >= 0 {
		if n, err := strconv.Atoi(w[i+1:]); err == nil {
			return n
		}
	}
	return 0
}

// call implements redis.call (raise on error) and redis.pcall (return the
// error as a table).
func (r *scriptRun) call(L *lua.LState, raise bool) int {
	fail := func(msg string) int {
		if raise {
			r.line = whereLine(L.Where(1))
			L.Error(errTable(L, msg), 0)
		}
		L.Push(errTable(L, msg))
		return 1
	}
	n := L.GetTop()
	if n == 0 {
		return fail("ERR Please specify at least one argument for this redis lib call")
	}
	args := make([][]byte, n)
	for i := 1; i <= n; i++ {
		switch v := L.Get(i).(type) {
		case lua.LString:
			args[i-1] = []byte(v)
		case lua.LNumber:
			args[i-1] = []byte(lua.LVAsString(v))
		default:
			return fail("ERR Lua redis lib command arguments must be strings or integers")
		}
	}
	if r.x.calls == nil {
		return fail("ERR Unknown Redis command called from script")
	}
	var user [][]byte
	if r.h.scriptUser != nil {
		user = r.h.scriptUser.Args
	}
	cmd, render, msg := r.x.calls(r.db, user, args)
	if msg != "" {
		return fail(msg)
	}
	// The table is reached through the executor, not cmd.Op's methods:
	// this function is in the table (see table.go).
	row := r.x.row(cmd.Op)
	var res Result
	switch {
	case row == nil || row.flags&opNoScript != 0:
		res = resErr(ErrUnknownCommand)
	case r.readOnly && (row.flags&opWrite != 0 || cmd.Flags&FlagWriteCommand != 0):
		res = resErr(ErrReadOnlyScript)
	case row.flags&opDenyOOM != 0 && overMemory(r.ks, r.h):
		res = resErr(ErrOOM)
	default:
		res = r.x.exec(r.ks, r.h, &cmd)
	}
	if cmd.Op == OpPublish && res.Kind != KindError {
		// The receiver count is this node's: a script that branched on it
		// would change state differently on each node.
		res = resInt(0)
	}
	v, isErr := respToLua(L, render(res, r.resp))
	if isErr && raise {
		r.line = whereLine(L.Where(1))
		L.Error(v, 0)
	}
	L.Push(v)
	return 1
}

// errorReply is the reply for a script that raised an error, in redis 7's
// words: the message, then which script and where.
func (r *scriptRun) errorReply(err error) string {
	var msg string
	line := r.line
	var apiErr *lua.ApiError
	if errors.As(err, &apiErr) {
		switch v := apiErr.Object.(type) {
		case *lua.LTable:
			if e, ok := v.RawGetString("err").(lua.LString); ok {
				msg = string(e)
			}
		case lua.LString:
			// "user_script:N: message" from the Lua runtime or error().
			msg = "ERR " + string(v)
			if rest, ok := strings.CutPrefix(string(v), r.chunk+":"); ok {
				if i := strings.IndexByte(rest, ':'); i > 0 {
					line, _ = strconv.Atoi(rest[:i])
				}
			} else if strings.Contains(string(v), "Lua instructions") {
				msg = "ERR " + oneLine(string(v))
			}
		}
		if msg == "" {
			msg = "ERR " + oneLine(apiErr.Object.String())
		}
		if line == 0 {
			// Raised without a position (a library's "table index is
			// nil"): the line is the innermost script frame's.
			line = traceLine(apiErr.StackTrace, r.chunk)
		}
	} else {
		msg = "ERR " + err.Error()
	}
	return fmt.Sprintf("%s script: %s, on @%s:%d.", oneLine(msg), r.id, r.chunk, line)
}

// traceLine is the first line number of chunk in a stack trace.
func traceLine(trace, chunk string) int {
	if _, rest, ok := strings.Cut(trace, chunk+":"); ok {
		if i := strings.IndexByte(rest, ':'); i > 0 {
			n, _ := strconv.Atoi(rest[:i])
			return n
		}
	}
	return 0
}

func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

// toResult converts a script's return value as redis does: numbers are
// truncated to integers, strings are bulk, true is 1, false and nil are nil
// (after redis.setresp(3), booleans are RESP3 booleans: 1 and 0 to a RESP2
// client), arrays stop at the first nil, {ok=…} is a status and {err=…}
// an error; tables with a double, big_number, verbatim_string, map or set
// field are those RESP3 types (their RESP2 forms to a RESP2 client),
// checked in redis's order.
func (r *scriptRun) toResult(v lua.LValue, depth int) Result {
	if depth > maxResultDepth {
		return resErr(ReplyError("ERR reached lua stack limit"))
	}
	switch v := v.(type) {
	case lua.LNumber:
		return resInt(int64(v))
	case lua.LString:
		return resBulk([]byte(v))
	case lua.LBool:
		if r.resp == 3 {
			res := resBool(bool(v))
			res.Form = FormBool
			return res
		}
		if v {
			return resInt(1)
		}
		return resNil
	case *lua.LTable:
		if e, ok := v.RawGetString("err").(lua.LString); ok {
			return resErr(ReplyError(oneLine(string(e))))
		}
		if s, ok := v.RawGetString("ok").(lua.LString); ok {
			return resStatus(oneLine(string(s)))
		}
		if d, ok := v.RawGetString("double").(lua.LNumber); ok {
			return Result{Kind: KindBulk, Bulk: FormatScore(float64(d)), Form: FormDouble}
		}
		if n, ok := v.RawGetString("big_number").(lua.LString); ok {
			return Result{Kind: KindBulk, Bulk: []byte(oneLine(string(n))), Form: FormBigNumber}
		}
		if vs, ok := v.RawGetString("verbatim_string").(*lua.LTable); ok {
			f, ok1 := vs.RawGetString("format").(lua.LString)
			s, ok2 := vs.RawGetString("string").(lua.LString)
			if ok1 && ok2 && len(f) >= 3 {
				return Result{Kind: KindBulk, Bulk: []byte(s), Str: string(f[:3]), Form: FormVerbatim}
			}
		}
		if m, ok := v.RawGetString("map").(*lua.LTable); ok {
			arr := []Result{}
			m.ForEach(func(k, e lua.LValue) {
				arr = append(arr, r.toResult(k, depth+1), r.toResult(e, depth+1))
			})
			return Result{Kind: KindArray, Array: arr, Form: FormMap}
		}
		if m, ok := v.RawGetString("set").(*lua.LTable); ok {
			arr := []Result{}
			m.ForEach(func(k, _ lua.LValue) { arr = append(arr, r.toResult(k, depth+1)) })
			return Result{Kind: KindArray, Array: arr, Form: FormSet}
		}
		var arr []Result
		for i := 1; ; i++ {
			e := v.RawGetInt(i)
			if e == lua.LNil {
				break
			}
			arr = append(arr, r.toResult(e, depth+1))
		}
		return Result{Kind: KindArray, Array: arr}
	}
	return resNil
}

// respToLua converts a rendered RESP reply to the value redis.call returns:
// integers are numbers, bulk strings strings, nil is false, arrays tables,
// a status is {ok=…} and an error {err=…} (isErr set). The RESP3 types
// (after redis.setresp(3)) convert as redis 7.0's script_lua.c converts
// them: null is nil, a boolean a boolean, a double {double=n}, a map
// {map={k=v…}}, a set {set={m=true…}}, a big number {big_number=s}, a
// verbatim string {verbatim_string={format=f, string=s}}.
func respToLua(L *lua.LState, b []byte) (v lua.LValue, isErr bool) {
	v, _, isErr = parseRESP(L, b, 0)
	return v, isErr
}

func parseRESP(L *lua.LState, b []byte, depth int) (lua.LValue, []byte, bool) {
	if len(b) < 3 || depth > maxResultDepth {
		return lua.LFalse, nil, false
	}
	end := bytes.Index(b, []byte("\r\n"))
	if end < 0 {
		return lua.LFalse, nil, false
	}
	line, rest := string(b[1:end]), b[end+2:]
	field := func(name string, v lua.LValue) *lua.LTable {
		t := L.NewTable()
		t.RawSetString(name, v)
		return t
	}
	switch b[0] {
	case '+':
		return field("ok", lua.LString(line)), rest, false
	case '-':
		return errTable(L, line), rest, true
	case ':':
		n, _ := strconv.ParseInt(line, 10, 64)
		return lua.LNumber(n), rest, false
	case '$', '=':
		n, _ := strconv.Atoi(line)
		if n < 0 || n+2 > len(rest) {
			return lua.LFalse, rest, false
		}
		s := rest[:n]
		rest = rest[n+2:]
		if b[0] == '=' && len(s) >= 4 {
			vs := field("string", lua.LString(s[4:]))
			vs.RawSetString("format", lua.LString(s[:3]))
			return field("verbatim_string", vs), rest, false
		}
		return lua.LString(s), rest, false
	case '*', '%', '~':
		n, _ := strconv.Atoi(line)
		if n < 0 {
			return lua.LFalse, rest, false
		}
		t := L.CreateTable(n, 0)
		for i := 0; i < n; i++ {
			var e lua.LValue
			e, rest, _ = parseRESP(L, rest, depth+1)
			switch b[0] {
			case '*':
				t.RawSetInt(i+1, e)
			case '%':
				var val lua.LValue
				val, rest, _ = parseRESP(L, rest, depth+1)
				if e != lua.LNil {
					t.RawSet(e, val)
				}
			case '~':
				if e != lua.LNil {
					t.RawSet(e, lua.LTrue)
				}
			}
		}
		switch b[0] {
		case '%':
			return field("map", t), rest, false
		case '~':
			return field("set", t), rest, false
		}
		return t, rest, false
	case '_':
		return lua.LNil, rest, false
	case '#':
		return lua.LBool(line == "t"), rest, false
	case ',':
		d, _ := strconv.ParseFloat(line, 64)
		return field("double", lua.LNumber(d)), rest, false
	case '(':
		return field("big_number", lua.LString(line)), rest, false
	}
	return lua.LFalse, nil, false
}

var _ context.Context = (*budget)(nil)

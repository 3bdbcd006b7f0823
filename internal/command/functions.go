package command

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"slices"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Redis 7 functions: FUNCTION LOAD stores a library (its code and the
// names of the functions it registers) in the replicated keyspace; FCALL
// runs one of them. A library's code runs afresh in every FCALL's Lua
// state — registering its functions again, then calling the one asked
// for — so that nothing but the code is state, and a node that restored
// a snapshot runs exactly what the others run. (redis-server runs the
// code once, at load; the code can only register functions, so running
// it again changes nothing a function can see.)
//
// FUNCTION DUMP's payload is hatcheck's own, not redis's RDB encoding:
// "HCFN", a version byte, the count and each library's code (uvarint
// length first), then the CRC-32 (IEEE, big-endian) of everything before
// it. FUNCTION RESTORE accepts what DUMP gives.

var functionOps = []opRow{
	{op: OpFunction, name: "function", flags: opWrite | opItem, args: argShape{1, 1}, check: checkFunction, exec: execFunction},
	{op: OpFunctionRead, name: "function-read", flags: opItem, args: argShape{1, 1}, exec: execFunctionRead},
	{op: OpFCall, name: "fcall", flags: opWrite | opItem | opNoScript, args: argShape{1, 1}, check: checkScriptKeys, exec: execFCall},
	{op: OpFCallRO, name: "fcall_ro", flags: opItem | opNoScript, args: argShape{1, 1}, check: checkScriptKeys, exec: execFCall},
}

// Errors of the function commands, in redis 7.0's words.
var (
	ErrFunctionNotFound = ReplyError("ERR Function not found")
	ErrLibraryNotFound  = ReplyError("ERR Library not found")
	ErrBadDump          = ReplyError("ERR DUMP payload version or checksum are wrong")
	ErrWriteFunctionRO  = ReplyError("ERR Can not execute a script with write flag using *_ro command.")
	errBadName          = ReplyError("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
)

// functionFlags are the flags register_function accepts; only no-writes
// changes anything in hatcheck.
var functionFlags = []string{"no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"}

// checkFunction refuses argument counts the subcommands' executors index.
func checkFunction(c *Cmd) error {
	need := map[string]int{"load": 3, "delete": 2, "flush": 1, "restore": 3}[string(c.Args[0])]
	if need == 0 || len(c.Args) != need {
		return ReplyError("ERR bad FUNCTION arguments")
	}
	return nil
}

// registered is what running a library's code registered.
type registered struct {
	name  string
	fn    *lua.LFunction
	flags []string
	desc  *string
}

// parseLibrary checks a library's metadata line ("#!lua name=NAME") and
// returns its name.
func parseLibrary(code []byte) (string, error) {
	if !bytes.HasPrefix(code, []byte("#!")) {
		return "", ReplyError("ERR Missing library metadata")
	}
	line, _, _ := bytes.Cut(code[2:], []byte("\n"))
	parts := strings.Split(string(line), " ")
	if !strings.EqualFold(parts[0], "lua") {
		return "", ReplyError("ERR Engine '" + parts[0] + "' not found")
	}
	name, named := "", false
	for _, p := range parts[1:] {
		v, ok := strings.CutPrefix(p, "name=")
		if !ok {
			return "", ReplyError("ERR Invalid metadata value given: " + p)
		}
		name, named = v, true
	}
	if !named {
		return "", ReplyError("ERR Library name was not given")
	}
	if !validName(name) {
		return "", errBadName
	}
	return name, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// libraryBody is the code as it is compiled: the metadata line blanked,
// so that line numbers stay those of the code.
func libraryBody(code []byte) []byte {
	i := bytes.IndexByte(code, '\n')
	if i < 0 {
		return nil
	}
	return code[i:]
}

// runLibrary runs a library's code in r's fresh state and returns the
// functions it registered, in order. During a load (loading set) the
// redis table offers register_function and log only, as redis's does.
func (r *scriptRun) runLibrary(code []byte, loading bool) ([]registered, error) {
	proto, err := r.x.compileChunk("fn:"+ScriptSHA(code), libraryBody(code), functionChunk)
	if err != nil {
		return nil, ReplyError("ERR Error compiling function: " + oneLine(err.Error()))
	}
	L := r.L
	var fns []registered
	redis := L.G.Global.RawGetString("redis").(*lua.LTable)
	if loading {
		redis = L.NewTable()
		redis.RawSetString("log", L.NewFunction(func(*lua.LState) int { return 0 }))
		for name, v := range map[string]lua.LNumber{"LOG_DEBUG": 0, "LOG_VERBOSE": 1, "LOG_NOTICE": 2, "LOG_WARNING": 3} {
			redis.RawSetString(name, v)
		}
		mt := L.NewTable()
		mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
			L.RaiseError("Script attempted to access nonexistent global variable '%s'", L.CheckString(2))
			return 0
		}))
		mt.RawSetString("__newindex", L.NewFunction(readonly))
		L.SetMetatable(redis, mt)
		L.G.Global.RawSetString("redis", redis)
	}
	redis.RawSetString("register_function", L.NewFunction(func(L *lua.LState) int {
		f, msg := registerArgs(L)
		if msg == "" && !validName(f.name) {
			msg = string(errBadName)
		}
		if msg == "" && slices.ContainsFunc(fns, func(g registered) bool { return strings.EqualFold(g.name, f.name) }) {
			msg = "ERR Function already exists in the library"
		}
		if msg != "" {
			L.Error(lua.LString(msg), 0)
		}
		fns = append(fns, f)
		return 0
	}))
	L.Push(L.NewFunctionFromProto(proto))
	if err := L.PCall(0, 0, nil); err != nil {
		msg := r.errorReply(err)
		if apiErr, ok := err.(*lua.ApiError); ok {
			if s, ok := apiErr.Object.(lua.LString); ok {
				msg = string(s)
			}
		}
		if !strings.HasPrefix(msg, "ERR ") {
			msg = "ERR " + msg
		}
		return nil, ReplyError("ERR Error registering functions: " + oneLine(msg))
	}
	if len(fns) == 0 {
		return nil, ReplyError("ERR No functions registered")
	}
	return fns, nil
}

// registerArgs reads redis.register_function's arguments: (name,
// callback) or {function_name=, callback=, flags=, description=}.
func registerArgs(L *lua.LState) (registered, string) {
	var f registered
	switch L.GetTop() {
	case 1:
		t, ok := L.Get(1).(*lua.LTable)
		if !ok {
			return f, "ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."
		}
		for k, v := t.Next(lua.LNil); k != lua.LNil; k, v = t.Next(k) {
			key, _ := k.(lua.LString)
			switch key {
			case "function_name":
				s, ok := v.(lua.LString)
				if !ok {
					return f, "ERR function_name argument given to redis.register_function must be a string"
				}
				f.name = string(s)
			case "callback":
				fn, ok := v.(*lua.LFunction)
				if !ok {
					return f, "ERR callback argument given to redis.register_function must be a function"
				}
				f.fn = fn
			case "description":
				s, ok := v.(lua.LString)
				if !ok {
					return f, "ERR description argument given to redis.register_function must be a string"
				}
				d := string(s)
				f.desc = &d
			case "flags":
				ft, ok := v.(*lua.LTable)
				if !ok {
					return f, "ERR flags argument to redis.register_function must be a table representing function flags"
				}
				for i := 1; i <= ft.Len(); i++ {
					s, ok := ft.RawGetInt(i).(lua.LString)
					if !ok || !slices.Contains(functionFlags, string(s)) {
						return f, "ERR unknown flag given"
					}
					f.flags = append(f.flags, string(s))
				}
			default:
				return f, "ERR unknown argument given to redis.register_function"
			}
		}
		switch {
		case f.name == "":
			return f, "ERR redis.register_function must get a function name argument"
		case f.fn == nil:
			return f, "ERR redis.register_function must get a callback argument"
		}
	case 2:
		// A number is a string to Lua's C API, and so a name.
		name := L.Get(1)
		if !lua.LVCanConvToString(name) {
			return f, "ERR first argument to redis.register_function must be a string"
		}
		fn, ok := L.Get(2).(*lua.LFunction)
		if !ok {
			return f, "ERR second argument to redis.register_function must be a function"
		}
		f.name, f.fn = lua.LVAsString(name), fn
	default:
		return f, "ERR wrong number of arguments to redis.register_function"
	}
	return f, ""
}

// loadLibrary checks and runs code as FUNCTION LOAD does and returns the
// library to store. replace allows a library of the same name; others
// must not register the same functions (ignoring those in skip).
func loadLibrary(v env, code []byte, replace bool, skip map[string]bool) (*keyspace.Library, error) {
	name, err := parseLibrary(code)
	if err != nil {
		return nil, err
	}
	if _, ok := v.ks.Library(name); ok && !replace {
		return nil, ReplyError("ERR Library '" + name + "' already exists")
	}
	r := &scriptRun{x: v.x, ks: v.ks, h: v.h, id: name, chunk: functionChunk}
	L := r.open()
	defer L.Close()
	r.sandbox(nil, nil)
	fns, err := r.runLibrary(code, true)
	if err != nil {
		return nil, err
	}
	lib := &keyspace.Library{Name: name, Code: code}
	for _, f := range fns {
		if other, ok := v.ks.FunctionLibrary(f.name); ok && other.Name != name && !skip[other.Name] {
			return nil, ReplyError("ERR Function " + f.name + " already exists")
		}
		lib.Functions = append(lib.Functions, f.name)
	}
	slices.Sort(lib.Functions)
	return lib, nil
}

func execFunction(v env, c *Cmd) Result {
	switch string(c.Args[0]) {
	case "load":
		lib, err := loadLibrary(v, c.Args[2], len(c.Args[1]) > 0, nil)
		if err != nil {
			return resErr(err)
		}
		v.ks.StoreLibrary(lib)
		return resBulk([]byte(lib.Name))
	case "delete":
		if !v.ks.DeleteLibrary(string(c.Args[1])) {
			return resErr(ErrLibraryNotFound)
		}
		return resOK
	case "flush":
		v.ks.FlushLibraries()
		return resOK
	}
	return execFunctionRestore(v, c.Args[1], string(c.Args[2]))
}

// dumpLibraries is FUNCTION DUMP's payload.
func dumpLibraries(libs []*keyspace.Library) []byte {
	b := append([]byte("HCFN"), 1)
	b = binary.AppendUvarint(b, uint64(len(libs)))
	for _, l := range libs {
		b = binary.AppendUvarint(b, uint64(len(l.Code)))
		b = append(b, l.Code...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// undumpLibraries reads a payload of dumpLibraries.
func undumpLibraries(p []byte) ([][]byte, bool) {
	if len(p) < 9 || string(p[:4]) != "HCFN" || p[4] != 1 {
		return nil, false
	}
	body := p[:len(p)-4]
	if binary.BigEndian.Uint32(p[len(p)-4:]) != crc32.ChecksumIEEE(body) {
		return nil, false
	}
	body = body[5:]
	n, k := binary.Uvarint(body)
	if k <= 0 {
		return nil, false
	}
	body = body[k:]
	var codes [][]byte
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(body)
		if k <= 0 || uint64(len(body)-k) < l {
			return nil, false
		}
		codes = append(codes, body[k:k+int(l)])
		body = body[k+int(l):]
	}
	return codes, len(body) == 0
}

// execFunctionRestore loads a dump's libraries all or none: policy flush
// empties the libraries first, append refuses a library that exists,
// replace replaces it.
func execFunctionRestore(v env, payload []byte, policy string) Result {
	codes, ok := undumpLibraries(payload)
	if !ok {
		return resErr(ErrBadDump)
	}
	skip := map[string]bool{}
	if policy == "flush" {
		for _, l := range v.ks.Libraries() {
			skip[l.Name] = true
		}
	}
	var libs []*keyspace.Library
	for _, code := range codes {
		lib, err := loadLibrary(v, code, policy != "append", skip)
		if err != nil {
			return resErr(err)
		}
		for _, other := range libs {
			if other.Name == lib.Name {
				return resErr(ReplyError("ERR Library '" + lib.Name + "' already exists"))
			}
		}
		skip[lib.Name] = true
		libs = append(libs, lib)
	}
	if policy == "flush" {
		v.ks.FlushLibraries()
	}
	for _, l := range libs {
		v.ks.StoreLibrary(l)
	}
	return resOK
}

func execFunctionRead(v env, c *Cmd) Result {
	switch string(c.Args[0]) {
	case "dump":
		return resBulk(dumpLibraries(v.ks.Libraries()))
	case "stats":
		return Result{Kind: KindArray, Array: []Result{
			resBulk([]byte("running_script")), resNil,
			resBulk([]byte("engines")), {Kind: KindArray, Array: []Result{
				resBulk([]byte("LUA")), {Kind: KindArray, Array: []Result{
					resBulk([]byte("libraries_count")), resInt(int64(len(v.ks.Libraries()))),
					resBulk([]byte("functions_count")), resInt(int64(v.ks.FunctionCount())),
				}},
			}},
		}}
	case "list":
		return listLibraries(v, c.Args[1:])
	}
	return resErr(ErrUnknownCommand)
}

// listLibraries is FUNCTION LIST: Args[0] is the LIBRARYNAME pattern (or
// empty), Args[1] "withcode" or empty. Libraries come sorted by name, and
// so do their functions.
func listLibraries(v env, args [][]byte) Result {
	var pattern []byte
	withCode := false
	if len(args) > 0 {
		pattern = args[0]
	}
	if len(args) > 1 {
		withCode = len(args[1]) > 0
	}
	var out []Result
	for _, l := range v.ks.Libraries() {
		if len(pattern) > 0 && !Match(pattern, []byte(l.Name)) {
			continue
		}
		registry := libraryFunctions(v, l)
		slices.SortFunc(registry, func(a, b registered) int { return strings.Compare(a.name, b.name) })
		var fns []Result
		for _, f := range registry {
			var fl []Result
			for _, flag := range f.flags {
				fl = append(fl, resStatus(flag))
			}
			desc := resNil
			if f.desc != nil {
				desc = resBulk([]byte(*f.desc))
			}
			fns = append(fns, Result{Kind: KindArray, Array: []Result{
				resBulk([]byte("name")), resBulk([]byte(f.name)),
				resBulk([]byte("description")), desc,
				resBulk([]byte("flags")), {Kind: KindArray, Array: fl},
			}})
		}
		e := []Result{
			resBulk([]byte("library_name")), resBulk([]byte(l.Name)),
			resBulk([]byte("engine")), resBulk([]byte("LUA")),
			resBulk([]byte("functions")), {Kind: KindArray, Array: fns},
		}
		if withCode {
			e = append(e, resBulk([]byte("library_code")), resBulk(l.Code))
		}
		out = append(out, Result{Kind: KindArray, Array: e})
	}
	return Result{Kind: KindArray, Array: out}
}

// libraryFunctions runs a stored library's code to learn its functions'
// flags and descriptions: they are not stored, the code is the state.
func libraryFunctions(v env, l *keyspace.Library) []registered {
	r := &scriptRun{x: v.x, ks: v.ks, h: v.h, id: l.Name, chunk: functionChunk}
	L := r.open()
	defer L.Close()
	r.sandbox(nil, nil)
	fns, _ := r.runLibrary(l.Code, true)
	return fns
}

// execFCall runs FCALL or FCALL_RO: Args[0] is the function, then N keys,
// then the arguments.
func execFCall(v env, c *Cmd) Result {
	name := string(c.Args[0])
	lib, ok := v.ks.FunctionLibrary(name)
	if !ok {
		return resErr(ErrFunctionNotFound)
	}
	r := &scriptRun{x: v.x, ks: v.ks, h: v.h, db: c.DB, id: name, chunk: functionChunk}
	L := r.open()
	defer L.Close()
	r.sandbox(nil, nil)
	fns, err := r.runLibrary(lib.Code, false)
	if err != nil {
		return resErr(err)
	}
	i := slices.IndexFunc(fns, func(f registered) bool { return strings.EqualFold(f.name, name) })
	if i < 0 {
		return resErr(ErrFunctionNotFound)
	}
	f := fns[i]
	r.readOnly = slices.Contains(f.flags, "no-writes")
	if c.Op == OpFCallRO && !r.readOnly {
		return resErr(ErrWriteFunctionRO)
	}
	r.steps.left = scriptInstructionLimit // the library's own run is not the function's
	L.Push(f.fn)
	L.Push(bytesTable(L, c.Args[1:1+c.N]))
	L.Push(bytesTable(L, c.Args[1+c.N:]))
	if err := L.PCall(2, 1, nil); err != nil {
		return resErr(ReplyError(r.errorReply(err)))
	}
	ret := L.Get(-1)
	L.Pop(1)
	return r.toResult(ret, 0)
}

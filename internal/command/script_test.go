package command

import (
	"errors"
	"strings"
	"testing"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

func eval(ks *keyspace.Keyspace, h Header, body string, keysAndArgs ...string) Result {
	args := [][]byte{b(body)}
	for _, a := range keysAndArgs {
		args = append(args, b(a))
	}
	r := testExec.Apply(ks, h, Tx{{Op: OpEval, Args: args}})
	if r.Err != nil {
		return resErr(r.Err)
	}
	return r.Results[0]
}

// A runaway script stops after the same number of instructions on every
// node, with its earlier writes kept (as redis keeps them), and the next
// script runs normally.
func TestScriptInstructionBudget(t *testing.T) {
	defer func(n int64) { scriptInstructionLimit = n }(scriptInstructionLimit)
	scriptInstructionLimit = 100000
	ks := keyspace.New(16)
	// Without a call builder, redis.call fails; count in a global-free loop.
	r := eval(ks, Header{Now: 1}, "local n = 0\nwhile true do n = n + 1 end")
	if r.Kind != KindError || !strings.Contains(r.Err.Error(), "Script exceeded the limit of 100000 Lua instructions") ||
		!strings.HasSuffix(r.Err.Error(), ", on @user_script:2.") {
		t.Fatalf("runaway script: %+v", r)
	}
	// Deterministic: the loop ends at the same count every time.
	for i := 0; i < 3; i++ {
		r := eval(ks, Header{Now: 1}, "local n = 0\nlocal ok = pcall(function() while true do n = n + 1 end end)\nreturn n")
		if r.Kind != KindError {
			t.Fatalf("pcall must not swallow the budget: %+v", r)
		}
	}
	if r := eval(ks, Header{Now: 1}, "return 7"); r.Kind != KindInt || r.Int != 7 {
		t.Fatalf("next script: %+v", r)
	}
}

// math.random is the same sequence on every node and every run.
func TestScriptRandomIsDeterministic(t *testing.T) {
	body := "return {math.random(1000000), math.random(1000000), math.random(5, 6)}"
	a := eval(keyspace.New(16), Header{Now: 1}, body)
	c := eval(keyspace.New(16), Header{Now: 99}, body)
	if a.Kind != KindArray || len(a.Array) != 3 {
		t.Fatalf("random: %+v", a)
	}
	for i := range a.Array {
		if a.Array[i].Int != c.Array[i].Int {
			t.Fatalf("runs differ: %+v vs %+v", a.Array, c.Array)
		}
	}
	if a.Array[0].Int == a.Array[1].Int {
		t.Fatalf("not random at all: %+v", a.Array)
	}
	if v := a.Array[2].Int; v != 5 && v != 6 {
		t.Fatalf("math.random(5, 6) = %d", v)
	}
}

// The sandbox: no file, process or code-loading access; globals read-only.
func TestScriptSandbox(t *testing.T) {
	ks := keyspace.New(16)
	for _, name := range []string{"os", "io", "loadstring", "load", "dofile", "require", "rawset", "setfenv", "getfenv", "print", "debug", "package"} {
		r := eval(ks, Header{Now: 1}, "return "+name)
		want := "Script attempted to access nonexistent global variable '" + name + "'"
		if r.Kind != KindError || !strings.Contains(r.Err.Error(), want) {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if r := eval(ks, Header{Now: 1}, "setmetatable(_G, nil)"); r.Kind != KindError {
		t.Errorf("the globals' metatable must be protected: %+v", r)
	}
	// A fresh state per run: nothing carries over.
	eval(ks, Header{Now: 1}, "string.leak = 1")
	if r := eval(ks, Header{Now: 1}, "return string.leak"); r.Kind != KindNil {
		t.Errorf("library change leaked into the next script: %+v", r)
	}
}

// EVAL caches the script in the replicated keyspace; EVALSHA finds it, also
// after a snapshot round trip; SCRIPT FLUSH forgets it.
func TestScriptCacheIsReplicatedState(t *testing.T) {
	ks := keyspace.New(16)
	eval(ks, Header{Now: 1}, "return 1")
	sha := ScriptSHA(b("return 1"))
	r := testExec.Apply(ks, Header{Now: 1}, Tx{{Op: OpEvalSha, Args: [][]byte{b(strings.ToUpper(sha))}}})
	if r.Err != nil || r.Results[0].Int != 1 {
		t.Fatalf("evalsha: %+v", r)
	}
	testExec.Apply(ks, Header{Now: 1}, Tx{{Op: OpScriptFlush}})
	r = testExec.Apply(ks, Header{Now: 1}, Tx{{Op: OpEvalSha, Args: [][]byte{b(sha)}}})
	if r.Results[0].Err != ErrNoScript {
		t.Fatalf("after flush: %+v", r.Results[0])
	}
	if r := testExec.Apply(ks, Header{Now: 1}, Tx{{Op: OpScriptLoad, Args: [][]byte{b("return +")}}}); r.Results[0].Kind != KindError || ks.ScriptCount() != 0 {
		t.Fatalf("a script that does not compile must not be cached: %+v", r.Results[0])
	}
}

func TestScriptArgsAreValidatedAtDecode(t *testing.T) {
	tx := Tx{{Op: OpEval, N: 2, Args: [][]byte{b("return 1"), b("k")}}}
	if _, _, err := DecodeBatch(EncodeBatch(nil, Header{}, []Tx{tx})); err == nil {
		t.Fatal("more keys than arguments accepted")
	}
}

// What a script changes in the libraries (cjson's configuration, a field
// it replaced) is gone for the next script: redis-server keeps it, but a
// node that restarted from a snapshot would not, so hatcheck never does.
func TestScriptLibrariesStartAfresh(t *testing.T) {
	ks := keyspace.New(16)
	r := eval(ks, Header{Now: 1}, "cjson.encode_number_precision(3) cjson.encode = nil return 1")
	if r.Kind != KindInt {
		t.Fatalf("first script: %+v", r)
	}
	r = eval(ks, Header{Now: 1}, "return cjson.encode(1/3)")
	if r.Kind != KindBulk || string(r.Bulk) != "0.33333333333333" {
		t.Fatalf("second script saw the first one's cjson: %+v", r)
	}
}

// Objects are encoded in the order their keys were set, the same on every
// node (never in Go's map order).
func TestScriptLibrariesEncodeInInsertionOrder(t *testing.T) {
	body := "local t = {} for i = 1, 50 do t['k' .. i] = i end t[0] = 0 t.x = {y = 1, z = 2} " +
		"return {cjson.encode(t), cmsgpack.pack(t), cjson.encode(cjson.decode(cjson.encode(t)))}"
	first := eval(keyspace.New(16), Header{Now: 1}, body)
	if first.Kind != KindArray || len(first.Array) != 3 {
		t.Fatalf("encode: %+v", first)
	}
	if !strings.HasPrefix(string(first.Array[0].Bulk), `{"k1":1,"k2":2,`) || string(first.Array[0].Bulk) != string(first.Array[2].Bulk) {
		t.Fatalf("order: %s / %s", first.Array[0].Bulk, first.Array[2].Bulk)
	}
	for i := 0; i < 20; i++ {
		again := eval(keyspace.New(16), Header{Now: 1}, body)
		for j := range first.Array {
			if string(again.Array[j].Bulk) != string(first.Array[j].Bulk) {
				t.Fatalf("run %d differs: %q vs %q", i, again.Array[j].Bulk, first.Array[j].Bulk)
			}
		}
	}
}

// EVAL_RO and EVALSHA_RO are reads: Read runs them (no log), their
// scripts read, and a command that writes is refused before it runs.
func TestReadOnlyScriptsAreReads(t *testing.T) {
	if OpEvalRO.IsWrite() || OpEvalShaRO.IsWrite() {
		t.Fatal("EVAL_RO must be a read")
	}
	ks := keyspace.New(16)
	testExec.Apply(ks, Header{Now: 1}, Tx{{Op: OpSet, Key: b("k"), Args: [][]byte{b("v")}}, {Op: OpScriptLoad, Args: [][]byte{b("return redis.call('get', KEYS[1])")}}})
	ro := func(op Op, body string, keysAndArgs ...string) Result {
		c := Cmd{Op: op, N: 1, Args: [][]byte{b(body)}}
		for _, a := range keysAndArgs {
			c.Args = append(c.Args, b(a))
		}
		return testExec.Read(ks, 1, &c)
	}
	if r := ro(OpEvalRO, "return KEYS[1]", "k"); r.Kind != KindBulk || string(r.Bulk) != "k" {
		t.Fatalf("EVAL_RO: %+v", r)
	}
	sha := ScriptSHA([]byte("return redis.call('get', KEYS[1])"))
	// The test executor has no call builder: redis.call fails, but the
	// script was found.
	if r := ro(OpEvalShaRO, sha, "k"); r.Kind == KindError && errors.Is(r.Err, ErrNoScript) {
		t.Fatalf("EVALSHA_RO of a loaded script: %+v", r)
	}
	if r := ro(OpEvalShaRO, "ffff", "k"); r.Kind != KindError || !errors.Is(r.Err, ErrNoScript) {
		t.Fatalf("EVALSHA_RO of an unknown script: %+v", r)
	}
	// EVAL_RO leaves the replicated cache alone: it is not in the log.
	if _, ok := ks.Script(ScriptSHA([]byte("return KEYS[1]"))); ok {
		t.Fatal("EVAL_RO cached its script")
	}
}

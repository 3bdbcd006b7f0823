package command

import (
	"bytes"
	"errors"
	"testing"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

const testLib = "#!lua name=lib\nredis.register_function('f', function(keys, args) return {keys[1], args[1]} end)\n" +
	"redis.register_function{function_name='g', callback=function() return 1 end, flags={'no-writes'}}"

func function(ks *keyspace.Keyspace, args ...string) Result {
	c := Cmd{Op: OpFunction}
	for _, a := range args {
		c.Args = append(c.Args, b(a))
	}
	return testExec.Apply(ks, Header{Now: 1}, Tx{c}).Results[0]
}

// FUNCTION DUMP's payload restores under each policy, all or nothing, and
// a damaged payload is refused.
func TestFunctionDumpRestore(t *testing.T) {
	ks := keyspace.New(16)
	if r := function(ks, "load", "", testLib); r.Kind != KindBulk || string(r.Bulk) != "lib" {
		t.Fatalf("load: %+v", r)
	}
	dump := testExec.Read(ks, 1, &Cmd{Op: OpFunctionRead, Args: [][]byte{b("dump")}})
	if dump.Kind != KindBulk {
		t.Fatalf("dump: %+v", dump)
	}
	other := keyspace.New(16)
	if r := function(other, "restore", string(dump.Bulk), "append"); r.Kind != KindOK {
		t.Fatalf("restore: %+v", r)
	}
	if l, ok := other.FunctionLibrary("F"); !ok || l.Name != "lib" || !bytes.Equal(l.Code, []byte(testLib)) {
		t.Fatalf("restored: %+v", l)
	}
	if r := function(other, "restore", string(dump.Bulk), "append"); r.Kind != KindError || r.Err.Error() != "ERR Library 'lib' already exists" {
		t.Fatalf("append over an existing library: %+v", r)
	}
	for _, policy := range []string{"replace", "flush"} {
		if r := function(other, "restore", string(dump.Bulk), policy); r.Kind != KindOK {
			t.Fatalf("%s: %+v", policy, r)
		}
	}
	bad := bytes.Clone(dump.Bulk)
	bad[len(bad)/2] ^= 1
	if r := function(other, "restore", string(bad), "flush"); r.Kind != KindError || !errors.Is(r.Err, ErrBadDump) {
		t.Fatalf("damaged payload: %+v", r)
	}
	if other.FunctionCount() != 2 {
		t.Fatalf("a refused restore changed the libraries: %d functions", other.FunctionCount())
	}
}

// FCALL_RO is a read; it runs no-writes functions only.
func TestFCallRO(t *testing.T) {
	ks := keyspace.New(16)
	function(ks, "load", "", testLib)
	fcall := func(op Op, name string) Result {
		return testExec.Read(ks, 1, &Cmd{Op: op, Args: [][]byte{b(name)}})
	}
	if r := fcall(OpFCallRO, "g"); r.Kind != KindInt || r.Int != 1 {
		t.Fatalf("FCALL_RO g: %+v", r)
	}
	if r := fcall(OpFCallRO, "f"); r.Kind != KindError || !errors.Is(r.Err, ErrWriteFunctionRO) {
		t.Fatalf("FCALL_RO f: %+v", r)
	}
	if r := fcall(OpFCall, "f"); r.Kind != KindError || !errors.Is(r.Err, ErrUnknownCommand) {
		t.Fatalf("FCALL is a write, refused by Read: %+v", r)
	}
}

// Libraries are in snapshots (version 3); a keyspace without libraries
// still writes version 2, which the release before reads.
func TestFunctionLibrariesInSnapshots(t *testing.T) {
	ks := keyspace.New(16)
	var empty bytes.Buffer
	v := ks.View()
	if err := v.Encode(&empty); err != nil || empty.Bytes()[4] != 2 {
		t.Fatalf("empty snapshot: version %d, %v", empty.Bytes()[4], err)
	}
	v.Release()
	function(ks, "load", "", testLib)
	var buf bytes.Buffer
	v = ks.View()
	defer v.Release()
	if err := v.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := keyspace.Decode(&buf, 16)
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := got.FunctionLibrary("g"); !ok || l.Name != "lib" || len(l.Functions) != 2 {
		t.Fatalf("decoded: %+v", l)
	}
	r := testExec.Read(got, 1, &Cmd{Op: OpFCallRO, Args: [][]byte{b("g")}})
	if r.Kind != KindInt || r.Int != 1 {
		t.Fatalf("FCALL_RO after restore: %+v", r)
	}
}

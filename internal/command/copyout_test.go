package command

import (
	"bytes"
	"testing"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Values in results are copies: the keyspace keeps strings in an arena
// whose slots later writes reuse, and a Result outlives the lock it was
// made under. Each case reads "old" in some way, then rewrites keys of the
// same size until the freed slot has surely been reused, then checks the
// reply. (Scripts need no case: a value becomes a Lua string, a copy.)
func TestResultsDoNotAliasTheArena(t *testing.T) {
	old := bytes.Repeat([]byte("o"), 100)
	set := func(key string) Cmd { return Cmd{Op: OpSet, Key: b(key), Args: [][]byte{old}} }
	churn := func(ks *keyspace.Keyspace) {
		for i := 0; i < 8; i++ {
			apply(ks, 1, Cmd{Op: OpSet, Key: b("k"), Args: [][]byte{bytes.Repeat([]byte("N"), 100)}},
				Cmd{Op: OpSet, Key: b("j"), Args: [][]byte{bytes.Repeat([]byte("M"), 100)}})
		}
	}
	for name, get := range map[string]func(ks *keyspace.Keyspace) []byte{
		"GET": func(ks *keyspace.Keyspace) []byte { return testExec.Read(ks, 1, &Cmd{Op: OpGet, Key: b("k")}).Bulk },
		"MGET": func(ks *keyspace.Keyspace) []byte {
			return testExec.Read(ks, 1, &Cmd{Op: OpMGet, Args: [][]byte{b("k")}}).Array[0].Bulk
		},
		"GETDEL": func(ks *keyspace.Keyspace) []byte { return apply(ks, 1, Cmd{Op: OpGetDel, Key: b("k")})[0].Bulk },
		"GETEX": func(ks *keyspace.Keyspace) []byte {
			return apply(ks, 1, Cmd{Op: OpGetEx, Key: b("k"), Flags: FlagExpireRel, N: 1000})[0].Bulk
		},
		"SET GET": func(ks *keyspace.Keyspace) []byte {
			return apply(ks, 1, Cmd{Op: OpSet, Key: b("k"), Args: [][]byte{bytes.Repeat([]byte("x"), 100)}, Flags: FlagGet})[0].Bulk
		},
	} {
		ks := keyspace.New(16)
		apply(ks, 1, set("k"))
		got := get(ks)
		churn(ks)
		if !bytes.Equal(got, old) {
			t.Errorf("%s: reply changed to %.10q… by later writes", name, got)
		}
	}
}

// RENAME moves a value whose slot it frees.
func TestRenameKeepsValue(t *testing.T) {
	ks := keyspace.New(16)
	val := bytes.Repeat([]byte("r"), 300)
	apply(ks, 1, Cmd{Op: OpSet, Key: b("src"), Args: [][]byte{val}})
	apply(ks, 1, Cmd{Op: OpRename, Key: b("src"), Args: [][]byte{b("dst")}})
	apply(ks, 1, Cmd{Op: OpSet, Key: b("src"), Args: [][]byte{bytes.Repeat([]byte("Z"), 300)}})
	if r := testExec.Read(ks, 1, &Cmd{Op: OpGet, Key: b("dst")}); !bytes.Equal(r.Bulk, val) {
		t.Fatalf("dst = %.10q…", r.Bulk)
	}
	if ks.Len(0) != 2 {
		t.Fatalf("%d keys", ks.Len(0))
	}
}

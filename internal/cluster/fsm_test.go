package cluster

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// A snapshot is encoded after later applies overwrote and deleted every
// key it holds, and still holds the values of the moment it was taken;
// reads made before those applies keep their values too (results never
// alias the keyspace's arena).
func TestSnapshotBesideApplies(t *testing.T) {
	f := newFSM(16, command.NewExecutor(nil), command.Ops())
	set := func(index uint64, val string, keys int) {
		var txs []command.Tx
		for i := 0; i < keys; i++ {
			txs = append(txs, command.Tx{{Op: command.OpSet, Key: []byte(fmt.Sprint("k", i)), Args: [][]byte{[]byte(fmt.Sprint(val, i))}}})
		}
		f.Apply(index, command.EncodeBatch(nil, command.Header{Now: 1000}, txs))
	}
	set(1, "before-", 500)
	var read command.Result
	f.read(func(ks *keyspace.Keyspace) {
		read = f.exec.Read(ks, 1000, &command.Cmd{Op: command.OpGet, Key: []byte("k7")})
	})
	encode := f.Snapshot()
	set(2, "after-", 500)
	var txs []command.Tx
	for i := 0; i < 250; i++ {
		txs = append(txs, command.Tx{{Op: command.OpDel, Args: [][]byte{[]byte(fmt.Sprint("k", i))}}})
	}
	f.Apply(3, command.EncodeBatch(nil, command.Header{Now: 1000}, txs))
	set(4, "later-", 100)

	var buf bytes.Buffer
	if err := encode(&buf); err != nil {
		t.Fatal(err)
	}
	if string(read.Bulk) != "before-7" {
		t.Fatalf("earlier read now %q", read.Bulk)
	}
	g := newFSM(16, command.NewExecutor(nil), command.Ops())
	if err := g.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	g.read(func(ks *keyspace.Keyspace) {
		if ks.Len(0) != 500 {
			t.Fatalf("%d keys restored", ks.Len(0))
		}
		for i := 0; i < 500; i++ {
			if e := ks.Get(0, fmt.Sprint("k", i), 1000); e == nil || string(e.Str) != fmt.Sprint("before-", i) {
				t.Fatalf("k%d = %v", i, e)
			}
		}
	})
	f.read(func(ks *keyspace.Keyspace) {
		if e := ks.Get(0, "k0", 1000); ks.Len(0) != 350 || e == nil || string(e.Str) != "later-0" {
			t.Fatalf("live keyspace: %d keys, k0 = %v", ks.Len(0), e)
		}
	})
}

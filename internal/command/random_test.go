package command

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// SPOP, and the random reads inside a transaction, choose alike on every
// node: on a keyspace that applied the whole log, and on one restored from
// a snapshot half-way (whose index lays the keys out differently).
func TestRandomChoicesAreTheSameOnEveryReplica(t *testing.T) {
	var txs []Tx
	for i := 0; i < 60; i++ {
		txs = append(txs, Tx{
			{Op: OpSAdd, Key: b(fmt.Sprint("s", i%3)), Args: [][]byte{b(fmt.Sprint("m", i)), b(fmt.Sprint(i))}},
			{Op: OpHSet, Key: b("h"), Args: [][]byte{b(fmt.Sprint("f", i)), b("v")}},
			{Op: OpSet, Key: b(fmt.Sprint("k", i)), Args: [][]byte{b("v")}},
		})
		if i%4 == 3 {
			txs = append(txs, Tx{
				{Op: OpSPop, Key: b(fmt.Sprint("s", i%3)), Args: [][]byte{nil}},
				{Op: OpSPop, Key: b(fmt.Sprint("s", (i+1)%3)), Args: [][]byte{b("2")}},
				{Op: OpSRandMember, Key: b("s0"), Args: [][]byte{b("-3")}},
				{Op: OpHRandField, Key: b("h"), Args: [][]byte{b("2"), b("withvalues")}},
				{Op: OpRandomKey},
				{Op: OpDel, Args: [][]byte{b(fmt.Sprint("k", i-1))}},
			})
		}
	}
	run := func(restoreAt int) (string, []byte) {
		ks := keyspace.New(16)
		var out bytes.Buffer
		for i, tx := range txs {
			if i == restoreAt {
				var buf bytes.Buffer
				if err := ks.View().Encode(&buf); err != nil {
					t.Fatal(err)
				}
				var err error
				if ks, err = keyspace.Decode(&buf, 16); err != nil {
					t.Fatal(err)
				}
			}
			ks.BeginEntry(uint64(i + 1))
			res := testExec.Apply(ks, Header{Index: uint64(i + 1), Now: int64(1000 + i)}, tx)
			fmt.Fprintf(&out, "%v\n", res)
		}
		var state bytes.Buffer
		for _, k := range []string{"s0", "s1", "s2", "h"} {
			e := ks.Get(0, k, 1<<40)
			fmt.Fprintf(&state, "%s=%v", k, e)
			if e != nil && e.Set != nil {
				fmt.Fprintf(&state, "%q", e.Set.Members())
			}
		}
		fmt.Fprintf(&state, " used=%d", ks.Used())
		return out.String(), state.Bytes()
	}
	res1, state1 := run(-1)
	res2, state2 := run(len(txs) / 2)
	if res1 != res2 {
		t.Errorf("replies differ between replicas:\n%s\n%s", res1, res2)
	}
	if !bytes.Equal(state1, state2) {
		t.Errorf("replicas differ:\n%s\n%s", state1, state2)
	}
	if !bytes.Contains(state1, []byte("members=")) {
		t.Fatalf("SPOP left no set to compare: %s", state1)
	}
}

// A read served by one node draws from its own source, and never touches
// the keyspace's CAS sequence (reads run concurrently, under a read lock).
func TestRandomReadsLeaveTheKeyspaceAlone(t *testing.T) {
	ks := keyspace.New(16)
	apply(ks, 1, Cmd{Op: OpSAdd, Key: b("s"), Args: [][]byte{b("a"), b("b"), b("c")}})
	before := ks.NextCAS()
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		r := testExec.Read(ks, 2, &Cmd{Op: OpSRandMember, Key: b("s"), Args: [][]byte{nil}})
		seen[string(r.Bulk)] = true
	}
	if after := ks.NextCAS(); after != before+1 {
		t.Errorf("reads used CAS values: %d then %d", before, after)
	}
	if len(seen) != 3 {
		t.Errorf("SRANDMEMBER chose %v out of 200 draws", seen)
	}
}

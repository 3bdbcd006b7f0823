package command

import (
	"fmt"
	"testing"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// popWatcher records what served pops report.
type popWatcher struct{ got []string }

func (w *popWatcher) Publish(_, _ []byte) int64                       { return 0 }
func (w *popWatcher) Notify(int, keyspace.EventClass, string, string) {}
func (w *popWatcher) Popped(token []byte, key string, elems [][]byte) {
	w.got = append(w.got, fmt.Sprintf("%s:%s:%q", token, key, elems))
}

// A pop for a blocked client reports what it took, nothing included, and
// replies as the pop itself would.
func TestServedPopsReportToTheWatcher(t *testing.T) {
	ks := keyspace.New(16)
	w := &popWatcher{}
	ks.SetEvents(w)
	res := apply(ks, 1,
		Cmd{Op: OpLPush, Key: b("q"), Args: [][]byte{b("a"), b("b"), b("c")}},
		Cmd{Op: OpLMPop, N: 2, Flags: FlagLeft | FlagServe, Args: [][]byte{b("none"), b("q"), b("t1")}},
		Cmd{Op: OpLMPop, N: 1, Flags: FlagServe, Args: [][]byte{b("none"), b("t2")}},
		Cmd{Op: OpLMove, Key: b("q"), Flags: FlagServe, Args: [][]byte{b("d"), b("t3")}},
		Cmd{Op: OpLMove, Key: b("q"), Flags: FlagServe, Args: [][]byte{b("d"), b("t4")}},
		Cmd{Op: OpSet, Key: b("s"), Args: [][]byte{b("x")}},
		Cmd{Op: OpLMPop, N: 1, Flags: FlagServe, Args: [][]byte{b("s"), b("t5")}},
	)
	if fmt.Sprint(w.got) != `[t1:q:["a" "b"] t2::[] t3:q:["c"] t4::[] t5::[]]` {
		t.Fatalf("reported %v", w.got)
	}
	if r := res[1]; r.Kind != KindArray || string(r.Array[0].Bulk) != "q" || len(r.Array[1].Array) != 2 {
		t.Fatalf("served LMPOP replied %+v", r)
	}
	if r := res[2]; r.Kind != KindArray || r.Int != -1 || r.Array != nil {
		t.Fatalf("served LMPOP of nothing replied %+v", r)
	}
	if r := res[3]; string(r.Bulk) != "c" || res[4].Kind != KindNil || res[6].Err != ErrWrongType {
		t.Fatalf("served LMOVE replied %+v %+v; LMPOP of a string %+v", r, res[4], res[6])
	}
}

// A null array survives the trip from the leader to a follower.
func TestNullArrayOnTheWire(t *testing.T) {
	got, err := DecodeTxResult(AppendTxResult(nil, TxResult{Results: []Result{nullArray, {Kind: KindArray, Array: []Result{}}}}))
	if err != nil {
		t.Fatal(err)
	}
	if r := got.Results[0]; r.Kind != KindArray || r.Int != -1 || len(r.Array) != 0 {
		t.Fatalf("null array decoded as %+v", r)
	}
	if r := got.Results[1]; r.Kind != KindArray || r.Int != 0 || len(r.Array) != 0 {
		t.Fatalf("empty array decoded as %+v", r)
	}
}

// A log entry of a list command with arguments it cannot hold is refused
// at decode time rather than crashing every node.
func TestListCommandShapesChecked(t *testing.T) {
	for _, c := range []Cmd{
		{Op: OpLTrim, Key: b("k"), Args: [][]byte{b("x"), b("1")}},
		{Op: OpLRange, Key: b("k"), Args: [][]byte{b("0")}},
		{Op: OpLPos, Key: b("k"), Args: [][]byte{b("e"), b("1"), b("-1")}},
		{Op: OpLPos, Key: b("k"), Args: [][]byte{b("e"), b("1"), b("-1"), b("x")}},
		{Op: OpLMPop, Flags: FlagServe, Args: [][]byte{b("token")}},
		{Op: OpLMove, Key: b("k"), Flags: FlagServe, Args: [][]byte{b("token")}},
		{Op: OpLSet, Key: b("k"), Args: [][]byte{b("0")}},
	} {
		if c.validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

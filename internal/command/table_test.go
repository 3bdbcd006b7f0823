package command

import (
	"testing"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// The op table must keep every property the log format and the executor
// had before it existed. These are the rules as they were written then
// (range arithmetic and lists), frozen here: a row that disagrees changes
// how old log entries decode or apply.
func TestOpTableKeepsTheFormatRules(t *testing.T) {
	// Ops numbered after the rules were frozen state their own properties
	// (TestNewOpRows).
	const lastFrozen = OpWatchCheck
	oldIsWrite := func(o Op) bool {
		return (o > OpInvalid && o < opFirstRead) || (o >= OpMCStore && o < opEnd && o != OpScriptExists && o != OpWatchState && o != OpMCGet)
	}
	oldDenyOOM := map[Op]bool{OpSet: true, OpMSet: true, OpAppend: true, OpIncrBy: true, OpHSet: true, OpHIncrBy: true, OpSAdd: true, OpMCStore: true, OpMCIncr: true}
	oldShape := map[Op]argShape{
		OpSet: {1, 1}, OpMSet: {2, 2}, OpDel: {1, 1}, OpAppend: {1, 1}, OpRename: {1, 1},
		OpHSet: {2, 2}, OpHDel: {1, 1}, OpHIncrBy: {1, 1}, OpSAdd: {1, 1}, OpSRem: {1, 1},
		OpMGet: {1, 1}, OpExists: {1, 1}, OpKeys: {1, 1}, OpScan: {3, 1}, OpHGet: {1, 1},
		OpHMGet: {1, 1}, OpHExists: {1, 1}, OpHStrLen: {1, 1}, OpSIsMember: {1, 1}, OpSMIsMember: {1, 1},
		OpMCStore: {1, 1},
		OpEval:    {1, 1}, OpEvalSha: {1, 1}, OpScriptLoad: {1, 1}, OpScriptExists: {1, 1}, OpPublish: {2, 2},
		OpWatchState: {1, 1}, OpWatchCheck: {1, 1},
	}
	names := map[string]Op{}
	for o := OpInvalid + 1; o <= lastFrozen; o++ {
		if o == opFirstRead {
			if o.Valid() {
				t.Fatal("the read marker is a command")
			}
			continue
		}
		if !o.Valid() {
			t.Errorf("op %d has no row", o)
			continue
		}
		row := ops[o]
		if prev, dup := names[row.name]; dup {
			t.Errorf("ops %d and %d are both named %q", prev, o, row.name)
		}
		names[row.name] = o
		if o.hasItemFields() != (o >= OpMCStore) {
			t.Errorf("%s: item fields in the encoding %v", row.name, o.hasItemFields())
		}
		if o > OpWatchCheck {
			continue // written after the table: its row is its only rule
		}
		if o.IsWrite() != oldIsWrite(o) {
			t.Errorf("%s: IsWrite %v", row.name, o.IsWrite())
		}
		if o.DenyOOM() != oldDenyOOM[o] {
			t.Errorf("%s: DenyOOM %v", row.name, o.DenyOOM())
		}
		want, ok := oldShape[o]
		if !ok {
			want = argShape{0, 1}
		}
		if row.args != want {
			t.Errorf("%s: argument shape %v, want %v", row.name, row.args, want)
		}
	}
	if Op(opEnd).Valid() || OpInvalid.Valid() {
		t.Error("out-of-range op valid")
	}
}

// The rows of ops added after the format rules were frozen: whether they
// write, may grow memory, carry the memcached item fields, and their
// argument shape. A change here changes how their log entries decode.
func TestNewOpRows(t *testing.T) {
	type props struct {
		write, denyOOM, item bool
		shape                argShape
	}
	want := map[Op]props{
		OpLPush: {true, true, false, argShape{1, 1}}, OpLPop: {true, false, false, argShape{0, 1}},
		OpLMPop: {true, false, false, argShape{1, 1}}, OpLMove: {true, false, false, argShape{1, 1}},
		OpLSet: {true, true, false, argShape{2, 2}}, OpLInsert: {true, true, false, argShape{2, 2}},
		OpLRem: {true, false, false, argShape{1, 1}}, OpLTrim: {true, false, false, argShape{2, 2}},
		OpLLen: {false, false, false, argShape{0, 1}}, OpLRange: {false, false, false, argShape{2, 2}},
		OpLIndex: {false, false, false, argShape{1, 1}}, OpLPos: {false, false, false, argShape{4, 4}},

		OpGetRange: {false, false, true, argShape{2, 1}}, OpSetRange: {true, true, true, argShape{2, 1}},
		OpIncrByFloat: {true, true, true, argShape{1, 1}}, OpLCS: {false, false, true, argShape{1, 1}},
		OpSetBit: {true, true, true, argShape{1, 1}}, OpGetBit: {false, false, true, argShape{0, 1}},
		OpBitCount: {false, false, true, argShape{0, 1}}, OpBitPos: {false, false, true, argShape{1, 1}},
		OpBitOp: {true, true, true, argShape{2, 1}}, OpBitField: {true, true, true, argShape{0, 4}},
		OpBitFieldRO: {false, false, true, argShape{0, 4}}, OpCopy: {true, true, true, argShape{2, 1}},
		OpMove: {true, false, true, argShape{0, 1}}, OpRandomKey: {false, false, true, argShape{0, 1}},
		OpTouchKeys: {false, false, true, argShape{1, 1}}, OpObject: {false, false, true, argShape{2, 1}},
		OpHScan: {false, false, true, argShape{0, 1}}, OpHRandField: {false, false, true, argShape{2, 1}},
		OpHIncrByFloat: {true, true, true, argShape{2, 1}}, OpSScan: {false, false, true, argShape{0, 1}},
		OpSRandMember: {false, false, true, argShape{1, 1}}, OpSPop: {true, false, true, argShape{1, 1}},
		OpSMove: {true, false, true, argShape{2, 1}}, OpSUnion: {false, false, true, argShape{1, 1}},
		OpSInter: {false, false, true, argShape{1, 1}}, OpSDiff: {false, false, true, argShape{1, 1}},
		OpSUnionStore: {true, true, true, argShape{1, 1}}, OpSInterStore: {true, true, true, argShape{1, 1}},
		OpSDiffStore: {true, true, true, argShape{1, 1}}, OpSInterCard: {false, false, true, argShape{1, 1}},
		OpMCGet:  {false, false, true, argShape{0, 1}},
		OpEvalRO: {false, false, true, argShape{1, 1}}, OpEvalShaRO: {false, false, true, argShape{1, 1}},
		OpFunction: {true, false, true, argShape{1, 1}}, OpFunctionRead: {false, false, true, argShape{1, 1}},
		OpFCall: {true, false, true, argShape{1, 1}}, OpFCallRO: {false, false, true, argShape{1, 1}},

		OpZAdd: {true, true, false, argShape{2, 2}}, OpZRem: {true, false, false, argShape{1, 1}},
		OpZRemRange: {true, false, false, argShape{2, 2}}, OpZPop: {true, false, false, argShape{0, 1}},
		OpZScore: {false, false, false, argShape{1, 1}}, OpZMScore: {false, false, false, argShape{1, 1}},
		OpZCard: {false, false, false, argShape{0, 1}}, OpZCount: {false, false, false, argShape{2, 2}},
		OpZRange: {false, false, false, argShape{4, 4}}, OpZRank: {false, false, false, argShape{1, 1}},
		OpZRangeStore: {true, true, false, argShape{5, 5}}, OpZUnion: {false, false, false, argShape{1, 1}},
		OpZInter: {false, false, false, argShape{1, 1}}, OpZDiff: {false, false, false, argShape{1, 1}},
		OpZUnionStore: {true, true, false, argShape{1, 1}}, OpZInterStore: {true, true, false, argShape{1, 1}},
		OpZDiffStore: {true, true, false, argShape{1, 1}}, OpZInterCard: {false, false, false, argShape{1, 1}},
		OpZRandMember: {false, false, false, argShape{2, 2}}, OpZScan: {false, false, false, argShape{0, 1}},
		OpZMPop: {true, false, false, argShape{1, 1}},

		OpMCMetaGet: {true, false, true, argShape{3, 3}}, OpMCInvalidate: {true, false, true, argShape{0, 1}},
		OpMCStoreStale: {true, true, true, argShape{1, 1}},
		OpACLSetUser:   {true, false, false, argShape{1, 1}}, OpACLDelUser: {true, false, false, argShape{1, 1}},
		OpACLAs: {false, false, false, argShape{1, 1}},
		OpDump:  {false, false, false, argShape{0, 1}}, OpRestore: {true, true, false, argShape{1, 1}},
		OpSort: {false, false, false, argShape{4, 1}}, OpSortStore: {true, true, false, argShape{4, 1}},
		OpSwapDB: {true, false, false, argShape{0, 1}},
		OpXAdd:   {true, true, false, argShape{2, 1}}, OpXTrim: {true, false, false, argShape{2, 1}},
		OpXDel: {true, false, false, argShape{1, 1}}, OpXSetID: {true, true, false, argShape{1, 1}},
		OpXLen: {false, false, false, argShape{0, 1}}, OpXRange: {false, false, false, argShape{2, 1}},
		OpXRead: {false, false, false, argShape{2, 1}}, OpXInfo: {false, false, false, argShape{1, 1}},
	}
	for o := OpWatchCheck + 1; o < opEnd; o++ {
		p, ok := want[o]
		if !ok {
			t.Errorf("op %d (%s) has no expected row here", o, ops[o].name)
			continue
		}
		got := props{o.IsWrite(), o.DenyOOM(), o.hasItemFields(), ops[o].args}
		if got != p {
			t.Errorf("%s: %+v, want %+v", ops[o].name, got, p)
		}
	}
}

func TestOpTableRefusesDuplicates(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("an op listed twice was accepted")
		}
	}()
	newOpTable(stringOps, stringOps[:1])
}

// Dispatch through the table costs no allocation: a GET allocates its key
// as a string and the copy of its value, as it did before the table.
func TestReadDispatchDoesNotAllocate(t *testing.T) {
	ks := keyspace.New(16)
	key := []byte("PHPREDIS_SESSION:0123456789abcdef0123456789abcdef")
	testExec.Apply(ks, Header{Now: 1}, Tx{{Op: OpSet, Key: key, Args: [][]byte{make([]byte, 1024)}}})
	c := &Cmd{Op: OpGet, Key: key}
	if n := testing.AllocsPerRun(100, func() { testExec.Read(ks, 2, c) }); n > 2 {
		t.Fatalf("a GET allocates %v times", n)
	}
}

package command

import (
	"errors"
	"reflect"
	"testing"
)

func TestTxResultRoundTrip(t *testing.T) {
	in := TxResult{Results: []Result{
		{Kind: KindNil},
		{Kind: KindOK},
		{Kind: KindBulk, Bulk: []byte{}},
		{Kind: KindBulk, Bulk: []byte("v\r\n\x00"), Flags: 7, CAS: 1 << 40},
		{Kind: KindInt, Int: -42},
		{Kind: KindStatus, Str: "string"},
		{Kind: KindArray, Array: []Result{{Kind: KindBulk, Bulk: []byte("a")}, {Kind: KindNil}}},
		{Kind: KindError, Err: ErrWrongType},
		{Kind: KindError, Err: errors.New("some other text")},
		{Kind: KindError, Err: ErrNoScript},
	}}
	got, err := DecodeTxResult(AppendTxResult(nil, in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, in)
	}
	// Known errors come back as the same value, so errors.Is works.
	if !errors.Is(got.Results[7].Err, ErrWrongType) {
		t.Fatalf("known error lost its identity: %v", got.Results[7].Err)
	}
	// A ReplyError (a script's own error reply) stays one.
	var re ReplyError
	if !errors.As(got.Results[9].Err, &re) || string(re) != string(ErrNoScript) {
		t.Fatalf("reply error lost its type: %#v", got.Results[9].Err)
	}
	if len(wireErrors)+1 != codeText {
		t.Fatalf("wireErrors has %d entries: the codes after it are fixed, new errors must be ReplyErrors", len(wireErrors))
	}
	failed, err := DecodeTxResult(AppendTxResult(nil, TxResult{Err: ErrOOM}))
	if err != nil || !errors.Is(failed.Err, ErrOOM) || failed.Results != nil {
		t.Fatalf("failed tx: %#v %v", failed, err)
	}
	one, err := DecodeResult(AppendResult(nil, Result{Kind: KindInt, Int: 9}))
	if err != nil || one.Int != 9 || one.Kind != KindInt {
		t.Fatalf("single result: %#v %v", one, err)
	}
}

func TestTxResultDecodeRejectsCorruption(t *testing.T) {
	good := AppendTxResult(nil, TxResult{Results: []Result{{Kind: KindBulk, Bulk: []byte("value")}}})
	for i := range good {
		if _, err := DecodeTxResult(good[:i]); !errors.Is(err, ErrBadEncoding) {
			t.Fatalf("truncated at %d: err = %v", i, err)
		}
	}
	if _, err := DecodeTxResult(append(good, 0)); !errors.Is(err, ErrBadEncoding) {
		t.Fatalf("trailing byte: err = %v", err)
	}
	// Deep nesting is refused rather than recursed into.
	var deep []byte
	for range 100 {
		deep = append(deep, byte(KindArray), 0, 0, 0, 1)
	}
	if _, err := DecodeResult(deep); !errors.Is(err, ErrBadEncoding) {
		t.Fatalf("deep nesting: err = %v", err)
	}
}

// An entry with an op this build does not know says so: a node then stops
// rather than skip it (see cluster's fsm).
func TestUnknownOpIsRecognised(t *testing.T) {
	b := EncodeBatch(nil, Header{}, []Tx{{{Op: Op(Ops()), Key: []byte("k")}}})
	_, _, err := DecodeBatch(b)
	if !errors.Is(err, ErrUnknownOp) || !errors.Is(err, ErrBadEncoding) {
		t.Fatalf("err = %v, want ErrUnknownOp and ErrBadEncoding", err)
	}
	if Ops() < LegacyOps {
		t.Fatalf("Ops() = %d is below LegacyOps %d: op codes were removed", Ops(), LegacyOps)
	}
	if m := (Tx{{Op: OpGet}, {Op: OpSet}, {Op: OpHSet}}).MaxOp(); m != OpGet {
		t.Fatalf("MaxOp = %d", m)
	}
}

// A score (FormDouble), member/score pairs (Pairs) and a script's RESP3
// types (the other forms) keep their marks across
// nodes, and the marks are invisible to a node that does not know them:
// the encoding differs from the plain bulk's or array's in the Str field
// only, which such a node ignores for bulks and arrays.
func TestScoreMarksTravel(t *testing.T) {
	score := Result{Kind: KindBulk, Bulk: []byte("1.5"), Form: FormDouble}
	pairs := Result{Kind: KindArray, Pairs: true, Array: []Result{{Kind: KindBulk, Bulk: []byte("m")}, score}}
	in := TxResult{Results: []Result{score, pairs, {Kind: KindArray, Array: []Result{{Kind: KindArray, Array: []Result{{Kind: KindBulk, Bulk: []byte("m")}, score}}}},
		{Kind: KindBulk, Bulk: []byte("123"), Form: FormBigNumber},
		{Kind: KindBulk, Bulk: []byte("hi"), Form: FormVerbatim, Str: "txt"},
		{Kind: KindInt, Int: 1, Form: FormBool},
		{Kind: KindArray, Form: FormMap, Array: []Result{{Kind: KindBulk, Bulk: []byte("k")}, {Kind: KindInt, Form: FormBool}}},
		{Kind: KindArray, Form: FormSet, Array: []Result{{Kind: KindBulk, Bulk: []byte("m")}}},
		{Kind: KindStatus, Str: "\x00double"}, // a status is text, never a mark
	}}
	got, err := DecodeTxResult(AppendTxResult(nil, in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, in)
	}
	plain := AppendResult(nil, Result{Kind: KindBulk, Bulk: []byte("1.5"), Str: markDouble})
	if string(AppendResult(nil, score)) != string(plain) {
		t.Fatal("a double is not encoded as a bulk whose Str is the mark")
	}
}

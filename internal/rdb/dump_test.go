package rdb

import (
	"bytes"
	"context"
	"errors"
	"math"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// dumpSamples are values of every type: small ones, which redis-server
// 7.0 dumps in its compact encodings (listpack, intset, a quicklist of
// listpacks), and large ones in its plain encodings; integers among the
// strings, which redis stores as integers.
func dumpSamples() []*Record {
	var bigHash, bigSet, bigList [][]byte
	var bigZ [][]byte
	var bigScores []float64
	for i := range 600 {
		n := []byte(strconv.Itoa(i))
		bigHash = append(bigHash, append([]byte("f"), n...), n)
		bigSet = append(bigSet, append([]byte("m"), n...))
		bigList = append(bigList, n)
		bigZ = append(bigZ, append([]byte("z"), n...))
		bigScores = append(bigScores, float64(i)/4)
	}
	return []*Record{
		{Key: []byte("s"), Type: String, Str: []byte("hello")},
		{Key: []byte("int"), Type: String, Str: []byte("12345")},
		{Key: []byte("neg"), Type: String, Str: []byte("-7")},
		{Key: []byte("wide"), Type: String, Str: []byte("4294967296")},
		{Key: []byte("lead"), Type: String, Str: []byte("007")},
		{Key: []byte("bin"), Type: String, Str: []byte("\x00\r\n\xff")},
		{Key: []byte("empty"), Type: String, Str: []byte{}},
		{Key: []byte("long"), Type: String, Str: bytes.Repeat([]byte("ab"), 100)},
		{Key: []byte("h"), Type: Hash, Pairs: [][]byte{[]byte("f1"), []byte("v1"), []byte("f2"), []byte("12")}},
		{Key: []byte("hbig"), Type: Hash, Pairs: bigHash},
		{Key: []byte("iset"), Type: Set, Elems: [][]byte{[]byte("1"), []byte("-5"), []byte("70000"), []byte("9000000000")}},
		{Key: []byte("set"), Type: Set, Elems: [][]byte{[]byte("a"), []byte("b"), []byte("12")}},
		{Key: []byte("sbig"), Type: Set, Elems: bigSet},
		{Key: []byte("l"), Type: List, Elems: [][]byte{[]byte("x"), []byte("1"), []byte("x"), []byte("-300000")}},
		{Key: []byte("lbig"), Type: List, Elems: bigList},
		{Key: []byte("z"), Type: ZSet, Members: [][]byte{[]byte("a"), []byte("b"), []byte("c")}, Scores: []float64{1.5, math.Inf(1), math.Inf(-1)}},
		{Key: []byte("zbig"), Type: ZSet, Members: bigZ, Scores: bigScores},
	}
}

// TestDumpPayloadsRoundTripWithRedisServer: a payload EncodeDump made is
// one redis-server 7.0's RESTORE takes, and dumps back as the same value;
// a payload redis-server's DUMP made (compact encodings included) is one
// DecodeDump reads as the same value.
func TestDumpPayloadsRoundTripWithRedisServer(t *testing.T) {
	c := startRedis(t, t.TempDir(), "dump.rdb")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, want := range dumpSamples() {
		p, err := EncodeDump(want)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Restore(ctx, string(want.Key), 0, string(p)).Err(); err != nil {
			t.Fatalf("%s: redis-server's RESTORE: %v", want.Key, err)
		}
		theirs, err := c.Dump(ctx, string(want.Key)).Result()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeDump([]byte(theirs))
		if err != nil {
			t.Fatalf("%s: reading redis-server's DUMP %q: %v", want.Key, theirs, err)
		}
		got.Key = want.Key
		w := *want
		normalize(got)
		normalize(&w)
		if !reflect.DeepEqual(got, &w) {
			t.Errorf("%s: redis-server's DUMP reads as\n%.300v\nwant %.300v", want.Key, got, &w)
		}
		// Strings: the payload is redis's own, byte for byte (strings
		// longer than 20 bytes excepted: redis compresses those that
		// compress).
		if want.Type == String && len(want.Str) <= 20 && theirs != string(p) {
			t.Errorf("%s: payload %q, redis-server's %q", want.Key, p, theirs)
		}
	}
}

func TestDumpPayloadErrors(t *testing.T) {
	p, err := EncodeDump(&Record{Type: Set, Elems: [][]byte{[]byte("a")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeDump(p); err != nil {
		t.Fatal(err)
	}
	bad := func(p []byte, want error) {
		t.Helper()
		if _, err := DecodeDump(p); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", p, err, want)
		}
	}
	bad(nil, ErrDumpFooter)
	bad(p[:9], ErrDumpFooter)
	flipped := bytes.Clone(p)
	flipped[2] ^= 1
	bad(flipped, ErrDumpFooter)
	newer := bytes.Clone(p)
	newer[len(newer)-10] = 11 // redis 7.2's version
	bad(newer, ErrDumpFooter)
	withSum := func(body []byte) []byte {
		b := append(bytes.Clone(body), dumpVersion, 0)
		return appendCRC(b)
	}
	bad(withSum(nil), ErrDumpData)                    // no value at all
	bad(withSum([]byte{typeSet, 0}), ErrDumpData)     // an empty set
	bad(withSum([]byte{15, 0}), ErrDumpData)          // a stream
	bad(withSum([]byte{typeSet, 20, 1}), ErrDumpData) // truncated, beyond the footer
	if _, err := DecodeDump(withSum([]byte{typeString, 1, 'x', 'y', 'z'})); err != nil {
		t.Errorf("trailing bytes before the footer: %v", err) // redis ignores them
	}
	// A value that runs into the footer is read from it, as redis does.
	if r, err := DecodeDump(withSum([]byte{typeString, 3, 'x'})); err != nil || string(r.Str) != "x\x0a\x00" {
		t.Errorf("a string running into the footer: %q, %v", r.Str, err)
	}
}

func appendCRC(b []byte) []byte {
	sum := crcUpdate(0, b)
	for range 8 {
		b = append(b, byte(sum))
		sum >>= 8
	}
	return b
}

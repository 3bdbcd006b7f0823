package command

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

func b(s string) []byte { return []byte(s) }

func TestBatchRoundTrip(t *testing.T) {
	h := Header{Now: 1700000000123, MaxMemory: 1 << 30, Policy: VolatileLRU}
	txs := []Tx{
		{{Op: OpSet, DB: 3, Flags: FlagNX | FlagExpireRel, N: 1440000, Key: b("PHPREDIS_SESSION:abc"), Args: [][]byte{b("data")}}},
		{{Op: OpIncrBy, N: -5, Key: b("n")}, {Op: OpDel, Args: [][]byte{b("a"), b(""), b("c")}}},
		{{Op: OpMCStore, Key: b("m"), Args: [][]byte{b("v")}, ClientFlags: 0xdeadbeef, CAS: 1 << 40, Flags: FlagNX | FlagExpireAbs, N: 42},
			{Op: OpMCIncr, Key: b("n"), Delta: 1<<64 - 1, Initial: 7, Flags: FlagCreate | FlagDecr}, {Op: OpMCDelete, Key: b("m"), CAS: 3}},
	}
	data := EncodeBatch(nil, h, txs)
	h2, txs2, err := DecodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if h2 != h || fmt.Sprint(txs2) != fmt.Sprint(txs) {
		t.Fatalf("round trip:\n%+v %v\n%+v %v", h, txs, h2, txs2)
	}
	for i := 0; i < len(data); i++ {
		if _, _, err := DecodeBatch(data[:i]); !errors.Is(err, ErrBadEncoding) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	if _, _, err := DecodeBatch(append(data, 0)); !errors.Is(err, ErrBadEncoding) {
		t.Fatal("trailing byte accepted")
	}
}

// apply runs one-command transactions at time now and returns the results.
func apply(ks *keyspace.Keyspace, now int64, cmds ...Cmd) []Result {
	var out []Result
	for _, c := range cmds {
		r := testExec.Apply(ks, Header{Now: now}, Tx{c})
		if r.Err != nil {
			out = append(out, resErr(r.Err))
			continue
		}
		out = append(out, r.Results[0])
	}
	return out
}

func TestRelativeTTLUsesBatchTime(t *testing.T) {
	ks := keyspace.New(16)
	apply(ks, 1000, Cmd{Op: OpSet, Key: b("k"), Args: [][]byte{b("v")}, Flags: FlagExpireRel, N: 500})
	if e := ks.Lookup(0, "k"); e.ExpireAt != 1500 {
		t.Fatalf("expire at %d, want 1500", e.ExpireAt)
	}
	r := testExec.Read(ks, 1499, &Cmd{Op: OpTTL, Key: b("k"), Flags: FlagMillis})
	if r.Int != 1 {
		t.Fatalf("pttl %d", r.Int)
	}
	if r := testExec.Read(ks, 1500, &Cmd{Op: OpGet, Key: b("k")}); r.Kind != KindNil {
		t.Fatalf("expired key readable: %+v", r)
	}
}

func TestDeterminism(t *testing.T) {
	// The same log applied to two keyspaces must give byte-identical
	// snapshots: that is what makes replicas equal.
	var txs []Tx
	for i := 0; i < 200; i++ {
		k := b(fmt.Sprint("k", i%37))
		txs = append(txs,
			Tx{{Op: OpSet, Key: k, Args: [][]byte{b(fmt.Sprint(i))}, Flags: FlagExpireRel, N: int64(i * 10)}},
			Tx{{Op: OpHSet, Key: b(fmt.Sprint("h", i%5)), Args: [][]byte{k, b("v")}}},
			Tx{{Op: OpSAdd, Key: b("s"), Args: [][]byte{k}}},
			Tx{{Op: OpIncrBy, Key: b("ctr"), N: 3}},
			Tx{{Op: OpDelExpired, Args: [][]byte{k}}},
		)
	}
	data := EncodeBatch(nil, Header{Now: 5000}, txs)
	snap := func() []byte {
		ks := keyspace.New(16)
		h, decoded, err := DecodeBatch(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range decoded {
			testExec.Apply(ks, h, tx)
		}
		var buf bytes.Buffer
		if err := ks.View().Encode(&buf); err != nil {
			t.Fatal(err)
		}
		// Map order makes the encoding order vary; compare decoded contents.
		back, err := keyspace.Decode(&buf, 16)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		for i := 0; i < 37; i++ {
			k := fmt.Sprint("k", i)
			fmt.Fprintf(&out, "%s=%v;", k, back.Lookup(0, k))
		}
		fmt.Fprintf(&out, "used=%d", back.Used())
		return out.Bytes()
	}
	if a, b := snap(), snap(); !bytes.Equal(a, b) {
		t.Fatalf("replicas differ:\n%s\n%s", a, b)
	}
}

func TestOOM(t *testing.T) {
	ks := keyspace.New(16)
	apply(ks, 1, Cmd{Op: OpSet, Key: b("big"), Args: [][]byte{bytes.Repeat(b("x"), 1000)}})
	h := Header{Now: 2, MaxMemory: 100}
	if r := testExec.Apply(ks, h, Tx{{Op: OpSet, Key: b("k"), Args: [][]byte{b("v")}}}); !errors.Is(r.Err, ErrOOM) {
		t.Fatalf("noeviction over limit: %+v", r)
	}
	if r := testExec.Apply(ks, h, Tx{{Op: OpGet, Key: b("big")}, {Op: OpDel, Args: [][]byte{b("big")}}}); r.Err != nil {
		t.Fatalf("reads and deletes must pass when over the limit: %v", r.Err)
	}
	apply(ks, 3, Cmd{Op: OpSet, Key: b("big"), Args: [][]byte{bytes.Repeat(b("x"), 1000)}})
	h.Policy = VolatileLRU
	if r := testExec.Apply(ks, h, Tx{{Op: OpSet, Key: b("k"), Args: [][]byte{b("v")}}}); !errors.Is(r.Err, ErrOOM) {
		t.Fatal("volatile-lru with no volatile key must refuse writes")
	}
	h.Policy = AllKeysLRU
	if r := testExec.Apply(ks, h, Tx{{Op: OpSet, Key: b("k"), Args: [][]byte{b("v")}}}); r.Err != nil {
		t.Fatal("allkeys-lru leaves room-making to the evictor")
	}
}

func TestDelExpiredOnlyDeletesExpired(t *testing.T) {
	ks := keyspace.New(16)
	apply(ks, 0,
		Cmd{Op: OpSet, Key: b("old"), Args: [][]byte{b("v")}, Flags: FlagExpireAbs, N: 100},
		Cmd{Op: OpSet, Key: b("new"), Args: [][]byte{b("v")}, Flags: FlagExpireAbs, N: 1000},
	)
	r := apply(ks, 500, Cmd{Op: OpDelExpired, Args: [][]byte{b("old"), b("new"), b("missing")}})
	if r[0].Int != 1 || ks.Lookup(0, "old") != nil || ks.Lookup(0, "new") == nil {
		t.Fatalf("deleted %d; old %v new %v", r[0].Int, ks.Lookup(0, "old"), ks.Lookup(0, "new"))
	}
}

func TestExecutorEdgeCases(t *testing.T) {
	ks := keyspace.New(16)
	r := apply(ks, 10,
		Cmd{Op: OpSet, Key: b("s"), Args: [][]byte{b("1")}},
		Cmd{Op: OpHSet, Key: b("s"), Args: [][]byte{b("f"), b("v")}},
		Cmd{Op: OpRename, Key: b("nokey"), Args: [][]byte{b("x")}},
		Cmd{Op: OpIncrBy, Key: b("s"), N: 1},
		Cmd{Op: OpSAdd, Key: b("set"), Args: [][]byte{b("a")}},
		Cmd{Op: OpSRem, Key: b("set"), Args: [][]byte{b("a")}},
		Cmd{Op: OpExpire, Key: b("s"), N: -1, Flags: FlagExpireRel},
	)
	if !errors.Is(r[1].Err, ErrWrongType) || !errors.Is(r[2].Err, ErrNoSuchKey) || r[3].Int != 2 {
		t.Fatalf("results %+v", r)
	}
	if ks.Lookup(0, "set") != nil {
		t.Fatal("empty set kept")
	}
	if r[6].Int != 1 || ks.Lookup(0, "s") != nil {
		t.Fatal("EXPIRE in the past must delete")
	}
	if got := testExec.Read(ks, 10, &Cmd{Op: OpSet}); got.Kind != KindError {
		t.Fatal("Read must refuse writes")
	}
	if got := apply(ks, 10, Cmd{Op: OpGet, DB: 200, Key: b("k")}); !errors.Is(got[0].Err, ErrBadDB) {
		t.Fatal("database out of range accepted")
	}
}

// TestMemcachedCASFromLogIndex: CAS values come from the log entry's index
// and the order of modifications inside it, so every node that applies the
// same log gives every item the same CAS value.
func TestMemcachedCASFromLogIndex(t *testing.T) {
	store := func(key, val string, cas uint64) Cmd {
		return Cmd{Op: OpMCStore, Key: b(key), Args: [][]byte{b(val)}, CAS: cas}
	}
	var firsts [2][]uint64
	for node := range firsts {
		ks := keyspace.New(16)
		ks.BeginEntry(7)
		r := apply(ks, 1000, store("a", "1", 0), store("b", "2", 0))
		ks.BeginEntry(8)
		r = append(r, apply(ks, 1000, store("a", "3", 0))...)
		for _, x := range r {
			firsts[node] = append(firsts[node], x.CAS)
		}
		want := []uint64{7<<24 + 1, 7<<24 + 2, 8<<24 + 1}
		if fmt.Sprint(firsts[node]) != fmt.Sprint(want) {
			t.Fatalf("CAS values %v, want %v", firsts[node], want)
		}
		// A compare with a stale CAS fails; with the current one it stores.
		ks.BeginEntry(9)
		if r := apply(ks, 1000, store("a", "x", 7<<24+1))[0]; r.Int != Exists {
			t.Fatalf("stale CAS: %+v", r)
		}
		if r := apply(ks, 1000, store("a", "y", 8<<24+1))[0]; r.Int != Stored || r.CAS != 9<<24+1 {
			t.Fatalf("current CAS: %+v", r)
		}
		// A touch keeps the CAS; a delete compares it.
		if r := apply(ks, 1000, Cmd{Op: OpTouch, Key: b("a"), Flags: FlagExpireRel, N: 5000})[0]; r.CAS != 9<<24+1 {
			t.Fatalf("touch: %+v", r)
		}
		if r := apply(ks, 1000, Cmd{Op: OpMCDelete, Key: b("a"), CAS: 1})[0]; r.Int != Exists {
			t.Fatalf("delete with a wrong CAS: %+v", r)
		}
		if r := apply(ks, 1000, Cmd{Op: OpMCDelete, Key: b("a"), CAS: 9<<24 + 1})[0]; r.Int != Stored || ks.Lookup(0, "a") != nil {
			t.Fatalf("delete with the right CAS: %+v", r)
		}
	}
}

func TestParseInt(t *testing.T) {
	good := map[string]int64{"0": 0, "-1": -1, "9223372036854775807": 1<<63 - 1, "-9223372036854775808": -1 << 63}
	for s, want := range good {
		if n, ok := ParseInt(b(s)); !ok || n != want {
			t.Errorf("%q: %d %v", s, n, ok)
		}
	}
	for _, s := range []string{"", "01", "+1", " 1", "1 ", "-0", "-", "9223372036854775808", "1.0", "0x1"} {
		if _, ok := ParseInt(b(s)); ok {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestMatch(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*c", "abbbc", true}, {"a*c", "abd", false},
		{"h?llo", "hello", true}, {"h?llo", "hllo", false}, {"h[ae]llo", "hallo", true},
		{"h[^e]llo", "hello", false}, {"h[a-c]llo", "hbllo", true}, {"h[c-a]llo", "hbllo", true},
		{`h\*llo`, "h*llo", true}, {`h\*llo`, "hello", false}, {"sess:*", "sess:1", true},
		{"[abc", "a", true}, {"**a", "ba", true},
	}
	for _, c := range cases {
		if got := Match(b(c.p), b(c.s)); got != c.want {
			t.Errorf("Match(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(EncodeBatch(nil, Header{Now: 1}, []Tx{{{Op: OpSet, Key: b("k"), Args: [][]byte{b("v")}}}}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, txs, err := DecodeBatch(data)
		if err != nil {
			return
		}
		// Whatever decodes must survive a re-encode unchanged and apply
		// without panicking.
		h2, txs2, err := DecodeBatch(EncodeBatch(nil, h, txs))
		if err != nil || h2 != h || fmt.Sprint(txs2) != fmt.Sprint(txs) {
			t.Fatalf("re-encoding changed the batch: %v", err)
		}
		ks := keyspace.New(4)
		for _, tx := range txs {
			testExec.Apply(ks, h, tx)
		}
	})
}

func BenchmarkApplySet(b *testing.B) {
	ks := keyspace.New(16)
	val := bytes.Repeat([]byte("v"), 1024)
	keys := make([][]byte, 100000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("PHPREDIS_SESSION:%032x", i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		testExec.Apply(ks, Header{Now: 1}, Tx{{Op: OpSet, Key: keys[i%len(keys)], Args: [][]byte{val}, Flags: FlagExpireRel, N: 1440000}})
		i++
	}
}

func BenchmarkEncodeDecodeBatch(b *testing.B) {
	val := bytes.Repeat([]byte("v"), 1024)
	txs := make([]Tx, 64)
	for i := range txs {
		txs[i] = Tx{{Op: OpSet, Key: []byte(fmt.Sprintf("PHPREDIS_SESSION:%032x", i)), Args: [][]byte{val}}}
	}
	buf := make([]byte, 0, 128<<10)
	b.ReportAllocs()
	for b.Loop() {
		buf = EncodeBatch(buf[:0], Header{Now: 1}, txs)
		if _, _, err := DecodeBatch(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadGet is a GET of a 1 KB session through the executor, the
// read path a front end takes (including any copy out of the keyspace).
func BenchmarkReadGet(b *testing.B) {
	ks := keyspace.New(16)
	val := bytes.Repeat([]byte("v"), 1024)
	keys := make([][]byte, 100000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("PHPREDIS_SESSION:%032x", i))
		testExec.Apply(ks, Header{Now: 1}, Tx{{Op: OpSet, Key: keys[i], Args: [][]byte{val}, Flags: FlagExpireRel, N: 1440000}})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := testExec.Read(ks, 2, &Cmd{Op: OpGet, Key: keys[i%len(keys)]})
		if len(r.Bulk) != len(val) {
			b.Fatal("missing")
		}
		i++
	}
}

// testExec runs the tests' commands; its scripts can call no command.
var testExec = NewExecutor(nil)

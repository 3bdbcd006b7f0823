package keyspace

import (
	"bytes"
	"fmt"
	"testing"
)

func str(v string, exp int64) *Entry {
	return &Entry{Type: TypeString, Str: []byte(v), ExpireAt: exp}
}

func TestGetHonoursExpiry(t *testing.T) {
	ks := New(16)
	ks.Put(0, "a", str("1", 1000), 0)
	ks.Put(0, "b", str("2", 0), 0)
	if ks.Get(0, "a", 999) == nil {
		t.Fatal("a missing before expiry")
	}
	if ks.Get(0, "a", 1000) != nil {
		t.Fatal("a present at its expiry time")
	}
	if ks.Lookup(0, "a") == nil {
		t.Fatal("Lookup must still see the expired entry until it is deleted")
	}
	if ks.Len(0) != 2 || ks.VolatileLen(0) != 1 {
		t.Fatalf("len %d volatile %d", ks.Len(0), ks.VolatileLen(0))
	}
	ks.Put(0, "a", str("1", 0), 0)
	if ks.VolatileLen(0) != 0 {
		t.Fatal("replacing with no expiry must leave the volatile index")
	}
}

func TestMemoryAccounting(t *testing.T) {
	ks := New(2)
	if ks.Used() != 0 {
		t.Fatal("empty keyspace uses memory")
	}
	ks.Put(0, "k", str("12345", 0), 0)
	one := ks.Used()
	if one <= 5 {
		t.Fatalf("used %d", one)
	}
	ks.Put(0, "k", str("1234567890", 0), 0)
	if ks.Used() != one+5 {
		t.Fatalf("replace: used %d, want %d", ks.Used(), one+5)
	}
	h, _ := (*Hash)(nil).With([][]byte{[]byte("f"), []byte("v")})
	ks.Put(1, "h", &Entry{Type: TypeHash, Hash: h}, 0)
	ks.Delete(0, "k")
	ks.Flush(1)
	if ks.Used() != 0 {
		t.Fatalf("after deleting everything used = %d", ks.Used())
	}
}

func TestHashKeepsOrderAndIsImmutable(t *testing.T) {
	var pairs [][]byte
	for i := 0; i < 100; i++ { // crosses smallLimit, so the index is built
		pairs = append(pairs, []byte(fmt.Sprint("f", i)), []byte(fmt.Sprint(i)))
	}
	h, added := (*Hash)(nil).With(pairs)
	if added != 100 || h.Len() != 100 {
		t.Fatalf("added %d len %d", added, h.Len())
	}
	h2, added := h.With([][]byte{[]byte("f5"), []byte("x"), []byte("new"), []byte("y")})
	if added != 1 {
		t.Fatalf("added %d", added)
	}
	if v, _ := h.Get("f5"); string(v) != "5" {
		t.Fatal("With changed the original hash")
	}
	if v, _ := h2.Get("f5"); string(v) != "x" {
		t.Fatal("With did not update")
	}
	var order []string
	h2.Each(func(f string, _ []byte) bool { order = append(order, f); return true })
	if order[5] != "f5" || order[100] != "new" {
		t.Fatalf("order: %v", order[:6])
	}
	h3, n := h2.Without([][]byte{[]byte("f0"), []byte("nope")})
	if n != 1 || h3.Len() != 100 || h2.Len() != 101 {
		t.Fatalf("without: n %d len %d/%d", n, h3.Len(), h2.Len())
	}
	if _, ok := h3.Get("f99"); !ok {
		t.Fatal("lookup after Without")
	}
}

func TestSetMembersOrder(t *testing.T) {
	s, _ := (*Set)(nil).With([][]byte{[]byte("10"), []byte("2"), []byte("-1")})
	if got := fmt.Sprint(s.Members()); got != "[-1 2 10]" {
		t.Fatalf("integer set order %s", got)
	}
	s2, _ := s.With([][]byte{[]byte("b"), []byte("a")})
	if got := fmt.Sprint(s2.Members()); got != "[-1 10 2 a b]" {
		t.Fatalf("mixed set order %s", got)
	}
	s3, n := s2.Without([][]byte{[]byte("a"), []byte("a"), []byte("zz")})
	if n != 1 || s3.Len() != 4 || s2.Len() != 5 {
		t.Fatalf("without: %d %d %d", n, s3.Len(), s2.Len())
	}
}

func TestScanVisitsEveryKeyOnce(t *testing.T) {
	ks := New(1)
	for i := 0; i < 5000; i++ {
		ks.Put(0, fmt.Sprint("key", i), str("v", 0), 0)
	}
	seen := map[string]int{}
	cursor, calls := uint64(0), 0
	for {
		cursor = ks.Scan(0, cursor, 100, 0, func(k string, _ *Entry) { seen[k]++ })
		calls++
		if cursor == 0 {
			break
		}
	}
	if len(seen) != 5000 {
		t.Fatalf("saw %d keys", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%s seen %d times", k, n)
		}
	}
	if calls < 10 {
		t.Fatalf("COUNT 100 over 5000 keys finished in %d calls", calls)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	ks := New(16)
	ks.SetStamp(12345)
	ks.Put(0, "s", &Entry{Type: TypeString, Str: []byte("v"), ExpireAt: 999, Flags: 7, CAS: 42}, 0)
	h, _ := (*Hash)(nil).With([][]byte{[]byte("b"), []byte("2"), []byte("a"), []byte("1")})
	ks.Put(3, "h", &Entry{Type: TypeHash, Hash: h}, 0)
	st, _ := (*Set)(nil).With([][]byte{[]byte("x"), []byte("y")})
	ks.Put(15, "set", &Entry{Type: TypeSet, Set: st}, 0)
	ks.StoreScript("e0e1f9fabfc9d4800c877a703b823ac0578ff8db", []byte("return 1"))

	v := ks.View()
	// Writes after the view must not show up in it.
	ks.Put(0, "late", str("x", 0), 0)
	ks.StoreScript("late", []byte("return 2"))
	var buf bytes.Buffer
	if err := v.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(bytes.NewReader(buf.Bytes()), 16)
	if err != nil {
		t.Fatal(err)
	}
	if got.Stamp() != 12345 || got.Len(0) != 1 || got.Len(3) != 1 || got.Len(15) != 1 {
		t.Fatalf("stamp %d lens %d %d %d", got.Stamp(), got.Len(0), got.Len(3), got.Len(15))
	}
	e := got.Lookup(0, "s")
	if string(e.Str) != "v" || e.ExpireAt != 999 || e.Flags != 7 || e.CAS != 42 {
		t.Fatalf("string entry %+v", e)
	}
	var order []string
	got.Lookup(3, "h").Hash.Each(func(f string, _ []byte) bool { order = append(order, f); return true })
	if fmt.Sprint(order) != "[b a]" {
		t.Fatalf("hash order %v", order)
	}
	if !got.Lookup(15, "set").Set.Has("y") {
		t.Fatal("set member lost")
	}
	if got.Used() != ks.Used()-ks.Lookup(0, "late").Size("late") {
		t.Fatalf("used %d vs %d", got.Used(), ks.Used())
	}
	if got.VolatileLen(0) != 1 {
		t.Fatal("volatile index not rebuilt")
	}
	if body, ok := got.Script("e0e1f9fabfc9d4800c877a703b823ac0578ff8db"); !ok || string(body) != "return 1" || got.ScriptCount() != 1 {
		t.Fatalf("scripts: %q %v, %d cached", body, ok, got.ScriptCount())
	}
}

// Snapshots written before scripts were replicated (version 1) still load.
func TestDecodeVersion1(t *testing.T) {
	ks := New(16)
	ks.Put(0, "k", str("value", 0), 0)
	var buf bytes.Buffer
	if err := ks.View().Encode(&buf); err != nil {
		t.Fatal(err)
	}
	old := buf.Bytes()
	old[4] = 1
	got, err := Decode(bytes.NewReader(old), 16)
	if err != nil || got.Len(0) != 1 {
		t.Fatalf("version 1: %v", err)
	}
	old[4] = snapshotVersion + 1
	if _, err := Decode(bytes.NewReader(old), 16); err == nil {
		t.Fatal("a future version must be refused")
	}
}

func TestDecodeRejectsCorruption(t *testing.T) {
	ks := New(16)
	ks.Put(0, "k", str("value", 0), 0)
	ks.StoreScript("sha", []byte("return 1"))
	var buf bytes.Buffer
	if err := ks.View().Encode(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	for i := 0; i < len(good)-1; i++ {
		if _, err := Decode(bytes.NewReader(good[:i]), 16); err == nil {
			t.Fatalf("truncated at %d: no error", i)
		}
	}
	if _, err := Decode(bytes.NewReader(good), 4); err == nil {
		t.Fatal("more databases than configured must be refused")
	}
	bad := append([]byte("XXXX"), good[4:]...)
	if _, err := Decode(bytes.NewReader(bad), 16); err == nil {
		t.Fatal("bad magic accepted")
	}
}

func BenchmarkPutGet(b *testing.B) {
	ks := New(16)
	keys := make([]string, 100000)
	for i := range keys {
		keys[i] = fmt.Sprintf("PHPREDIS_SESSION:%032x", i)
	}
	val := bytes.Repeat([]byte("v"), 1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		ks.Put(0, k, &Entry{Type: TypeString, Str: val, ExpireAt: 1 << 40}, 1)
		if ks.Get(0, k, 2) == nil {
			b.Fatal("missing")
		}
		i++
	}
}

func BenchmarkView(b *testing.B) {
	ks := New(16)
	for i := 0; i < 100000; i++ {
		ks.Put(0, fmt.Sprint("k", i), str("v", 0), 0)
	}
	b.ReportAllocs()
	for b.Loop() {
		ks.View()
	}
}

// ACL users travel in snapshots (version 4); a snapshot without users is
// written as before, so that older nodes read it.
func TestSnapshotCarriesUsers(t *testing.T) {
	b := func(s ...string) [][]byte {
		var out [][]byte
		for _, x := range s {
			out = append(out, []byte(x))
		}
		return out
	}
	ks := New(16)
	var buf bytes.Buffer
	if err := ks.View().Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.Bytes()[4] != 2 {
		t.Fatalf("empty snapshot written as version %d", buf.Bytes()[4])
	}
	ks.SetUser("app1", nil, b("on", "#00", "~app1:*"))
	ks.SetUser("app1", nil, b("+get"))
	ks.SetUser("bob", b("seed"), b("off"))
	ks.SetUser("bob", b("ignored"), b("on", "RESET", "+set"))
	v := ks.View()
	ks.SetUser("late", nil, b("on"))
	buf.Reset()
	if err := v.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.Bytes()[4] != 4 {
		t.Fatalf("snapshot with users written as version %d", buf.Bytes()[4])
	}
	got, err := Decode(bytes.NewReader(buf.Bytes()), 16)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%q", got.UserNames()) != `["app1" "bob"]` {
		t.Fatalf("users %q", got.UserNames())
	}
	if r, _ := got.UserRules("app1"); fmt.Sprintf("%q", r) != `["on" "#00" "~app1:*" "+get"]` {
		t.Fatalf("app1 %q", r)
	}
	if r, _ := got.UserRules("bob"); fmt.Sprintf("%q", r) != `["RESET" "+set"]` {
		t.Fatalf("bob %q", r)
	}
	if !got.DeleteUser("bob") || got.DeleteUser("bob") {
		t.Fatal("DeleteUser")
	}
}

package keyspace

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

// Each walks the state the view was taken at, skipping keys expired at
// now, while writes change every key (run with -race).
func TestViewEachBesideWrites(t *testing.T) {
	ks := New(2)
	for i := range 1000 {
		ks.Put(i%2, fmt.Sprint("key", i), &Entry{Type: TypeString, Str: []byte(fmt.Sprint("v", i)), Flags: uint32(i)}, 0)
	}
	ks.Put(0, "gone", &Entry{Type: TypeString, Str: []byte("x"), ExpireAt: 50}, 0)
	ks.Put(0, "later", &Entry{Type: TypeString, Str: []byte("y"), ExpireAt: 500}, 0)
	h, _ := (*Hash)(nil).With([][]byte{[]byte("f"), []byte("v")})
	ks.Put(1, "hash", &Entry{Type: TypeHash, Hash: h}, 0)
	s, _ := (*Set)(nil).With([][]byte{[]byte("a"), []byte("b")})
	ks.Put(1, "set", &Entry{Type: TypeSet, Set: s}, 0)
	ks.Put(1, "list", &Entry{Type: TypeList, List: NewList([][]byte{[]byte("x"), []byte("y")})}, 0)
	ks.Put(1, "zset", &Entry{Type: TypeZSet, ZSet: NewZSet([]ZElem{{"x", 2}, {"y", 1}})}, 0)
	v := ks.View()
	seen := map[string]string{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer v.Release()
		v.Each(100, func(db int, key []byte, e *Entry) bool {
			id := fmt.Sprint(db, "/", string(key))
			switch e.Type {
			case TypeString:
				seen[id] = fmt.Sprint(string(e.Str), " ", e.Flags, " ", e.ExpireAt)
			case TypeHash:
				b, _ := e.Hash.Get("f")
				seen[id] = "hash " + string(b)
			case TypeSet:
				seen[id] = fmt.Sprint("set ", e.Set.Len())
			case TypeList:
				seen[id] = fmt.Sprintf("list %s", e.List.Range(0, e.List.Len()))
			case TypeZSet:
				seen[id] = "zset " + e.ZSet.String()
			}
			return true
		})
	}()
	for i := range 1000 {
		ks.Put(i%2, fmt.Sprint("key", i), &Entry{Type: TypeString, Str: bytes.Repeat([]byte("Z"), 100)}, 0)
	}
	ks.Flush(1)
	wg.Wait()
	if len(seen) != 1005 {
		t.Fatalf("%d keys seen, want 1005 (1000 strings, one unexpired, a hash, a set, a list, a zset)", len(seen))
	}
	if seen["0/key10"] != "v10 10 0" || seen["0/later"] != "y 0 500" || seen["1/hash"] != "hash v" || seen["1/set"] != "set 2" || seen["1/list"] != "list [x y]" || seen["1/zset"] != "zset y=1 x=2" {
		t.Fatalf("seen %q %q %q %q %q", seen["0/key10"], seen["0/later"], seen["1/hash"], seen["1/set"], seen["1/list"])
	}
	if _, ok := seen["0/gone"]; ok {
		t.Fatal("a key expired at now was handed over")
	}
	n := 0
	ks.View().Each(100, func(int, []byte, *Entry) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("Each went on after fn returned false: %d calls", n)
	}
}

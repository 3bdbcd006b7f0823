package keyspace

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// refOf is the slot ref stored for key (0 if none).
func refOf(ks *Keyspace, db int, key string) uint64 {
	shard, tag := hashKey(key)
	_, ref := ks.dbs[db].shards[shard].find(ks.arena, tag, key)
	return ref
}

func TestClassSizes(t *testing.T) {
	for i := 1; i < len(classSizes); i++ {
		prev, cur := classSizes[i-1], classSizes[i]
		if cur <= prev || cur%8 != 0 {
			t.Fatalf("class %d: %d after %d", i, cur, prev)
		}
		if waste := float64(cur-prev-1) / float64(cur); cur > 512 && waste > 0.035 {
			t.Fatalf("class %d (%d bytes) may waste %.1f%%", i, cur, 100*waste)
		}
	}
	if len(classSizes) >= hugeClass || classSizes[len(classSizes)-1] != maxSlot {
		t.Fatalf("%d classes, largest %d", len(classSizes), classSizes[len(classSizes)-1])
	}
	// A 1 KB session with a PHP session key fits with little waste.
	n := hdrSize + len(sessionKey(0)) + 1024
	if c := classSizes[classOf(n)]; c < uint32(n) || c-uint32(n) > 32 {
		t.Fatalf("%d bytes get a %d-byte slot", n, c)
	}
}

func TestFreedSlotIsReused(t *testing.T) {
	ks := New(1)
	v := bytes.Repeat([]byte("x"), 1000)
	ks.Put(0, "a", &Entry{Type: TypeString, Str: v}, 0)
	ks.Put(0, "b", &Entry{Type: TypeString, Str: v}, 0)
	ra, rb := refOf(ks, 0, "a"), refOf(ks, 0, "b")
	if ra == rb || refPage(ra) != refPage(rb) {
		t.Fatalf("refs %x %x: same-class slots should share a page", ra, rb)
	}
	ks.Delete(0, "a")
	ks.Delete(0, "b")
	// The free list is LIFO: b's slot first, then a's.
	ks.Put(0, "c", &Entry{Type: TypeString, Str: v}, 0)
	ks.Put(0, "d", &Entry{Type: TypeString, Str: v[:len(v)-4]}, 0) // same class
	if rc, rd := refOf(ks, 0, "c"), refOf(ks, 0, "d"); rc != rb || rd != ra {
		t.Fatalf("c at %x, d at %x; freed slots were %x, %x", rc, rd, rb, ra)
	}
	// A value of the same class is rewritten in place.
	w := bytes.Repeat([]byte("w"), 1000)
	ks.Put(0, "c", &Entry{Type: TypeString, Str: w, ExpireAt: 5000}, 0)
	if refOf(ks, 0, "c") != rb || !bytes.Equal(ks.Get(0, "c", 0).Str, w) || ks.VolatileLen(0) != 1 {
		t.Fatal("same-class overwrite not in place")
	}
	// Another class: the new slot is written first, then the old one freed.
	ks.Put(0, "c", &Entry{Type: TypeString, Str: v[:500]}, 0)
	if refOf(ks, 0, "c") == rb || ks.VolatileLen(0) != 0 {
		t.Fatal("an overwrite of another class kept its slot")
	}
	ks.Put(0, "e", &Entry{Type: TypeString, Str: v}, 0)
	if refOf(ks, 0, "e") != rb {
		t.Fatal("the slot freed by an overwrite was not reused")
	}
	if got := ks.Get(0, "e", 0).Str; !bytes.Equal(got, v) {
		t.Fatal("value of a reused slot")
	}
	// Under a view even a same-class overwrite takes a new slot.
	view := ks.View()
	defer view.Release()
	ks.Put(0, "e", &Entry{Type: TypeString, Str: w}, 0)
	if refOf(ks, 0, "e") == rb {
		t.Fatal("a slot a view may read was rewritten")
	}
}

func TestPutCopiesAliasedValue(t *testing.T) {
	ks := New(1)
	ks.Put(0, "k", &Entry{Type: TypeString, Str: []byte("first value")}, 0)
	e := ks.Get(0, "k", 0)
	ks.Put(0, "k", e.WithExpiry(99), 0) // e.Str aliases the slot being replaced
	ks.Put(0, "other", &Entry{Type: TypeString, Str: []byte("overwrites!")}, 0)
	if got := ks.Get(0, "k", 0); string(got.Str) != "first value" || got.ExpireAt != 99 {
		t.Fatalf("got %v", got)
	}
	caller := []byte("mine")
	ks.Put(0, "c", &Entry{Type: TypeString, Str: caller}, 0)
	caller[0] = 'M'
	if string(ks.Get(0, "c", 0).Str) != "mine" {
		t.Fatal("Put kept the caller's slice")
	}
}

func TestViewDefersFrees(t *testing.T) {
	ks := New(1)
	old := bytes.Repeat([]byte("o"), 500)
	ks.Put(0, "k", &Entry{Type: TypeString, Str: old}, 0)
	ref := refOf(ks, 0, "k")
	v := ks.View()
	ks.Delete(0, "k")
	for i := 0; i < 10; i++ {
		ks.Put(0, fmt.Sprint("n", i), &Entry{Type: TypeString, Str: bytes.Repeat([]byte("n"), 500)}, 0)
		if refOf(ks, 0, fmt.Sprint("n", i)) == ref {
			t.Fatal("a slot freed under a live view was reused")
		}
	}
	if len(ks.arena.deferred) != 1 {
		t.Fatalf("%d deferred frees", len(ks.arena.deferred))
	}
	var buf bytes.Buffer
	if err := v.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&buf, 1)
	if err != nil || got.Len(0) != 1 || !bytes.Equal(got.Get(0, "k", 0).Str, old) {
		t.Fatalf("view lost its key: %v", err)
	}
	v.Release()
	v.Release()                                                    // idempotent
	ks.Put(0, "afte", &Entry{Type: TypeString, Str: old[:497]}, 0) // same class
	if refOf(ks, 0, "afte") != ref || len(ks.arena.deferred) != 0 {
		t.Fatal("deferred slot not reused after Release")
	}
}

// A view encodes the state it was taken at while writes overwrite and
// delete every key (run with -race).
func TestViewEncodesBesideWrites(t *testing.T) {
	ks := New(2)
	want := map[string]string{}
	for i := 0; i < 2000; i++ {
		k, val := fmt.Sprint("key", i), strings.Repeat(fmt.Sprint(i), 1+i%300)
		ks.Put(i%2, k, &Entry{Type: TypeString, Str: []byte(val), ExpireAt: int64(i)}, 0)
		want[k] = val
	}
	h, _ := (*Hash)(nil).With([][]byte{[]byte("f"), []byte("v")})
	ks.Put(0, "hash", &Entry{Type: TypeHash, Hash: h}, 0)
	v := ks.View()
	var buf bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	var encErr error
	go func() {
		defer wg.Done()
		defer v.Release()
		encErr = v.Encode(&buf)
	}()
	for i := 0; i < 2000; i++ {
		k := fmt.Sprint("key", i)
		if i%3 == 0 {
			ks.Delete(i%2, k)
		} else {
			ks.Put(i%2, k, &Entry{Type: TypeString, Str: bytes.Repeat([]byte("Z"), 1+i%300)}, 0)
		}
	}
	ks.Delete(0, "hash")
	ks.Flush(1)
	wg.Wait()
	if encErr != nil {
		t.Fatal(encErr)
	}
	got, err := Decode(&buf, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		k := fmt.Sprint("key", i)
		e := got.Lookup(i%2, k)
		if e == nil || string(e.Str) != want[k] || e.ExpireAt != int64(i) {
			t.Fatalf("%s: %v", k, e)
		}
	}
	if e := got.Lookup(0, "hash"); e == nil || e.Hash.Len() != 1 {
		t.Fatal("hash lost")
	}
}

// Random operations against a map: the index grows, deletes shift cells
// back, and every key stays reachable.
func TestIndexAgainstMap(t *testing.T) {
	ks := New(1)
	model := map[string]string{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 60000; i++ {
		k := fmt.Sprint("k", r.IntN(20000))
		switch r.IntN(3) {
		case 0:
			if ks.Delete(0, k) != (model[k] != "") {
				t.Fatalf("op %d: delete %s", i, k)
			}
			delete(model, k)
		default:
			val := fmt.Sprint(i)
			ks.Put(0, k, &Entry{Type: TypeString, Str: []byte(val)}, 0)
			model[k] = val
		}
	}
	if ks.Len(0) != len(model) {
		t.Fatalf("len %d, model %d", ks.Len(0), len(model))
	}
	for k, val := range model {
		if e := ks.Get(0, k, 0); e == nil || string(e.Str) != val {
			t.Fatalf("%s = %v, want %s", k, e, val)
		}
	}
	total := 0
	for s := range ks.dbs[0].shards {
		tb := &ks.dbs[0].shards[s]
		total += tb.n
		if len(tb.cells) > 0 && tb.n*4 > len(tb.cells)*3 {
			t.Fatalf("shard %d: %d keys in %d cells", s, tb.n, len(tb.cells))
		}
	}
	if total != len(model) {
		t.Fatalf("shards hold %d keys", total)
	}
}

func TestIndexGrowth(t *testing.T) {
	ks := New(1)
	for i := 0; i < 50000; i++ {
		ks.Put(0, fmt.Sprint(i), &Entry{Type: TypeString, Str: []byte("v")}, 0)
	}
	grown := 0
	for s := range ks.dbs[0].shards {
		if len(ks.dbs[0].shards[s].cells) > minCells {
			grown++
		}
	}
	if grown < NumShards/2 {
		t.Fatalf("only %d shards grew", grown)
	}
	for i := 0; i < 50000; i++ {
		if ks.Get(0, fmt.Sprint(i), 0) == nil {
			t.Fatalf("key %d lost in growth", i)
		}
	}
}

func TestHugeValues(t *testing.T) {
	ks := New(1)
	big := bytes.Repeat([]byte("B"), maxSlot+1)
	ks.Put(0, "big", &Entry{Type: TypeString, Str: big, Flags: 3}, 0)
	if e := ks.Get(0, "big", 0); !bytes.Equal(e.Str, big) || e.Flags != 3 {
		t.Fatal("huge value")
	}
	ref := refOf(ks, 0, "big")
	if ks.arena.pageClass[refPage(ref)] != hugeClass {
		t.Fatal("not a huge slot")
	}
	ks.Delete(0, "big")
	ks.Put(0, "big2", &Entry{Type: TypeString, Str: big}, 0)
	if refPage(refOf(ks, 0, "big2")) != refPage(ref) {
		t.Fatal("huge page number not reused")
	}
}

func TestExpiryBuckets(t *testing.T) {
	ks := New(1)
	// Stored in an order unrelated to expiry.
	for _, at := range []int64{50_000, 3_000, 20_000, 1_000, 7_000} {
		ks.Put(0, fmt.Sprint("at", at), str("v", at), 0)
	}
	ks.Put(0, "none", str("v", 0), 0)
	var order []string
	ks.SampleVolatile(0, 10, func(k string, e *Entry) bool { order = append(order, k); return true })
	if fmt.Sprint(order) != "[at1000 at3000 at7000 at20000 at50000]" {
		t.Fatalf("sample order %v", order)
	}
	order = nil
	ks.SampleVolatile(0, 2, func(k string, e *Entry) bool { order = append(order, k); return true })
	if len(order) != 2 || order[0] != "at1000" {
		t.Fatalf("first two: %v", order)
	}
	x := &ks.dbs[0].exp
	if x.n != 5 || x.order.n != 5 || ks.VolatileLen(0) != 5 {
		t.Fatalf("volatile %d, buckets %d", x.n, x.order.n)
	}
	ks.Put(0, "at1000", str("v", 0), 0)                                 // persist
	ks.Delete(0, "at3000")                                              // delete
	ks.Put(0, "at7000", str("v", 7_500), 0)                             // same bucket, new slot
	ks.Put(0, "at20000", ks.Lookup(0, "at20000").WithExpiry(60_000), 0) // moved
	if ks.VolatileLen(0) != 3 || fmt.Sprint(x.order.all()) != fmt.Sprint([]int64{7_500 >> bucketShift, 50_000 >> bucketShift, 60_000 >> bucketShift}) {
		t.Fatalf("volatile %d, buckets %v", ks.VolatileLen(0), x.order.all())
	}
	order = nil
	ks.SampleVolatile(0, 10, func(k string, e *Entry) bool { order = append(order, fmt.Sprint(k, "@", e.ExpireAt)); return true })
	if fmt.Sprint(order) != "[at7000@7500 at50000@50000 at20000@60000]" {
		t.Fatalf("after changes %v", order)
	}
	order = nil
	ks.SampleVolatileAt(0, 4, 10, func(k string, e *Entry) bool { order = append(order, k); return true })
	if fmt.Sprint(order) != "[at50000 at20000 at7000]" {
		t.Fatalf("from bucket 1: %v", order)
	}
	ks.Flush(0)
	if ks.VolatileLen(0) != 0 {
		t.Fatal("flush left volatile keys")
	}
}

// The SCAN cursor is FNV-1a of the key modulo 1024, as before the arena:
// cursors handed out by any node or version stay valid.
func TestScanCursorIsFNVBucket(t *testing.T) {
	for _, k := range []string{"", "a", "foo", "PHPREDIS_SESSION:abc", sessionKey(7)} {
		h := fnv.New32a()
		h.Write([]byte(k))
		if got, want := shardOf(k), int(h.Sum32()%NumShards); got != want {
			t.Fatalf("%q: bucket %d, want %d", k, got, want)
		}
	}
	// A key present for the whole scan is returned once even when other
	// keys are added (growing its table) and deleted between calls.
	ks := New(1)
	for i := 0; i < 3000; i++ {
		ks.Put(0, fmt.Sprint("stay", i), str("v", 0), 0)
	}
	seen := map[string]int{}
	cursor, extra := uint64(0), 0
	for {
		cursor = ks.Scan(0, cursor, 50, 0, func(k string, _ *Entry) { seen[k]++ })
		for j := 0; j < 200; j++ {
			ks.Put(0, fmt.Sprint("new", extra), str("v", 0), 0)
			ks.Delete(0, fmt.Sprint("new", extra-100))
			extra++
		}
		if cursor == 0 {
			break
		}
	}
	for i := 0; i < 3000; i++ {
		if n := seen[fmt.Sprint("stay", i)]; n != 1 {
			t.Fatalf("stay%d seen %d times", i, n)
		}
	}
}

func TestTouchAndSampleKeys(t *testing.T) {
	ks := New(1)
	ks.Put(0, "k", str("v", 0), 10)
	ks.Get(0, "k", 20).Touch(500)
	ks.Get(0, "k", 20).Touch(400) // never backwards
	var last int64
	ks.SampleKeys(0, uint64(shardOf("k")), 1, func(_ string, e *Entry) bool { last = e.LastAccess(); return true })
	if last != 500 {
		t.Fatalf("last access %d", last)
	}
	ks.Put(0, "k", str("w", 0), 30) // a write keeps the later read time
	if a := ks.Lookup(0, "k").LastAccess(); a != 500 {
		t.Fatalf("after write: %d", a)
	}
	for i := 0; i < 100; i++ {
		ks.Put(0, fmt.Sprint(i), str("v", 0), 0)
	}
	got := map[string]bool{}
	for s := uint64(0); s < 20000; s += 997 {
		ks.SampleKeys(0, s, 3, func(k string, _ *Entry) bool { got[k] = true; return true })
	}
	if len(got) < 30 {
		t.Fatalf("samples cover only %d keys", len(got))
	}
}

func TestFlushAllReturnsMemory(t *testing.T) {
	ks := New(2)
	for i := 0; i < 1000; i++ {
		ks.Put(i%2, fmt.Sprint(i), &Entry{Type: TypeString, Str: bytes.Repeat([]byte("v"), 1000)}, 0)
	}
	ks.Put(0, "big", &Entry{Type: TypeString, Str: make([]byte, maxSlot+1)}, 0)
	if ks.Mapped() == 0 {
		t.Fatal("nothing mapped")
	}
	v := ks.View()
	ks.Flush(0)
	ks.Flush(1)
	if ks.Mapped() == 0 {
		t.Fatal("memory unmapped under a live view")
	}
	var buf bytes.Buffer
	if err := v.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if got, err := Decode(&buf, 2); err != nil || got.Len(0)+got.Len(1) != 1001 {
		t.Fatalf("view after flush: %v", err)
	}
	v.Release()
	ks.Put(0, "x", str("y", 0), 0)
	ks.Flush(1)
	if ks.Mapped() == 0 {
		t.Fatal("unmapped while a key is stored")
	}
	ks.Flush(0)
	if ks.Mapped() != 0 || len(ks.arena.pages) != 1 || ks.Used() != 0 {
		t.Fatalf("after flushing everything: mapped %d, %d pages, used %d", ks.Mapped(), len(ks.arena.pages), ks.Used())
	}
	ks.Put(0, "again", str("works", 0), 0)
	if e := ks.Get(0, "again", 0); e == nil || string(e.Str) != "works" {
		t.Fatal("store after reset")
	}
}

func TestRefSetAgainstMap(t *testing.T) {
	var s refSet
	model := map[uint64]bool{}
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 50000; i++ {
		ref := makeRef(uint32(1+r.IntN(4)), uint32(r.IntN(2000))*8)
		if r.IntN(2) == 0 && !model[ref] {
			s.add(ref)
			model[ref] = true
		} else if s.remove(ref) != model[ref] {
			t.Fatalf("op %d: remove %x", i, ref)
		} else {
			delete(model, ref)
		}
	}
	if s.n != len(model) {
		t.Fatalf("%d members, model %d", s.n, len(model))
	}
	for ref := range model {
		if !s.remove(ref) {
			t.Fatalf("%x lost", ref)
		}
	}
	if s.n != 0 || len(s.cells) > 8 {
		t.Fatalf("emptied set: n %d, %d cells", s.n, len(s.cells))
	}
}

func TestBucketOrderAgainstSortedSet(t *testing.T) {
	var o bucketOrder
	model := map[int64]bool{}
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 40000; i++ {
		b := r.Int64N(5000)
		if r.IntN(3) > 0 {
			if !model[b] {
				o.insert(b)
				model[b] = true
			}
		} else {
			o.remove(b)
			delete(model, b)
		}
	}
	got := o.all()
	if len(got) != len(model) || o.n != len(model) {
		t.Fatalf("%d buckets (n %d), model %d", len(got), o.n, len(model))
	}
	for i, b := range got {
		if !model[b] || (i > 0 && got[i-1] >= b) {
			t.Fatalf("order broken at %d: %v", i, got[max(0, i-2):i+1])
		}
	}
	for _, run := range o.runs {
		if len(run) == 0 || len(run) > maxRun {
			t.Fatalf("run of %d", len(run))
		}
	}
	if len(o.runs) < 2 {
		t.Fatal("runs never split")
	}
}

// TTLs spread over a year put nearly every key in its own bucket: adding
// buckets must stay cheap.
func TestManySparseBuckets(t *testing.T) {
	ks := New(1)
	r := rand.New(rand.NewPCG(9, 9))
	for i := 0; i < 100000; i++ {
		ks.Put(0, fmt.Sprint(i), str("v", 1_000_000_000+r.Int64N(365*86400*1000)), 0)
	}
	x := &ks.dbs[0].exp
	if x.order.n < 90000 || len(x.order.runs) < x.order.n/maxRun {
		t.Fatalf("%d buckets in %d runs", x.order.n, len(x.order.runs))
	}
	var last int64
	ks.SampleVolatile(0, 1000, func(_ string, e *Entry) bool {
		if b := e.ExpireAt >> bucketShift; b < last {
			t.Fatalf("sampled bucket %d after %d", b, last)
		} else {
			last = b
		}
		return true
	})
	for i := 0; i < 100000; i++ {
		ks.Delete(0, fmt.Sprint(i))
	}
	if x.order.n != 0 || len(x.order.runs) != 0 {
		t.Fatalf("%d buckets left in %d runs", x.order.n, len(x.order.runs))
	}
}

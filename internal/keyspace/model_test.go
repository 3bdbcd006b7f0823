package keyspace

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// modelEntry is what a key should hold.
type modelEntry struct {
	typ   Type
	val   string
	field int // hash field count
	exp   int64
}

// Random writes, deletes, flushes and snapshots against a plain map: every
// value read back, every view decoded later and the counters must match.
// Views live across many writes, so frees are deferred and then reused.
func TestKeyspaceAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	ks := New(2)
	model := [2]map[string]modelEntry{{}, {}}
	type pending struct {
		v    *View
		want [2]map[string]modelEntry
	}
	var views []pending
	snapshot := func() [2]map[string]modelEntry {
		var c [2]map[string]modelEntry
		for db := range model {
			c[db] = map[string]modelEntry{}
			for k, e := range model[db] {
				c[db][k] = e
			}
		}
		return c
	}
	check := func(v *View, want [2]map[string]modelEntry) {
		t.Helper()
		var buf bytes.Buffer
		if err := v.Encode(&buf); err != nil {
			t.Fatal(err)
		}
		v.Release()
		got, err := Decode(&buf, 2)
		if err != nil {
			t.Fatal(err)
		}
		for db := range want {
			if got.Len(db) != len(want[db]) {
				t.Fatalf("view db %d: %d keys, want %d", db, got.Len(db), len(want[db]))
			}
			for k, m := range want[db] {
				e := got.Lookup(db, k)
				if e == nil || e.ExpireAt != m.exp || (m.typ == TypeString && string(e.Str) != m.val) || (m.typ == TypeHash && e.Hash.Len() != m.field) {
					t.Fatalf("view db %d %s = %v, want %+v", db, k, e, m)
				}
			}
		}
	}
	for i := 0; i < 20000; i++ {
		db := r.IntN(2)
		k := fmt.Sprint("key", r.IntN(400))
		switch op := r.IntN(100); {
		case op < 50:
			n := r.IntN(2000)
			if r.IntN(200) == 0 {
				n = maxSlot + r.IntN(1000) // a huge slot now and then
			}
			val := string(bytes.Repeat([]byte{byte('a' + i%26)}, n))
			var exp int64
			if r.IntN(2) == 0 {
				exp = int64(1 + r.IntN(100000))
			}
			ks.Put(db, k, &Entry{Type: TypeString, Str: []byte(val), ExpireAt: exp}, 0)
			model[db][k] = modelEntry{typ: TypeString, val: val, exp: exp}
		case op < 58:
			var pairs [][]byte
			nf := 1 + r.IntN(5)
			for f := 0; f < nf; f++ {
				pairs = append(pairs, []byte(fmt.Sprint("f", f)), []byte("v"))
			}
			h, _ := (*Hash)(nil).With(pairs)
			ks.Put(db, k, &Entry{Type: TypeHash, Hash: h}, 0)
			model[db][k] = modelEntry{typ: TypeHash, field: nf}
		case op < 68:
			if e := ks.Lookup(db, k); e != nil {
				at := int64(r.IntN(100000))
				ks.Put(db, k, e.WithExpiry(at), 0)
				m := model[db][k]
				m.exp = at
				model[db][k] = m
			}
		case op < 90:
			_, ok := model[db][k]
			if ks.Delete(db, k) != ok {
				t.Fatalf("op %d: delete %s", i, k)
			}
			delete(model[db], k)
		case op < 91:
			ks.Flush(db)
			model[db] = map[string]modelEntry{}
		case op < 95:
			views = append(views, pending{ks.View(), snapshot()})
		default:
			if len(views) > 0 {
				j := r.IntN(len(views))
				check(views[j].v, views[j].want)
				views = append(views[:j], views[j+1:]...)
			}
		}
		if i%500 == 0 {
			var used int64
			for db := range model {
				vol := 0
				for key, m := range model[db] {
					e := ks.Lookup(db, key)
					if e == nil || e.Type != m.typ || e.ExpireAt != m.exp || (m.typ == TypeString && string(e.Str) != m.val) {
						t.Fatalf("op %d: db %d %s = %v, want %+v", i, db, key, e, m)
					}
					used += e.Size(key)
					if m.exp != 0 {
						vol++
					}
				}
				if ks.Len(db) != len(model[db]) || ks.VolatileLen(db) != vol {
					t.Fatalf("op %d: db %d len %d/%d volatile %d/%d", i, db, ks.Len(db), len(model[db]), ks.VolatileLen(db), vol)
				}
			}
			if ks.Used() != used {
				t.Fatalf("op %d: used %d, want %d", i, ks.Used(), used)
			}
		}
	}
	for _, p := range views {
		check(p.v, p.want)
	}
	if ks.arena.views.Load() != 0 {
		t.Fatal("views still counted as live")
	}
}

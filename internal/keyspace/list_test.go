package keyspace

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func elems(l *List) []string {
	var out []string
	for _, e := range l.Range(0, l.Len()) {
		out = append(out, string(e))
	}
	return out
}

func bs(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// Every version of a list keeps its elements whatever is done to the
// versions after it (a snapshot's view may be encoding an old one), checked
// against a model of plain slices through random operations.
func TestListVersionsAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	type version struct {
		l    *List
		want []string
	}
	var versions []version
	cur, model := (*List)(nil), []string(nil)
	for i := range 5000 {
		v := fmt.Sprint(i)
		switch r.IntN(7) {
		case 0, 1:
			cur = cur.PushLeft(bs(v, v+"b"))
			model = append([]string{v + "b", v}, model...)
		case 2, 3:
			cur = cur.PushRight(bs(v))
			model = append(model, v)
		case 4:
			k := min(len(model), r.IntN(3))
			var got [][]byte
			cur, got = cur.PopLeft(k)
			if fmt.Sprint(elems(&List{buf: &listBuf{elems: got}, hi: len(got)})) != fmt.Sprint(model[:k]) {
				t.Fatalf("PopLeft %d: got %q want %q", k, got, model[:k])
			}
			model = model[k:]
		case 5:
			k := min(len(model), r.IntN(3))
			var got [][]byte
			cur, got = cur.PopRight(k)
			for j := range k {
				if string(got[j]) != model[len(model)-1-j] {
					t.Fatalf("PopRight %d: got %q", k, got)
				}
			}
			model = model[:len(model)-k]
		case 6:
			if len(model) > 2 {
				cur = cur.Slice(1, len(model)-1)
				model = model[1 : len(model)-1]
			}
		}
		model = slices.Clip(model)
		if i%7 == 0 {
			versions = append(versions, version{cur, slices.Clone(model)})
		}
		var n int64
		for _, e := range model {
			n += int64(len(e))
		}
		if cur.Len() != len(model) || cur.Bytes() != n {
			t.Fatalf("step %d: len %d bytes %d, want %d %d", i, cur.Len(), cur.Bytes(), len(model), n)
		}
	}
	for i, v := range versions {
		if got := elems(v.l); !slices.Equal(got, v.want) && (len(got) != 0 || len(v.want) != 0) {
			t.Fatalf("version %d changed: %q, want %q", i, got, v.want)
		}
	}
}

func TestListAccountingAndSnapshot(t *testing.T) {
	ks := New(2)
	l := NewList(bs("a", "bb", "ccc"))
	ks.Put(1, "l", &Entry{Type: TypeList, List: l, ExpireAt: 77}, 0)
	if want := int64(96 + 1 + 6 + 3*40); ks.Used() != want {
		t.Fatalf("used %d, want %d", ks.Used(), want)
	}
	e := ks.Get(1, "l", 0)
	if e.Type.String() != "list" || e.List.Len() != 3 {
		t.Fatalf("entry %v", e)
	}
	v := ks.View()
	ks.Put(1, "l", &Entry{Type: TypeList, List: e.List.PushRight(bs("late"))}, 0)
	var buf bytes.Buffer
	if err := v.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	v.Release()
	got, err := Decode(bytes.NewReader(buf.Bytes()), 2)
	if err != nil {
		t.Fatal(err)
	}
	ge := got.Lookup(1, "l")
	if fmt.Sprint(elems(ge.List)) != "[a bb ccc]" || ge.ExpireAt != 77 || got.Used() != int64(96+1+6+3*40) {
		t.Fatalf("decoded %v %q used %d", ge, elems(ge.List), got.Used())
	}
	ks.Delete(1, "l")
	if ks.Used() != 0 {
		t.Fatalf("used %d after delete", ks.Used())
	}
}

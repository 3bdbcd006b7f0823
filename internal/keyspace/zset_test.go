package keyspace

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Random changes to a sorted set, each checked against a plain map sorted
// afresh, and every earlier version checked again at the end: a change
// never alters a version a view may still be reading.
func TestZSetVersionsAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	type version struct {
		z    *ZSet
		want string
	}
	model := map[string]float64{}
	render := func() string {
		var es []ZElem
		for m, s := range model {
			es = append(es, ZElem{m, s})
		}
		slices.SortFunc(es, zcmp)
		var b []string
		for _, e := range es {
			b = append(b, e.Member+"="+strconv.FormatFloat(e.Score, 'g', -1, 64))
		}
		return strings.Join(b, " ")
	}
	var z *ZSet
	var versions []version
	for step := 0; step < 2000; step++ {
		switch r.IntN(4) {
		case 0, 1:
			var es []ZElem
			for range 1 + r.IntN(4) {
				e := ZElem{fmt.Sprint("m", r.IntN(300)), float64(r.IntN(10))}
				es = append(es, e)
				model[e.Member] = e.Score
			}
			z = z.With(es)
		case 2:
			var ms []string
			for range 1 + r.IntN(3) {
				m := fmt.Sprint("m", r.IntN(300))
				ms = append(ms, m)
			}
			var n int
			var want int
			for _, m := range ms {
				if _, ok := model[m]; ok {
					want++
					delete(model, m)
				}
			}
			if z, n = z.Without(ms); n != want {
				t.Fatalf("step %d: removed %d, want %d", step, n, want)
			}
		case 3:
			if z.Len() > 0 {
				from := r.IntN(z.Len())
				to := from + r.IntN(z.Len()-from+1)
				for _, e := range z.Range(from, to) {
					delete(model, e.Member)
				}
				z = z.WithoutRange(from, to)
			}
		}
		want := render()
		if got := z.String(); got != want {
			t.Fatalf("step %d: %s, want %s", step, got, want)
		}
		for m, s := range model {
			if got, ok := z.Score(m); !ok || got != s {
				t.Fatalf("step %d: score of %s %v", step, m, got)
			}
			i, ok := z.Rank(m)
			if !ok || z.At(i).Member != m {
				t.Fatalf("step %d: rank of %s is %d", step, m, i)
			}
		}
		checkTreap(t, z)
		if z.Len() > 0 {
			i := r.IntN(z.Len())
			j := i + r.IntN(z.Len()-i+1)
			var want []ZElem
			for k := i; k < j; k++ {
				want = append(want, z.At(k))
			}
			if got := z.Range(i, j); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("step %d: Range(%d, %d) = %v, want %v", step, i, j, got, want)
			}
			s := float64(r.IntN(11))
			k := z.Search(func(e ZElem) bool { return e.Score >= s })
			if (k < z.Len() && z.At(k).Score < s) || (k > 0 && z.At(k-1).Score >= s) {
				t.Fatalf("step %d: first score >= %v at %d", step, s, k)
			}
		}
		// The shape is a function of the contents: rebuilt, the same trees.
		if rebuilt := NewZSet(z.Range(0, z.Len())); shape(rebuilt.scoreTree()) != shape(z.scoreTree()) || shape(rebuilt.memberTree()) != shape(z.memberTree()) {
			t.Fatalf("step %d: a rebuilt set has another shape", step)
		}
		if int64(z.Len()) != int64(len(model)) {
			t.Fatalf("step %d: len %d", step, z.Len())
		}
		var bytes int64
		for m := range model {
			bytes += int64(len(m)) + 8
		}
		if z.Bytes() != bytes {
			t.Fatalf("step %d: bytes %d, want %d", step, z.Bytes(), bytes)
		}
		versions = append(versions, version{z, want})
	}
	for i, v := range versions {
		if v.z.String() != v.want {
			t.Fatalf("version %d changed", i)
		}
	}
}

func TestZSetOrderAndSearch(t *testing.T) {
	z := NewZSet([]ZElem{{"b", 1}, {"a", 1}, {"c", math.Inf(-1)}, {"d", math.Inf(1)}, {"e", 0.5}, {"a", 2}})
	if got := z.String(); got != "c=-Inf e=0.5 b=1 a=2 d=+Inf" {
		t.Fatal(got)
	}
	if i := z.Search(func(e ZElem) bool { return e.Score >= 1 }); i != 2 {
		t.Fatalf("first score >= 1 at %d", i)
	}
	if i, ok := z.Rank("d"); !ok || i != 4 {
		t.Fatalf("rank %d %v", i, ok)
	}
}

func TestZSetAccountingAndSnapshot(t *testing.T) {
	ks := New(2)
	z := NewZSet([]ZElem{{"a", 1}, {"bb", -0.5}, {"ccc", math.Inf(1)}})
	ks.Put(1, "z", &Entry{Type: TypeZSet, ZSet: z, ExpireAt: 77}, 0)
	want := int64(96 + 1 + 6 + 3*8 + 3*40)
	if ks.Used() != want {
		t.Fatalf("used %d, want %d", ks.Used(), want)
	}
	e := ks.Get(1, "z", 0)
	if e.Type.String() != "zset" || e.ZSet.Len() != 3 {
		t.Fatalf("entry %v", e)
	}
	v := ks.View()
	ks.Put(1, "z", &Entry{Type: TypeZSet, ZSet: e.ZSet.With([]ZElem{{"late", 3}})}, 0)
	var buf bytes.Buffer
	if err := v.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	v.Release()
	got, err := Decode(bytes.NewReader(buf.Bytes()), 2)
	if err != nil {
		t.Fatal(err)
	}
	ge := got.Lookup(1, "z")
	if ge.ZSet.String() != "bb=-0.5 a=1 ccc=+Inf" || ge.ExpireAt != 77 || got.Used() != want {
		t.Fatalf("decoded %v %s used %d", ge, ge.ZSet, got.Used())
	}
	ks.Delete(1, "z")
	if ks.Used() != 0 {
		t.Fatalf("used %d after delete", ks.Used())
	}
}

// checkTreap checks both trees' order, heap property and sizes.
func checkTreap(t *testing.T, z *ZSet) {
	t.Helper()
	var walk func(n *znode, cmp func(a, b ZElem) int) int
	walk = func(n *znode, cmp func(a, b ZElem) int) int {
		if n == nil {
			return 0
		}
		for _, c := range []*znode{n.left, n.right} {
			if c != nil && c.prio > n.prio {
				t.Fatalf("heap order broken at %v", n.elem)
			}
		}
		if n.left != nil && cmp(n.left.elem, n.elem) >= 0 || n.right != nil && cmp(n.right.elem, n.elem) <= 0 {
			t.Fatalf("key order broken at %v", n.elem)
		}
		if size := walk(n.left, cmp) + walk(n.right, cmp) + 1; size != n.size {
			t.Fatalf("size %d at %v, want %d", n.size, n.elem, size)
		}
		return n.size
	}
	if z == nil {
		return
	}
	if walk(z.byScore, zcmp) != walk(z.byMember, mcmp) {
		t.Fatal("the trees differ in size")
	}
}

func shape(n *znode) string {
	if n == nil {
		return "."
	}
	return "(" + shape(n.left) + n.elem.Member + shape(n.right) + ")"
}

func (z *ZSet) scoreTree() *znode {
	if z == nil {
		return nil
	}
	return z.byScore
}

func (z *ZSet) memberTree() *znode {
	if z == nil {
		return nil
	}
	return z.byMember
}

// A view encodes a sorted set on another goroutine while new versions are
// made from it: the encoding is the version the view holds (run with
// -race: nothing it reads is written).
func TestZSetViewEncodesBesideWrites(t *testing.T) {
	ks := New(1)
	var elems []ZElem
	for i := range 2000 {
		elems = append(elems, ZElem{fmt.Sprint("m", i), float64(i % 97)})
	}
	ks.Put(0, "z", &Entry{Type: TypeZSet, ZSet: NewZSet(elems)}, 0)
	want := ks.Get(0, "z", 0).ZSet.String()
	v := ks.View()
	done := make(chan []byte)
	go func() {
		var buf bytes.Buffer
		if err := v.Encode(&buf); err != nil {
			t.Error(err)
		}
		v.Release()
		done <- buf.Bytes()
	}()
	for i := range 500 {
		z := ks.Get(0, "z", 0).ZSet
		z = z.With([]ZElem{{fmt.Sprint("m", i*3), -float64(i)}, {fmt.Sprint("new", i), 1e9}})
		z, _ = z.Without([]string{fmt.Sprint("m", i*7)})
		z = z.WithoutRange(0, 1)
		ks.Put(0, "z", &Entry{Type: TypeZSet, ZSet: z}, 0)
	}
	got, err := Decode(bytes.NewReader(<-done), 1)
	if err != nil {
		t.Fatal(err)
	}
	if s := got.Lookup(0, "z").ZSet.String(); s != want {
		t.Fatal("the view's encoding changed with the writes after it")
	}
}

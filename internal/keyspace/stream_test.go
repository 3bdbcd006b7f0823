package keyspace

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func renderStream(s *Stream) string {
	var b []string
	for _, e := range s.Entries(0, s.Len()) {
		b = append(b, e.ID.String()+"="+string(bytes.Join(e.Fields, []byte(","))))
	}
	return fmt.Sprintf("%s last=%v maxdel=%v first=%v added=%d bytes=%d", strings.Join(b, " "), s.Last, s.MaxDeleted, s.First, s.Added, s.Bytes())
}

// Random appends, head trims and deletions, each checked against a plain
// slice, and every earlier version checked again at the end: a change
// never alters a version a view may still be reading (versions share
// their buffer).
func TestStreamVersionsAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	type version struct {
		s    *Stream
		want string
	}
	var model []StreamEntry
	var last, maxDel StreamID
	var added uint64
	render := func() string {
		var b []string
		var by int64
		for _, e := range model {
			b = append(b, e.ID.String()+"="+string(bytes.Join(e.Fields, []byte(","))))
			by += e.bytes()
		}
		first := StreamID{}
		if len(model) > 0 {
			first = model[0].ID
		}
		return fmt.Sprintf("%s last=%v maxdel=%v first=%v added=%d bytes=%d", strings.Join(b, " "), last, maxDel, first, added, by)
	}
	s := &Stream{}
	var versions []version
	for step := range 3000 {
		switch k := r.IntN(6); {
		case k <= 2:
			last = StreamID{last.Ms + uint64(r.IntN(3)), last.Seq + 1}
			e := StreamEntry{ID: last, Fields: [][]byte{[]byte("f"), []byte(fmt.Sprint(step))}}
			model = append(model, e)
			added++
			s = s.Append(e)
		case k == 3 && len(model) > 0:
			n := r.IntN(min(len(model), 4) + 1)
			model = model[n:]
			s = s.TrimHead(n)
		case k == 4 && len(model) > 0:
			id := model[r.IntN(len(model))].ID
			var n int
			s, n = s.Without([]StreamID{id, {^uint64(0), 0}})
			if n != 1 {
				t.Fatalf("deleted %d", n)
			}
			for i := range model {
				if model[i].ID == id {
					model = append(model[:i:i], model[i+1:]...)
					break
				}
			}
			if id.Compare(maxDel) > 0 {
				maxDel = id
			}
		}
		if got, want := renderStream(s), render(); got != want {
			t.Fatalf("step %d: %s, want %s", step, got, want)
		}
		if step%50 == 0 {
			versions = append(versions, version{s, render()})
		}
	}
	for i, v := range versions {
		if got := renderStream(v.s); got != v.want {
			t.Fatalf("version %d changed: %s, want %s", i, got, v.want)
		}
	}
}

func TestStreamAccountingAndSnapshot(t *testing.T) {
	ks := New(2)
	s := (&Stream{}).Append(StreamEntry{ID: StreamID{1, 1}, Fields: bs("a", "bb")})
	s = s.Append(StreamEntry{ID: StreamID{2, 0}, Fields: bs("c", "dddd", "e", "")})
	s, _ = s.Without([]StreamID{{1, 1}})
	s = s.WithMeta(StreamID{9, 9}, StreamID{1, 1}, 7)
	ks.Put(1, "s", &Entry{Type: TypeStream, Stream: s, ExpireAt: 77}, 0)
	want := int64(96 + 1 + 16 + 6 + 40)
	if ks.Used() != want {
		t.Fatalf("used %d, want %d", ks.Used(), want)
	}
	e := ks.Get(1, "s", 0)
	if e.Type.String() != "stream" || e.Stream.Len() != 1 {
		t.Fatalf("entry %v", e)
	}
	v := ks.View()
	ks.Put(1, "s", &Entry{Type: TypeStream, Stream: e.Stream.Append(StreamEntry{ID: StreamID{10, 0}, Fields: bs("late", "x")})}, 0)
	var buf bytes.Buffer
	if err := v.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	v.Release()
	got, err := Decode(bytes.NewReader(buf.Bytes()), 2)
	if err != nil {
		t.Fatal(err)
	}
	ge := got.Lookup(1, "s")
	if r, w := renderStream(ge.Stream), renderStream(s); r != w || ge.ExpireAt != 77 || got.Used() != want {
		t.Fatalf("decoded %s (expire %d, used %d), want %s", r, ge.ExpireAt, got.Used(), w)
	}
	ks.Delete(1, "s")
	if ks.Used() != 0 {
		t.Fatalf("used %d after delete", ks.Used())
	}
}

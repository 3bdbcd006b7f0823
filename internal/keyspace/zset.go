package keyspace

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ZSet is an immutable sorted set, a zset key's value: members with a
// score each, ordered by (score, member bytes) as redis orders them. Like
// hashes and sets it stays a Go value (see DESIGN.md), and every change
// returns a new ZSet.
//
// It is a sorted slice of elements and a member→score map. Reads are
// O(log n) (ZSCORE is O(1), ZRANK and a range's start are a binary search)
// plus what they return. A change copies both, O(n) per write however
// many members it touches (ZADD of k members is one copy and a sort of
// the k, not k copies): simple and safe under the concurrency contract,
// since a view may be encoding any older version. DESIGN.md gives the
// figures and the path to O(log n) writes.
type ZSet struct {
	elems  []ZElem // sorted by (Score, Member); never changed once built
	scores map[string]float64
	bytes  int64
}

// ZElem is one member of a sorted set and its score (never NaN).
type ZElem struct {
	Member string
	Score  float64
}

// zless orders elements as redis does: by score, then by member bytes.
func zless(a, b ZElem) bool {
	if a.Score != b.Score {
		return a.Score < b.Score
	}
	return a.Member < b.Member
}

func zcmp(a, b ZElem) int {
	switch {
	case zless(a, b):
		return -1
	case zless(b, a):
		return 1
	}
	return 0
}

// NewZSet returns a sorted set of elems (a later element with the same
// member wins), nil when there are none.
func NewZSet(elems []ZElem) *ZSet { return (*ZSet)(nil).With(elems) }

// Len is the number of members.
func (z *ZSet) Len() int {
	if z == nil {
		return 0
	}
	return len(z.elems)
}

// Bytes is the total length of the members (and 8 bytes per score).
func (z *ZSet) Bytes() int64 {
	if z == nil {
		return 0
	}
	return z.bytes
}

// Score returns m's score.
func (z *ZSet) Score(m string) (float64, bool) {
	if z == nil {
		return 0, false
	}
	s, ok := z.scores[m]
	return s, ok
}

// Rank returns m's position in (score, member) order, 0 first.
func (z *ZSet) Rank(m string) (int, bool) {
	s, ok := z.Score(m)
	if !ok {
		return 0, false
	}
	i, _ := slices.BinarySearchFunc(z.elems, ZElem{m, s}, zcmp)
	return i, true
}

// At returns the element at rank i, 0 ≤ i < Len.
func (z *ZSet) At(i int) ZElem { return z.elems[i] }

// Range returns the elements of ranks [from, to), aliasing the set: the
// caller must not change them.
func (z *ZSet) Range(from, to int) []ZElem {
	if z == nil || from >= to {
		return nil
	}
	return z.elems[from:to:to]
}

// Search returns the first rank at which pred holds, pred being false and
// then true along the order (Len if it never holds).
func (z *ZSet) Search(pred func(ZElem) bool) int {
	if z == nil {
		return 0
	}
	return sort.Search(len(z.elems), func(i int) bool { return pred(z.elems[i]) })
}

// With returns a new set with each element's member given its score (in
// order: a member given twice ends with the last score). elems are kept.
func (z *ZSet) With(elems []ZElem) *ZSet {
	if len(elems) == 0 {
		return z
	}
	n := &ZSet{scores: make(map[string]float64, z.Len()+len(elems)), bytes: z.Bytes()}
	if z != nil {
		for m, s := range z.scores {
			n.scores[m] = s
		}
	}
	for _, e := range elems {
		if _, ok := n.scores[e.Member]; !ok {
			n.bytes += int64(len(e.Member)) + 8
		}
		n.scores[e.Member] = e.Score
	}
	// Keep the old elements whose score is unchanged, then merge in the
	// changed or new ones, sorted.
	var add []ZElem
	for m, s := range n.scores {
		if old, ok := z.Score(m); !ok || old != s || math.Signbit(old) != math.Signbit(s) {
			add = append(add, ZElem{m, s})
		}
	}
	slices.SortFunc(add, zcmp)
	n.elems = make([]ZElem, 0, len(n.scores))
	i := 0
	for _, e := range z.Range(0, z.Len()) {
		if s := n.scores[e.Member]; s != e.Score || math.Signbit(s) != math.Signbit(e.Score) {
			continue // moved: it is in add
		}
		for ; i < len(add) && zless(add[i], e); i++ {
			n.elems = append(n.elems, add[i])
		}
		n.elems = append(n.elems, e)
	}
	n.elems = append(n.elems, add[i:]...)
	return n
}

// Without returns a new set without the given members and how many of them
// it had.
func (z *ZSet) Without(members []string) (*ZSet, int) {
	drop := map[string]bool{}
	for _, m := range members {
		if _, ok := z.Score(m); ok {
			drop[m] = true
		}
	}
	if len(drop) == 0 {
		return z, 0
	}
	n := &ZSet{scores: make(map[string]float64, z.Len()-len(drop)), bytes: z.bytes}
	n.elems = make([]ZElem, 0, z.Len()-len(drop))
	for _, e := range z.elems {
		if drop[e.Member] {
			n.bytes -= int64(len(e.Member)) + 8
			continue
		}
		n.elems = append(n.elems, e)
		n.scores[e.Member] = e.Score
	}
	return n, len(drop)
}

// WithoutRange returns a new set without the elements of ranks [from, to).
func (z *ZSet) WithoutRange(from, to int) *ZSet {
	if from >= to {
		return z
	}
	members := make([]string, 0, to-from)
	for _, e := range z.elems[from:to] {
		members = append(members, e.Member)
	}
	n, _ := z.Without(members)
	return n
}

// String lists the elements, for tests and messages.
func (z *ZSet) String() string {
	var b strings.Builder
	for i, e := range z.Range(0, z.Len()) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.Member)
		b.WriteByte('=')
		b.WriteString(strconv.FormatFloat(e.Score, 'g', -1, 64))
	}
	return b.String()
}

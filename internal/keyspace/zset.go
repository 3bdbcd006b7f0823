package keyspace

import (
	"slices"
	"strconv"
	"strings"
)

// ZSet is an immutable sorted set, a zset key's value: members with a
// score each, ordered by (score, member bytes) as redis orders them. Like
// hashes and sets it stays a Go value (see DESIGN.md), and every change
// returns a new ZSet.
//
// It is two persistent treaps over the same elements: one ordered by
// (score, member), whose nodes count their subtree (ranks, ranges), and
// one ordered by member (a member's score). A change copies only the
// nodes on the paths it walks — O(log n) of them per member changed —
// and shares every other node with the version it came from, so a view
// encoding an older version on another goroutine reads nodes nobody
// writes again. A node's priority is a hash of its member, which keeps the
// trees balanced (expected depth O(log n)) without drawing random numbers.
type ZSet struct {
	byScore  *znode // ordered by (Score, Member)
	byMember *znode // ordered by Member
	bytes    int64
}

// ZElem is one member of a sorted set and its score (never NaN).
type ZElem struct {
	Member string
	Score  float64
}

// znode is a treap node. Nodes are never changed once linked into a tree.
type znode struct {
	left, right *znode
	elem        ZElem
	prio        uint64
	size        int // the elements in this subtree
}

func zsize(t *znode) int {
	if t == nil {
		return 0
	}
	return t.size
}

// with is a copy of t with other children.
func (t *znode) with(left, right *znode) *znode {
	return &znode{left: left, right: right, elem: t.elem, prio: t.prio, size: zsize(left) + zsize(right) + 1}
}

// zprio is a member's priority: FNV-1a, then mixed (splitmix64's
// finalizer) so that similar members get unrelated priorities. It is the
// same in every process, so a tree's shape is a function of its members
// alone, the same on every node however the set was built: Search with a
// predicate that is not monotone (ZRANGEBYLEX over members of different
// scores, which redis leaves undefined) then answers alike everywhere.
func zprio(m string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(m); i++ {
		h ^= uint64(m[i])
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
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

func mcmp(a, b ZElem) int { return strings.Compare(a.Member, b.Member) }

// split divides t into the elements before e (in cmp's order) and the
// rest, copying the nodes on the path.
func split(t *znode, e ZElem, cmp func(a, b ZElem) int, orEqual bool) (*znode, *znode) {
	if t == nil {
		return nil, nil
	}
	c := cmp(t.elem, e)
	if c < 0 || (orEqual && c == 0) {
		l, r := split(t.right, e, cmp, orEqual)
		return t.with(t.left, l), r
	}
	l, r := split(t.left, e, cmp, orEqual)
	return l, t.with(r, t.right)
}

// splitAt divides t into its first k elements and the rest.
func splitAt(t *znode, k int) (*znode, *znode) {
	if t == nil {
		return nil, nil
	}
	ls := zsize(t.left)
	if k <= ls {
		l, r := splitAt(t.left, k)
		return l, t.with(r, t.right)
	}
	l, r := splitAt(t.right, k-ls-1)
	return t.with(t.left, l), r
}

// merge joins a and b, every element of a before every element of b.
func merge(a, b *znode) *znode {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.prio >= b.prio:
		return a.with(a.left, merge(a.right, b))
	}
	return b.with(merge(a, b.left), b.right)
}

func insert(t *znode, e ZElem, cmp func(a, b ZElem) int) *znode {
	l, r := split(t, e, cmp, false)
	return merge(merge(l, &znode{elem: e, prio: zprio(e.Member), size: 1}), r)
}

func remove(t *znode, e ZElem, cmp func(a, b ZElem) int) *znode {
	l, r := split(t, e, cmp, false)
	_, r = split(r, e, cmp, true)
	return merge(l, r)
}

// build makes a treap of sorted elements in O(n): a Cartesian tree by
// priority, built along its right spine.
func build(sorted []ZElem) *znode {
	var spine []*znode
	for _, e := range sorted {
		n := &znode{elem: e, prio: zprio(e.Member)}
		var last *znode
		for len(spine) > 0 && spine[len(spine)-1].prio < n.prio {
			last = spine[len(spine)-1]
			spine = spine[:len(spine)-1]
		}
		n.left = last
		if len(spine) > 0 {
			spine[len(spine)-1].right = n
		}
		spine = append(spine, n)
	}
	if len(spine) == 0 {
		return nil
	}
	fixSizes(spine[0])
	return spine[0]
}

func fixSizes(t *znode) int {
	if t == nil {
		return 0
	}
	t.size = fixSizes(t.left) + fixSizes(t.right) + 1
	return t.size
}

// NewZSet returns a sorted set of elems (a later element with the same
// member wins), nil when there are none. elems are not kept.
func NewZSet(elems []ZElem) *ZSet {
	if len(elems) == 0 {
		return nil
	}
	byMember := slices.Clone(elems)
	slices.SortStableFunc(byMember, mcmp)
	// Keep the last of each member.
	out := byMember[:0]
	for i, e := range byMember {
		if i+1 < len(byMember) && byMember[i+1].Member == e.Member {
			continue
		}
		out = append(out, e)
	}
	byMember = out
	z := &ZSet{byMember: build(byMember)}
	byScore := slices.Clone(byMember)
	slices.SortFunc(byScore, zcmp)
	z.byScore = build(byScore)
	for _, e := range byMember {
		z.bytes += int64(len(e.Member)) + 8
	}
	return z
}

// Len is the number of members.
func (z *ZSet) Len() int {
	if z == nil {
		return 0
	}
	return zsize(z.byScore)
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
	for t := z.byMember; t != nil; {
		switch c := strings.Compare(m, t.elem.Member); {
		case c < 0:
			t = t.left
		case c > 0:
			t = t.right
		default:
			return t.elem.Score, true
		}
	}
	return 0, false
}

// Rank returns m's position in (score, member) order, 0 first.
func (z *ZSet) Rank(m string) (int, bool) {
	s, ok := z.Score(m)
	if !ok {
		return 0, false
	}
	e := ZElem{m, s}
	return z.Search(func(x ZElem) bool { return !zless(x, e) }), true
}

// At returns the element at rank i, 0 ≤ i < Len.
func (z *ZSet) At(i int) ZElem {
	t := z.byScore
	for {
		switch ls := zsize(t.left); {
		case i < ls:
			t = t.left
		case i == ls:
			return t.elem
		default:
			i -= ls + 1
			t = t.right
		}
	}
}

// Range returns the elements of ranks [from, to), in order, in a new
// slice.
func (z *ZSet) Range(from, to int) []ZElem {
	if z == nil || from >= to {
		return nil
	}
	return appendRange(make([]ZElem, 0, to-from), z.byScore, from, to)
}

func appendRange(out []ZElem, t *znode, from, to int) []ZElem {
	if t == nil || from >= to {
		return out
	}
	ls := zsize(t.left)
	if from < ls {
		out = appendRange(out, t.left, from, min(to, ls))
	}
	if from <= ls && ls < to {
		out = append(out, t.elem)
	}
	if to > ls+1 {
		out = appendRange(out, t.right, max(from-ls-1, 0), to-ls-1)
	}
	return out
}

// Search returns the first rank at which pred holds, pred being false and
// then true along the order (Len if it never holds). O(log n).
func (z *ZSet) Search(pred func(ZElem) bool) int {
	if z == nil {
		return 0
	}
	i := 0
	for t := z.byScore; t != nil; {
		if pred(t.elem) {
			t = t.left
		} else {
			i += zsize(t.left) + 1
			t = t.right
		}
	}
	return i
}

// With returns a new set with each element's member given its score (in
// order: a member given twice ends with the last score). O(k log n) for k
// elements.
func (z *ZSet) With(elems []ZElem) *ZSet {
	if len(elems) == 0 {
		return z
	}
	if z.Len() == 0 {
		return NewZSet(elems)
	}
	n := *z
	for _, e := range elems {
		if old, ok := n.Score(e.Member); ok {
			if old == e.Score {
				continue
			}
			n.byScore = remove(n.byScore, ZElem{e.Member, old}, zcmp)
			n.byMember = remove(n.byMember, e, mcmp)
		} else {
			n.bytes += int64(len(e.Member)) + 8
		}
		n.byScore = insert(n.byScore, e, zcmp)
		n.byMember = insert(n.byMember, e, mcmp)
	}
	return &n
}

// Without returns a new set without the given members and how many of them
// it had. O(k log n).
func (z *ZSet) Without(members []string) (*ZSet, int) {
	if z == nil {
		return nil, 0
	}
	n := *z
	removed := 0
	for _, m := range members {
		s, ok := n.Score(m)
		if !ok {
			continue
		}
		e := ZElem{m, s}
		n.byScore = remove(n.byScore, e, zcmp)
		n.byMember = remove(n.byMember, e, mcmp)
		n.bytes -= int64(len(m)) + 8
		removed++
	}
	if removed == 0 {
		return z, 0
	}
	return &n, removed
}

// WithoutRange returns a new set without the elements of ranks [from,
// to): O(log n) for the order, and O(k log n) for the k members removed.
func (z *ZSet) WithoutRange(from, to int) *ZSet {
	if from >= to {
		return z
	}
	n := *z
	l, rest := splitAt(z.byScore, from)
	_, r := splitAt(rest, to-from)
	n.byScore = merge(l, r)
	for _, e := range z.Range(from, to) {
		n.byMember = remove(n.byMember, e, mcmp)
		n.bytes -= int64(len(e.Member)) + 8
	}
	return &n
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

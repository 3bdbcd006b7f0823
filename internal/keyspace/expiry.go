package keyspace

import (
	"slices"
	"sort"
)

// bucketShift makes expiry buckets 1,024 ms wide: coarse enough that a
// database of sessions has a few thousand buckets, fine enough that the
// earliest bucket holds keys that expire within about a second of each
// other.
const bucketShift = 10

// expiry is a database's keys with a TTL, grouped by expiry time into
// coarse buckets, each a set of slot refs. The leader's expirer looks at
// the earliest buckets first, where expired keys are, instead of sampling
// blindly. Members are refs rather than keys: a key's ref changes with
// every write, and every write (Put, Delete) knows both the old ref and the
// new one.
type expiry struct {
	buckets map[int64]*refSet
	order   bucketOrder // bucket numbers present
	n       int
}

func (x *expiry) add(at int64, ref uint64) {
	b := at >> bucketShift
	set, ok := x.buckets[b]
	if !ok {
		if x.buckets == nil {
			x.buckets = map[int64]*refSet{}
		}
		set = &refSet{}
		x.buckets[b] = set
		x.order.insert(b)
	}
	set.add(ref)
	x.n++
}

func (x *expiry) remove(at int64, ref uint64) {
	b := at >> bucketShift
	set := x.buckets[b]
	if set == nil || !set.remove(ref) {
		return
	}
	x.n--
	if set.n == 0 {
		delete(x.buckets, b)
		x.order.remove(b)
	}
}

// each passes refs to fn, bucket by bucket in expiry order from a bucket
// chosen by start (wrapping round), until fn returns false; within each
// bucket it starts at a cell chosen by start too. start 0 is the earliest
// bucket's first cell. The order within a bucket follows a hash of the ref:
// arbitrary, and random only for a random start.
func (x *expiry) each(start uint64, fn func(ref uint64) bool) {
	runs := x.order.runs
	if len(runs) == 0 {
		return
	}
	ri := int(start % uint64(len(runs)))
	rest := start / uint64(len(runs))
	j := int(rest % uint64(len(runs[ri])))
	from := rest / uint64(len(runs[ri]))
	for range x.order.n {
		cells := x.buckets[runs[ri][j]].cells
		for c := range cells {
			if ref := cells[(uint64(c)+from)%uint64(len(cells))]; ref != 0 && !fn(ref) {
				return
			}
		}
		if j++; j == len(runs[ri]) {
			ri, j = (ri+1)%len(runs), 0
		}
	}
}

// bucketOrder is the sorted set of bucket numbers in use: sorted runs of
// at most maxRun numbers, the runs in order (a two-level B-tree). A plain
// sorted slice cost a memmove of the whole slice for each new bucket in
// the middle — 80 µs a write with 300,000 buckets, when TTLs are spread
// over a year — where this moves at most one run, and the run list only
// when a run splits, merges or empties.
type bucketOrder struct {
	runs [][]int64 // never empty
	n    int
}

const maxRun = 512

// run is the index of the run where b is or belongs.
func (o *bucketOrder) run(b int64) int {
	i := sort.Search(len(o.runs), func(i int) bool { r := o.runs[i]; return r[len(r)-1] >= b })
	return min(i, len(o.runs)-1)
}

func (o *bucketOrder) insert(b int64) {
	o.n++
	if len(o.runs) == 0 {
		o.runs = [][]int64{{b}}
		return
	}
	i := o.run(b)
	r := o.runs[i]
	j, _ := slices.BinarySearch(r, b)
	r = slices.Insert(r, j, b)
	if len(r) <= maxRun {
		o.runs[i] = r
		return
	}
	half := len(r) / 2
	o.runs[i] = slices.Clone(r[:half])
	o.runs = slices.Insert(o.runs, i+1, slices.Clone(r[half:]))
}

func (o *bucketOrder) remove(b int64) {
	if len(o.runs) == 0 {
		return
	}
	i := o.run(b)
	r := o.runs[i]
	j, ok := slices.BinarySearch(r, b)
	if !ok {
		return
	}
	o.n--
	r = slices.Delete(r, j, j+1)
	switch {
	case len(r) == 0:
		o.runs = slices.Delete(o.runs, i, i+1)
	case len(r) < maxRun/4 && i+1 < len(o.runs) && len(r)+len(o.runs[i+1]) <= maxRun:
		o.runs[i] = append(r, o.runs[i+1]...)
		o.runs = slices.Delete(o.runs, i+1, i+2)
	default:
		o.runs[i] = r
	}
}

// all is every bucket number in order (for tests).
func (o *bucketOrder) all() []int64 {
	var out []int64
	for _, r := range o.runs {
		out = append(out, r...)
	}
	return out
}

// refSet is a set of slot refs: open addressing with linear probing over
// uint64 cells (0 = empty), kept under 3/4 full. It costs about 8–16 bytes
// per member and no pointers, where a Go map[uint64]struct{} cost about 35
// bytes per member.
type refSet struct {
	cells []uint64
	n     int
	shift uint8
}

// home mixes ref (Fibonacci hashing): refs of one page differ only in
// their low bits.
func (s *refSet) home(ref uint64) uint64 { return (ref * 0x9E3779B97F4A7C15) >> s.shift }

func (s *refSet) add(ref uint64) {
	if (s.n+1)*4 > len(s.cells)*3 {
		s.grow()
	}
	m := uint64(len(s.cells) - 1)
	i := s.home(ref)
	for s.cells[i] != 0 {
		i = (i + 1) & m
	}
	s.cells[i] = ref
	s.n++
}

// remove deletes ref, shifting later cells of its probe run back (see
// table.remove), and reports whether it was there.
func (s *refSet) remove(ref uint64) bool {
	if s.n == 0 {
		return false
	}
	m := uint64(len(s.cells) - 1)
	i := s.home(ref)
	for s.cells[i] != ref {
		if s.cells[i] == 0 {
			return false
		}
		i = (i + 1) & m
	}
	s.cells[i] = 0
	s.n--
	for j := (i + 1) & m; s.cells[j] != 0; j = (j + 1) & m {
		if h := s.home(s.cells[j]); (j-h)&m >= (j-i)&m {
			s.cells[i], s.cells[j] = s.cells[j], 0
			i = j
		}
	}
	if s.n > 0 && s.n*8 < len(s.cells) && len(s.cells) > 8 {
		s.resize(len(s.cells) / 2)
	}
	return true
}

// minRefCells is a new set's size: with TTLs spread thinly most buckets
// hold one or two keys.
const minRefCells = 2

func (s *refSet) grow() { s.resize(max(minRefCells, 2*len(s.cells))) }

func (s *refSet) resize(size int) {
	old := s.cells
	s.cells = make([]uint64, size)
	s.shift = uint8(64 - log2(size))
	s.n = 0
	for _, ref := range old {
		if ref != 0 {
			s.add(ref)
		}
	}
}

package keyspace

import "slices"

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
	order   []int64 // bucket numbers present, ascending
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
		i, _ := slices.BinarySearch(x.order, b)
		x.order = slices.Insert(x.order, i, b)
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
		if i, ok := slices.BinarySearch(x.order, b); ok {
			x.order = slices.Delete(x.order, i, i+1)
		}
	}
}

// each passes refs to fn, bucket by bucket from the one at index
// start%buckets on (wrapping round), until fn returns false; within each
// bucket it starts at the cell chosen by start/buckets. start 0 is the
// earliest bucket first. The order within a bucket follows a hash of the
// ref: arbitrary, and random only for a random start.
func (x *expiry) each(start uint64, fn func(ref uint64) bool) {
	nb := uint64(len(x.order))
	if nb == 0 {
		return
	}
	from := start / nb
	for i := uint64(0); i < nb; i++ {
		cells := x.buckets[x.order[(start+i)%nb]].cells
		for j := range cells {
			if ref := cells[(uint64(j)+from)%uint64(len(cells))]; ref != 0 && !fn(ref) {
				return
			}
		}
	}
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
	if s.n > 0 && s.n*8 < len(s.cells) && len(s.cells) > minCells {
		s.resize(len(s.cells) / 2)
	}
	return true
}

func (s *refSet) grow() { s.resize(max(minCells, 2*len(s.cells))) }

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

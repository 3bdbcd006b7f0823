package keyspace

import "slices"

// bucketShift makes expiry buckets 1,024 ms wide: coarse enough that a
// database of sessions has a few thousand buckets, fine enough that the
// earliest bucket holds keys that expire within about a second of each
// other.
const bucketShift = 10

// expiry is a database's keys with a TTL, grouped by expiry time into
// coarse buckets, each a set of slot refs (a map of integers, which the
// collector does not scan). The leader's expirer looks at the earliest
// buckets first, where expired keys are, instead of sampling blindly.
// Members are refs rather than keys: a key's ref changes with every write,
// and every write (Put, Delete) knows both the old ref and the new one.
type expiry struct {
	buckets map[int64]map[uint64]struct{}
	order   []int64 // bucket numbers present, ascending
	n       int
}

func (x *expiry) add(at int64, ref uint64) {
	b := at >> bucketShift
	set, ok := x.buckets[b]
	if !ok {
		if x.buckets == nil {
			x.buckets = map[int64]map[uint64]struct{}{}
		}
		set = map[uint64]struct{}{}
		x.buckets[b] = set
		i, _ := slices.BinarySearch(x.order, b)
		x.order = slices.Insert(x.order, i, b)
	}
	set[ref] = struct{}{}
	x.n++
}

func (x *expiry) remove(at int64, ref uint64) {
	b := at >> bucketShift
	set := x.buckets[b]
	if _, ok := set[ref]; !ok {
		return
	}
	delete(set, ref)
	x.n--
	if len(set) == 0 {
		delete(x.buckets, b)
		if i, ok := slices.BinarySearch(x.order, b); ok {
			x.order = slices.Delete(x.order, i, i+1)
		}
	}
}

// each passes refs to fn, bucket by bucket from the one at index
// start%buckets on (wrapping round), in Go's randomized map order within a
// bucket, until fn returns false. start 0 is the earliest bucket first.
func (x *expiry) each(start uint64, fn func(ref uint64) bool) {
	nb := uint64(len(x.order))
	for i := uint64(0); i < nb; i++ {
		for ref := range x.buckets[x.order[(start+i)%nb]] {
			if !fn(ref) {
				return
			}
		}
	}
}

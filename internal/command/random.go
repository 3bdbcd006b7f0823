package command

import (
	"math/bits"
	"math/rand/v2"
	"slices"
)

// Random choices (SPOP, SRANDMEMBER, HRANDFIELD, RANDOMKEY).
//
// A command applied from the log runs on every node, and so must choose
// alike everywhere: SPOP removes the same members on each, and a script or
// a MULTI that reads SRANDMEMBER and writes what it got must write the same
// thing. Such a command draws from a PCG seeded with the next CAS value of
// the entry being applied (unique to the command's place in the log, see
// keyspace.NextCAS) and the entry's time. It picks from a deterministic
// order (a set's sorted members, a hash's field order), never from Go's
// map order, and reduces a draw to a range with a multiply-and-shift of
// its own, so that the choice depends on no Go version. A read served by
// one node alone (Header.local) uses that node's random source.
type picker struct {
	pcg *rand.PCG // nil: this node's source
}

func newPicker(v env) picker {
	if v.h.local {
		return picker{}
	}
	return picker{pcg: rand.NewPCG(v.ks.NextCAS(), uint64(v.h.Now))}
}

// intn is a number in [0, n).
func (p picker) intn(n int) int {
	var x uint64
	if p.pcg == nil {
		x = rand.Uint64()
	} else {
		x = p.pcg.Uint64()
	}
	hi, _ := bits.Mul64(x, uint64(n))
	return int(hi)
}

// distinct returns k distinct indexes of [0, n) in increasing order (k < n):
// a sample in the collection's own order, as redis returns from a small
// hash or set.
func (p picker) distinct(n, k int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	for i := 0; i < k; i++ {
		j := i + p.intn(n-i)
		idx[i], idx[j] = idx[j], idx[i]
	}
	out := idx[:k]
	slices.Sort(out)
	return out
}

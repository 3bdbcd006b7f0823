package command

import (
	"bytes"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Sets: SADD, SREM and the reads.
var setOps = []opRow{
	{op: OpSAdd, name: "sadd", flags: opWrite | opDenyOOM, args: argShape{1, 1}, exec: execSAdd},
	{op: OpSRem, name: "srem", flags: opWrite, args: argShape{1, 1}, exec: execSRem},
	{op: OpSMembers, name: "smembers", exec: execSRead},
	{op: OpSIsMember, name: "sismember", args: argShape{1, 1}, exec: execSRead},
	{op: OpSMIsMember, name: "smismember", args: argShape{1, 1}, exec: execSRead},
	{op: OpSCard, name: "scard", exec: execSRead},
	{op: OpSScan, name: "sscan", flags: opItem, exec: execSScan},
	{op: OpSRandMember, name: "srandmember", flags: opItem, args: argShape{1, 1}, exec: execSRandMember},
	{op: OpSPop, name: "spop", flags: opWrite | opItem, args: argShape{1, 1}, exec: execSPop},
	{op: OpSMove, name: "smove", flags: opWrite | opItem, args: argShape{2, 1}, exec: execSMove},
	{op: OpSUnion, name: "sunion", flags: opItem, args: argShape{1, 1}, exec: execSCombine},
	{op: OpSInter, name: "sinter", flags: opItem, args: argShape{1, 1}, exec: execSCombine},
	{op: OpSDiff, name: "sdiff", flags: opItem, args: argShape{1, 1}, exec: execSCombine},
	{op: OpSUnionStore, name: "sunionstore", flags: opWrite | opDenyOOM | opItem, args: argShape{1, 1}, exec: execSCombine},
	{op: OpSInterStore, name: "sinterstore", flags: opWrite | opDenyOOM | opItem, args: argShape{1, 1}, exec: execSCombine},
	{op: OpSDiffStore, name: "sdiffstore", flags: opWrite | opDenyOOM | opItem, args: argShape{1, 1}, exec: execSCombine},
	{op: OpSInterCard, name: "sintercard", flags: opItem, args: argShape{1, 1}, exec: execSCombine},
}

func execSAdd(v env, c *Cmd) Result {
	s, exp, err := setOf(v)
	if err != nil {
		return resErr(err)
	}
	ns, added := s.With(c.Args)
	if added > 0 {
		v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeSet, Set: ns, ExpireAt: exp}, v.h.Now)
		v.ks.Notify(v.db, keyspace.EventSet, "sadd", v.key)
	}
	return resInt(int64(added))
}

func execSRem(v env, c *Cmd) Result {
	s, exp, err := setOf(v)
	if err != nil || s == nil {
		return errOrZero(err)
	}
	ns, n := s.Without(c.Args)
	if n > 0 {
		putOrDelete(v.ks, v.db, v.key, v.h.Now, ns.Len(), &keyspace.Entry{Type: keyspace.TypeSet, Set: ns, ExpireAt: exp})
		v.ks.Notify(v.db, keyspace.EventSet, "srem", v.key)
		if ns.Len() == 0 {
			v.ks.Notify(v.db, keyspace.EventGeneric, "del", v.key)
		}
	}
	return resInt(int64(n))
}

// execSRead is SMEMBERS, SISMEMBER, SMISMEMBER and SCARD.
func execSRead(v env, c *Cmd) Result {
	s, _, err := setOf(v)
	if err != nil {
		return resErr(err)
	}
	switch c.Op {
	case OpSCard:
		return resInt(int64(s.Len()))
	case OpSIsMember:
		return resBool(s.Has(string(c.Args[0])))
	case OpSMIsMember:
		out := make([]Result, len(c.Args))
		for i, m := range c.Args {
			out[i] = resBool(s.Has(string(m)))
		}
		return Result{Kind: KindArray, Array: out}
	}
	out := []Result{}
	for _, m := range s.Members() {
		out = append(out, resBulk([]byte(m)))
	}
	return Result{Kind: KindArray, Array: out}
}

// setOf is the command's key as a set: nil if it does not exist,
// ErrWrongType if it holds another type.
func setOf(v env) (*keyspace.Set, int64, error) {
	e, err := entryOf(v, keyspace.TypeSet)
	if e == nil {
		return nil, 0, err
	}
	return e.Set, e.ExpireAt, nil
}

func execSScan(v env, c *Cmd) Result {
	s, _, err := setOf(v)
	if err != nil {
		return resErr(err)
	}
	if s == nil {
		return scanReply(0, nil)
	}
	return scanCollection(c, s.Members(), setCompact(s), func(m string) []Result {
		return []Result{resBulk([]byte(m))}
	})
}

// execSRandMember is SRANDMEMBER, chosen from the sorted members as
// HRANDFIELD chooses (see execHRandField).
func execSRandMember(v env, c *Cmd) Result {
	s, _, err := setOf(v)
	if err != nil {
		return resErr(err)
	}
	members := s.Members()
	return randomReply(v, c.Args[0], members, func(idx []int) Result {
		out := make([]Result, len(idx))
		for i, j := range idx {
			out[i] = resBulk([]byte(members[j]))
		}
		return Result{Kind: KindArray, Array: out}
	})
}

// execSPop is SPOP. Its choice is the same on every node (see picker).
func execSPop(v env, c *Cmd) Result {
	count, withCount := int64(1), len(c.Args[0]) > 0
	if withCount {
		var ok bool
		if count, ok = ParseInt(c.Args[0]); !ok || count < 0 {
			return resErr(ErrNotInteger)
		}
	}
	s, exp, err := setOf(v)
	if err != nil {
		return resErr(err)
	}
	if s == nil || count == 0 {
		if withCount {
			return Result{Kind: KindArray, Array: []Result{}}
		}
		return resNil
	}
	members := s.Members()
	var popped [][]byte
	for _, i := range randomIndexes(v, len(members), count) {
		popped = append(popped, []byte(members[i]))
	}
	ns, _ := s.Without(popped)
	v.ks.Notify(v.db, keyspace.EventSet, "spop", v.key)
	putOrDelete(v.ks, v.db, v.key, v.h.Now, ns.Len(), &keyspace.Entry{Type: keyspace.TypeSet, Set: ns, ExpireAt: exp})
	if ns.Len() == 0 {
		v.ks.Notify(v.db, keyspace.EventGeneric, "del", v.key)
	}
	if !withCount {
		return resBulk(popped[0])
	}
	out := make([]Result, len(popped))
	for i, m := range popped {
		out[i] = resBulk(m)
	}
	return Result{Kind: KindArray, Array: out}
}

func execSMove(v env, c *Cmd) Result {
	src, srcExp, err := setOf(v)
	if err != nil {
		return resErr(err)
	}
	dstKey, member := string(c.Args[0]), c.Args[1]
	dstEntry := v.ks.Get(v.db, dstKey, v.h.Now)
	if dstEntry != nil && dstEntry.Type != keyspace.TypeSet {
		return resErr(ErrWrongType)
	}
	if src == nil {
		return resInt(0)
	}
	if dstKey == v.key {
		return resBool(src.Has(string(member)))
	}
	ns, n := src.Without([][]byte{member})
	if n == 0 {
		return resInt(0)
	}
	putOrDelete(v.ks, v.db, v.key, v.h.Now, ns.Len(), &keyspace.Entry{Type: keyspace.TypeSet, Set: ns, ExpireAt: srcExp})
	v.ks.Notify(v.db, keyspace.EventSet, "srem", v.key)
	if ns.Len() == 0 {
		v.ks.Notify(v.db, keyspace.EventGeneric, "del", v.key)
	}
	var dst *keyspace.Set
	var dstExp int64
	if dstEntry != nil {
		dst, dstExp = dstEntry.Set, dstEntry.ExpireAt
	}
	if nd, added := dst.With([][]byte{bytes.Clone(member)}); added > 0 {
		v.ks.Put(v.db, dstKey, &keyspace.Entry{Type: keyspace.TypeSet, Set: nd, ExpireAt: dstExp}, v.h.Now)
		v.ks.Notify(v.db, keyspace.EventSet, "sadd", dstKey)
	}
	return resInt(1)
}

// execSCombine is SUNION, SINTER, SDIFF, their STORE forms and
// SINTERCARD. Every key must be a set or missing (an empty set).
func execSCombine(v env, c *Cmd) Result {
	entries, err := entriesOf(v, c.Args, keyspace.TypeSet)
	if err != nil {
		return resErr(err)
	}
	sets := make([]*keyspace.Set, len(entries))
	for i, e := range entries {
		if e != nil {
			sets[i] = e.Set
		}
	}
	var members []string
	switch c.Op {
	case OpSUnion, OpSUnionStore:
		seen := map[string]bool{}
		for _, s := range sets {
			for _, m := range s.Members() {
				if !seen[m] {
					seen[m] = true
					members = append(members, m)
				}
			}
		}
	case OpSInter, OpSInterStore, OpSInterCard:
		// Walk the smallest set, as redis does; SINTERCARD stops at its limit.
		small := sets[0]
		for _, s := range sets {
			if s.Len() < small.Len() {
				small = s
			}
		}
		for _, m := range small.Members() {
			in := true
			for _, s := range sets {
				if in = s.Has(m); !in {
					break
				}
			}
			if in {
				members = append(members, m)
				if c.Op == OpSInterCard && c.N > 0 && int64(len(members)) >= c.N {
					break
				}
			}
		}
	case OpSDiff, OpSDiffStore:
		for _, m := range sets[0].Members() {
			in := false
			for _, s := range sets[1:] {
				if in = s.Has(m); in {
					break
				}
			}
			if !in {
				members = append(members, m)
			}
		}
	}
	switch c.Op {
	case OpSInterCard:
		return resInt(int64(len(members)))
	}
	vals := make([][]byte, len(members))
	for i, m := range members {
		vals[i] = []byte(m)
	}
	result, n := (*keyspace.Set)(nil).With(vals)
	if c.Op == OpSUnionStore || c.Op == OpSInterStore || c.Op == OpSDiffStore {
		// The destination is replaced whatever it held, without a TTL; an
		// empty result deletes it.
		if n == 0 {
			if v.ks.Get(v.db, v.key, v.h.Now) != nil {
				v.ks.Delete(v.db, v.key)
				v.ks.Notify(v.db, keyspace.EventGeneric, "del", v.key)
			}
			return resInt(0)
		}
		v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeSet, Set: result}, v.h.Now)
		v.ks.Notify(v.db, keyspace.EventSet, v.x.row(c.Op).name, v.key)
		return resInt(int64(n))
	}
	out := []Result{}
	for _, m := range result.Members() {
		out = append(out, resBulk([]byte(m)))
	}
	return Result{Kind: KindArray, Array: out}
}

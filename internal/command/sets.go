package command

import "github.com/hatcheck/hatcheck/internal/keyspace"

// Sets: SADD, SREM and the reads.
var setOps = []opRow{
	{op: OpSAdd, name: "sadd", flags: opWrite | opDenyOOM, args: argShape{1, 1}, exec: execSAdd},
	{op: OpSRem, name: "srem", flags: opWrite, args: argShape{1, 1}, exec: execSRem},
	{op: OpSMembers, name: "smembers", exec: execSRead},
	{op: OpSIsMember, name: "sismember", args: argShape{1, 1}, exec: execSRead},
	{op: OpSMIsMember, name: "smismember", args: argShape{1, 1}, exec: execSRead},
	{op: OpSCard, name: "scard", exec: execSRead},
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

package redis

import "github.com/hatcheck/hatcheck/internal/command"

// Sets.
func setCommands() []*cmdSpec {
	const w, r, acl = flagWrite, flagReadOnly, aclSet
	return []*cmdSpec{
		{name: "sadd", arity: -3, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildKeyValues(command.OpSAdd)},
		{name: "srem", arity: -3, flags: w | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpSRem)},
		{name: "smembers", arity: 2, flags: r, acl: acl, keys: oneKey, tips: tipsOutputOrder, build: buildOneKey(command.OpSMembers), shape: shapeSet},
		{name: "sismember", arity: 3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpSIsMember)},
		{name: "smismember", arity: -3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpSMIsMember)},
		{name: "scard", arity: 2, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpSCard)},
		{name: "sscan", arity: -3, flags: r, acl: acl, keys: oneKey, tips: tipsNondeterministic, build: buildCollectionScan(command.OpSScan)},
		{name: "srandmember", arity: -2, flags: r, acl: acl, keys: oneKey, tips: tipsNondeterministic, build: buildSRandMember},
		{name: "spop", arity: -2, flags: w | flagFast, acl: acl, keys: oneKey, tips: tipsNondeterministic, build: buildSPop, shape: shapeSet},
		{name: "smove", arity: 4, flags: w | flagFast, acl: acl, keys: keyPos{1, 2, 1}, build: buildSMove},
		{name: "sunion", arity: -2, flags: r, acl: acl, keys: allKeys, tips: tipsOutputOrder, build: buildKeys(command.OpSUnion), shape: shapeSet},
		{name: "sinter", arity: -2, flags: r, acl: acl, keys: allKeys, tips: tipsOutputOrder, build: buildKeys(command.OpSInter), shape: shapeSet},
		{name: "sdiff", arity: -2, flags: r, acl: acl, keys: allKeys, tips: tipsOutputOrder, build: buildKeys(command.OpSDiff), shape: shapeSet},
		{name: "sunionstore", arity: -3, flags: w | flagDenyOOM, acl: acl, keys: allKeys, build: buildSetStore(command.OpSUnionStore)},
		{name: "sinterstore", arity: -3, flags: w | flagDenyOOM, acl: acl, keys: allKeys, build: buildSetStore(command.OpSInterStore)},
		{name: "sdiffstore", arity: -3, flags: w | flagDenyOOM, acl: acl, keys: allKeys, build: buildSetStore(command.OpSDiffStore)},
		{name: "sintercard", arity: -3, flags: r | flagMovableKeys, acl: acl, keysOf: sinterCardKeys, build: buildSInterCard},
	}
}

func buildSRandMember(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpSRandMember, a[1], nil)
	switch {
	case len(a) > 3:
		return cmd, errSyntax
	case len(a) == 3:
		if _, msg := randomCount(a[2]); msg != "" {
			return cmd, msg
		}
		cmd.Args[0] = a[2]
	}
	return cmd, c.keyCheck(a[1])
}

func buildSPop(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpSPop, a[1], nil)
	switch {
	case len(a) > 3:
		return cmd, errSyntax
	case len(a) == 3:
		if n, ok := parseInt(a[2]); !ok || n < 0 {
			return cmd, "ERR value is out of range, must be positive"
		}
		cmd.Args[0] = a[2]
	}
	return cmd, c.keyCheck(a[1])
}

func buildSMove(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpSMove, a[1], a[2], a[3])
	if msg := c.keyCheck(a[1], a[2]); msg != "" {
		return cmd, msg
	}
	return cmd, c.valueCheck(a[3])
}

// buildSetStore is SUNIONSTORE, SINTERSTORE and SDIFFSTORE: the first key
// is the destination.
func buildSetStore(op command.Op) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		return c.cmd(op, a[1], a[2:]...), c.keyCheck(a[1:]...)
	}
}

// sinterCardKeys are SINTERCARD's keys: numkeys of them after numkeys.
func sinterCardKeys(a [][]byte) ([][]byte, bool) {
	n, ok := parseInt(a[1])
	if !ok || n < 1 || n > int64(len(a)-2) {
		return nil, false
	}
	return a[2 : 2+n], true
}

func buildSInterCard(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpSInterCard, nil)
	n, ok := parseInt(a[1])
	switch {
	case !ok || n < 1:
		return cmd, "ERR numkeys should be greater than 0"
	case n > int64(len(a)-2):
		return cmd, "ERR Number of keys can't be greater than number of args"
	}
	keys := a[2 : 2+n]
	for j := 2 + int(n); j < len(a); j++ {
		if !eq(a[j], "limit") || j+1 >= len(a) {
			return cmd, errSyntax
		}
		limit, ok := parseInt(a[j+1])
		if !ok || limit < 0 {
			return cmd, "ERR LIMIT can't be negative"
		}
		cmd.N = limit
		j++
	}
	cmd.Args = keys
	return cmd, c.keyCheck(keys...)
}

package redis

import "github.com/hatcheck/hatcheck/internal/command"

// Sets.
func setCommands() []*cmdSpec {
	const w, r, acl = flagWrite, flagReadOnly, aclSet
	return []*cmdSpec{
		{name: "sadd", arity: -3, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildKeyValues(command.OpSAdd)},
		{name: "srem", arity: -3, flags: w | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpSRem)},
		{name: "smembers", arity: 2, flags: r, acl: acl, keys: oneKey, tips: tipsOutputOrder, build: buildOneKey(command.OpSMembers)},
		{name: "sismember", arity: 3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpSIsMember)},
		{name: "smismember", arity: -3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpSMIsMember)},
		{name: "scard", arity: 2, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpSCard)},
	}
}

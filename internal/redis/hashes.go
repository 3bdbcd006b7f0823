package redis

import (
	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// Hashes.
func hashCommands() []*cmdSpec {
	const w, r, acl = flagWrite, flagReadOnly, aclHash
	return []*cmdSpec{
		{name: "hset", arity: -4, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildHSet("hset")},
		{name: "hmset", arity: -4, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildHSet("hmset"), reply: replyOK},
		{name: "hsetnx", arity: 4, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildHSetNX},
		{name: "hget", arity: 3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpHGet)},
		{name: "hmget", arity: -3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpHMGet)},
		{name: "hgetall", arity: 2, flags: r, acl: acl, keys: oneKey, tips: tipsOutputOrder, build: buildOneKey(command.OpHGetAll)},
		{name: "hkeys", arity: 2, flags: r, acl: acl, keys: oneKey, tips: tipsOutputOrder, build: buildOneKey(command.OpHKeys)},
		{name: "hvals", arity: 2, flags: r, acl: acl, keys: oneKey, tips: tipsOutputOrder, build: buildOneKey(command.OpHVals)},
		{name: "hlen", arity: 2, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpHLen)},
		{name: "hexists", arity: 3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpHExists)},
		{name: "hstrlen", arity: 3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpHStrLen)},
		{name: "hdel", arity: -3, flags: w | flagFast, acl: acl, keys: oneKey, build: buildOneKey(command.OpHDel)},
		{name: "hincrby", arity: 4, flags: w | flagDenyOOM | flagFast, acl: acl, keys: oneKey, build: buildHIncrBy},
	}
}

func buildHSet(name string) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		if len(a)%2 != 0 {
			return command.Cmd{}, arityError(name)
		}
		return c.cmd(command.OpHSet, a[1], a[2:]...), c.keyValueCheck(a[1], a[3:]...)
	}
}

func buildHSetNX(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpHSet, a[1], a[2], a[3])
	cmd.Flags = command.FlagNX
	return cmd, c.keyValueCheck(a[1], a[3])
}

func buildHIncrBy(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpHIncrBy, a[1], a[2])
	n, ok := parseInt(a[3])
	if !ok {
		return cmd, errNotInteger
	}
	cmd.N = n
	return cmd, c.keyCheck(a[1])
}

// replyOK answers OK whatever the result (HMSET, built as HSET).
func replyOK(c *conn, _ command.Result) { c.out = resp.AppendSimple(c.out, "OK") }

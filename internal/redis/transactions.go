package redis

import (
	"bytes"
	"errors"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
func transactionCommands() []*cmdSpec {
	const acl = aclTransaction
	f := flagNoScript | flagLoading | flagStale | flagFast | flagAllowBusy
	return []*cmdSpec{
		{name: "multi", arity: 1, flags: f | flagNoQueue, acl: acl, run: runMulti},
		{name: "exec", arity: 1, flags: flagNoScript | flagLoading | flagStale | flagSkipSlowlog | flagNoQueue, acl: acl, run: runExec},
		{name: "discard", arity: 1, flags: f | flagNoQueue, acl: acl, run: runDiscard},
		{name: "watch", arity: -2, flags: f | flagNoQueue, acl: acl, keys: allKeys, run: runWatch},
		{name: "unwatch", arity: 1, flags: f, acl: acl, run: runUnwatch},
	}
}

func runMulti(c *conn, _ [][]byte) {
	if c.multi {
		c.out = resp.AppendError(c.out, "ERR MULTI calls can not be nested")
		return
	}
	c.multi, c.multiDirty, c.queued = true, false, nil
	c.out = resp.AppendSimple(c.out, "OK")
}

func runDiscard(c *conn, _ [][]byte) {
	if !c.multi {
		c.out = resp.AppendError(c.out, "ERR DISCARD without MULTI")
		return
	}
	c.multi, c.multiDirty, c.queued = false, false, nil
	c.watched = nil
	c.out = resp.AppendSimple(c.out, "OK")
}

// WATCH reads each key's version now (a linearizable read); EXEC sends
// the versions with the transaction, and Apply runs it only if none has
// changed — on every node alike. A change by any client counts, this one
// included, as in redis.
func runWatch(c *conn, a [][]byte) {
	if c.multi {
		c.out = resp.AppendError(c.out, "ERR WATCH inside MULTI is not allowed")
		return
	}
	if msg := c.keyCheck(a[1:]...); msg != "" {
		c.out = resp.AppendError(c.out, msg)
		return
	}
	cmd := c.cmd(command.OpWatchState, nil, a[1:]...)
	keys := make([][]byte, len(a)-1)
	for i, k := range a[1:] {
		keys[i] = bytes.Clone(k)
	}
	c.read(cmd, func(r command.Result) {
		for i, k := range keys {
			c.watched = append(c.watched, command.Cmd{Op: command.OpWatchCheck, DB: cmd.DB, Key: k, Args: [][]byte{r.Array[i].Bulk}})
		}
		c.out = resp.AppendSimple(c.out, "OK")
	})
}

func runUnwatch(c *conn, _ [][]byte) {
	c.watched = nil
	c.out = resp.AppendSimple(c.out, "OK")
}

// runExec proposes the queued data commands as one transaction, one log
// entry, applied atomically. Connection and server commands queued with
// them (PING, SELECT, …) run here in order; SELECT changes the database of
// the data commands queued after it.
func runExec(c *conn, _ [][]byte) {
	if !c.multi {
		c.out = resp.AppendError(c.out, "ERR EXEC without MULTI")
		return
	}
	queue, dirty, watched := c.queued, c.multiDirty, c.watched
	c.multi, c.multiDirty, c.queued, c.watched = false, false, nil, nil
	if dirty {
		c.out = resp.AppendError(c.out, "EXECABORT Transaction discarded because of previous errors.")
		return
	}
	c.execQueue(queue, make([][]byte, len(queue)), nil, watched, 0)
}

// execQueue runs EXEC's queue from i on: connection and server commands
// now, in order (their replies kept in local), data commands into tx, which
// then goes to the log as one transaction. A queued command that waits
// (SCRIPT LOAD, INFO) is answered first, and the queue goes on after it.
func (c *conn) execQueue(queue []queued, local [][]byte, tx command.Tx, watched []command.Cmd, i int) {
	for ; i < len(queue); i++ {
		q := queue[i]
		// Users may have changed since the command was queued.
		if msg := c.aclRefusal(q.spec, q.args, "multi", true); msg != "" {
			local[i] = resp.AppendError(nil, msg)
			continue
		}
		if q.spec.build == nil {
			mark := len(c.out)
			c.inExec = true
			q.spec.run(c, q.args)
			c.inExec = false
			if c.Busy() {
				i := i
				c.next = func() {
					// The continuation's reply is all of c.out: a resumed
					// run starts with empty output.
					local[i] = bytes.Clone(c.out)
					c.out = c.out[:0]
					c.execQueue(queue, local, tx, watched, i+1)
				}
				return
			}
			local[i] = bytes.Clone(c.out[mark:])
			c.out = c.out[:mark]
			continue
		}
		cmd, msg := q.spec.build(c, q.args)
		if msg != "" {
			local[i] = resp.AppendError(nil, msg)
			continue
		}
		tx = append(tx, cmd)
	}
	if len(watched) > 0 {
		tx = append(watched, tx...)
	}
	if len(tx) == 0 {
		c.execReply(queue, local, nil)
		return
	}
	c.write(tx, func(res command.TxResult, err error) {
		if err == nil && errors.Is(res.Err, command.ErrWatchedKeyChanged) {
			c.appendNullArray()
			return
		}
		if err == nil {
			err = res.Err
		}
		if err != nil {
			c.out = resp.AppendError(c.out, errorText(err, ""))
			return
		}
		c.execReply(queue, local, res.Results[len(watched):])
	})
}

// execReply is EXEC's reply: the results of the queued commands, in order.
func (c *conn) execReply(queue []queued, local [][]byte, results []command.Result) {
	c.out = resp.AppendArray(c.out, len(queue))
	for i, q := range queue {
		if local[i] != nil || q.spec.build == nil {
			c.out = append(c.out, local[i]...)
			continue
		}
		c.replyResult(q.spec, results[0])
		results = results[1:]
	}
}

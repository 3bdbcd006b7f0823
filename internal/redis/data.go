package redis

import (
	"slices"
	"strconv"
	"strings"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// Data commands, the rows with a build function: what they share, from
// running one (alone, in a pipeline batch or queued in MULTI) to the
// generic builders and the reply encoding. Each command's own builder is
// in its family's file.

// runData executes a data command outside MULTI, or adds it to the
// connection's pipeline batch (see conn.batch).
func runData(c *conn, spec *cmdSpec, args [][]byte) {
	cmd, msg := spec.build(c, args)
	if msg != "" {
		if len(c.items) > 0 {
			c.refuseInBatch(spec, slices.Clone(args), msg)
			return
		}
		c.out = resp.AppendError(c.out, msg)
		return
	}
	if spec.wait != nil {
		spec.wait(c, spec, cmd)
		return
	}
	if spec.flags&flagBlocking != 0 {
		timeout, _ := parseTimeout(blockTimeout(spec, args)) // build checked it
		c.block(spec, cmd, timeout)
		return
	}
	if len(c.batch) > 0 || (c.more && cmd.Op.IsWrite() && !c.muted && c.replyMode == replyOn) {
		c.addToBatch(spec, slices.Clone(args), cmd)
		return
	}
	c.runOne(spec, cmd)
}

// runOne executes one data command on its own.
func (c *conn) runOne(spec *cmdSpec, cmd command.Cmd) {
	// A restricted user's read-only script goes through the log too, to
	// run as the user (see conn.asUser).
	if cmd.Op.IsWrite() || (!c.user.free && isScriptOp(cmd.Op)) {
		c.writeOK(command.Tx{cmd}, func(res command.TxResult) { c.replyResult(spec, res.Results[0]) })
		return
	}
	if r, ok := c.readNow(cmd); ok {
		c.replyResult(spec, r)
		return
	}
	c.read(cmd, func(r command.Result) { c.replyResult(spec, r) })
}

func (c *conn) replyResult(spec *cmdSpec, r command.Result) {
	c.countLookups(spec, r)
	if r.Kind == command.KindError {
		c.out = resp.AppendError(c.out, errorText(r.Err, spec.name))
		return
	}
	if spec.reply != nil {
		spec.reply(c, r)
		return
	}
	c.out = appendReply(c.out, r, c.protocol(), spec.shape)
}

func (c *conn) cmd(op command.Op, key []byte, args ...[]byte) command.Cmd {
	return command.Cmd{Op: op, DB: uint8(c.db.Load()), Key: key, Args: args}
}

// keyCheck enforces the configured key size limit.
func (c *conn) keyCheck(keys ...[]byte) string {
	for _, k := range keys {
		if len(k) > c.srv.cfg.MaxKeySize {
			return "ERR key is too large (max-key-size is " + strconv.Itoa(c.srv.cfg.MaxKeySize) + " bytes)"
		}
	}
	return ""
}

// keyValueCheck enforces the key and value size limits on a key and its
// values.
func (c *conn) keyValueCheck(key []byte, vals ...[]byte) string {
	if msg := c.keyCheck(key); msg != "" {
		return msg
	}
	return c.valueCheck(vals...)
}

// valueCheck enforces the configured value size limit.
func (c *conn) valueCheck(vals ...[]byte) string {
	for _, v := range vals {
		if int64(len(v)) > c.srv.cfg.MaxValueSize {
			return "ERR value is too large (max-value-size is " + strconv.FormatInt(c.srv.cfg.MaxValueSize, 10) + " bytes)"
		}
	}
	return ""
}

func parseInt(b []byte) (int64, bool) { return command.ParseInt(b) }

func eq(b []byte, s string) bool { return strings.EqualFold(string(b), s) }

func buildOneKey(op command.Op) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		return c.cmd(op, a[1], a[2:]...), c.keyCheck(a[1])
	}
}

func buildKeys(op command.Op) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(op, nil, a[1:]...)
		return cmd, c.keyCheck(a[1:]...)
	}
}

func buildKeyValues(op command.Op) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		return c.cmd(op, a[1], a[2:]...), c.keyValueCheck(a[1], a[2:]...)
	}
}

func buildNoKey(op command.Op) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		return c.cmd(op, nil, a[1:]...), ""
	}
}

package command

import "fmt"

// The op table: one row per Op, everything the package knows about a
// command in one place — its name, whether it writes, whether it may grow
// memory, the shape of its arguments, its log encoding, a check to run
// before its transaction and the function that executes it. IsWrite,
// DenyOOM, Valid, the decoder's argument check and the executor's dispatch
// all read it; nothing about an op lives anywhere else (but its number, in
// command.go, which is part of the log format).
//
// The rows live beside their executor functions, one file per family
// (strings.go, hashes.go, sets.go, lists.go, keys.go, transactions.go, pubsub.go,
// scripting.go, memcached.go). A new command is an Op number, a row and a
// function.
//
// The table is a package variable, unlike the Redis front end's, which its
// server builds: it is the log format, the same in every process and every
// node, never changed after start. An op listed twice panics at start.
//
// Executor functions must not call Op's methods (IsWrite, DenyOOM, Valid):
// those read the table, and the table holds the functions, which Go
// reports as an initialization cycle. They reach the table through their
// env instead (see env.row).

// opFlags are an op's properties.
type opFlags uint8

const (
	opWrite   opFlags = 1 << iota // changes state: proposed through the log, never run by Read
	opDenyOOM                     // may grow memory: refused over maxmemory (redis's "denyoom")
	// opItem: the log encoding carries the memcached item fields
	// (ClientFlags, CAS, Delta, Initial) after the arguments. Every op
	// numbered from OpMCStore on has it, whether it uses them or not: that
	// was the rule when the encoding was written, and the bytes of old log
	// entries depend on it.
	opItem
	opNoScript // a script may not run it (EVAL inside EVAL)
)

// argShape is how many Args a command needs: at least min, and a multiple
// of step. The executor indexes Args without checking, so a log entry that
// breaks this shape is refused at decode time on every node rather than
// crashing them all.
type argShape struct{ min, step int }

// opRow describes one op.
type opRow struct {
	op    Op
	name  string // the Redis or memcached command it mostly serves, for messages and grep
	flags opFlags
	args  argShape
	// check, if set, refuses a decoded command the shape alone cannot.
	check func(c *Cmd) error
	// guard, if set, runs for every command of a transaction before any
	// of them executes; an error aborts the transaction whole.
	guard func(v env, c *Cmd) error
	exec  func(v env, c *Cmd) Result
}

// ops is the op table, indexed by Op.
var ops = newOpTable(keyOps, stringOps, hashOps, setOps, transactionOps, pubsubOps, scriptingOps, memcachedOps, bitmapOps, listOps, functionOps, zsetOps, aclOps, dumpOps, sortOps, streamOps)

// newOpTable indexes the families' rows by op, and panics on an op listed
// twice or out of range.
func newOpTable(families ...[]opRow) *[opEnd]opRow {
	var t [opEnd]opRow
	for _, rows := range families {
		for _, r := range rows {
			switch {
			case r.op <= OpInvalid || r.op >= opEnd || r.op == opFirstRead:
				panic(fmt.Sprintf("command: op %d (%s) is not a command number", r.op, r.name))
			case t[r.op].exec != nil:
				panic(fmt.Sprintf("command: op %d listed twice (%s, %s)", r.op, t[r.op].name, r.name))
			case r.exec == nil:
				panic(fmt.Sprintf("command: op %s has no executor function", r.name))
			}
			if r.args.step == 0 {
				r.args.step = 1
			}
			t[r.op] = r
		}
	}
	return &t
}

// IsWrite reports whether the command changes state and so goes through the log.
func (o Op) IsWrite() bool { return o.Valid() && ops[o].flags&opWrite != 0 }

// Valid reports whether o is a known command.
func (o Op) Valid() bool { return o < opEnd && ops[o].exec != nil }

// DenyOOM reports whether the command may grow memory and so is refused
// when used memory is over maxmemory (redis's "denyoom" flag).
func (o Op) DenyOOM() bool { return o.Valid() && ops[o].flags&opDenyOOM != 0 }

// hasItemFields reports whether the op's log encoding carries the
// memcached item fields. An unknown op is refused before it matters.
func (o Op) hasItemFields() bool { return o.Valid() && ops[o].flags&opItem != 0 }

func (c *Cmd) validate() error {
	if !c.Op.Valid() {
		return fmt.Errorf("%w: %d", ErrUnknownOp, c.Op)
	}
	row := &ops[c.Op]
	if s := row.args; len(c.Args) < s.min || len(c.Args)%s.step != 0 {
		return fmt.Errorf("op %s with %d arguments", row.name, len(c.Args))
	}
	if row.check != nil {
		return row.check(c)
	}
	return nil
}

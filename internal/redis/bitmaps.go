package redis

import (
	"math"
	"strconv"
	"strings"

	"github.com/hatcheck/hatcheck/internal/command"
)

// Bitmaps: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO.
func bitmapCommands() []*cmdSpec {
	const w, r, acl = flagWrite, flagReadOnly, aclBitmap
	return []*cmdSpec{
		{name: "setbit", arity: 4, flags: w | flagDenyOOM, acl: acl, keys: oneKey, build: buildSetBit},
		{name: "getbit", arity: 3, flags: r | flagFast, acl: acl, keys: oneKey, build: buildGetBit},
		{name: "bitcount", arity: -2, flags: r, acl: acl, keys: oneKey, build: buildBitCount},
		{name: "bitpos", arity: -3, flags: r, acl: acl, keys: oneKey, build: buildBitPos},
		{name: "bitop", arity: -4, flags: w | flagDenyOOM, acl: acl, keys: keyPos{2, -1, 1}, build: buildBitOp},
		{name: "bitfield", arity: -2, flags: w | flagDenyOOM, acl: acl, keys: oneKey, build: buildBitField(false)},
		{name: "bitfield_ro", arity: -2, flags: r | flagFast, acl: acl, keys: oneKey, build: buildBitField(true)},
	}
}

const (
	errBitOffset = "ERR bit offset is not an integer or out of range"
	errBitValue  = "ERR bit is not an integer or out of range"
)

// bitOffset parses a bit offset as redis's getBitOffsetFromArgument: a
// non-negative integer (for BITFIELD, "#n" means n fields of width bits)
// whose byte is within proto-max-bulk-len.
func (c *conn) bitOffset(b []byte, width int64) (int64, string) {
	hash := width > 0 && len(b) > 0 && b[0] == '#'
	if hash {
		b = b[1:]
	}
	n, ok := parseInt(b)
	if !ok || n < 0 {
		return 0, errBitOffset
	}
	if hash {
		if n > math.MaxInt64/width {
			return 0, errBitOffset
		}
		n *= width
	}
	if n>>3 >= min(c.srv.cfg.MaxBulk, c.srv.cfg.MaxValueSize) {
		return 0, errBitOffset
	}
	return n, ""
}

func buildSetBit(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpSetBit, a[1], a[3])
	n, msg := c.bitOffset(a[2], 0)
	if msg != "" {
		return cmd, msg
	}
	if v := string(a[3]); v != "0" && v != "1" {
		return cmd, errBitValue
	}
	cmd.N = n
	return cmd, c.keyCheck(a[1])
}

func buildGetBit(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpGetBit, a[1])
	n, msg := c.bitOffset(a[2], 0)
	cmd.N = n
	if msg != "" {
		return cmd, msg
	}
	return cmd, c.keyCheck(a[1])
}

func buildBitCount(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpBitCount, a[1])
	switch len(a) {
	case 2:
		return cmd, c.keyCheck(a[1])
	case 4, 5:
	default:
		return cmd, errSyntax
	}
	if _, ok := parseInt(a[2]); !ok {
		return cmd, errNotInteger
	}
	if _, ok := parseInt(a[3]); !ok {
		return cmd, errNotInteger
	}
	unit := []byte("byte")
	if len(a) == 5 {
		if !eq(a[4], "bit") && !eq(a[4], "byte") {
			return cmd, errSyntax
		}
		unit = a[4]
	}
	cmd.Args = [][]byte{a[2], a[3], unit}
	return cmd, c.keyCheck(a[1])
}

// buildBitPos checks the bit; the range is parsed by the executor once
// the key is found, as redis does (a missing key answers without it).
func buildBitPos(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpBitPos, a[1], a[2:]...)
	bit, ok := parseInt(a[2])
	switch {
	case !ok:
		return cmd, errNotInteger
	case bit != 0 && bit != 1:
		return cmd, "ERR The bit argument must be 1 or 0."
	case len(a) > 6:
		return cmd, errSyntax
	}
	cmd.Args[0] = []byte(strconv.FormatInt(bit, 10))
	return cmd, c.keyCheck(a[1])
}

func buildBitOp(c *conn, a [][]byte) (command.Cmd, string) {
	cmd := c.cmd(command.OpBitOp, a[2], a[1])
	cmd.Args = append(cmd.Args, a[3:]...)
	switch op := strings.ToLower(string(a[1])); op {
	case "and", "or", "xor":
	case "not":
		if len(a) != 4 {
			return cmd, "ERR BITOP NOT must be called with a single source key."
		}
	default:
		return cmd, errSyntax
	}
	return cmd, c.keyCheck(a[2:]...)
}

// buildBitField parses BITFIELD's operations into four arguments each
// (operation, type, absolute bit offset, value), in redis's order of
// checks. A BITFIELD of GETs only is a read.
func buildBitField(readOnly bool) func(c *conn, a [][]byte) (command.Cmd, string) {
	return func(c *conn, a [][]byte) (command.Cmd, string) {
		cmd := c.cmd(command.OpBitField, a[1])
		writes := false
		for j := 2; j < len(a); j++ {
			rest := len(a) - j - 1
			op := strings.ToLower(string(a[j]))
			switch {
			case op == "get" && rest >= 2, (op == "set" || op == "incrby") && rest >= 3:
			case op == "overflow" && rest >= 1:
				mode := strings.ToLower(string(a[j+1]))
				if mode != "wrap" && mode != "sat" && mode != "fail" {
					return cmd, "ERR Invalid OVERFLOW type specified"
				}
				cmd.Args = append(cmd.Args, []byte("overflow"), nil, nil, []byte(mode))
				j++
				continue
			default:
				return cmd, errSyntax
			}
			t := a[j+1]
			width, ok := parseInt(t[min(1, len(t)):])
			if len(t) < 2 || (t[0] != 'i' && t[0] != 'u') || !ok || width < 1 || width > 64 || (t[0] == 'u' && width > 63) {
				return cmd, "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
			}
			off, msg := c.bitOffset(a[j+2], width)
			if msg != "" {
				return cmd, msg
			}
			var val []byte
			if op != "get" {
				writes = true
				if _, ok := parseInt(a[j+3]); !ok {
					return cmd, errNotInteger
				}
				val = a[j+3]
			}
			cmd.Args = append(cmd.Args, []byte(op), t, strconv.AppendInt(nil, off, 10), val)
			j += 2
			if op != "get" {
				j++
			}
		}
		if writes && readOnly {
			return cmd, "ERR BITFIELD_RO only supports the GET subcommand"
		}
		if !writes {
			cmd.Op = command.OpBitFieldRO
		}
		return cmd, c.keyCheck(a[1])
	}
}

package memcache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
)

// Binary opcodes.
const (
	opGet       = 0x00
	opSet       = 0x01
	opAdd       = 0x02
	opReplace   = 0x03
	opDelete    = 0x04
	opIncr      = 0x05
	opDecr      = 0x06
	opQuit      = 0x07
	opFlush     = 0x08
	opGetQ      = 0x09
	opNoop      = 0x0a
	opVersion   = 0x0b
	opGetK      = 0x0c
	opGetKQ     = 0x0d
	opAppend    = 0x0e
	opPrepend   = 0x0f
	opStat      = 0x10
	opSetQ      = 0x11
	opAddQ      = 0x12
	opReplaceQ  = 0x13
	opDeleteQ   = 0x14
	opIncrQ     = 0x15
	opDecrQ     = 0x16
	opQuitQ     = 0x17
	opFlushQ    = 0x18
	opAppendQ   = 0x19
	opPrependQ  = 0x1a
	opVerbosity = 0x1b
	opTouch     = 0x1c
	opGAT       = 0x1d
	opGATQ      = 0x1e
	opSASLList  = 0x20
	opSASLAuth  = 0x21
	opSASLStep  = 0x22
	opGATK      = 0x23
	opGATKQ     = 0x24
)

// Response statuses and the messages memcached sends with them.
const (
	stOK          = 0x00
	stNotFound    = 0x01
	stExists      = 0x02
	stTooLarge    = 0x03
	stInvalid     = 0x04
	stNotStored   = 0x05
	stNonNumeric  = 0x06
	stAuthError   = 0x20
	stUnknown     = 0x81
	stOutOfMemory = 0x82
	stBusy        = 0x85 // temporary failure: no leader
)

var statusText = map[uint16]string{
	stNotFound: "Not found", stExists: "Data exists for key.", stTooLarge: "Too large.",
	stInvalid: "Invalid arguments", stNotStored: "Not stored.",
	stNonNumeric: "Non-numeric server-side value for incr or decr", stAuthError: "Auth failure.",
	stUnknown: "Unknown command", stOutOfMemory: "Out of memory", stBusy: "Temporary failure",
}

// quiet maps each quiet opcode to its loud form.
var quiet = map[byte]byte{
	opGetQ: opGet, opGetKQ: opGetK, opSetQ: opSet, opAddQ: opAdd, opReplaceQ: opReplace,
	opDeleteQ: opDelete, opIncrQ: opIncr, opDecrQ: opDecr, opQuitQ: opQuit, opFlushQ: opFlush,
	opAppendQ: opAppend, opPrependQ: opPrepend, opGATQ: opGAT, opGATKQ: opGATK,
}

var binNames = map[byte]string{
	opGet: "get", opGetK: "getk", opSet: "set", opAdd: "add", opReplace: "replace", opDelete: "delete",
	opIncr: "incr", opDecr: "decr", opQuit: "quit", opFlush: "flush", opNoop: "noop", opVersion: "version",
	opAppend: "append", opPrepend: "prepend", opStat: "stat", opVerbosity: "verbosity", opTouch: "touch",
	opGAT: "gat", opGATK: "gatk", opSASLList: "sasl_list_mechs", opSASLAuth: "sasl_auth", opSASLStep: "sasl_step",
}

// binaryRequest parses and runs one binary request.
func (c *conn) binaryRequest(buf []byte) (int, error) {
	r, n, tooLarge, err := parseBinary(buf, c.maxBody())
	if err != nil {
		return n, err
	}
	if tooLarge {
		c.swallow = r.bodyLen - len(r.extras) - len(r.key)
		answer := func() { c.binError(r.op, r.opaque, stTooLarge) }
		if op, _ := loud(r.op); op == opSet {
			// As memcached: a failed set must not leave the old value
			// readable.
			c.dropKey(r.key, answer)
		} else {
			answer()
		}
		return n, nil
	}
	start := time.Now()
	before := len(c.out)
	err = c.runBinary(r)
	name := binNames[r.op]
	if q, ok := quiet[r.op]; ok {
		name = binNames[q]
	}
	if name == "" {
		name = "unknown"
	}
	c.observeRequest(name, start, c.out[before:])
	return n, err
}

// loud returns the loud form of op and whether op is a quiet one.
func loud(op byte) (byte, bool) {
	if base, ok := quiet[op]; ok {
		return base, true
	}
	return op, false
}

// frameOK checks a request's extras, key and value lengths the way
// memcached does before running it; a request that fails gets "Invalid
// arguments" and the connection is closed. Unknown opcodes pass (they are
// answered "Unknown command").
func frameOK(base byte, r binReq) bool {
	ext, key, val := len(r.extras), len(r.key), len(r.value)
	if key > maxKeyLen {
		return false
	}
	switch base {
	case opVersion, opNoop, opQuit, opSASLList:
		return ext == 0 && key == 0 && val == 0
	case opFlush:
		return key == 0 && val == 0 && (ext == 0 || ext == 4)
	case opSet, opAdd, opReplace:
		return ext == 8 && key > 0
	case opGet, opGetK, opDelete:
		return ext == 0 && key > 0 && val == 0
	case opIncr, opDecr:
		return ext == 20 && key > 0 && val == 0
	case opAppend, opPrepend:
		return ext == 0 && key > 0
	case opStat:
		return ext == 0
	case opSASLAuth, opSASLStep:
		return ext == 0 && key > 0
	case opTouch, opGAT, opGATK:
		return ext == 4 && key > 0
	}
	return true
}

func (c *conn) binError(op byte, opaque uint32, status uint16) {
	c.out = appendBinResponse(c.out, op, status, opaque, 0, nil, nil, []byte(statusText[status]))
}

// runBinary runs one request; an error means the connection must close
// after the reply is sent.
func (c *conn) runBinary(r binReq) error {
	op := r.op
	base, isQuiet := loud(op)
	if !frameOK(base, r) {
		c.binError(op, r.opaque, stInvalid)
		return errCloseConn
	}
	if !c.authed && base != opSASLList && base != opSASLAuth && base != opSASLStep && base != opVersion {
		// memcached closes a connection that skips authentication.
		c.binError(op, r.opaque, stAuthError)
		return errCloseConn
	}
	ok := func(cas uint64, extras, key, value []byte) {
		if !isQuiet || base == opGet || base == opGetK || base == opGAT || base == opGATK {
			c.out = appendBinResponse(c.out, op, stOK, r.opaque, cas, extras, key, value)
		}
	}
	fail := func(err error) {
		switch {
		case errors.Is(err, command.ErrNotNumeric):
			c.binError(op, r.opaque, stNonNumeric)
		case errors.Is(err, command.ErrOOM):
			c.binError(op, r.opaque, stOutOfMemory)
		default:
			c.binError(op, r.opaque, stBusy)
		}
	}
	switch base {
	case opGet, opGetK, opGAT, opGATK:
		answer := func(res command.Result, err error) {
			if err != nil {
				fail(err)
				return
			}
			var key []byte
			if base == opGetK || base == opGATK {
				key = r.key
			}
			if res.Kind != command.KindBulk {
				c.lookups(0, 1)
				if isQuiet {
					return
				}
				if key != nil {
					// GETK's miss carries the key instead of a message.
					c.out = appendBinResponse(c.out, op, stNotFound, r.opaque, 0, nil, key, nil)
				} else {
					c.binError(op, r.opaque, stNotFound)
				}
				return
			}
			c.lookups(1, 0)
			var fl [4]byte
			binary.BigEndian.PutUint32(fl[:], res.Flags)
			ok(res.CAS, fl[:], key, res.Bulk)
		}
		if base == opGAT || base == opGATK {
			cmd := command.Cmd{Op: command.OpGetEx, Key: r.key}
			if exp := int64(binary.BigEndian.Uint32(r.extras)); exp == 0 {
				cmd.Flags = command.FlagPersist
			} else {
				expiry(exp, &cmd)
			}
			c.write(cmd, func(res command.Result, err error) {
				if errors.Is(err, command.ErrWrongType) {
					err = nil
				}
				answer(res, err)
			})
			return nil
		}
		c.srv.cmdGet.Add(1)
		c.read(command.Cmd{Op: command.OpGet, Key: r.key}, answer)
	case opSet, opAdd, opReplace, opAppend, opPrepend:
		cmd := command.Cmd{Op: command.OpMCStore, Key: r.key, Args: [][]byte{r.value}, CAS: r.cas}
		switch base {
		case opAdd:
			cmd.Flags, cmd.CAS = command.FlagNX, 0
		case opReplace:
			cmd.Flags = command.FlagXX
		case opAppend:
			cmd.Flags = command.FlagAppend
		case opPrepend:
			cmd.Flags = command.FlagPrepend
		}
		if len(r.extras) == 8 {
			cmd.ClientFlags = binary.BigEndian.Uint32(r.extras[:4])
			expiry(int64(int32(binary.BigEndian.Uint32(r.extras[4:]))), &cmd)
		}
		c.srv.cmdSet.Add(1)
		c.write(cmd, func(res command.Result, err error) {
			if err != nil {
				fail(err)
				return
			}
			switch res.Int {
			case command.Stored:
				ok(res.CAS, nil, nil, nil)
			case command.Exists:
				c.binError(op, r.opaque, stExists)
			case command.NotFound:
				c.binError(op, r.opaque, stNotFound)
			default:
				switch base {
				case opAdd:
					c.binError(op, r.opaque, stExists)
				case opReplace:
					c.binError(op, r.opaque, stNotFound)
				default:
					c.binError(op, r.opaque, stNotStored)
				}
			}
		})
	case opDelete:
		c.write(command.Cmd{Op: command.OpMCDelete, Key: r.key, CAS: r.cas}, func(res command.Result, err error) {
			switch {
			case err != nil:
				fail(err)
			case res.Int == command.NotFound:
				c.binError(op, r.opaque, stNotFound)
			case res.Int == command.Exists:
				c.binError(op, r.opaque, stExists)
			default:
				ok(0, nil, nil, nil)
			}
		})
	case opIncr, opDecr:
		cmd := command.Cmd{Op: command.OpMCIncr, Key: r.key,
			Delta: binary.BigEndian.Uint64(r.extras[0:8]), Initial: binary.BigEndian.Uint64(r.extras[8:16])}
		if base == opDecr {
			cmd.Flags = command.FlagDecr
		}
		if exp := binary.BigEndian.Uint32(r.extras[16:20]); exp != 0xffffffff {
			cmd.Flags |= command.FlagCreate
			expiry(int64(exp), &cmd)
		}
		c.write(cmd, func(res command.Result, err error) {
			if err != nil {
				fail(err)
				return
			}
			if res.Int == command.NotFound {
				c.binError(op, r.opaque, stNotFound)
				return
			}
			v, _ := command.ParseUint(res.Bulk)
			var body [8]byte
			binary.BigEndian.PutUint64(body[:], v)
			ok(res.CAS, nil, nil, body[:])
		})
	case opTouch:
		c.write(touchCmd(r.key, int64(binary.BigEndian.Uint32(r.extras))), func(res command.Result, err error) {
			switch {
			case err != nil:
				fail(err)
			case res.Int == command.NotFound:
				c.binError(op, r.opaque, stNotFound)
			default:
				var fl [4]byte
				binary.BigEndian.PutUint32(fl[:], res.Flags)
				ok(res.CAS, fl[:], nil, nil)
			}
		})
	case opQuit:
		ok(0, nil, nil, nil)
		c.quit = true
	case opFlush:
		if len(r.extras) == 4 {
			if d := binary.BigEndian.Uint32(r.extras); d > 0 {
				c.srv.scheduleFlush(time.Duration(d) * time.Second)
				ok(0, nil, nil, nil)
				return nil
			}
		}
		c.write(command.Cmd{Op: command.OpFlushDB}, func(_ command.Result, err error) {
			if err != nil {
				fail(err)
				return
			}
			ok(0, nil, nil, nil)
		})
	case opNoop:
		ok(0, nil, nil, nil)
	case opVersion:
		ok(0, nil, nil, []byte(Version))
	case opStat:
		if len(r.key) == 0 {
			for _, kv := range c.srv.stats() {
				c.out = appendBinResponse(c.out, op, stOK, r.opaque, 0, nil, []byte(kv[0]), []byte(kv[1]))
			}
		}
		c.out = appendBinResponse(c.out, op, stOK, r.opaque, 0, nil, nil, nil)
	case opSASLList:
		ok(0, nil, nil, []byte("PLAIN"))
	case opSASLAuth:
		// PLAIN: [authzid] NUL authcid NUL passwd: an ACL user and its
		// password (see Server.login).
		parts := bytes.SplitN(r.value, []byte{0}, 3)
		if string(r.key) != "PLAIN" || len(parts) != 3 || len(parts[1]) == 0 || !c.srv.login(parts[1], parts[2]) {
			c.srv.log.Warn("memcache SASL authentication failed", "addr", c.link.RemoteAddr().String())
			c.binError(op, r.opaque, stAuthError)
			return nil
		}
		c.authed = true
		ok(0, nil, nil, []byte("Authenticated"))
	case opSASLStep:
		c.binError(op, r.opaque, stAuthError)
	default:
		c.binError(op, r.opaque, stUnknown)
	}
	return nil
}

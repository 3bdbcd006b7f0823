package memcache

import (
	"bytes"
	"encoding/base64"
	"math"
	"strconv"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
)

// The meta protocol (mg ms md ma mn me) as memcached 1.6 speaks it
// (proto_text.c, 1.6.18): a command is a name, a key and single-letter
// flags, some with a token after the letter; replies are a two-letter code
// and the flags the request asked to have returned, in request order.
//
// Stale-while-revalidate (mg's N and R, the W, X and Z reply flags, md's
// I, ms's I with C) changes an item when it is read: who won the right to
// recache must be the same answer on every node, so an mg that may win or
// create runs through the log (OpMCMetaGet); one that cannot — a hit on an
// item that is not stale and that R does not make a winner, or any mg
// without N or R of an item that is not stale — stays a read. Whether an
// mg may win is decided by the read itself (OpMCGet answers
// MetaNeedsLog), and decided again, atomically, by the log entry. The
// stale and win-sent bits are replicated (keyspace.ItemBits); mg's h (hit
// before) and l (last access) are node-local, as the access clock is: they
// reflect the fetches seen by the node that ran the mg (the leader for one
// that ran through the log). See docs/COMPATIBILITY.md.

const (
	// maxMetaTokens is memcached's MFLAG_MAX_OPT_LENGTH: a meta command
	// line may have at most this many tokens, counting its end marker.
	maxMetaTokens = 20
	// maxOpaque is memcached's MFLAG_MAX_OPAQUE_LENGTH, the O included.
	maxOpaque = 32
)

// metaFlags is a meta command's flags, parsed as memcached's
// _meta_flag_preparse does: every command takes every known flag, even
// one it ignores.
type metaFlags struct {
	key      []byte   // the key, base64-decoded with b
	binKey   bool     // b: the key is printed back in base64
	toks     [][]byte // the flag tokens, in request order
	value    bool     // v
	quiet    bool     // q
	noBump   bool     // u
	hit      bool     // h
	stale    bool     // I
	recache  bool     // R
	recTok   int64    // R's token, memcached's exptime
	hasTTL   bool     // T
	ttl      int64    // T's exptime
	vivify   bool     // N
	vivTTL   int64    // N's exptime
	hasCAS   bool     // C
	cas      uint64   // C's value
	flags    uint32   // F
	mode     byte     // M
	initial  uint64   // J
	delta    uint64   // D
	hasDelta bool
}

// parseMetaFlags parses the flag tokens of a meta command whose key token
// is key. It returns memcached's error line for bad flags, or "".
func parseMetaFlags(key []byte, toks [][]byte) (metaFlags, string) {
	f := metaFlags{key: key, toks: toks}
	errstr, failed := "CLIENT_ERROR bad command line format", false
	fail := func(s string) {
		if s != "" {
			errstr = s
		}
		failed = true
	}
	var seen [127]bool
	for _, t := range toks {
		o := t[0]
		if o >= 127 || seen[o] {
			return f, "CLIENT_ERROR duplicate flag"
		}
		seen[o] = true
		arg := t[1:]
		var ok bool
		switch o {
		case 'b':
			f.binKey = true
			if f.key, ok = decodeBase64Key(key); !ok {
				fail("CLIENT_ERROR error decoding key")
			}
		case 'N', 'T', 'R':
			n, ok := cStrtol(arg)
			if !ok {
				fail("CLIENT_ERROR bad token in command line format")
				break
			}
			switch o {
			case 'N':
				f.vivify, f.vivTTL = true, n
			case 'T':
				f.hasTTL, f.ttl = true, n
			default:
				f.recache, f.recTok = true, n
			}
		case 'O', 'P', 'L', 'k', 's', 't', 'c', 'f', 'l':
		case 'v':
			f.value = true
		case 'h':
			f.hit = true
		case 'u':
			f.noBump = true
		case 'q':
			f.quiet = true
		case 'F':
			var n uint64
			if n, ok = cStrtoull(arg); !ok {
				fail("")
			}
			f.flags = uint32(n) // strtoul's value, kept to 32 bits
		case 'C':
			if f.cas, ok = cStrtoull(arg); !ok {
				fail("CLIENT_ERROR bad token in command line format")
			} else {
				f.hasCAS = true
			}
		case 'M':
			if len(t) != 2 {
				fail("CLIENT_ERROR incorrect length for M token")
			} else {
				f.mode = t[1]
			}
		case 'J':
			if f.initial, ok = cStrtoull(arg); !ok {
				fail("CLIENT_ERROR invalid numeric initial value")
			}
		case 'D':
			if f.delta, ok = cStrtoull(arg); !ok {
				fail("CLIENT_ERROR invalid numeric delta value")
			}
			f.hasDelta = true
		case 'I':
			f.stale = true
		default:
			return f, "CLIENT_ERROR invalid flag"
		}
	}
	if failed {
		return f, errstr
	}
	return f, ""
}

// opaqueTooLong reports whether an O token is longer than memcached takes.
func (f *metaFlags) opaqueTooLong() bool {
	for _, t := range f.toks {
		if t[0] == 'O' && len(t) > maxOpaque {
			return true
		}
	}
	return false
}

// decodeBase64Key decodes a b key as memcached's base64_decode does: bytes
// outside the alphabet are skipped, the rest must come in groups of four,
// and decoding stops after the first group with padding.
func decodeBase64Key(s []byte) ([]byte, bool) {
	clean := make([]byte, 0, len(s))
	for _, c := range s {
		if c == '=' || bytes.IndexByte([]byte(base64Alphabet), c) >= 0 {
			clean = append(clean, c)
		}
	}
	if len(clean) == 0 || len(clean)%4 != 0 {
		return nil, false
	}
	out := make([]byte, 0, len(clean)/4*3)
	for i := 0; i < len(clean); i += 4 {
		var v uint32
		pad := 0
		for _, c := range clean[i : i+4] {
			d := 0
			if c == '=' {
				pad++
			} else {
				d = bytes.IndexByte([]byte(base64Alphabet), c)
			}
			v = v<<6 | uint32(d)
		}
		out = append(out, byte(v>>16), byte(v>>8), byte(v))
		if pad > 0 {
			if pad > 2 {
				return nil, false
			}
			out = out[:len(out)-pad]
			break
		}
	}
	if len(out) == 0 {
		return nil, false
	}
	return out, true
}

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// cStrtol is memcached's safe_strtol over a whole token: C's strtol (a
// sign, decimal digits, a 64-bit long), its value then stored into a
// 32-bit int — which keeps the low 32 bits, as memcached does.
func cStrtol(b []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, false
	}
	return int64(int32(n)), true
}

// cStrtoull is memcached's safe_strtoull over a whole token: an optional
// sign and decimal digits; a minus is refused when the value it makes
// would be negative as a signed number (strtoull negates it).
func cStrtoull(b []byte) (uint64, bool) {
	s := string(b)
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		n = -n
		if int64(n) < 0 {
			return 0, false
		}
	}
	return n, true
}

// metaKeyOK is memcached's check of a meta command's key token: at most
// 250 bytes, before any base64 decoding.
func metaKeyOK(k []byte) bool { return len(k) <= maxKeyLen }

// runMeta runs mg, md, ma, mn and me (ms is parsed with its data block
// and runs in metaSet).
func (c *conn) runMeta(r textReq) {
	a := r.args
	switch {
	case r.cmd == "mn":
		c.line("MN")
		return
	case r.cmd == "me":
		c.metaDebug(a)
		return
	case len(a) == 0:
		c.line("ERROR")
		return
	}
	switch r.cmd {
	case "mg":
		if !metaKeyOK(a[0]) {
			c.line("CLIENT_ERROR bad command line format")
			return
		}
		if len(a)+2 > maxMetaTokens {
			c.line("CLIENT_ERROR options flags are too long")
			return
		}
	default:
		if !metaKeyOK(a[0]) {
			c.line("CLIENT_ERROR bad command line format")
			return
		}
		if len(a)+2 > maxMetaTokens {
			c.line("CLIENT_ERROR options flags too long")
			return
		}
	}
	f, errstr := parseMetaFlags(a[0], a[1:])
	if errstr != "" && r.cmd != "mg" {
		// md and ma answer every flag error alike.
		errstr = "CLIENT_ERROR invalid or duplicate flag"
	}
	if errstr != "" {
		c.line(errstr)
		return
	}
	switch r.cmd {
	case "mg":
		c.metaGet(f)
	case "md":
		c.metaDelete(f)
	case "ma":
		c.metaArith(f)
	}
}

// metaOpaqueKey appends, for a reply, the O and k flags of the request in
// order (what a miss or a failed command returns).
func (c *conn) metaOpaqueKey(f *metaFlags) {
	for _, t := range f.toks {
		switch t[0] {
		case 'O':
			c.out = append(append(c.out, ' '), t...)
		case 'k':
			c.metaKey(f)
		}
	}
}

// metaKey appends " k<key>", in base64 followed by " b" for a b key.
func (c *conn) metaKey(f *metaFlags) {
	c.out = append(c.out, " k"...)
	if f.binKey {
		c.out = base64.StdEncoding.AppendEncode(c.out, f.key)
		c.out = append(c.out, " b"...)
		return
	}
	c.out = append(c.out, f.key...)
}

// metaErr answers a failed write as memcached reports server trouble;
// meta errors are never suppressed by q.
func (c *conn) metaErr(err error) { c.reply(false, err, nil) }

// ttlSeconds is what memcached prints for t: -1 for no expiry, else the
// seconds left, rounded up as memcached's whole-second clock counts them.
func ttlSeconds(expireAt, now int64) int64 {
	if expireAt == 0 {
		return -1
	}
	if expireAt <= now {
		return 0
	}
	return (expireAt - now + 999) / 1000
}

// metaRefused answers a request that uses a flag hatcheck does not
// support (with refusal, the command's invalid-flag line) or an opaque
// longer than memcached takes, and reports whether it did.
func (c *conn) metaRefused(f *metaFlags, unsupported bool, refusal string) bool {
	switch {
	case unsupported:
		c.line(refusal)
	case f.opaqueTooLong():
		c.line("CLIENT_ERROR opaque token too long")
	default:
		return false
	}
	return true
}

// metaHead starts a reply that has an item: "VA <size>" when the value
// is asked for (v), else "HD".
func (c *conn) metaHead(value bool, size int) {
	if !value {
		c.out = append(c.out, "HD"...)
		return
	}
	c.out = append(c.out, "VA "...)
	c.out = strconv.AppendInt(c.out, int64(size), 10)
}

// metaEnd ends the reply line, followed by the data block for VA.
func (c *conn) metaEnd(value bool, data []byte) {
	c.out = append(c.out, '\r', '\n')
	if value {
		c.out = append(append(c.out, data...), '\r', '\n')
	}
}

func (c *conn) metaGet(f metaFlags) {
	if c.metaRefused(&f, false, "") {
		return
	}
	if f.hasTTL && (f.vivify || f.recache) {
		c.metaGetLogged(f)
		return
	}
	get := command.Cmd{Op: command.OpMCGet, Key: f.key}
	if f.noBump {
		get.Flags = command.FlagNoBump
	}
	if f.vivify {
		get.Flags |= command.FlagCreate
	}
	if f.recache {
		get.Delta = uint64(f.recTok)
	}
	if !f.hasTTL {
		// A read, unless it finds that the mg creates or wins.
		c.read(get, func(res command.Result, err error) {
			if err != nil {
				c.metaErr(err)
				return
			}
			if res.Int&command.MetaNeedsLog != 0 {
				c.metaGetLogged(f)
				return
			}
			c.metaGetReply(&f, res, 0, 0)
		})
		return
	}
	// T: the read and the touch in one log entry (the ops every version
	// applies), unless the item turns out to be stale with no win sent.
	// The reply's t shows the old expiry before the T flag and the new one
	// after it, as memcached's reply loop does.
	touch := touchCmd(f.key, f.ttl)
	now := time.Now().UnixMilli()
	newAt := int64(0)
	if f.ttl != 0 {
		e := command.Cmd{}
		expiry(f.ttl, &e)
		newAt = e.N
		if e.Has(command.FlagExpireRel) {
			newAt += now
		}
	}
	c.writeTx(command.Tx{get, touch}, func(res command.TxResult, err error) {
		if err != nil {
			c.metaErr(err)
			return
		}
		if res.Results[0].Int&command.MetaNeedsLog != 0 {
			c.metaGetLogged(f)
			return
		}
		c.metaGetReply(&f, res.Results[0], newAt, 0)
	})
}

// metaGetLogged runs an mg that may create the item or win through the
// log, as OpMCMetaGet.
func (c *conn) metaGetLogged(f metaFlags) {
	cmd := command.Cmd{Op: command.OpMCMetaGet, Key: f.key, Args: [][]byte{nil, nil, nil}}
	for _, t := range f.toks {
		if t[0] == 'T' || t[0] == 'N' || t[0] == 'R' {
			cmd.Args[2] = append(cmd.Args[2], t[0])
		}
	}
	if f.vivify {
		cmd.Args[0] = strconv.AppendInt(nil, f.vivTTL, 10)
	}
	if f.recache {
		cmd.Args[1] = strconv.AppendInt(nil, f.recTok, 10)
	}
	if f.noBump {
		cmd.Flags |= command.FlagNoBump
	}
	if f.hasTTL {
		cmd.Flags |= command.FlagSetTTL
		expiry(f.ttl, &cmd)
	}
	c.write(cmd, func(res command.Result, err error) {
		if err != nil {
			c.metaErr(err)
			return
		}
		var tAt, vivAt int64
		if len(res.Array) == 5 {
			// The expiry before, the access clock before, the expiry
			// after, T's and N's, as the leader saw them.
			res.ExpireAt, res.Access, tAt, vivAt = res.Array[0].Int, res.Array[1].Int, res.Array[3].Int, res.Array[4].Int
		}
		c.metaGetReply(&f, res, tAt, vivAt)
	})
}

// metaGetReply writes mg's reply; newAt is the expiry T gave, if any, and
// vivAt N's for an item N created. t prints the expiry as it is where t
// comes among the flags, as memcached's reply loop does.
func (c *conn) metaGetReply(f *metaFlags, res command.Result, newAt, vivAt int64) {
	c.srv.cmdGet.Add(1)
	if res.Kind != command.KindBulk {
		c.lookups(0, 1)
		if !f.quiet {
			c.out = append(c.out, "EN"...)
			c.metaOpaqueKey(f)
			c.out = append(c.out, '\r', '\n')
		}
		return
	}
	c.lookups(1, 0)
	now := time.Now().UnixMilli()
	c.metaHead(f.value, len(res.Bulk))
	expireAt := res.ExpireAt
	for _, t := range f.toks {
		switch t[0] {
		case 'T':
			expireAt = newAt
		case 'N':
			if res.Int&command.MetaCreated != 0 {
				expireAt = vivAt
			}
		case 's':
			c.out = append(c.out, " s"...)
			c.out = strconv.AppendInt(c.out, int64(len(res.Bulk)), 10)
		case 't':
			c.out = append(c.out, " t"...)
			c.out = strconv.AppendInt(c.out, ttlSeconds(expireAt, now), 10)
		case 'c':
			c.out = append(c.out, " c"...)
			c.out = strconv.AppendUint(c.out, res.CAS, 10)
		case 'f':
			c.out = append(c.out, " f"...)
			c.out = strconv.AppendUint(c.out, uint64(res.Flags), 10)
		case 'l':
			c.out = append(c.out, " l"...)
			c.out = strconv.AppendInt(c.out, max(0, now-res.Access)/1000, 10)
		case 'h':
			if res.Int&command.MetaFetched != 0 {
				c.out = append(c.out, " h1"...)
			} else {
				c.out = append(c.out, " h0"...)
			}
		case 'O':
			c.out = append(append(c.out, ' '), t...)
		case 'k':
			c.metaKey(f)
		}
	}
	// After the requested flags, in memcached's order: Z (a win was sent
	// before), X (stale), W (this mg won).
	if res.Int&command.MetaWinSent != 0 {
		c.out = append(c.out, " Z"...)
	}
	if res.Int&command.MetaStale != 0 {
		c.out = append(c.out, " X"...)
	}
	if res.Int&command.MetaWon != 0 {
		c.out = append(c.out, " W"...)
	}
	c.metaEnd(f.value, res.Bulk)
}

// metaSetCheck checks an ms request line once its data length is known,
// as memcached does before it reads the data: the returned error line (""
// if none) is answered after the data block is swallowed.
func metaSetCheck(f *metaFlags) string {
	if f.opaqueTooLong() {
		return "CLIENT_ERROR opaque token too long"
	}
	switch f.mode {
	case 0, 'E', 'A', 'P', 'R', 'S':
	default:
		return "CLIENT_ERROR invalid mode for ms M token"
	}
	return ""
}

// metaSet runs a parsed ms. Modes map onto OpMCStore so that the outcomes
// are memcached's do_store_item's: a CAS turns set and replace into cas;
// add ignores it; append and prepend compare it when it is not 0.
func (c *conn) metaSet(r textReq) {
	f := r.meta
	cmd := command.Cmd{Op: command.OpMCStore, Key: f.key, Args: [][]byte{r.data}, ClientFlags: f.flags}
	appending := false
	switch f.mode {
	case 'E':
		cmd.Flags = command.FlagNX
	case 'A':
		cmd.Flags, appending = command.FlagAppend, true
	case 'P':
		cmd.Flags, appending = command.FlagPrepend, true
	case 'R':
		cmd.Flags = command.FlagXX
	}
	if f.hasCAS && f.mode != 'E' {
		cmd.CAS = f.cas
		if cmd.CAS == 0 && !appending {
			// cas with 0 compares and fails (no item has CAS 0);
			// append and prepend treat 0 as no compare.
			cmd.CAS = math.MaxUint64
		}
	}
	if !appending && f.hasTTL {
		expiry(f.ttl, &cmd)
	}
	if f.stale && f.hasCAS && (f.mode == 0 || f.mode == 'S' || f.mode == 'R') {
		// I with a CAS (memcached's set_stale, which only its cas mode
		// uses): a lower CAS than the item's stores a stale value.
		cmd.Op = command.OpMCStoreStale
	}
	c.srv.cmdSet.Add(1)
	c.write(cmd, func(res command.Result, err error) {
		if err != nil {
			c.metaErr(err)
			return
		}
		code := "HD"
		switch res.Int {
		case command.Stored:
			if f.quiet {
				return
			}
		case command.NotStored:
			code = "NS"
		case command.Exists:
			code = "EX"
		case command.NotFound:
			code = "NF"
			if appending {
				// append with a CAS to a missing item: memcached's
				// append finds nothing to append to first.
				code = "NS"
			}
		}
		c.out = append(c.out, code...)
		for _, t := range f.toks {
			switch t[0] {
			case 'O':
				c.out = append(append(c.out, ' '), t...)
			case 'k':
				c.metaKey(&f)
			case 'c':
				c.out = append(c.out, " c"...)
				if res.Int == command.Stored {
					c.out = strconv.AppendUint(c.out, res.CAS, 10)
				} else {
					c.out = append(c.out, '0')
				}
			}
		}
		c.out = append(c.out, '\r', '\n')
	})
}

func (c *conn) metaDelete(f metaFlags) {
	if c.metaRefused(&f, false, "") {
		return
	}
	cmd := command.Cmd{Op: command.OpMCDelete, Key: f.key}
	if f.stale {
		// I: mark the item stale instead of deleting it, with T a new
		// expiry.
		cmd.Op = command.OpMCInvalidate
		if f.hasTTL {
			cmd.Flags |= command.FlagSetTTL
			expiry(f.ttl, &cmd)
		}
	}
	if f.hasCAS {
		cmd.CAS = f.cas
		if cmd.CAS == 0 {
			cmd.CAS = math.MaxUint64 // C0 compares, and no item has CAS 0
		}
	}
	c.write(cmd, func(res command.Result, err error) {
		if err != nil {
			c.metaErr(err)
			return
		}
		code := "HD"
		switch res.Int {
		case command.NotFound:
			code = "NF"
		case command.Exists:
			code = "EX"
		default:
			if f.quiet {
				return
			}
		}
		c.out = append(c.out, code...)
		c.metaOpaqueKey(&f)
		c.out = append(c.out, '\r', '\n')
	})
}

// metaArith runs ma through OpMCIncr: D the delta (default 1), M the
// direction, N creates a missing item with J, C compares (0: no compare,
// as memcached's do_add_delta), T gives the item a new expiry.
func (c *conn) metaArith(f metaFlags) {
	cmd := command.Cmd{Op: command.OpMCIncr, Key: f.key, Delta: 1, CAS: f.cas}
	if f.hasDelta {
		cmd.Delta = f.delta
	}
	switch f.mode {
	case 0, 'I', '+':
	case 'D', '-':
		cmd.Flags |= command.FlagDecr
	default:
		c.line("CLIENT_ERROR invalid mode for ma M token")
		return
	}
	if f.vivify {
		cmd.Flags |= command.FlagCreate
		cmd.Initial = f.initial
	}
	switch {
	case f.hasTTL:
		// One expiry for both cases: memcached gives a created item the
		// later of N's and T's, an existing one T's.
		cmd.Flags |= command.FlagSetTTL
		expiry(f.ttl, &cmd)
	case f.vivify:
		expiry(f.vivTTL, &cmd)
	}
	c.write(cmd, func(res command.Result, err error) {
		if err != nil {
			c.metaErr(err)
			return
		}
		// memcached checks the opaque while writing the reply, after
		// the arithmetic is done.
		if c.metaRefused(&f, false, "") {
			return
		}
		switch res.Int {
		case command.NotFound, command.Exists, command.NotStored:
			c.out = append(c.out, [...]string{command.NotFound: "NF", command.Exists: "EX", command.NotStored: "NS"}[res.Int]...)
			c.metaOpaqueKey(&f)
			c.out = append(c.out, '\r', '\n')
			return
		case command.Stored:
			if f.quiet {
				return // a created item is answered even with q
			}
		}
		if len(res.Array) == 1 {
			res.ExpireAt = res.Array[0].Int // as the leader saw it
		}
		c.metaHead(f.value, len(res.Bulk))
		now := time.Now().UnixMilli()
		for _, t := range f.toks {
			switch t[0] {
			case 'c':
				c.out = append(c.out, " c"...)
				c.out = strconv.AppendUint(c.out, res.CAS, 10)
			case 't':
				c.out = append(c.out, " t"...)
				c.out = strconv.AppendInt(c.out, ttlSeconds(res.ExpireAt, now), 10)
			case 'O':
				c.out = append(append(c.out, ' '), t...)
			case 'k':
				c.metaKey(&f)
			}
		}
		c.metaEnd(f.value, res.Bulk)
	})
}

// metaDebug answers me with the fields hatcheck has: exp (as memcached
// prints it: -1 for none, else the negated seconds left), la (seconds
// since the last access on this node), cas and fetch (read on this node
// since stored, as mg's h). memcached's cls and size describe its slab
// allocator and are left out.
func (c *conn) metaDebug(a [][]byte) {
	if len(a) < 1 || !metaKeyOK(a[0]) {
		c.line("CLIENT_ERROR bad command line format")
		return
	}
	f := metaFlags{key: a[0]}
	if len(a) >= 2 && string(a[1]) == "b" {
		k, ok := decodeBase64Key(a[0])
		if !ok {
			c.line("CLIENT_ERROR bad command line format")
			return
		}
		f.key, f.binKey = k, true
	}
	c.read(command.Cmd{Op: command.OpMCGet, Key: f.key, Flags: command.FlagNoBump}, func(res command.Result, err error) {
		if err != nil {
			c.metaErr(err)
			return
		}
		if res.Kind != command.KindBulk {
			c.line("EN")
			return
		}
		now := time.Now().UnixMilli()
		c.out = append(c.out, "ME "...)
		if f.binKey {
			c.out = base64.StdEncoding.AppendEncode(c.out, f.key)
		} else {
			c.out = append(c.out, f.key...)
		}
		c.out = append(c.out, " exp="...)
		exp := ttlSeconds(res.ExpireAt, now)
		if exp > 0 {
			exp = -exp
		}
		c.out = strconv.AppendInt(c.out, exp, 10)
		c.out = append(c.out, " la="...)
		c.out = strconv.AppendInt(c.out, max(0, now-res.Access)/1000, 10)
		c.out = append(c.out, " cas="...)
		c.out = strconv.AppendUint(c.out, res.CAS, 10)
		if res.Int&command.MetaFetched != 0 {
			c.out = append(c.out, " fetch=yes"...)
		} else {
			c.out = append(c.out, " fetch=no"...)
		}
		c.out = append(c.out, '\r', '\n')
	})
}

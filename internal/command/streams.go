package command

import (
	"strconv"
	"strings"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Streams (without consumer groups). A stream is an immutable
// keyspace.Stream; see its doc comment for what each change costs. The
// arguments travel in the log as the client sent them and are parsed here,
// in the order redis 7.0's t_stream.c parses them, so that a request with
// two faults gets the same error, and a log entry is not trusted.
//
// The ID XADD generates for "*" is the batch's time (the leader's clock,
// as SET EX uses it), or the last ID's successor if that is larger: every
// node applies the same entry at the same time and so generates the same
// ID.
var streamOps = []opRow{
	{op: OpXAdd, name: "xadd", flags: opWrite | opDenyOOM, args: argShape{2, 1}, exec: execXAdd},
	{op: OpXTrim, name: "xtrim", flags: opWrite, args: argShape{2, 1}, exec: execXTrim},
	{op: OpXDel, name: "xdel", flags: opWrite, args: argShape{1, 1}, exec: execXDel},
	{op: OpXSetID, name: "xsetid", flags: opWrite | opDenyOOM, args: argShape{1, 1}, exec: execXSetID},
	{op: OpXLen, name: "xlen", exec: execXLen},
	{op: OpXRange, name: "xrange", args: argShape{2, 1}, exec: execXRange},
	{op: OpXRead, name: "xread", args: argShape{2, 1}, exec: execXRead},
	{op: OpXInfo, name: "xinfo", args: argShape{1, 1}, exec: execXInfo},
}

// Errors of the stream commands, in redis-server's words.
var (
	ErrStreamID       = ReplyError("ERR Invalid stream ID specified as stream command argument")
	errXAddTop        = ReplyError("ERR The ID specified in XADD is equal or smaller than the target stream top item")
	errXAddZero       = ReplyError("ERR The ID specified in XADD must be greater than 0-0")
	errXAddExhausted  = ReplyError("ERR The stream has exhausted the last possible ID, unable to add more items")
	errXAddArity      = ReplyError("ERR wrong number of arguments for 'xadd' command")
	errStreamSyntax   = ReplyError("ERR syntax error")
	errTrimBoth       = ReplyError("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
	errTrimMaxLen     = ReplyError("ERR The MAXLEN argument must be >= 0.")
	errTrimLimit      = ReplyError("ERR The LIMIT argument must be >= 0.")
	errTrimLimitNone  = ReplyError("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
	errTrimNone       = ReplyError("ERR syntax error, XTRIM must be called with a trimming strategy")
	errTrimLimitExact = ReplyError("ERR syntax error, LIMIT cannot be used without the special ~ option")
)

// streamNodeMaxEntries is redis's default stream-node-max-entries, which
// sets the default LIMIT of an approximate trim (100 times it).
const streamNodeMaxEntries = 100

// ParseStreamID parses an ID as redis's streamGenericParseIDOrReply: "-"
// and "+" (unless strict), ms-seq, or ms alone (the sequence is then
// missingSeq). With allowAutoSeq, "ms-*" is accepted and seqGiven is false.
func ParseStreamID(b []byte, missingSeq uint64, strict, allowAutoSeq bool) (id keyspace.StreamID, seqGiven bool, ok bool) {
	if len(b) > 127 {
		return id, false, false
	}
	s := string(b)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i] // redis copies the ID into a C string
	}
	if strict && (s == "-" || s == "+") {
		return id, false, false
	}
	switch s {
	case "-":
		return keyspace.StreamID{}, true, true
	case "+":
		return keyspace.MaxStreamID, true, true
	}
	msPart, seqPart, dash := strings.Cut(s, "-")
	ms, ok := string2ull(msPart)
	if !ok {
		return id, false, false
	}
	seq, seqGiven := missingSeq, true
	if dash {
		if allowAutoSeq && seqPart == "*" {
			seq, seqGiven = 0, false
		} else if seq, ok = string2ull(seqPart); !ok {
			return id, false, false
		}
	}
	return keyspace.StreamID{Ms: ms, Seq: seq}, seqGiven, true
}

// string2ull is redis's: a canonical non-negative int64, or else what C's
// strtoull reads in base 10 from the whole string (leading spaces, a sign,
// leading zeros; "-" negates, modulo 2^64), without overflow.
func string2ull(s string) (uint64, bool) {
	if n, ok := ParseInt([]byte(s)); ok {
		return uint64(n), n >= 0
	}
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	if t == "" || t[0] < '0' || t[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// trim strategies
const (
	trimNone = iota
	trimMaxLen
	trimMinID
)

// addTrimArgs is what streamParseAddOrTrimArgsOrReply reads.
type addTrimArgs struct {
	strategy int
	approx   bool
	limit    int64
	maxLen   int64
	minID    keyspace.StreamID
	// XADD's
	id                keyspace.StreamID
	idGiven, seqGiven bool
	noMkStream        bool
	idPos             int // index of the ID in the arguments
}

// parseAddTrim parses XADD's (xadd) or XTRIM's arguments after the key.
func parseAddTrim(a [][]byte, xadd bool) (addTrimArgs, error) {
	var t addTrimArgs
	limitGiven := false
	i := 0
	for ; i < len(a); i++ {
		more := len(a) - 1 - i
		opt := string(a[i])
		switch {
		case xadd && opt == "*":
			t.idPos = i
			goto done
		case strings.EqualFold(opt, "maxlen") && more > 0, strings.EqualFold(opt, "minid") && more > 0:
			if t.strategy != trimNone {
				return t, errTrimBoth
			}
			t.approx = false
			if next := string(a[i+1]); more >= 2 && next == "~" {
				t.approx = true
				i++
			} else if more >= 2 && next == "=" {
				i++
			}
			if strings.EqualFold(opt, "maxlen") {
				n, ok := ParseInt(a[i+1])
				if !ok {
					return t, ErrNotInteger
				}
				if n < 0 {
					return t, errTrimMaxLen
				}
				t.maxLen, t.strategy = n, trimMaxLen
			} else {
				id, _, ok := ParseStreamID(a[i+1], 0, true, false)
				if !ok {
					return t, ErrStreamID
				}
				t.minID, t.strategy = id, trimMinID
			}
			i++
		case strings.EqualFold(opt, "limit") && more > 0:
			n, ok := ParseInt(a[i+1])
			if !ok {
				return t, ErrNotInteger
			}
			if n < 0 {
				return t, errTrimLimit
			}
			t.limit, limitGiven = n, true
			i++
		case xadd && strings.EqualFold(opt, "nomkstream"):
			t.noMkStream = true
		case xadd:
			id, seqGiven, ok := ParseStreamID(a[i], 0, true, true)
			if !ok {
				return t, ErrStreamID
			}
			t.id, t.seqGiven, t.idGiven, t.idPos = id, seqGiven, true, i
			goto done
		default:
			return t, errStreamSyntax
		}
	}
	t.idPos = i
done:
	if t.limit != 0 && t.strategy == trimNone {
		return t, errTrimLimitNone
	}
	if !xadd && t.strategy == trimNone {
		return t, errTrimNone
	}
	if limitGiven {
		if !t.approx {
			return t, errTrimLimitExact
		}
	} else if t.approx {
		t.limit = 100 * streamNodeMaxEntries
	}
	return t, nil
}

// trimStream removes entries from the head as t says and returns how many.
// An approximate trim (~) removes as many as an exact one would, up to its
// LIMIT (0: none): redis removes only whole listpack nodes, so it may
// remove fewer, which its contract allows.
func trimStream(s *keyspace.Stream, t addTrimArgs) (*keyspace.Stream, int) {
	k := 0
	switch t.strategy {
	case trimMaxLen:
		if int64(s.Len()) > t.maxLen {
			k = s.Len() - int(t.maxLen)
		}
	case trimMinID:
		k = s.Search(t.minID)
	}
	if t.approx && t.limit > 0 && int64(k) > t.limit {
		k = int(t.limit)
	}
	return s.TrimHead(k), k
}

func execXAdd(v env, c *Cmd) Result {
	t, err := parseAddTrim(c.Args, true)
	if err != nil {
		return resErr(err)
	}
	if t.idPos >= len(c.Args) {
		return resErr(errXAddArity)
	}
	fields := c.Args[t.idPos+1:]
	if len(fields) < 2 || len(fields)%2 != 0 {
		return resErr(errXAddArity)
	}
	if t.idGiven && t.seqGiven && t.id == (keyspace.StreamID{}) {
		return resErr(errXAddZero)
	}
	e, err := entryOf(v, keyspace.TypeStream)
	if err != nil {
		return resErr(err)
	}
	s := &keyspace.Stream{}
	var exp int64
	if e != nil {
		s, exp = e.Stream, e.ExpireAt
	} else if t.noMkStream {
		return resNil
	}
	if s.Last == keyspace.MaxStreamID {
		return resErr(errXAddExhausted)
	}
	var id keyspace.StreamID
	switch {
	case t.idGiven && t.seqGiven:
		id = t.id
	case t.idGiven:
		id = keyspace.StreamID{Ms: t.id.Ms}
		if s.Last.Ms == t.id.Ms {
			if s.Last.Seq == ^uint64(0) {
				return resErr(errXAddTop)
			}
			id = keyspace.StreamID{Ms: s.Last.Ms, Seq: s.Last.Seq + 1}
		}
	default:
		if ms := uint64(max(v.h.Now, 0)); ms > s.Last.Ms {
			id = keyspace.StreamID{Ms: ms}
		} else {
			id, _ = s.Last.Incr()
		}
	}
	if id.Compare(s.Last) <= 0 {
		return resErr(errXAddTop)
	}
	s = s.Append(keyspace.StreamEntry{ID: id, Fields: cloneAll(fields)})
	trimmed := 0
	if t.strategy != trimNone {
		s, trimmed = trimStream(s, t)
	}
	v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeStream, Stream: s, ExpireAt: exp}, v.h.Now)
	v.ks.Notify(v.db, keyspace.EventStream, "xadd", v.key)
	if trimmed > 0 {
		v.ks.Notify(v.db, keyspace.EventStream, "xtrim", v.key)
	}
	return resBulk(id.Append(nil))
}

func execXTrim(v env, c *Cmd) Result {
	t, err := parseAddTrim(c.Args, false)
	if err != nil {
		return resErr(err)
	}
	e, err := entryOf(v, keyspace.TypeStream)
	if err != nil || e == nil {
		return errOrZero(err)
	}
	s, n := trimStream(e.Stream, t)
	if n > 0 {
		v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeStream, Stream: s, ExpireAt: e.ExpireAt}, v.h.Now)
		v.ks.Notify(v.db, keyspace.EventStream, "xtrim", v.key)
	}
	return resInt(int64(n))
}

func execXDel(v env, c *Cmd) Result {
	e, err := entryOf(v, keyspace.TypeStream)
	if err != nil || e == nil {
		return errOrZero(err)
	}
	ids := make([]keyspace.StreamID, len(c.Args))
	for i, a := range c.Args {
		id, _, ok := ParseStreamID(a, 0, true, false)
		if !ok {
			return resErr(ErrStreamID)
		}
		ids[i] = id
	}
	s, n := e.Stream.Without(ids)
	if n > 0 {
		v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeStream, Stream: s, ExpireAt: e.ExpireAt}, v.h.Now)
		v.ks.Notify(v.db, keyspace.EventStream, "xdel", v.key)
	}
	return resInt(int64(n))
}

func execXSetID(v env, c *Cmd) Result {
	id, _, ok := ParseStreamID(c.Args[0], 0, true, false)
	if !ok {
		return resErr(ErrStreamID)
	}
	added := int64(-1)
	var maxDel keyspace.StreamID
	for i := 1; i < len(c.Args); i++ {
		more := len(c.Args) - 1 - i
		switch opt := string(c.Args[i]); {
		case strings.EqualFold(opt, "entriesadded") && more > 0:
			n, ok := ParseInt(c.Args[i+1])
			if !ok {
				return resErr(ErrNotInteger)
			}
			if n < 0 {
				return resErr(ReplyError("ERR entries_added must be positive"))
			}
			added = n
			i++
		case strings.EqualFold(opt, "maxdeletedid") && more > 0:
			if maxDel, _, ok = ParseStreamID(c.Args[i+1], 0, true, false); !ok {
				return resErr(ErrStreamID)
			}
			if id.Compare(maxDel) < 0 {
				return resErr(ReplyError("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"))
			}
			i++
		default:
			return resErr(errStreamSyntax)
		}
	}
	e, err := entryOf(v, keyspace.TypeStream)
	if err != nil {
		return resErr(err)
	}
	if e == nil {
		return resErr(ErrNoSuchKey)
	}
	s := e.Stream
	if s.Len() > 0 {
		if id.Compare(s.Entry(s.Len()-1).ID) < 0 {
			return resErr(ReplyError("ERR The ID specified in XSETID is smaller than the target stream top item"))
		}
		if added != -1 && int64(s.Len()) > added {
			return resErr(ReplyError("ERR The entries_added specified in XSETID is smaller than the target stream length"))
		}
	}
	newAdded := s.Added
	if added != -1 {
		newAdded = uint64(added)
	}
	if maxDel == (keyspace.StreamID{}) {
		maxDel = s.MaxDeleted
	}
	s = s.WithMeta(id, maxDel, newAdded)
	v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeStream, Stream: s, ExpireAt: e.ExpireAt}, v.h.Now)
	v.ks.Notify(v.db, keyspace.EventStream, "xsetid", v.key)
	return resOK
}

func execXLen(v env, _ *Cmd) Result {
	e, err := entryOf(v, keyspace.TypeStream)
	if err != nil || e == nil {
		return errOrZero(err)
	}
	return resInt(int64(e.Stream.Len()))
}

// parseIntervalID parses a range end as streamParseIntervalIDOrReply: a
// "(" prefix (on more than one byte) makes it exclusive and strict.
func parseIntervalID(b []byte, missingSeq uint64) (keyspace.StreamID, bool, bool) {
	if len(b) > 1 && b[0] == '(' {
		id, _, ok := ParseStreamID(b[1:], missingSeq, true, false)
		return id, true, ok
	}
	id, _, ok := ParseStreamID(b, missingSeq, false, false)
	return id, false, ok
}

func execXRange(v env, c *Cmd) Result {
	rev := c.Has(FlagRev)
	startArg, endArg := c.Args[0], c.Args[1]
	if rev {
		startArg, endArg = endArg, startArg
	}
	start, ex, ok := parseIntervalID(startArg, 0)
	if !ok {
		return resErr(ErrStreamID)
	}
	if ex {
		if start, ok = start.Incr(); !ok {
			return resErr(ReplyError("ERR invalid start ID for the interval"))
		}
	}
	end, ex, ok := parseIntervalID(endArg, ^uint64(0))
	if !ok {
		return resErr(ErrStreamID)
	}
	if ex {
		if end, ok = end.Decr(); !ok {
			return resErr(ReplyError("ERR invalid end ID for the interval"))
		}
	}
	count := int64(-1)
	for j := 2; j < len(c.Args); j++ {
		if strings.EqualFold(string(c.Args[j]), "count") && j+1 < len(c.Args) {
			n, ok := ParseInt(c.Args[j+1])
			if !ok {
				return resErr(ErrNotInteger)
			}
			count = max(n, 0)
			j++
			continue
		}
		return resErr(errStreamSyntax)
	}
	e, err := entryOf(v, keyspace.TypeStream)
	if err != nil {
		return resErr(err)
	}
	if e == nil {
		return Result{Kind: KindArray}
	}
	if count == 0 {
		return nullArray
	}
	if count == -1 {
		count = 0
	}
	return streamRange(e.Stream, start, end, count, rev)
}

// streamRange is the entries from start to end (both included), at most
// count of them (0: all), in reverse order if rev, as XRANGE replies them.
func streamRange(s *keyspace.Stream, start, end keyspace.StreamID, count int64, rev bool) Result {
	out := Result{Kind: KindArray, Array: []Result{}}
	if start.Compare(end) > 0 {
		return out
	}
	lo := s.Search(start)
	hi := lo
	for hi < s.Len() && s.Entry(hi).ID.Compare(end) <= 0 {
		hi++
	}
	n := hi - lo
	if count > 0 && int64(n) > count {
		n = int(count)
	}
	for k := range n {
		i := lo + k
		if rev {
			i = hi - 1 - k
		}
		out.Array = append(out.Array, entryResult(s.Entry(i)))
	}
	return out
}

// entryResult is an entry as the stream commands reply it: its ID, then an
// array of its fields and values.
func entryResult(e *keyspace.StreamEntry) Result {
	fv := make([]Result, len(e.Fields))
	for i, f := range e.Fields {
		fv[i] = resBulk(f)
	}
	return Result{Kind: KindArray, Array: []Result{resBulk(e.ID.Append(nil)), {Kind: KindArray, Array: fv}}}
}

// XReadArgs is XREAD's request: BLOCK's timeout in ms (-1: none), COUNT
// (0: none), and the streams' keys and IDs as sent.
type XReadArgs struct {
	Block int64
	Count int64
	Keys  [][]byte
	IDs   [][]byte
}

// ParseXRead parses XREAD's arguments (after the command name) as redis's
// xreadCommand does before it looks at any key. BLOCK's timeout errors are
// the front end's (it parses it again); here it must only be an integer.
func ParseXRead(a [][]byte) (XReadArgs, error) { return parseXRead(a, "") }

// ParseXReadInScript parses XREAD's arguments as a script's redis.call
// sends them, name being the command as the script wrote it: BLOCK is
// refused there, where redis meets it.
func ParseXReadInScript(name string, a [][]byte) (XReadArgs, error) { return parseXRead(a, name) }

func parseXRead(a [][]byte, script string) (XReadArgs, error) {
	x := XReadArgs{Block: -1}
	for i := 0; i < len(a); i++ {
		more := len(a) - 1 - i
		switch o := string(a[i]); {
		case strings.EqualFold(o, "block") && more > 0:
			if script != "" {
				return x, ReplyError("ERR " + script + " command is not allowed with BLOCK option from scripts")
			}
			i++
			n, ok := ParseInt(a[i])
			if !ok {
				return x, ReplyError("ERR timeout is not an integer or out of range")
			}
			if n < 0 {
				return x, ReplyError("ERR timeout is negative")
			}
			x.Block = n
		case strings.EqualFold(o, "count") && more > 0:
			i++
			n, ok := ParseInt(a[i])
			if !ok {
				return x, ErrNotInteger
			}
			x.Count = max(n, 0)
		case strings.EqualFold(o, "streams") && more > 0:
			rest := a[i+1:]
			if len(rest)%2 != 0 {
				return x, ReplyError("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.")
			}
			x.Keys, x.IDs = rest[:len(rest)/2], rest[len(rest)/2:]
			return x, nil
		case strings.EqualFold(o, "group") && more >= 2:
			return x, ReplyError("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.")
		case strings.EqualFold(o, "noack"):
			return x, ReplyError("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.")
		default:
			return x, errStreamSyntax
		}
	}
	return x, errStreamSyntax
}

// execXRead serves XREAD at once: for each stream with entries after its
// ID, a [key, entries] pair; a null array if none has any. A BLOCK
// argument is parsed but not waited on (the front end waits).
func execXRead(v env, c *Cmd) Result {
	x, err := ParseXRead(c.Args)
	if err != nil {
		return resErr(err)
	}
	ids := make([]keyspace.StreamID, len(x.Keys))
	streams := make([]*keyspace.Stream, len(x.Keys))
	for i, k := range x.Keys {
		e := v.ks.Get(v.db, string(k), v.h.Now)
		if e != nil && e.Type != keyspace.TypeStream {
			return resErr(ErrWrongType)
		}
		if e != nil {
			e.Touch(v.h.Now)
			streams[i] = e.Stream
		}
		switch string(x.IDs[i]) {
		case "$":
			if e != nil {
				ids[i] = e.Stream.Last
			}
			continue
		case ">":
			return resErr(ReplyError("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."))
		}
		id, _, ok := ParseStreamID(x.IDs[i], 0, true, false)
		if !ok {
			return resErr(ErrStreamID)
		}
		ids[i] = id
	}
	if c.Has(FlagXLast) {
		out := make([]Result, len(ids))
		for i, id := range ids {
			out[i] = resBulk(id.Append(nil))
		}
		return Result{Kind: KindArray, Array: out}
	}
	var out []Result
	for i, s := range streams {
		if s == nil || s.Len() == 0 || s.Entry(s.Len()-1).ID.Compare(ids[i]) <= 0 {
			continue
		}
		start, _ := ids[i].Incr()
		out = append(out, Result{Kind: KindArray, Array: []Result{resBulk(x.Keys[i]), streamRange(s, start, keyspace.MaxStreamID, x.Count, false)}})
	}
	if out == nil {
		return nullArray
	}
	return Result{Kind: KindArray, Array: out}
}

// execXInfo is XINFO's subcommands (Args[0], as sent): HELP (OK: the
// front end writes the text), STREAM (without FULL), and GROUPS and
// CONSUMERS, which with no consumer groups in hatcheck find none.
func execXInfo(v env, c *Cmd) Result {
	sub := strings.ToLower(string(c.Args[0]))
	if sub == "help" {
		return resOK
	}
	e, err := entryOf(v, keyspace.TypeStream)
	if err != nil {
		return resErr(err)
	}
	if e == nil {
		return resErr(ErrNoSuchKey)
	}
	switch {
	case sub == "groups":
		return Result{Kind: KindArray}
	case sub == "consumers" && len(c.Args) == 2:
		return resErr(ReplyError("NOGROUP No such consumer group '" + string(c.Args[1]) + "' for key name '" + v.key + "'"))
	case sub != "stream":
		return resErr(errStreamSyntax)
	}
	if opts := c.Args[1:]; len(opts) > 0 {
		syntax := ReplyError("ERR unknown subcommand or wrong number of arguments for '" + string(c.Args[0]) + "'. Try XINFO HELP.")
		if (len(opts) != 1 && len(opts) != 3) || !strings.EqualFold(string(opts[0]), "full") {
			return resErr(syntax)
		}
		if len(opts) == 3 {
			if !strings.EqualFold(string(opts[1]), "count") {
				return resErr(syntax)
			}
			if _, ok := ParseInt(opts[2]); !ok {
				return resErr(ErrNotInteger)
			}
		}
		return resErr(ReplyError("ERR XINFO STREAM FULL is not supported by hatcheck"))
	}
	s := e.Stream
	id := func(id keyspace.StreamID) Result { return resBulk(id.Append(nil)) }
	edge := func(i int) Result {
		if s.Len() == 0 {
			return resNil
		}
		return entryResult(s.Entry(i))
	}
	nodes := (s.Len() + streamNodeMaxEntries - 1) / streamNodeMaxEntries
	return Result{Kind: KindArray, Array: []Result{
		resBulk([]byte("length")), resInt(int64(s.Len())),
		resBulk([]byte("radix-tree-keys")), resInt(int64(nodes)),
		resBulk([]byte("radix-tree-nodes")), resInt(int64(radixNodes(nodes))),
		resBulk([]byte("last-generated-id")), id(s.Last),
		resBulk([]byte("max-deleted-entry-id")), id(s.MaxDeleted),
		resBulk([]byte("entries-added")), resInt(int64(s.Added)),
		resBulk([]byte("recorded-first-entry-id")), id(s.First),
		resBulk([]byte("groups")), resInt(0),
		resBulk([]byte("first-entry")), edge(0),
		resBulk([]byte("last-entry")), edge(s.Len() - 1),
	}}
}

// radixNodes estimates the node count of redis's radix tree of n
// listpack nodes (exact for up to one node); see docs/COMPATIBILITY.md.
func radixNodes(n int) int {
	switch n {
	case 0:
		return 1
	case 1:
		return 2
	}
	return 2*n + 2
}

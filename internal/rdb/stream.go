package rdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Streams, as redis 7.0 stores them (RDB_TYPE_STREAM_LISTPACKS_2, see
// redis's t_stream.c and rdb.c): the entries in listpack nodes, each keyed
// by its master ID (the node's first entry ID, 16 bytes big-endian: ms,
// seq). A node's listpack starts with its master entry — count of live
// entries, count of deleted ones, the master fields (their number, the
// field names) and a 0 — then holds its entries, each as flags, the ID
// as differences from the master ID (ms, seq), the fields and values (or
// with SAMEFIELDS only the values, of the master fields), and lp-count,
// the number of listpack elements the entry took before it. After the
// nodes: the stream's length, last ID, first ID, largest deleted ID,
// entries ever added, then its consumer groups.

// StreamID is a stream entry's ID.
type StreamID struct{ Ms, Seq uint64 }

func (id StreamID) less(o StreamID) bool {
	return id.Ms < o.Ms || (id.Ms == o.Ms && id.Seq < o.Seq)
}

// StreamEntry is one entry: its ID, its fields and values (field first).
type StreamEntry struct {
	ID     StreamID
	Fields [][]byte
}

// StreamValue is a stream: its entries, in increasing ID order, and the
// bookkeeping redis keeps with them (XINFO STREAM's last-generated-id,
// recorded-first-entry-id, max-deleted-entry-id, entries-added).
type StreamValue struct {
	Entries    []StreamEntry
	Last       StreamID
	First      StreamID
	MaxDeleted StreamID
	Added      uint64
}

// Stream entry flags (redis's STREAM_ITEM_FLAG_*).
const (
	streamDeleted    = 1
	streamSameFields = 2
)

// Node bounds, redis's defaults (stream-node-max-entries and
// stream-node-max-bytes): a node is closed when it holds this many
// entries or its listpack this many bytes.
const (
	streamNodeEntries = 100
	streamNodeBytes   = 4096
)

// appendStream appends s after its type byte and key: its nodes, its
// bookkeeping, and no consumer groups.
func appendStream(b []byte, key []byte, s *StreamValue) ([]byte, error) {
	if s == nil {
		s = &StreamValue{}
	}
	for i := range s.Entries {
		if len(s.Entries[i].Fields)%2 != 0 {
			return nil, fmt.Errorf("rdb: stream %q: an entry with an odd number of fields and values", key)
		}
		if i > 0 && !s.Entries[i-1].ID.less(s.Entries[i].ID) {
			return nil, fmt.Errorf("rdb: stream %q: entries out of order", key)
		}
	}
	type node struct {
		master StreamID
		lp     []byte
	}
	var nodes []node
	for i := 0; i < len(s.Entries); {
		master := s.Entries[i].ID
		lp, n := streamListpack(s.Entries[i:])
		nodes = append(nodes, node{master, lp})
		i += n
	}
	b = appendLen(b, uint64(len(nodes)))
	for _, n := range nodes {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:], n.master.Ms)
		binary.BigEndian.PutUint64(id[8:], n.master.Seq)
		b = appendString(b, id[:])
		b = appendString(b, n.lp)
	}
	b = appendLen(b, uint64(len(s.Entries)))
	for _, v := range []uint64{s.Last.Ms, s.Last.Seq, s.First.Ms, s.First.Seq, s.MaxDeleted.Ms, s.MaxDeleted.Seq, s.Added} {
		b = appendLen(b, v)
	}
	return appendLen(b, 0), nil // consumer groups
}

// streamListpack is the listpack of a node holding the first entries of
// es (at least one, at most the node bounds allow), and how many it took.
// The master fields are the first entry's; entries with the same fields
// are written with SAMEFIELDS, as redis writes them.
func streamListpack(es []StreamEntry) ([]byte, int) {
	master := es[0].ID
	masterFields := make([][]byte, 0, len(es[0].Fields)/2)
	for j := 0; j < len(es[0].Fields); j += 2 {
		masterFields = append(masterFields, es[0].Fields[j])
	}
	n, size := 0, 7
	for n < len(es) && n < streamNodeEntries {
		size += entrySize(&es[n])
		if size > streamNodeBytes && n > 0 {
			break
		}
		n++
	}
	lp := make([]byte, 6, 64)
	count := 0
	add := func(v int64) { lp = lpAppendInt(lp, v); count++ }
	addStr := func(s []byte) { lp = lpAppendString(lp, s); count++ }
	add(int64(n))
	add(0)
	add(int64(len(masterFields)))
	for _, f := range masterFields {
		addStr(f)
	}
	add(0)
	for _, e := range es[:n] {
		same := len(e.Fields) == 2*len(masterFields)
		for j := 0; same && j < len(masterFields); j++ {
			same = string(e.Fields[2*j]) == string(masterFields[j])
		}
		fields := int64(len(e.Fields) / 2)
		if same {
			add(streamSameFields)
		} else {
			add(0)
		}
		add(int64(e.ID.Ms - master.Ms))
		add(int64(e.ID.Seq - master.Seq))
		if same {
			for j := 1; j < len(e.Fields); j += 2 {
				addStr(e.Fields[j])
			}
			add(fields + 3)
		} else {
			add(fields)
			for _, f := range e.Fields {
				addStr(f)
			}
			add(2*fields + 4)
		}
	}
	lp = append(lp, 0xff)
	binary.LittleEndian.PutUint32(lp, uint32(len(lp)))
	binary.LittleEndian.PutUint16(lp[4:], uint16(min(count, math.MaxUint16)))
	return lp, n
}

// entrySize bounds the bytes e takes in a listpack, to close a node
// before it grows past streamNodeBytes.
func entrySize(e *StreamEntry) int {
	n := 5 * 10
	for _, f := range e.Fields {
		n += len(f) + 10
	}
	return n
}

// lpAppendInt appends v to a listpack in its smallest integer encoding,
// with its back-length (redis's lpEncodeIntegerGetType).
func lpAppendInt(lp []byte, v int64) []byte {
	start := len(lp)
	switch {
	case v >= 0 && v <= 127:
		lp = append(lp, byte(v))
	case v >= -4096 && v <= 4095:
		u := uint64(v) & 0x1fff
		lp = append(lp, 0xc0|byte(u>>8), byte(u))
	case v >= math.MinInt16 && v <= math.MaxInt16:
		lp = binary.LittleEndian.AppendUint16(append(lp, 0xf1), uint16(v))
	case v >= -1<<23 && v < 1<<23:
		u := uint32(v)
		lp = append(lp, 0xf2, byte(u), byte(u>>8), byte(u>>16))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		lp = binary.LittleEndian.AppendUint32(append(lp, 0xf3), uint32(v))
	default:
		lp = binary.LittleEndian.AppendUint64(append(lp, 0xf4), uint64(v))
	}
	return lpAppendBackLen(lp, len(lp)-start)
}

// lpAppendString appends s to a listpack as a string, with its
// back-length.
func lpAppendString(lp, s []byte) []byte {
	start := len(lp)
	switch n := len(s); {
	case n < 64:
		lp = append(lp, 0x80|byte(n))
	case n < 4096:
		lp = append(lp, 0xe0|byte(n>>8), byte(n))
	default:
		lp = binary.LittleEndian.AppendUint32(append(lp, 0xf0), uint32(n))
	}
	lp = append(lp, s...)
	return lpAppendBackLen(lp, len(lp)-start)
}

// lpAppendBackLen appends the back-length of an entry of l bytes, 7 bits
// a byte, most significant first, all but the first with the high bit set
// (redis's lpEncodeBacklen).
func lpAppendBackLen(lp []byte, l int) []byte {
	n := backLenSize(l)
	for i := n - 1; i >= 0; i-- {
		c := byte(l>>(7*uint(i))) & 127
		if i != n-1 {
			c |= 128
		}
		lp = append(lp, c)
	}
	return lp
}

// stream reads a stream of RDB type typ into rec, and returns how many
// consumer groups it had (read past: hatcheck has none).
func (d *reader) stream(typ byte, rec *Record) (groups int) {
	s := &StreamValue{}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		key := d.string()
		lp := d.string()
		if d.err != nil {
			return 0
		}
		if len(key) != 16 {
			d.fail("key %q: a stream node's master ID of %d bytes", rec.Key, len(key))
			return 0
		}
		master := StreamID{binary.BigEndian.Uint64(key), binary.BigEndian.Uint64(key[8:])}
		elems, err := listpackElems(lp)
		if err == nil {
			s.Entries, err = streamNode(master, elems, s.Entries)
		}
		if err != nil {
			d.fail("key %q: %v", rec.Key, err)
			return 0
		}
	}
	length, _ := d.length()
	s.Last.Ms, _ = d.length()
	s.Last.Seq, _ = d.length()
	if typ >= typeStreamListpacks2 {
		s.First.Ms, _ = d.length()
		s.First.Seq, _ = d.length()
		s.MaxDeleted.Ms, _ = d.length()
		s.MaxDeleted.Seq, _ = d.length()
		s.Added, _ = d.length()
	} else {
		// As redis loads the older type: entries added is the length,
		// the first ID is the first entry's.
		s.Added = length
		if len(s.Entries) > 0 {
			s.First = s.Entries[0].ID
		}
	}
	for g := d.count(); g > 0 && d.err == nil; g-- {
		groups++
		d.string() // name
		d.length() // last delivered ID
		d.length()
		if typ >= typeStreamListpacks2 {
			d.length() // entries read
		}
		for pel := d.count(); pel > 0 && d.err == nil; pel-- {
			d.bytes(16) // the entry's ID
			d.bytes(8)  // delivery time
			d.length()  // delivery count
		}
		for consumers := d.count(); consumers > 0 && d.err == nil; consumers-- {
			d.string() // name
			d.bytes(8) // seen time
			if typ >= typeStreamListpacks3 {
				d.bytes(8) // active time
			}
			for pel := d.count(); pel > 0 && d.err == nil; pel-- {
				d.bytes(16)
			}
		}
	}
	if d.err != nil {
		return 0
	}
	if length != uint64(len(s.Entries)) {
		d.fail("key %q: a stream of length %d with %d entries", rec.Key, length, len(s.Entries))
		return 0
	}
	if n := len(s.Entries); n > 0 && s.Last.less(s.Entries[n-1].ID) {
		d.fail("key %q: a stream whose last ID is before its last entry's", rec.Key)
		return 0
	}
	rec.Type, rec.Stream = Stream, s
	return groups
}

// streamNode appends the live entries of a node (its listpack's
// elements) to out; they must follow out's in ID order.
func streamNode(master StreamID, el [][]byte, out []StreamEntry) ([]StreamEntry, error) {
	bad := errors.New("corrupt stream node")
	i := 0
	next := func() (int64, error) {
		if i >= len(el) {
			return 0, bad
		}
		v, err := strconv.ParseInt(string(el[i]), 10, 64)
		i++
		if err != nil {
			return 0, bad
		}
		return v, nil
	}
	strs := func(n int64) ([][]byte, error) {
		if n < 0 || n > int64(len(el)-i) {
			return nil, bad
		}
		s := el[i : i+int(n) : i+int(n)]
		i += int(n)
		return s, nil
	}
	count, err1 := next()
	deleted, err2 := next()
	nmaster, err3 := next()
	if err := errors.Join(err1, err2, err3); err != nil || count < 0 || deleted < 0 {
		return out, bad
	}
	masterFields, err := strs(nmaster)
	if err != nil {
		return out, err
	}
	if zero, err := next(); err != nil || zero != 0 {
		return out, bad
	}
	for range count + deleted {
		flags, err1 := next()
		msDiff, err2 := next()
		seqDiff, err3 := next()
		if err := errors.Join(err1, err2, err3); err != nil {
			return out, bad
		}
		var fields [][]byte
		var lpCount int64
		if flags&streamSameFields != 0 {
			values, err := strs(nmaster)
			if err != nil {
				return out, err
			}
			fields = make([][]byte, 0, 2*len(values))
			for j, v := range values {
				fields = append(fields, masterFields[j], v)
			}
			lpCount = nmaster + 3
		} else {
			n, err := next()
			if err != nil || n < 0 || n > int64(len(el)) {
				return out, bad
			}
			if fields, err = strs(2 * n); err != nil {
				return out, err
			}
			lpCount = 2*n + 4
		}
		if c, err := next(); err != nil || c != lpCount {
			return out, bad
		}
		if flags&streamDeleted != 0 {
			continue
		}
		id := StreamID{master.Ms + uint64(msDiff), master.Seq + uint64(seqDiff)}
		if len(out) > 0 && !out[len(out)-1].ID.less(id) {
			return out, errors.New("stream entries out of order")
		}
		out = append(out, StreamEntry{ID: id, Fields: fields})
	}
	if i != len(el) {
		return out, bad
	}
	return out, nil
}

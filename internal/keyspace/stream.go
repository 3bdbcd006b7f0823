package keyspace

import (
	"sort"
	"strconv"
)

// StreamID is a stream entry's ID, ms-seq, ordered by ms then seq.
type StreamID struct{ Ms, Seq uint64 }

// MaxStreamID is the largest ID ("+").
var MaxStreamID = StreamID{^uint64(0), ^uint64(0)}

// Compare returns -1, 0 or 1 as id is before, equal to or after o.
func (id StreamID) Compare(o StreamID) int {
	switch {
	case id.Ms < o.Ms || (id.Ms == o.Ms && id.Seq < o.Seq):
		return -1
	case id == o:
		return 0
	}
	return 1
}

// Append appends "ms-seq".
func (id StreamID) Append(b []byte) []byte {
	b = strconv.AppendUint(b, id.Ms, 10)
	b = append(b, '-')
	return strconv.AppendUint(b, id.Seq, 10)
}

func (id StreamID) String() string { return string(id.Append(nil)) }

// Incr is the ID after id; ok false if id is the largest.
func (id StreamID) Incr() (StreamID, bool) {
	switch {
	case id.Seq != ^uint64(0):
		id.Seq++
	case id.Ms != ^uint64(0):
		id.Ms, id.Seq = id.Ms+1, 0
	default:
		return StreamID{}, false
	}
	return id, true
}

// Decr is the ID before id; ok false if id is 0-0.
func (id StreamID) Decr() (StreamID, bool) {
	switch {
	case id.Seq != 0:
		id.Seq--
	case id.Ms != 0:
		id.Ms, id.Seq = id.Ms-1, ^uint64(0)
	default:
		return StreamID{}, false
	}
	return id, true
}

// StreamEntry is one entry of a stream: its ID and its fields and values,
// field first, in the order they were added. Its slices must not be
// changed.
type StreamEntry struct {
	ID     StreamID
	Fields [][]byte
}

func (e *StreamEntry) bytes() int64 {
	n := int64(16)
	for _, f := range e.Fields {
		n += int64(len(f))
	}
	return n
}

// Stream is an immutable stream, a stream key's value: entries in
// increasing ID order, and the bookkeeping XINFO STREAM reports. Like
// lists it stays a Go value (see DESIGN.md), and every change returns a
// new Stream.
//
// Versions of one stream share a buffer, as versions of a list do (see
// List): a version is the window entries[lo:hi], trimming the head
// narrows the window, and appending writes after it only where no
// version has ever written, so an older version a snapshot's view is
// encoding never sees its entries change. XADD and trimming (a capped
// stream) therefore cost O(1) amortized; XDEL copies the stream, O(n).
type Stream struct {
	buf    *streamBuf
	lo, hi int
	bytes  int64

	// Last is the last ID generated (or set by XSETID): new entries get
	// larger ones. It may be larger than the last entry's.
	Last StreamID
	// MaxDeleted is the largest ID XDEL removed (or XSETID set).
	MaxDeleted StreamID
	// Added counts the entries ever added (or is what XSETID set).
	Added uint64
	// First is the recorded first entry ID (0-0 for an empty stream).
	First StreamID
}

type streamBuf struct {
	entries []StreamEntry
	hi      int // the part any version has written is entries[:hi]
}

// Len is the number of entries.
func (s *Stream) Len() int {
	if s == nil {
		return 0
	}
	return s.hi - s.lo
}

// Bytes is the total length of the entries' fields and values, plus 16
// bytes per ID.
func (s *Stream) Bytes() int64 {
	if s == nil {
		return 0
	}
	return s.bytes
}

// Entry returns entry i (0 is the first); i must be in [0, Len).
func (s *Stream) Entry(i int) *StreamEntry { return &s.buf.entries[s.lo+i] }

// Entries returns entries [start, stop) as a slice that aliases the
// stream: the caller must not change it.
func (s *Stream) Entries(start, stop int) []StreamEntry {
	if s == nil || start >= stop {
		return nil
	}
	return s.buf.entries[s.lo+start : s.lo+stop : s.lo+stop]
}

// Search is the index of the first entry whose ID is at least id (Len if
// none).
func (s *Stream) Search(id StreamID) int {
	return sort.Search(s.Len(), func(i int) bool { return s.Entry(i).ID.Compare(id) >= 0 })
}

// meta is s's bookkeeping without its entries.
func (s *Stream) meta() Stream {
	if s == nil {
		return Stream{}
	}
	return Stream{Last: s.Last, MaxDeleted: s.MaxDeleted, Added: s.Added, First: s.First}
}

// Append returns the stream with an entry added at the end; e.ID must be
// larger than Last. Last, Added and First follow, as redis's
// streamAppendItem does.
func (s *Stream) Append(e StreamEntry) *Stream {
	var n *Stream
	if s != nil && s.buf != nil && s.hi == s.buf.hi && s.hi < len(s.buf.entries) {
		c := *s
		n = &c
	} else {
		m := s.meta()
		n = &m
		size := 2*s.Len() + 8
		n.buf = &streamBuf{entries: make([]StreamEntry, size)}
		copy(n.buf.entries, s.Entries(0, s.Len()))
		n.lo, n.hi, n.bytes = 0, s.Len(), s.Bytes()
		n.buf.hi = n.hi
	}
	n.buf.entries[n.hi] = e
	n.hi++
	n.buf.hi = n.hi
	n.bytes += e.bytes()
	n.Last = e.ID
	n.Added++
	if n.Len() == 1 {
		n.First = e.ID
	}
	return n
}

// TrimHead returns the stream without its first k entries (k ≤ Len),
// sharing the buffer. First follows (0-0 when it becomes empty), as after
// redis's streamTrim.
func (s *Stream) TrimHead(k int) *Stream {
	if k == 0 {
		return s
	}
	n := *s
	for i := range k {
		n.bytes -= s.Entry(i).bytes()
	}
	n.lo += k
	n.First = StreamID{}
	if n.Len() > 0 {
		n.First = n.Entry(0).ID
	}
	return &n
}

// Without returns the stream without the entries whose IDs are listed and
// how many of them it had. MaxDeleted and First follow, as after XDEL.
func (s *Stream) Without(ids []StreamID) (*Stream, int) {
	drop := map[StreamID]bool{}
	for _, id := range ids {
		if i := s.Search(id); i < s.Len() && s.Entry(i).ID == id {
			drop[id] = true
		}
	}
	if len(drop) == 0 {
		return s, 0
	}
	m := s.meta()
	n := &m
	n.buf = &streamBuf{entries: make([]StreamEntry, 0, s.Len()-len(drop)+8)}
	firstGone := false
	for _, e := range s.Entries(0, s.Len()) {
		if !drop[e.ID] {
			n.buf.entries = append(n.buf.entries, e)
			n.bytes += e.bytes()
			continue
		}
		if e.ID == s.First {
			firstGone = true
		}
		if e.ID.Compare(n.MaxDeleted) > 0 {
			n.MaxDeleted = e.ID
		}
	}
	n.hi = len(n.buf.entries)
	n.buf.hi = n.hi
	n.buf.entries = n.buf.entries[:cap(n.buf.entries)]
	if n.Len() == 0 {
		n.First = StreamID{}
	} else if firstGone {
		n.First = n.Entry(0).ID
	}
	return n, len(drop)
}

// WithMeta returns the stream (same entries) with other bookkeeping.
func (s *Stream) WithMeta(last, maxDeleted StreamID, added uint64) *Stream {
	n := &Stream{}
	if s != nil {
		*n = *s
	}
	n.Last, n.MaxDeleted, n.Added = last, maxDeleted, added
	return n
}

// NewStream returns a stream of entries (in increasing ID order, which it
// keeps) with the given bookkeeping.
func NewStream(entries []StreamEntry, last, maxDeleted, first StreamID, added uint64) *Stream {
	s := &Stream{buf: &streamBuf{entries: entries, hi: len(entries)}, hi: len(entries),
		Last: last, MaxDeleted: maxDeleted, Added: added, First: first}
	for i := range entries {
		s.bytes += entries[i].bytes()
	}
	return s
}

// streamSize is a stream's accounted size beyond the key: its entries'
// bytes, each entry with the overhead of a hash field.
func streamSize(s *Stream) int64 { return s.Bytes() + int64(s.Len())*fieldOverhead }

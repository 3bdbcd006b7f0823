package keyspace

// List is an immutable sequence of elements, a list key's value. Like
// hashes and sets it stays a Go value (see DESIGN.md), and every change
// returns a new List.
//
// Versions of one list share a buffer, so that the operations of a queue
// cost O(1) amortized rather than a copy of the list each: a version is
// the window elems[lo:hi] of the buffer, popping narrows the window, and
// pushing writes just outside it — but only where no version has ever
// written (the buffer's own lo and hi mark the part ever used), so an
// older version, which a snapshot's view may be encoding on another
// goroutine, never sees its elements change. LPUSH+RPOP and RPUSH+LPOP
// (queues) and LTRIM therefore never copy; a push on the side that was
// popped (a stack, LPUSH after LPOP), LSET, LINSERT and LREM copy the list,
// O(n). A buffer whose room is used up is replaced by one of about three
// times the live size; until then the elements popped off it stay
// reachable.
type List struct {
	buf    *listBuf
	lo, hi int // the elements are buf.elems[lo:hi]
	bytes  int64
}

// listBuf is the storage shared by versions of a list. elems is never
// resized; lo and hi bound the part any version has written, and only
// Apply (one goroutine) reads or changes them.
type listBuf struct {
	elems  [][]byte
	lo, hi int
}

// NewList returns a list of elems (which it keeps; nil for none).
func NewList(elems [][]byte) *List {
	return (*List)(nil).PushRight(elems)
}

// Len is the number of elements.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return l.hi - l.lo
}

// Bytes is the total length of the elements.
func (l *List) Bytes() int64 {
	if l == nil {
		return 0
	}
	return l.bytes
}

// Index returns element i (0 is the head); i must be in [0, Len).
func (l *List) Index(i int) []byte { return l.buf.elems[l.lo+i] }

// Range returns elements [start, stop) as a slice that aliases the list:
// the caller must not change it.
func (l *List) Range(start, stop int) [][]byte {
	if l == nil || start >= stop {
		return nil
	}
	return l.buf.elems[l.lo+start : l.lo+stop : l.lo+stop]
}

// PushRight returns the list with elems appended at the tail, in order.
func (l *List) PushRight(elems [][]byte) *List {
	if len(elems) == 0 {
		return l
	}
	n := l.own(0, len(elems))
	copy(n.buf.elems[n.hi:], elems)
	n.hi += len(elems)
	n.buf.hi = n.hi
	for _, e := range elems {
		n.bytes += int64(len(e))
	}
	return n
}

// PushLeft returns the list with elems pushed at the head one after the
// other, as LPUSH does: the last of them ends up first.
func (l *List) PushLeft(elems [][]byte) *List {
	if len(elems) == 0 {
		return l
	}
	n := l.own(len(elems), 0)
	for _, e := range elems {
		n.lo--
		n.buf.elems[n.lo] = e
		n.bytes += int64(len(e))
	}
	n.buf.lo = n.lo
	return n
}

// PopLeft returns the list without its first k elements (k ≤ Len), and
// those elements, head first.
func (l *List) PopLeft(k int) (*List, [][]byte) {
	out := l.Range(0, k)
	return l.Slice(k, l.Len()), out
}

// PopRight returns the list without its last k elements (k ≤ Len), and
// those elements, tail first (the order RPOP with a count replies).
func (l *List) PopRight(k int) (*List, [][]byte) {
	n := l.Len()
	out := make([][]byte, k)
	for i := range out {
		out[i] = l.Index(n - 1 - i)
	}
	return l.Slice(0, n-k), out
}

// Slice returns elements [start, stop) as a list (LTRIM), sharing the
// buffer; 0 ≤ start ≤ stop ≤ Len.
func (l *List) Slice(start, stop int) *List {
	if start >= stop {
		return nil
	}
	n := &List{buf: l.buf, lo: l.lo + start, hi: l.lo + stop, bytes: l.bytes}
	for _, e := range l.Range(0, start) {
		n.bytes -= int64(len(e))
	}
	for _, e := range l.Range(stop, l.Len()) {
		n.bytes -= int64(len(e))
	}
	return n
}

// own returns a copy of l's window that may write left elements before it
// and right after it: the same buffer if no version has written there,
// else a new buffer (O(n)).
func (l *List) own(left, right int) *List {
	if l != nil && l.lo == l.buf.lo && l.hi == l.buf.hi && l.lo >= left && len(l.buf.elems)-l.hi >= right {
		c := *l
		return &c
	}
	n := l.Len()
	room := n + left + right + 4
	b := &listBuf{elems: make([][]byte, n+2*room)}
	lo := room
	if l != nil {
		copy(b.elems[lo:], l.Range(0, n))
	}
	b.lo, b.hi = lo, lo+n
	return &List{buf: b, lo: lo, hi: lo + n, bytes: l.Bytes()}
}

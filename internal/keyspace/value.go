// Package keyspace holds the data: databases of keys whose values are
// strings, hashes, sets, lists, sorted sets or streams, with absolute expiry times and memory accounting.
//
// Keys and string values live in an arena outside the Go heap, indexed by
// pointer-free open-addressing tables (see DESIGN.md); hashes, sets,
// lists and sorted sets stay Go values.
//
// Concurrency contract: a Keyspace is not synchronized. The owner (the
// cluster FSM) serializes mutations and lets reads run concurrently with each
// other but not with mutations. While a View is live no stored slot is
// changed in place: every change writes a new slot, and slots freed are not
// reused until the view is released, so a snapshot can encode a view while
// writes go on. (With no view, a rewrite of the same size class reuses the
// key's own slot.) Hashes and sets are immutable once stored. The one exception
// is a slot's access clock, written atomically, used only for LRU eviction.
//
// Entries handed out (by Get, Lookup, Scan, the samplers) alias arena
// memory: they are valid while the owner's lock is held and until the next
// change of the keyspace. Anything that outlives the lock — a reply, a
// script's result — must copy the bytes it keeps.
//
// Every method that depends on time takes now (Unix milliseconds) from the
// caller; nothing here reads the clock, draws random numbers, does I/O or
// starts goroutines, so applying the same commands gives the same state on
// every node.
package keyspace

import (
	"slices"
	"strconv"
	"sync/atomic"
)

// Type is the type of a stored value.
type Type uint8

// Value types, numbered as in the snapshot encoding; do not renumber.
const (
	TypeNone Type = iota
	TypeString
	TypeHash
	TypeSet
	TypeList
	TypeZSet
	TypeStream
)

func (t Type) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeHash:
		return "hash"
	case TypeSet:
		return "set"
	case TypeList:
		return "list"
	case TypeZSet:
		return "zset"
	case TypeStream:
		return "stream"
	}
	return "none"
}

// Entry is one key's value. An Entry built by a caller is what Put stores
// (a copy of it); an Entry returned by the keyspace describes the stored
// value, and its Str aliases the arena (see the package comment): copy Str
// to keep it past the lock or past the next change. Fields must not be
// changed; build a new Entry instead.
type Entry struct {
	Type     Type
	Str      []byte
	Hash     *Hash
	Set      *Set
	List     *List
	ZSet     *ZSet
	Stream   *Stream
	ExpireAt int64  // Unix ms; 0 means no expiry
	Flags    uint32 // memcached client flags, opaque
	CAS      uint64 // memcached CAS, derived from the log index
	// Bits are memcached's replicated per-item bits (stale, win sent),
	// kept in one byte of the slot header; read them with Stale and
	// WinSent. A new value (an Entry built without them) has none.
	Bits  ItemBits
	clock *int64 // the stored slot's access clock; nil if not from the keyspace
}

// ItemBits are the per-item bits of memcached's meta protocol that are
// part of the replicated state: they change only through the log, are
// the same on every node and are carried by snapshots. (The "fetched"
// bit of mg's h is node-local; see Entry.Fetched.)
type ItemBits uint8

const (
	// BitStale: md or ms with I marked the item stale (mg's X).
	BitStale ItemBits = 1 << iota
	// BitWinSent: an mg was told it won the right to recache (W); later
	// ones are told so (Z) and do not win.
	BitWinSent

	itemBitsMask = BitStale | BitWinSent // the bits snapshots carry
)

// Stale reports whether the item was invalidated (md I, ms I).
func (e *Entry) Stale() bool { return e.Bits&BitStale != 0 }

// WinSent reports whether a client was already given the win (W) for
// this item.
func (e *Entry) WinSent() bool { return e.Bits&BitWinSent != 0 }

// String describes the entry's contents (not where it is stored), so that
// entries of two replicas print alike.
func (e *Entry) String() string {
	b := []byte("{" + e.Type.String() + " ")
	switch e.Type {
	case TypeString:
		b = strconv.AppendQuote(b, string(e.Str))
	case TypeHash:
		b = append(b, "fields="...)
		b = strconv.AppendInt(b, int64(e.Hash.Len()), 10)
	case TypeSet:
		b = append(b, "members="...)
		b = strconv.AppendInt(b, int64(e.Set.Len()), 10)
	case TypeList:
		b = append(b, "elements="...)
		b = strconv.AppendInt(b, int64(e.List.Len()), 10)
	case TypeZSet:
		b = append(b, "members="...)
		b = strconv.AppendInt(b, int64(e.ZSet.Len()), 10)
	case TypeStream:
		b = append(b, "entries="...)
		b = strconv.AppendInt(b, int64(e.Stream.Len()), 10)
		b = append(b, " last="...)
		b = e.Stream.Last.Append(b)
	}
	b = append(b, " expire="...)
	b = strconv.AppendInt(b, e.ExpireAt, 10)
	b = append(b, " flags="...)
	b = strconv.AppendUint(b, uint64(e.Flags), 10)
	b = append(b, " cas="...)
	b = strconv.AppendUint(b, e.CAS, 10)
	return string(append(b, '}'))
}

// Expired reports whether the entry is past its expiry at now.
func (e *Entry) Expired(now int64) bool { return e.ExpireAt != 0 && e.ExpireAt <= now }

// fetchedBit, in a slot's access clock, is memcached's ITEM_FETCHED: the
// item was read (Touch) since its value was stored. It lives in the clock
// word, not in the header's bits byte, because readers set it
// concurrently under the owner's read lock and the clock is the one word
// they write, atomically. Clock times are Unix ms, far below the bit.
const fetchedBit = 1 << 62

// Touch records a read: the access clock for LRU eviction and the
// fetched bit (mg's h). Both are node-local state: not replicated, not
// part of snapshots. Readers call it concurrently under the owner's read
// lock, so the clock is updated atomically.
func (e *Entry) Touch(now int64) {
	if e.clock == nil {
		return
	}
	for {
		old := atomic.LoadInt64(e.clock)
		if old&fetchedBit != 0 && old&^fetchedBit >= now {
			return
		}
		if atomic.CompareAndSwapInt64(e.clock, old, max(old&^fetchedBit, now)|fetchedBit) {
			return
		}
	}
}

// LastAccess is the time of the last Touch (or of the write that stored it).
func (e *Entry) LastAccess() int64 {
	if e.clock == nil {
		return 0
	}
	return atomic.LoadInt64(e.clock) &^ fetchedBit
}

// Fetched reports whether the item was read (Touch) on this node since
// its value was stored: memcached's ITEM_FETCHED, which mg's h returns.
// A copy stored with its CAS kept (a new expiry, a changed ItemBits) is
// the same item and stays fetched.
func (e *Entry) Fetched() bool {
	return e.clock != nil && atomic.LoadInt64(e.clock)&fetchedBit != 0
}

// WithExpiry returns a copy of e with a new expiry time, for Put. Its Str
// still aliases e's, which Put may replace: Put copies it first.
func (e *Entry) WithExpiry(at int64) *Entry {
	return &Entry{Type: e.Type, Str: e.Str, Hash: e.Hash, Set: e.Set, List: e.List, ZSet: e.ZSet, Stream: e.Stream, ExpireAt: at, Flags: e.Flags, CAS: e.CAS, Bits: e.Bits}
}

// Per-entry overheads used by memory accounting, so that maxmemory means
// roughly the same as in redis-server. They were measured for the map
// keyspace; the arena spends less (a 40-byte header, an 8-byte index cell,
// up to 6 % rounding), but the figures stay: accounting decides which writes
// are refused at maxmemory, and nodes of two versions must decide alike
// during a rolling upgrade.
const (
	entryOverhead = 96
	fieldOverhead = 40
)

// Size is the memory the entry is accounted for when stored under key.
func (e *Entry) Size(key string) int64 { return e.size(key) }

func (e *Entry) size(key string) int64 {
	n := int64(entryOverhead + len(key))
	switch e.Type {
	case TypeString:
		n += int64(len(e.Str))
	case TypeHash:
		n += e.Hash.bytes + int64(e.Hash.Len())*fieldOverhead
	case TypeSet:
		n += e.Set.bytes + int64(e.Set.Len())*fieldOverhead
	case TypeList:
		n += listSize(e.List)
	case TypeZSet:
		n += zsetSize(e.ZSet)
	case TypeStream:
		n += streamSize(e.Stream)
	}
	return n
}

// listSize is a list's accounted size beyond the key: its elements, each
// with the overhead of a hash field or set member.
func listSize(l *List) int64 { return l.Bytes() + int64(l.Len())*fieldOverhead }

// zsetSize is a sorted set's accounted size beyond the key: its members
// and 8 bytes per score, each with the overhead of a hash field.
func zsetSize(z *ZSet) int64 { return z.Bytes() + int64(z.Len())*fieldOverhead }

// smallLimit is the size up to which hashes and sets are kept as plain
// slices (like redis's listpack): small session hashes stay compact and
// keep insertion order. Larger ones also get a map index.
const smallLimit = 64

// Hash is an immutable field→value map that remembers insertion order.
type Hash struct {
	fields []string
	values [][]byte
	index  map[string]int
	bytes  int64
}

// Len is the number of fields.
func (h *Hash) Len() int {
	if h == nil {
		return 0
	}
	return len(h.fields)
}

func (h *Hash) find(f string) int {
	if h == nil {
		return -1
	}
	if h.index != nil {
		if i, ok := h.index[f]; ok {
			return i
		}
		return -1
	}
	return slices.Index(h.fields, f)
}

// Get returns the value of field f.
func (h *Hash) Get(f string) ([]byte, bool) {
	i := h.find(f)
	if i < 0 {
		return nil, false
	}
	return h.values[i], true
}

// Each calls fn for every field in order until fn returns false.
func (h *Hash) Each(fn func(field string, value []byte) bool) {
	if h == nil {
		return
	}
	for i, f := range h.fields {
		if !fn(f, h.values[i]) {
			return
		}
	}
}

// With returns a new hash with the given field/value pairs set; pairs has
// even length. Existing fields keep their position. The count of fields that
// were new is returned too.
func (h *Hash) With(pairs [][]byte) (*Hash, int) {
	n := &Hash{}
	if h != nil {
		n.fields = slices.Clone(h.fields)
		n.values = slices.Clone(h.values)
		n.bytes = h.bytes
	}
	n.reindex()
	added := 0
	for i := 0; i+1 < len(pairs); i += 2 {
		f, v := string(pairs[i]), pairs[i+1]
		if j := n.find(f); j >= 0 {
			n.bytes += int64(len(v) - len(n.values[j]))
			n.values[j] = v
			continue
		}
		n.fields = append(n.fields, f)
		n.values = append(n.values, v)
		n.bytes += int64(len(f) + len(v))
		added++
		if n.index != nil {
			n.index[f] = len(n.fields) - 1
		} else if len(n.fields) > smallLimit {
			n.reindex()
		}
	}
	return n, added
}

// Without returns a new hash without the given fields and how many existed.
func (h *Hash) Without(fields [][]byte) (*Hash, int) {
	drop := map[string]bool{}
	for _, f := range fields {
		if h.find(string(f)) >= 0 {
			drop[string(f)] = true
		}
	}
	if len(drop) == 0 {
		return h, 0
	}
	n := &Hash{}
	for i, f := range h.fields {
		if !drop[f] {
			n.fields = append(n.fields, f)
			n.values = append(n.values, h.values[i])
			n.bytes += int64(len(f) + len(h.values[i]))
		}
	}
	n.reindex()
	return n, len(drop)
}

func (h *Hash) reindex() {
	if len(h.fields) <= smallLimit {
		h.index = nil
		return
	}
	h.index = make(map[string]int, len(h.fields))
	for i, f := range h.fields {
		h.index[f] = i
	}
}

// Set is an immutable set of members.
type Set struct {
	members map[string]struct{}
	bytes   int64
}

// Len is the number of members.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.members)
}

// Has reports whether m is a member.
func (s *Set) Has(m string) bool {
	if s == nil {
		return false
	}
	_, ok := s.members[m]
	return ok
}

// Members returns the members in a stable order: numeric order when every
// member is an integer (as redis's intset encoding returns them), byte order
// otherwise.
func (s *Set) Members() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.members))
	allInts := true
	for m := range s.members {
		out = append(out, m)
		if allInts {
			allInts = isCanonicalInt(m)
		}
	}
	if allInts {
		slices.SortFunc(out, func(a, b string) int {
			x, _ := strconv.ParseInt(a, 10, 64)
			y, _ := strconv.ParseInt(b, 10, 64)
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		})
	} else {
		slices.Sort(out)
	}
	return out
}

// With returns a new set with members added and how many were new.
func (s *Set) With(members [][]byte) (*Set, int) {
	n := &Set{members: make(map[string]struct{}, s.Len()+len(members))}
	if s != nil {
		for m := range s.members {
			n.members[m] = struct{}{}
		}
		n.bytes = s.bytes
	}
	added := 0
	for _, m := range members {
		if _, ok := n.members[string(m)]; !ok {
			n.members[string(m)] = struct{}{}
			n.bytes += int64(len(m))
			added++
		}
	}
	return n, added
}

// Without returns a new set without the given members and how many existed.
func (s *Set) Without(members [][]byte) (*Set, int) {
	removed := 0
	var n *Set
	for _, m := range members {
		if !s.Has(string(m)) || (n != nil && !n.Has(string(m))) {
			continue
		}
		if n == nil {
			n, _ = s.With(nil)
		}
		delete(n.members, string(m))
		n.bytes -= int64(len(m))
		removed++
	}
	if n == nil {
		return s, 0
	}
	return n, removed
}

// isCanonicalInt reports whether s is an integer written the way redis
// writes it back ("12", not "012" or "+12"), the members redis stores in an
// intset.
func isCanonicalInt(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && strconv.FormatInt(n, 10) == s
}

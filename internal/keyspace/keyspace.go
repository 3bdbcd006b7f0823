package keyspace

import (
	"math"
	"sync/atomic"
)

// NumShards is how many hash buckets each database is split into. A SCAN
// cursor is a bucket number, so it stays valid across writes, restarts and
// leader changes: a key present for the whole scan is returned at least once.
// Each bucket is its own index table (see index.go), grown on its own.
const NumShards = 1024

// DB is one numbered database.
type DB struct {
	shards [NumShards]table
	keys   int
	exp    expiry // keys that have an expiry, by time bucket
}

// object is the value of a hash, set, list, zset or stream key, which stays a Go value;
// the key's slot holds its handle, an index into Keyspace.objs.
type object struct {
	hash   *Hash
	set    *Set
	list   *List
	zset   *ZSet
	stream *Stream
}

// Keyspace is every database plus the accounting that spans them.
type Keyspace struct {
	dbs   []*DB
	used  int64
	stamp int64 // the leader's timestamp of the last applied batch

	casBase, casSeq uint64 // CAS values of the entry being applied

	arena    *arena
	objs     []object
	freeObjs []uint32

	scripts map[string][]byte // see scripts.go
	events  Events            // see events.go; not part of snapshots

	libraries map[string]*Library // see functions.go
	functions map[string]*Library // function name → its library
	users     map[string][][]byte // ACL users' rules (see users.go)
}

// casShift leaves room for 16M modifications in one log entry: CAS values
// are the entry's log index followed by a sequence number, so they are
// unique, increasing and identical on every node.
const casShift = 24

// BeginEntry starts applying the log entry at index; entries stored from
// now on get CAS values derived from it.
func (ks *Keyspace) BeginEntry(index uint64) {
	ks.casBase, ks.casSeq = index<<casShift, 0
}

// NextCAS returns a CAS value no entry has had, as a modification that
// stores nothing (an item stored already expired) still uses one.
func (ks *Keyspace) NextCAS() uint64 {
	ks.casSeq++
	return ks.casBase + ks.casSeq
}

// New returns an empty keyspace with n databases. Its arena maps memory
// only when the first key is stored.
func New(n int) *Keyspace {
	ks := &Keyspace{dbs: make([]*DB, n), arena: newArena()}
	for i := range ks.dbs {
		ks.dbs[i] = &DB{}
	}
	return ks
}

// Databases is the number of databases.
func (ks *Keyspace) Databases() int { return len(ks.dbs) }

// Used is the accounted memory of all keys and values, in bytes. It is a
// function of the stored keys and values only (see Entry.Size), not of the
// arena's layout, so every node — and every version of hatcheck in a
// rolling upgrade — refuses the same writes at maxmemory.
func (ks *Keyspace) Used() int64 { return ks.used }

// Mapped is the memory the arena has obtained from the system, in bytes
// (address space: pages never touched cost no RSS).
func (ks *Keyspace) Mapped() int64 { return ks.arena.mapped }

// Stamp is the leader timestamp of the last applied batch. A new leader
// never stamps a batch earlier than this, so replicated time only moves on.
func (ks *Keyspace) Stamp() int64 { return ks.stamp }

// SetStamp records the timestamp of the batch being applied.
func (ks *Keyspace) SetStamp(now int64) {
	if now > ks.stamp {
		ks.stamp = now
	}
}

// shardOf is the SCAN bucket of key.
func shardOf(key string) int {
	s, _ := hashKey(key)
	return s
}

// entryOf materializes the slot as an Entry whose Str aliases the arena
// (see Entry).
func entryOf(s slot, objs []object) *Entry {
	e := new(Entry)
	s.fill(e, objs)
	return e
}

// fill describes the slot in e.
func (s slot) fill(e *Entry, objs []object) {
	*e = Entry{Type: s.typ(), ExpireAt: s.expireAt(), Flags: s.flags(), CAS: s.cas(), Bits: s.bits(), clock: s.clock()}
	switch e.Type {
	case TypeString:
		e.Str = s.value()
	case TypeHash:
		e.Hash = objs[s.vlen()].hash
	case TypeSet:
		e.Set = objs[s.vlen()].set
	case TypeList:
		e.List = objs[s.vlen()].list
	case TypeZSet:
		e.ZSet = objs[s.vlen()].zset
	case TypeStream:
		e.Stream = objs[s.vlen()].stream
	}
}

// lookup fills e with key's entry if it is stored and not expired at now
// (math.MinInt64: expired or not) and reports whether it was.
func (ks *Keyspace) lookup(db int, key string, now int64, e *Entry) bool {
	shard, tag := hashKey(key)
	_, ref := ks.dbs[db].shards[shard].find(ks.arena, tag, key)
	if ref == 0 {
		return false
	}
	s := ks.arena.slot(ref)
	if s.expired(now) {
		return false
	}
	s.fill(e, ks.objs)
	return true
}

// Lookup returns the stored entry even if it is past its expiry; writers use
// it to tell an expired key from a missing one.
//
// Lookup and Get are small enough to be inlined, so that the Entry stays on
// the caller's stack when the caller does not keep it.
func (ks *Keyspace) Lookup(db int, key string) *Entry {
	e := new(Entry)
	if !ks.lookup(db, key, math.MinInt64, e) {
		return nil
	}
	return e
}

// Get returns the live entry for key, or nil if it is missing or expired.
func (ks *Keyspace) Get(db int, key string, now int64) *Entry {
	e := new(Entry)
	if !ks.lookup(db, key, now, e) {
		return nil
	}
	return e
}

// Put stores a copy of e under key, replacing any entry, and keeps
// accounting. e.Str is copied into the arena (it may even alias the entry
// being replaced); the caller keeps ownership of it. An entry without a CAS
// value gets the next one (a new value), which Put writes back into e; one
// that has a CAS (a copy with a new expiry, a snapshot entry) keeps it.
func (ks *Keyspace) Put(db int, key string, e *Entry, now int64) {
	d := ks.dbs[db]
	shard, tag := hashKey(key)
	t := &d.shards[shard]
	cell, old := t.find(ks.arena, tag, key)
	var oldAt int64
	sameItem := e.CAS != 0 // a copy of a stored item keeps its fetched bit
	if old != 0 {
		s := ks.arena.slot(old)
		oldAt = s.expireAt()
		ks.used -= ks.sizeOf(s)
		a := atomic.LoadInt64(s.clock())
		if a&^fetchedBit > now {
			now = a &^ fetchedBit
		}
		if sameItem && a&fetchedBit != 0 {
			now |= fetchedBit
		}
	}
	if e.CAS == 0 {
		e.CAS = ks.NextCAS()
	}
	if old != 0 && ks.rewrite(old, key, e, now) {
		if oldAt>>bucketShift != e.ExpireAt>>bucketShift || (oldAt == 0) != (e.ExpireAt == 0) {
			if oldAt != 0 {
				d.exp.remove(oldAt, old)
			}
			if e.ExpireAt != 0 {
				d.exp.add(e.ExpireAt, old)
			}
		}
		ks.used += e.size(key)
		return
	}
	// The new slot is written before the old one is freed: e.Str may
	// alias the old value.
	ref := ks.store(key, e, now)
	if old != 0 {
		if oldAt != 0 {
			d.exp.remove(oldAt, old)
		}
		ks.free(old)
		t.set(cell, tag, ref)
	} else {
		t.insert(tag, ref)
		d.keys++
	}
	if e.ExpireAt != 0 {
		d.exp.add(e.ExpireAt, ref)
	}
	ks.used += e.size(key)
}

// rewrite stores e over key's own slot at ref when no view is live and the
// new contents need the same size class: a session rewritten with a value
// of about the same size (the common case) then costs no allocation, no
// free and no index or expiry change. Under a view the slot must stay as it
// is, and so Put writes a new one. e.Str may alias the slot's own value:
// the header and the (same) key are written around it, and the value is
// moved last.
func (ks *Keyspace) rewrite(ref uint64, key string, e *Entry, access int64) bool {
	a := ks.arena
	ci := a.pageClass[refPage(ref)]
	if ci == hugeClass || a.views.Load() > 0 {
		return false
	}
	n := hdrSize + len(key)
	if e.Type == TypeString {
		n += len(e.Str)
	}
	if n > maxSlot || classOf(n) != int(ci) {
		return false
	}
	s := a.slot(ref)
	if s.typ() != TypeString {
		h := s.vlen()
		ks.objs[h] = object{}
		ks.freeObjs = append(ks.freeObjs, h)
	}
	if e.Type == TypeString {
		s.write(e, key, uint32(len(e.Str)), access)
		copy(s[hdrSize+len(key):], e.Str)
	} else {
		s.write(e, key, ks.newObject(object{hash: e.Hash, set: e.Set, list: e.List, zset: e.ZSet, stream: e.Stream}), access)
	}
	return true
}

// store writes e under key into a new slot.
func (ks *Keyspace) store(key string, e *Entry, access int64) uint64 {
	n := hdrSize + len(key)
	if e.Type == TypeString {
		n += len(e.Str)
	}
	ref, s := ks.arena.alloc(n)
	switch e.Type {
	case TypeString:
		s.write(e, key, uint32(len(e.Str)), access)
		copy(s[hdrSize+len(key):], e.Str)
	default:
		s.write(e, key, ks.newObject(object{hash: e.Hash, set: e.Set, list: e.List, zset: e.ZSet, stream: e.Stream}), access)
	}
	return ref
}

func (ks *Keyspace) newObject(o object) uint32 {
	if n := len(ks.freeObjs); n > 0 {
		h := ks.freeObjs[n-1]
		ks.freeObjs = ks.freeObjs[:n-1]
		ks.objs[h] = o
		return h
	}
	ks.objs = append(ks.objs, o)
	return uint32(len(ks.objs) - 1)
}

// free releases the slot at ref and its object, if any. A view holds its
// own copy of the object table, so the handle can be reused at once; the
// slot itself waits for views to be released (see arena.free).
func (ks *Keyspace) free(ref uint64) {
	s := ks.arena.slot(ref)
	if s.typ() != TypeString {
		h := s.vlen()
		ks.objs[h] = object{}
		ks.freeObjs = append(ks.freeObjs, h)
	}
	ks.arena.free(ref)
}

// sizeOf is the accounted size of the slot's entry, as Entry.size.
func (ks *Keyspace) sizeOf(s slot) int64 {
	n := int64(entryOverhead) + int64(s.klen())
	switch s.typ() {
	case TypeString:
		n += int64(s.vlen())
	case TypeHash:
		h := ks.objs[s.vlen()].hash
		n += h.bytes + int64(h.Len())*fieldOverhead
	case TypeSet:
		st := ks.objs[s.vlen()].set
		n += st.bytes + int64(st.Len())*fieldOverhead
	case TypeList:
		n += listSize(ks.objs[s.vlen()].list)
	case TypeZSet:
		n += zsetSize(ks.objs[s.vlen()].zset)
	case TypeStream:
		n += streamSize(ks.objs[s.vlen()].stream)
	}
	return n
}

// Usage is the memory accounted to key, expired or not (entry overhead,
// key and value bytes, a per-field overhead for hashes and sets): what
// maxmemory counts and MEMORY USAGE reports; 0 if it is not stored.
func (ks *Keyspace) Usage(db int, key string) int64 {
	shard, tag := hashKey(key)
	_, ref := ks.dbs[db].shards[shard].find(ks.arena, tag, key)
	if ref == 0 {
		return 0
	}
	return ks.sizeOf(ks.arena.slot(ref))
}

// Delete removes key and reports whether it was stored (expired or not).
func (ks *Keyspace) Delete(db int, key string) bool {
	d := ks.dbs[db]
	shard, tag := hashKey(key)
	t := &d.shards[shard]
	cell, ref := t.find(ks.arena, tag, key)
	if ref == 0 {
		return false
	}
	s := ks.arena.slot(ref)
	if at := s.expireAt(); at != 0 {
		d.exp.remove(at, ref)
	}
	ks.used -= ks.sizeOf(s)
	ks.free(ref)
	t.remove(cell)
	d.keys--
	return true
}

// Flush empties database db.
func (ks *Keyspace) Flush(db int) {
	d := ks.dbs[db]
	for i := range d.shards {
		for _, c := range d.shards[i].cells {
			if ref := c & refMask; c != 0 {
				ks.used -= ks.sizeOf(ks.arena.slot(ref))
				ks.free(ref)
			}
		}
	}
	ks.dbs[db] = &DB{}
	for _, d := range ks.dbs {
		if d.keys > 0 {
			return
		}
	}
	// Nothing is stored any more: give the memory back to the system
	// (FLUSHALL, or the last database flushed), unless a view still reads it.
	if ks.arena.reset() {
		ks.objs, ks.freeObjs = nil, nil
	}
}

// Swap exchanges the keys of databases a and b (SWAPDB), and tells the
// event receiver, if it wants to know, that keys changed without an event
// for each (see ReplaceWatcher).
func (ks *Keyspace) Swap(a, b int) {
	ks.dbs[a], ks.dbs[b] = ks.dbs[b], ks.dbs[a]
	if w, ok := ks.events.(ReplaceWatcher); ok {
		w.Replaced()
	}
}

// Len is the number of keys stored in db, including expired keys that have
// not been deleted yet (as redis's DBSIZE counts them).
func (ks *Keyspace) Len(db int) int { return ks.dbs[db].keys }

// VolatileLen is the number of keys in db that have an expiry.
func (ks *Keyspace) VolatileLen(db int) int { return ks.dbs[db].exp.n }

// Scan visits the buckets of db from cursor on until at least count keys
// were passed to fn or the end was reached, and returns the next cursor
// (0 when done). Expired keys are skipped. fn must not change the
// keyspace; the Entry it gets aliases the arena (see Entry).
func (ks *Keyspace) Scan(db int, cursor uint64, count int, now int64, fn func(key string, e *Entry)) uint64 {
	d := ks.dbs[db]
	seen := 0
	for c := cursor; c < NumShards; c++ {
		for _, cell := range d.shards[c].cells {
			if cell == 0 {
				continue
			}
			s := ks.arena.slot(cell & refMask)
			if !s.expired(now) {
				fn(string(s.key()), entryOf(s, ks.objs))
				seen++
			}
		}
		if seen >= count && c+1 < NumShards {
			return c + 1
		}
	}
	return 0
}

// SampleVolatile passes up to n keys of db that have an expiry to fn, those
// that expire earliest first (by bucket of about a second; in random order
// within one); fn returns false to stop. The expirer finds expired keys
// this way without sampling blindly, and volatile-ttl eviction its victims.
func (ks *Keyspace) SampleVolatile(db int, n int, fn func(key string, e *Entry) bool) {
	ks.SampleVolatileAt(db, 0, n, fn)
}

// SampleVolatileAt is SampleVolatile starting at the expiry bucket
// start%buckets: a random start samples keys of any TTL, as volatile-lru
// eviction needs.
func (ks *Keyspace) SampleVolatileAt(db int, start uint64, n int, fn func(key string, e *Entry) bool) {
	ks.dbs[db].exp.each(start, func(ref uint64) bool {
		if n <= 0 {
			return false
		}
		n--
		s := ks.arena.slot(ref)
		return fn(string(s.key()), entryOf(s, ks.objs))
	})
}

// SampleKeys passes up to n keys of db to fn, starting in bucket
// start%NumShards at the cell chosen by the rest of start, and going on in
// index order; fn returns false to stop. A random start gives a random
// sample.
func (ks *Keyspace) SampleKeys(db int, start uint64, n int, fn func(key string, e *Entry) bool) {
	d := ks.dbs[db]
	if d.keys == 0 {
		return
	}
	from := start / NumShards
	for i := 0; i < NumShards && n > 0; i++ {
		cells := d.shards[(start+uint64(i))%NumShards].cells
		for j := range cells {
			c := cells[(uint64(j)+from)%uint64(len(cells))]
			if c == 0 {
				continue
			}
			s := ks.arena.slot(c & refMask)
			if n <= 0 || !fn(string(s.key()), entryOf(s, ks.objs)) {
				return
			}
			n--
		}
	}
}

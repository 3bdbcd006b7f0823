package keyspace

// NumShards is how many hash buckets each database is split into. A SCAN
// cursor is a bucket number, so it stays valid across writes, restarts and
// leader changes: a key present for the whole scan is returned at least once.
const NumShards = 1024

// DB is one numbered database.
type DB struct {
	shards   [NumShards]map[string]*Entry
	keys     int
	volatile map[string]struct{} // keys that have an expiry, for sampling
}

func newDB() *DB { return &DB{volatile: map[string]struct{}{}} }

// Keyspace is every database plus the accounting that spans them.
type Keyspace struct {
	dbs   []*DB
	used  int64
	stamp int64 // the leader's timestamp of the last applied batch

	casBase, casSeq uint64 // CAS values of the entry being applied

	scripts map[string][]byte // see scripts.go
	events  Events            // see events.go; not part of snapshots
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

// New returns an empty keyspace with n databases.
func New(n int) *Keyspace {
	ks := &Keyspace{dbs: make([]*DB, n)}
	for i := range ks.dbs {
		ks.dbs[i] = newDB()
	}
	return ks
}

// Databases is the number of databases.
func (ks *Keyspace) Databases() int { return len(ks.dbs) }

// Used is the accounted memory of all keys and values, in bytes.
func (ks *Keyspace) Used() int64 { return ks.used }

// Stamp is the leader timestamp of the last applied batch. A new leader
// never stamps a batch earlier than this, so replicated time only moves on.
func (ks *Keyspace) Stamp() int64 { return ks.stamp }

// SetStamp records the timestamp of the batch being applied.
func (ks *Keyspace) SetStamp(now int64) {
	if now > ks.stamp {
		ks.stamp = now
	}
}

// shardOf is FNV-1a, chosen because it is stable across processes (SCAN
// cursors must survive restarts) and needs no allocation.
func shardOf(key string) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % NumShards)
}

// Lookup returns the stored entry even if it is past its expiry; writers use
// it to tell an expired key from a missing one.
func (ks *Keyspace) Lookup(db int, key string) *Entry {
	m := ks.dbs[db].shards[shardOf(key)]
	if m == nil {
		return nil
	}
	return m[key]
}

// Get returns the live entry for key, or nil if it is missing or expired.
func (ks *Keyspace) Get(db int, key string, now int64) *Entry {
	e := ks.Lookup(db, key)
	if e == nil || e.Expired(now) {
		return nil
	}
	return e
}

// Put stores e under key, replacing any entry, and keeps accounting. An
// entry without a CAS value gets the next one (a new value); one that has
// a CAS (a copy with a new expiry, a snapshot entry) keeps it.
func (ks *Keyspace) Put(db int, key string, e *Entry, now int64) {
	d := ks.dbs[db]
	s := shardOf(key)
	m := d.shards[s]
	if m == nil {
		m = map[string]*Entry{}
		d.shards[s] = m
	}
	if old, ok := m[key]; ok {
		ks.used -= old.size(key)
		if old.access.Load() > now {
			now = old.access.Load()
		}
	} else {
		d.keys++
	}
	e.access.Store(now)
	if e.CAS == 0 {
		e.CAS = ks.NextCAS()
	}
	m[key] = e
	ks.used += e.size(key)
	if e.ExpireAt != 0 {
		d.volatile[key] = struct{}{}
	} else {
		delete(d.volatile, key)
	}
}

// Delete removes key and reports whether it was stored (expired or not).
func (ks *Keyspace) Delete(db int, key string) bool {
	d := ks.dbs[db]
	m := d.shards[shardOf(key)]
	old, ok := m[key]
	if !ok {
		return false
	}
	delete(m, key)
	delete(d.volatile, key)
	d.keys--
	ks.used -= old.size(key)
	return true
}

// Flush empties database db.
func (ks *Keyspace) Flush(db int) {
	d := ks.dbs[db]
	for _, m := range d.shards {
		for k, e := range m {
			ks.used -= e.size(k)
		}
	}
	ks.dbs[db] = newDB()
}

// Len is the number of keys stored in db, including expired keys that have
// not been deleted yet (as redis's DBSIZE counts them).
func (ks *Keyspace) Len(db int) int { return ks.dbs[db].keys }

// VolatileLen is the number of keys in db that have an expiry.
func (ks *Keyspace) VolatileLen(db int) int { return len(ks.dbs[db].volatile) }

// Scan visits the buckets of db from cursor on until at least count keys
// were passed to fn or the end was reached, and returns the next cursor
// (0 when done). Expired keys are skipped.
func (ks *Keyspace) Scan(db int, cursor uint64, count int, now int64, fn func(key string, e *Entry)) uint64 {
	d := ks.dbs[db]
	seen := 0
	for c := cursor; c < NumShards; c++ {
		for k, e := range d.shards[c] {
			if !e.Expired(now) {
				fn(k, e)
				seen++
			}
		}
		if seen >= count && c+1 < NumShards {
			return c + 1
		}
	}
	return 0
}

// SampleVolatile passes up to n keys of db that have an expiry to fn, in
// Go's randomized map order; fn returns false to stop.
func (ks *Keyspace) SampleVolatile(db int, n int, fn func(key string, e *Entry) bool) {
	d := ks.dbs[db]
	for k := range d.volatile {
		if n <= 0 || !fn(k, ks.Lookup(db, k)) {
			return
		}
		n--
	}
}

// SampleKeys passes up to n keys of db to fn, starting at bucket start and
// in map order within each bucket; fn returns false to stop.
func (ks *Keyspace) SampleKeys(db int, start uint64, n int, fn func(key string, e *Entry) bool) {
	d := ks.dbs[db]
	if d.keys == 0 {
		return
	}
	for i := 0; i < NumShards && n > 0; i++ {
		for k, e := range d.shards[(start+uint64(i))%NumShards] {
			if n <= 0 || !fn(k, e) {
				return
			}
			n--
		}
	}
}

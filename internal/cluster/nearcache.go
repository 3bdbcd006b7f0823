package cluster

import (
	"sync"
	"sync/atomic"
	"time"
)

// The near-cache: a node's copy of values it read recently, served with no
// round trip and never stale. This file is the node's side — the cache,
// the lease that lets it serve, and the reads that fill it; tracking.go is
// the leader's side. DESIGN.md ("Near-cache") has the protocol and the
// argument for it.
//
// The cache serves reads of database 0 only (the embedded node's Get); the
// leader tracks keys of database 0 only.

// nearCache holds values with a lease from the leader. Everything is under
// mu; a hit is a map lookup and a copy.
type nearCache struct {
	max int64 // bytes

	mu      sync.Mutex
	entries map[string]*ncEntry
	ring    []*ncEntry // CLOCK eviction: every entry, in slot order
	hand    int
	used    int64
	pending map[string]*ncPending
	gen     uint64 // bumped by every flush: a read that began before is not cached
	lease   leaseGrant
	end     time.Time // the lease's end on this node's monotonic clock

	hits, misses, invalsRecv, flushes, uncacheable atomic.Uint64
}

// ncEntry is one cached read: a value, or the key's absence.
type ncEntry struct {
	key    string
	val    []byte
	exists bool
	until  time.Time // the key's expiry as seen from this node (zero: none)
	ref    bool      // read since the clock hand last passed
	slot   int       // index in ring
}

// ncPending counts the reads of a key that are filling the cache; an
// invalidation of the key meanwhile spoils them all (their value is
// returned, not cached).
type ncPending struct {
	n       int
	spoiled bool
}

// leaseGrant is what a leader grants: the right to serve cached values,
// tied to its leadership (leader, term) and to this node's registration
// with it (epoch: the leader gives a new one whenever it stopped counting
// on this node, so that the node knows it may have missed invalidations).
type leaseGrant struct {
	leader, term, epoch uint64
	dur                 time.Duration
}

// ncEntryOverhead approximates an entry's memory besides key and value.
const ncEntryOverhead = 96

func newNearCache(max int64) *nearCache {
	return &nearCache{max: max, entries: map[string]*ncEntry{}, pending: map[string]*ncPending{}}
}

// get returns key's cached value; ok is false on a miss (or when the lease
// has run out, which is a miss for every key). The value is a copy.
func (c *nearCache) get(key string) (val []byte, exists, ok bool) {
	now := time.Now()
	c.mu.Lock()
	e := c.entries[key]
	if e == nil || !now.Before(c.end) || (!e.until.IsZero() && !now.Before(e.until)) {
		c.mu.Unlock()
		c.misses.Add(1)
		return nil, false, false
	}
	e.ref = true
	if e.exists {
		val = append(make([]byte, 0, len(e.val)), e.val...)
	}
	exists = e.exists
	c.mu.Unlock()
	c.hits.Add(1)
	return val, exists, true
}

// beginFill registers a read of key that may fill the cache; it must be
// called before the leader is asked to track the key, and be followed by
// endFill.
func (c *nearCache) beginFill(key string) (gen uint64) {
	c.mu.Lock()
	p := c.pending[key]
	if p == nil {
		p = &ncPending{}
		c.pending[key] = p
	}
	p.n++
	gen = c.gen
	c.mu.Unlock()
	return gen
}

// endFill ends a read begun with beginFill. The value is cached only if
// the leader tracks the key for this node under the lease this node holds
// now (grant), no invalidation or flush came in since beginFill, and the
// lease is still running. until is the key's expiry (zero: none).
func (c *nearCache) endFill(key string, gen uint64, grant *leaseGrant, val []byte, exists bool, until time.Time) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pending[key]
	p.n--
	spoiled := p.spoiled
	if p.n == 0 {
		delete(c.pending, key)
	}
	if grant == nil || spoiled || gen != c.gen || *grant != c.lease || !now.Before(c.end) ||
		(!until.IsZero() && !now.Before(until)) {
		c.uncacheable.Add(1)
		return
	}
	c.removeLocked(key)
	e := &ncEntry{key: key, exists: exists, until: until, slot: len(c.ring)}
	if exists {
		e.val = append([]byte(nil), val...)
	}
	size := entrySize(e)
	if size > c.max/8 {
		return // one value would push out too much else
	}
	for c.used+size > c.max && len(c.ring) > 0 {
		c.evictOneLocked()
	}
	c.entries[key] = e
	c.ring = append(c.ring, e)
	c.used += size
}

func entrySize(e *ncEntry) int64 { return int64(len(e.key) + len(e.val) + ncEntryOverhead) }

// evictOneLocked removes one entry, CLOCK-wise: the hand skips (and
// clears) entries read since it last passed.
func (c *nearCache) evictOneLocked() {
	for {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		e := c.ring[c.hand]
		if e.ref {
			e.ref = false
			c.hand++
			continue
		}
		c.removeLocked(e.key)
		return
	}
}

// removeLocked drops key's entry, if any.
func (c *nearCache) removeLocked(key string) {
	e := c.entries[key]
	if e == nil {
		return
	}
	delete(c.entries, key)
	last := c.ring[len(c.ring)-1]
	c.ring[e.slot] = last
	last.slot = e.slot
	c.ring[len(c.ring)-1] = nil
	c.ring = c.ring[:len(c.ring)-1]
	c.used -= entrySize(e)
}

// invalidate drops keys and spoils the reads of them that are filling the
// cache.
func (c *nearCache) invalidate(keys []string) {
	c.mu.Lock()
	for _, k := range keys {
		c.removeLocked(k)
		if p := c.pending[k]; p != nil {
			p.spoiled = true
		}
	}
	c.mu.Unlock()
}

// flush drops everything and spoils every read filling the cache.
func (c *nearCache) flush() {
	c.mu.Lock()
	c.flushLocked()
	c.mu.Unlock()
}

func (c *nearCache) flushLocked() {
	clear(c.entries)
	clear(c.ring)
	c.ring = c.ring[:0]
	c.hand, c.used = 0, 0
	c.gen++
	c.flushes.Add(1)
}

// setLease records a grant asked for at sent. A grant from another
// leader, term or epoch than the one held flushes the cache first: values
// cached under the old one may have missed invalidations. The lease runs
// from when it was asked for, which is before the leader confirmed its
// leadership.
func (c *nearCache) setLease(g leaseGrant, sent time.Time, maxDur time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g != c.lease {
		c.flushLocked()
		c.lease = g
		c.end = time.Time{}
	}
	if end := sent.Add(min(g.dur, maxDur)); end.After(c.end) {
		c.end = end
	}
}

// dropLease ends the lease now (the leader refused to renew it) and
// flushes.
func (c *nearCache) dropLease() {
	c.mu.Lock()
	c.lease = leaseGrant{}
	c.end = time.Time{}
	c.flushLocked()
	c.mu.Unlock()
}

// leaseRunning reports whether a lease is running (for tests and stats).
func (c *nearCache) leaseRunning() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Before(c.end)
}

// size is the entries and bytes held.
func (c *nearCache) size() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.used
}

// apply carries out an invalidation received from the leader.
func (c *nearCache) apply(all bool, keys []string) {
	if c == nil {
		return
	}
	c.invalsRecv.Add(1)
	if all {
		c.flush()
		return
	}
	c.invalidate(keys)
}

package redis

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hatcheck/hatcheck/internal/resp"
)

// Client-side caching (CLIENT TRACKING), as redis 6 and 7.0 have it, on
// this node: asynchronous invalidation. A connection with tracking on has
// the keys its read commands name remembered (default mode), or asks for
// every key under some prefixes (BCAST); when a write applied on this node
// changes such a key, the connection is sent an invalidation: a RESP3 push
// ">2 invalidate [keys]", or with REDIRECT a message on
// "__redis__:invalidate" to another connection (how RESP2 clients get
// them). FLUSHDB, FLUSHALL and a snapshot that replaces the keyspace send
// a null instead of keys: drop everything.
//
// Every node applies every write from the log, whichever node it came
// through, so a connection tracking on any node hears of every change, a
// little after it is committed, like a client of redis-server hears of a
// change after it is made. This is redis's guarantee, not a stronger one:
// a client may serve a stale value from its cache until the invalidation
// arrives. The never-stale near-cache (internal/cluster, nearcache.go)
// exists only for Go programs embedding a node: the leader holds every
// write until each caching node has dropped the key, which a remote client
// on a TCP connection cannot be made to acknowledge.
//
// Ordering. A key is remembered before its read runs, so a write applied
// after the read is always reported; invalidations for a connection are
// queued and written after the replies of the run that is going on, and
// not while a request waits, so a client always sees the reply of a read
// before an invalidation that may concern it (as redis 7.0 does for the
// client that made the change).
//
// Locks: tracker.mu guards the tables and every connection's trackState;
// a connection's invalidation queue has its own lock, taken under
// tracker.mu, never the other way round.

// tracker is the server's tracking table.
type tracker struct {
	clients atomic.Int32 // connections with tracking on; the apply path does nothing while 0
	// perEntry: the node reports the end of each applied log entry
	// (applied), so invalidations are delivered once per entry; until it
	// does, each is delivered at once.
	perEntry atomic.Bool
	wake     []*conn      // connections with invalidations queued in this entry (under mu)
	maxKeys  atomic.Int64 // maxTrackedKeys; lower in tests

	mu       sync.Mutex
	conns    map[*conn]struct{}            // connections with tracking on
	keys     map[string]map[*conn]struct{} // default mode: key → connections that read it
	prefixes map[string]map[*conn]struct{} // BCAST: prefix → connections
}

func newTracker() *tracker {
	t := &tracker{conns: map[*conn]struct{}{}, keys: map[string]map[*conn]struct{}{}, prefixes: map[string]map[*conn]struct{}{}}
	t.maxKeys.Store(maxTrackedKeys)
	return t
}

// trackState is one connection's CLIENT TRACKING settings. The
// connection's driver writes it under tracker.mu (it reads its own fields
// freely); the apply path reads it under tracker.mu.
type trackState struct {
	redirect int64 // 0: none
	target   *conn // the connection with id redirect
	bcast    bool
	optin    bool
	optout   bool
	noloop   bool
	prefixes []string // BCAST's, sorted (as redis's radix tree lists them)
	nkeys    int      // default mode: keys remembered (a close sweeps them only if any)

	broken atomic.Bool // the redirect's connection has gone (CLIENT LIST reads it)
	// Under tracker.mu only.
	loop map[string]int // NOLOOP: keys of this connection's commands in flight
}

// invalQueue holds the invalidations waiting for a connection's next run.
type invalQueue struct {
	pending atomic.Bool // msgs is not empty: the driver checks it after every run
	mu      sync.Mutex
	msgs    []invalMsg
}

type invalMsg struct {
	keys     []string // nil with flush
	flush    bool     // everything: the value is a null
	nullRESP int      // the protocol of the tracking connection, whose null a flush sends
	prefix   string   // BCAST: the prefix these keys are under (merged per run)
	bcast    bool
	redirect bool  // delivered to another connection (RESP2: as a pub/sub message)
	broken   int64 // not an invalidation: tracking-redir-broken for this id
}

// maxTrackedKeys bounds the keys remembered in default mode (redis's
// tracking-table-max-keys default): past it, a key is dropped from the
// table, its connections told to drop it, as redis does.
const maxTrackedKeys = 1 << 20

// trackingChannel is where RESP2 connections receive redirected
// invalidations.
const trackingChannel = "__redis__:invalidate"

// keyChanged reports a key changed by a write applied on this node (any
// keyspace event). It runs on the apply path and never blocks on a
// connection.
func (t *tracker) keyChanged(key string) {
	if t.clients.Load() == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if set := t.keys[key]; set != nil {
		keep := false
		for c := range set {
			st := c.tracking
			if st == nil || st.bcast {
				continue // switched mode or off since it read the key
			}
			if st.noloop && st.loop[key] > 0 {
				// The connection's own change. It stays registered: a read
				// it pipelined after the write has been remembered already.
				keep = true
				continue
			}
			delete(set, c)
			st.nkeys--
			t.sendLocked(c, invalMsg{keys: []string{key}})
		}
		if !keep || len(set) == 0 {
			delete(t.keys, key)
		}
	}
	for p, set := range t.prefixes {
		if !strings.HasPrefix(key, p) {
			continue
		}
		for c := range set {
			if st := c.tracking; st != nil && !(st.noloop && st.loop[key] > 0) {
				t.sendLocked(c, invalMsg{keys: []string{key}, prefix: p, bcast: true})
			}
		}
	}
}

// evictOneLocked drops a key other than keep from the table, telling its
// connections to drop it: which one is left to the map's iteration order,
// a random choice as redis's is.
func (t *tracker) evictOneLocked(keep string) {
	for k, set := range t.keys {
		if k == keep {
			continue
		}
		for c := range set {
			if st := c.tracking; st != nil && !st.bcast {
				st.nkeys--
				t.sendLocked(c, invalMsg{keys: []string{k}})
			}
		}
		delete(t.keys, k)
		break
	}
	// Not the end of an entry: deliver now.
	for _, c := range t.wake {
		c.link.Wake()
	}
	t.wake = nil
}

// applied wakes the connections that the entry just applied queued
// invalidations for.
func (t *tracker) applied() {
	if !t.perEntry.Load() {
		t.perEntry.Store(true)
	}
	if t.clients.Load() == 0 {
		return
	}
	t.mu.Lock()
	wake := t.wake
	t.wake = nil
	t.mu.Unlock()
	for _, c := range wake {
		c.link.Wake()
	}
}

// flushed tells every tracking connection to drop everything, as redis
// does on FLUSHDB and FLUSHALL (whatever the database), and empties the
// table.
func (t *tracker) flushed() {
	if t.clients.Load() == 0 {
		return
	}
	t.mu.Lock()
	for c := range t.conns {
		t.sendLocked(c, invalMsg{flush: true, nullRESP: c.protocol()})
		c.tracking.nkeys = 0
	}
	clear(t.keys)
	t.mu.Unlock()
	t.applied() // a snapshot installed is no entry: deliver now
}

// sendLocked queues m for c, or for the connection c redirects to, and
// wakes it. A redirect whose connection has gone marks c's tracking broken
// and tells c (in RESP3), each time, as redis-server does.
func (t *tracker) sendLocked(c *conn, m invalMsg) {
	st := c.tracking
	to := c
	if st.redirect != 0 {
		if st.target.gone.Load() {
			st.broken.Store(true)
			to, m = c, invalMsg{broken: st.redirect}
		} else {
			to, m.redirect = st.target, true
		}
	}
	if to.queueInval(m) {
		if t.perEntry.Load() {
			t.wake = append(t.wake, to)
		} else {
			to.link.Wake()
		}
	}
}

// queueInval adds m to the connection's queue, merging BCAST keys of one
// prefix into one message per run as redis does (one push per prefix per
// event loop iteration). It reports whether the queue was empty: the
// connection is to be woken.
func (c *conn) queueInval(m invalMsg) bool {
	q := &c.inval
	q.mu.Lock()
	merged := false
	if m.bcast {
		for i := range q.msgs {
			p := &q.msgs[i]
			if p.bcast && p.prefix == m.prefix && p.redirect == m.redirect {
				if !slices.Contains(p.keys, m.keys[0]) {
					p.keys = append(p.keys, m.keys[0])
				}
				merged = true
				break
			}
		}
	}
	if !merged {
		q.msgs = append(q.msgs, m)
	}
	first := !q.pending.Swap(true)
	q.mu.Unlock()
	return first
}

// appendInvalidations writes the queued invalidations; the driver calls it
// at the end of a run in which no request waits.
func (c *conn) appendInvalidations() {
	q := &c.inval
	if !q.pending.Load() {
		return
	}
	q.mu.Lock()
	msgs := q.msgs
	q.msgs = nil
	q.pending.Store(false)
	q.mu.Unlock()
	// redis sends BCAST invalidations once per event loop iteration, after
	// the others, one per prefix in the order of its radix tree.
	slices.SortStableFunc(msgs, func(a, b invalMsg) int {
		switch {
		case a.bcast != b.bcast && a.bcast:
			return 1
		case a.bcast != b.bcast:
			return -1
		}
		return strings.Compare(a.prefix, b.prefix)
	})
	proto := c.protocol()
	for _, m := range msgs {
		switch {
		case m.broken != 0:
			if proto == 3 {
				c.out = resp.AppendPush(c.out, 2)
				c.out = resp.AppendBulkString(c.out, "tracking-redir-broken")
				c.out = resp.AppendInt(c.out, m.broken)
			}
			continue
		case proto == 3:
			c.out = resp.AppendPush(c.out, 2)
			c.out = resp.AppendBulkString(c.out, "invalidate")
		case m.redirect && c.subscribed():
			c.out = resp.AppendArray(c.out, 3)
			c.out = resp.AppendBulkString(c.out, "message")
			c.out = resp.AppendBulkString(c.out, trackingChannel)
		default:
			// RESP2 has no way to send it on a connection that is not
			// subscribed: redis drops it too.
			continue
		}
		if m.flush {
			c.out = appendNull(c.out, m.nullRESP)
			continue
		}
		c.out = resp.AppendArray(c.out, len(m.keys))
		for _, k := range m.keys {
			c.out = resp.AppendBulkString(c.out, k)
		}
	}
}

// trackCommand does what tracking asks before a command runs: remember the
// keys a read names (default mode, subject to OPTIN/OPTOUT and CLIENT
// CACHING), and, with NOLOOP, note the keys the command may change, so
// that their invalidations are not sent back to it.
func (c *conn) trackCommand(spec *cmdSpec, args [][]byte) {
	st := c.tracking
	caching := c.caching
	if spec.name != "client" && !c.multi {
		// CLIENT CACHING applies to the next command (or transaction).
		c.caching = false
	}
	if !spec.hasKeys() {
		return
	}
	read := spec.flags&flagReadOnly != 0 || (spec.keysOf != nil && spec.flags&flagWrite == 0)
	remember := read && !st.bcast && !(st.optin && !caching) && !(st.optout && caching)
	mark := st.noloop && !(spec.flags&flagReadOnly != 0)
	if !remember && !mark {
		return
	}
	keys, _ := spec.keysIn(args)
	t := c.srv.track
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		key := string(k)
		if remember {
			set := t.keys[key]
			if set == nil {
				set = map[*conn]struct{}{}
				t.keys[key] = set
			}
			if _, ok := set[c]; !ok {
				set[c] = struct{}{}
				st.nkeys++
			}
			if int64(len(t.keys)) > t.maxKeys.Load() {
				t.evictOneLocked(key)
			}
		}
		if mark {
			if st.loop == nil {
				st.loop = map[string]int{}
			}
			st.loop[key]++
			c.loopMarked = true
		}
	}
}

// clearLoop forgets the NOLOOP marks once the connection's commands have
// completed.
func (c *conn) clearLoop() {
	t := c.srv.track
	t.mu.Lock()
	if st := c.tracking; st != nil {
		clear(st.loop)
	}
	t.mu.Unlock()
}

// clientTracking answers CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST]
// [PREFIX p …] [OPTIN] [OPTOUT] [NOLOOP], with redis 7.0's checks in its
// order.
func (c *conn) clientTracking(a [][]byte) {
	next := &trackState{}
	var prefixes []string
	for j := 1; j < len(a); j++ {
		more := j+1 < len(a)
		switch {
		case eq(a[j], "redirect") && more:
			j++
			if next.redirect != 0 {
				c.out = resp.AppendError(c.out, "ERR A client can only redirect to a single other client")
				return
			}
			id, ok := parseInt(a[j])
			if !ok {
				c.out = resp.AppendError(c.out, errNotInteger)
				return
			}
			next.redirect = id
			c.srv.conns.Each(func(o *conn) {
				if o.id == id {
					next.target = o
				}
			})
			if next.target == nil {
				c.out = resp.AppendError(c.out, "ERR The client ID you want redirect to does not exist")
				return
			}
		case eq(a[j], "bcast"):
			next.bcast = true
		case eq(a[j], "optin"):
			next.optin = true
		case eq(a[j], "optout"):
			next.optout = true
		case eq(a[j], "noloop"):
			next.noloop = true
		case eq(a[j], "prefix") && more:
			j++
			prefixes = append(prefixes, string(a[j]))
		default:
			c.out = resp.AppendError(c.out, errSyntax)
			return
		}
	}
	switch {
	case eq(a[0], "off"):
		c.disableTracking()
		c.out = resp.AppendSimple(c.out, "OK")
		return
	case !eq(a[0], "on"):
		c.out = resp.AppendError(c.out, errSyntax)
		return
	}
	old := c.tracking
	var msg string
	switch {
	case !next.bcast && len(prefixes) > 0:
		msg = "ERR PREFIX option requires BCAST mode to be enabled"
	case old != nil && old.bcast != next.bcast:
		msg = "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."
	case next.bcast && (next.optin || next.optout):
		msg = "ERR OPTIN and OPTOUT are not compatible with BCAST"
	case next.optin && next.optout:
		msg = "ERR You can't specify both OPTIN mode and OPTOUT mode"
	case old != nil && ((next.optin && old.optout) || (next.optout && old.optin)):
		msg = "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."
	case next.bcast:
		msg = prefixCollision(old, prefixes)
	}
	if msg != "" {
		c.out = resp.AppendError(c.out, msg)
		return
	}
	c.enableTracking(next, prefixes)
	c.out = resp.AppendSimple(c.out, "OK")
}

// prefixCollision is redis's check that no two prefixes of one connection
// overlap (one is a prefix of the other): the new ones against those it
// has, then against each other.
func prefixCollision(old *trackState, prefixes []string) string {
	overlap := func(a, b string) bool { return strings.HasPrefix(a, b) || strings.HasPrefix(b, a) }
	for i, p := range prefixes {
		if old != nil {
			for _, q := range old.prefixes {
				if overlap(p, q) {
					return "ERR Prefix '" + p + "' overlaps with an existing prefix '" + q + "'. Prefixes for a single client must not overlap."
				}
			}
		}
		for _, q := range prefixes[i+1:] {
			if overlap(p, q) {
				return "ERR Prefix '" + p + "' overlaps with another provided prefix '" + q + "'. Prefixes for a single client must not overlap."
			}
		}
	}
	return ""
}

// enableTracking turns tracking on, or changes its options: as in redis,
// the flags and the redirect are replaced, the prefixes added to (BCAST
// with none means every key: the prefix "").
func (c *conn) enableTracking(next *trackState, prefixes []string) {
	t := c.srv.track
	t.mu.Lock()
	defer t.mu.Unlock()
	st := c.tracking
	if st == nil {
		st = &trackState{}
		c.tracking = st
		t.conns[c] = struct{}{}
		t.clients.Add(1)
	}
	st.redirect, st.target = next.redirect, next.target
	st.broken.Store(false)
	st.bcast, st.optin, st.optout, st.noloop = next.bcast, next.optin, next.optout, next.noloop
	if st.bcast {
		if len(prefixes) == 0 {
			prefixes = []string{""}
		}
		for _, p := range prefixes {
			if slices.Contains(st.prefixes, p) {
				continue
			}
			st.prefixes = append(st.prefixes, p)
			if t.prefixes[p] == nil {
				t.prefixes[p] = map[*conn]struct{}{}
			}
			t.prefixes[p][c] = struct{}{}
		}
		slices.Sort(st.prefixes)
	}
	c.redirView.Store(st.redirect)
}

// disableTracking turns tracking off (CLIENT TRACKING OFF, or the
// connection closed): its prefixes and remembered keys are dropped.
func (c *conn) disableTracking() {
	st := c.tracking
	if st == nil {
		return
	}
	t := c.srv.track
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range st.prefixes {
		delete(t.prefixes[p], c)
		if len(t.prefixes[p]) == 0 {
			delete(t.prefixes, p)
		}
	}
	if st.nkeys > 0 {
		for k, set := range t.keys {
			delete(set, c)
			if len(set) == 0 {
				delete(t.keys, k)
			}
		}
	}
	delete(t.conns, c)
	t.clients.Add(-1)
	c.tracking = nil
	c.caching = false
	c.redirView.Store(-1)
}

// clientCaching answers CLIENT CACHING YES|NO.
func (c *conn) clientCaching(opt []byte) {
	st := c.tracking
	switch {
	case st == nil:
		c.out = resp.AppendError(c.out, "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled")
	case eq(opt, "yes") && !st.optin:
		c.out = resp.AppendError(c.out, "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
	case eq(opt, "no") && !st.optout:
		c.out = resp.AppendError(c.out, "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
	case eq(opt, "yes") || eq(opt, "no"):
		c.caching = true
		c.out = resp.AppendSimple(c.out, "OK")
	default:
		c.out = resp.AppendError(c.out, errSyntax)
	}
}

// trackingRedirect is CLIENT GETREDIR's answer: -1 without tracking, else
// the redirect (0: none).
func (c *conn) trackingRedirect() int64 {
	if c.tracking == nil {
		return -1
	}
	return c.tracking.redirect
}

// trackingInfo answers CLIENT TRACKINGINFO.
func (c *conn) trackingInfo() {
	st := c.tracking
	var flags []string
	prefixes := []string(nil)
	if st == nil {
		flags = []string{"off"}
	} else {
		flags = append(flags, "on")
		add := func(on bool, f string) {
			if on {
				flags = append(flags, f)
			}
		}
		add(st.bcast, "bcast")
		add(st.optin, "optin")
		add(st.optin && c.caching, "caching-yes")
		add(st.optout, "optout")
		add(st.optout && c.caching, "caching-no")
		add(st.noloop, "noloop")
		add(st.broken.Load(), "broken_redirect")
		prefixes = st.prefixes
	}
	c.appendMap(3)
	c.out = resp.AppendBulkString(c.out, "flags")
	c.appendSet(len(flags))
	for _, f := range flags {
		c.out = resp.AppendBulkString(c.out, f)
	}
	c.out = resp.AppendBulkString(c.out, "redirect")
	c.out = resp.AppendInt(c.out, c.trackingRedirect())
	c.out = resp.AppendBulkString(c.out, "prefixes")
	c.out = resp.AppendArray(c.out, len(prefixes))
	for _, p := range prefixes {
		c.out = resp.AppendBulkString(c.out, p)
	}
}

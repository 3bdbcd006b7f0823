package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
)

// The leader's side of the near-cache (see nearcache.go and DESIGN.md):
// leases, the table of which node caches which key, and the invalidations
// every write sends before it is proposed.

// tracker is the leader's near-cache bookkeeping. Its state belongs to one
// term of this node's leadership and starts empty in each.
type tracker struct {
	n   *Node
	dur time.Duration // the lease length, D

	mu       sync.Mutex
	term     uint64    // the term the state below belongs to; 0 while not leading
	since    time.Time // when this node became leader of term
	epochs   uint64    // the last holder epoch given
	holders  map[uint64]*holder
	keys     map[string]map[uint64]uint64 // key → node → its epoch when it asked
	revoking bool                         // leadership is being handed over: no leases
	// inflight counts the writes of each key between their invalidation
	// and their apply here; inflightAll those that may write any key. No
	// node may start caching a key while a write of it is in flight.
	inflight    map[string]int
	inflightAll int

	invalsSent, leaseWaits atomic.Uint64
	seen                   atomic.Bool // a node asked for a lease: near-caches are in use
	// uncounted counts the writes in flight that took the fast path of
	// beginWrite (no near-cache in use yet): no key may be tracked until
	// they are applied.
	uncounted atomic.Int64
}

// uncountedMark marks a write that took beginWrite's fast path.
var uncountedMark = &writeMark{}

// holder is a node that holds a lease: until end on this node's clock
// (later than the holder's own end), in epoch. owing counts the
// invalidations it has not acknowledged: while any is unacknowledged the
// lease is not renewed, so that it runs out and the wait with it.
type holder struct {
	end   time.Time
	epoch uint64
	owing int
}

// maxTrackedKeys bounds the leader's table; beyond it, nodes are told not
// to cache.
const maxTrackedKeys = 1 << 20

// Waits on other nodes' leases (a node that does not acknowledge, a new
// leader's hold) last a lease and 1/leaseSlack more, so that they end
// after the lease even if the two clocks' rates differ by up to 12%.
const leaseSlack = 8

func newTracker(n *Node, dur time.Duration) *tracker {
	return &tracker{n: n, dur: dur, holders: map[uint64]*holder{}, keys: map[string]map[uint64]uint64{}, inflight: map[string]int{}}
}

// leaderChanged resets the state when this node starts (or stops)
// leading: a new leader knows no holders, and every lease an earlier
// leader granted ends before a new leader can be elected.
func (t *tracker) leaderChanged(leading bool, term uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !leading {
		term = 0
	}
	t.resetLocked(term)
}

// resetLocked starts the state of term, unless it is the current one.
func (t *tracker) resetLocked(term uint64) {
	if term == t.term {
		return
	}
	t.term, t.since, t.revoking = term, time.Now(), false
	t.holders = map[uint64]*holder{}
	t.keys = map[string]map[uint64]uint64{}
}

// grant gives node rid a lease, after confirming with a quorum that this
// node still leads: no other leader can be elected for an election timeout
// after the quorum's answer, and the lease is shorter than that.
func (t *tracker) grant(ctx context.Context, rid uint64) (leaseGrant, bool) {
	t.seen.Store(true)
	lid, term := t.n.group.Leader()
	if lid != t.n.rid || !t.n.leads() {
		return leaseGrant{}, false
	}
	if err := t.n.confirmLeadership(ctx); err != nil {
		return leaseGrant{}, false
	}
	if lid, now := t.n.group.Leader(); lid != t.n.rid || now != term {
		return leaseGrant{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// Leadership moves through a time without a leader, which resets the
	// state; this covers a change the callback did not report.
	t.resetLocked(term)
	if t.revoking {
		return leaseGrant{}, false
	}
	h := t.holders[rid]
	if h == nil || (h.owing == 0 && !time.Now().Before(h.end)) {
		// A new holder, or one whose lease ran out: writes since may have
		// skipped it, so it must flush, which a new epoch tells it.
		t.epochs++
		h = &holder{epoch: t.epochs}
		t.holders[rid] = h
	}
	if h.owing > 0 {
		return leaseGrant{}, false
	}
	// The holder's lease runs from when it asked, before the quorum's
	// answer; this node counts it from now, which is later, and longer
	// by leaseSlack in case the holder's clock runs slower than this one.
	h.end = time.Now().Add(t.dur + t.dur/leaseSlack)
	return leaseGrant{leader: t.n.rid, term: term, epoch: h.epoch, dur: t.dur}, true
}

// track records that node rid caches key, and returns the grant under
// which it may: the node caches its read only if it holds that lease. It
// refuses (the node reads without caching) while a write of the key is in
// flight, while the node owes an acknowledgement or holds no lease, and
// when the table is full.
func (t *tracker) track(rid uint64, key string) (leaseGrant, bool) {
	lid, term := t.n.group.Leader()
	if lid != t.n.rid {
		return leaseGrant{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.holders[rid]
	switch {
	case t.term != term || t.revoking || h == nil || h.owing > 0 || !time.Now().Before(h.end):
		return leaseGrant{}, false
	case t.inflightAll > 0 || t.inflight[key] > 0 || t.uncounted.Load() > 0:
		return leaseGrant{}, false
	}
	nodes := t.keys[key]
	if nodes == nil {
		if len(t.keys) >= maxTrackedKeys {
			return leaseGrant{}, false
		}
		nodes = map[uint64]uint64{}
		t.keys[key] = nodes
	}
	nodes[rid] = h.epoch
	return leaseGrant{leader: t.n.rid, term: term, epoch: h.epoch, dur: t.dur}, true
}

// writeMark is a write between its invalidation and its apply.
type writeMark struct {
	keys []string // database 0 keys it writes
	one  [1]string
	all  bool // it may write any key
	// What must happen before it is proposed: invalidations per node,
	// and a new leader's wait (see hold).
	sends map[uint64]*invalidation
	hold  time.Time
}

// invalidation is what one node is sent: keys, or everything.
type invalidation struct {
	h    *holder
	keys []string
	all  bool
}

// beginWrite marks tx's keys in flight and collects the invalidations to
// send before it is proposed (nil mark: tx writes nothing cacheable). The
// trackers of those keys are dropped: one invalidation per read.
//
// A new leader also holds writes for a lease (and its slack) after it was
// elected. Leases of the previous term end before a new leader can be
// elected as long as every voter that confirmed the old leader remembers
// it; one that restarted in between votes at once, and the hold covers
// that case. It applies when this node has a near-cache (cacheOn) or has
// been asked for a lease: near-caches exist in the group.
func (t *tracker) beginWrite(tx command.Tx, cacheOn bool) *writeMark {
	if !cacheOn {
		// Until some node asks for a lease nobody caches, and a write
		// need only be counted, which costs two atomic additions. The
		// count comes before the check, and grant sets seen before it
		// grants: a write that saw no lease is counted by the time any
		// node can ask to track a key (track refuses while it is).
		t.uncounted.Add(1)
		if !t.seen.Load() {
			return uncountedMark
		}
		t.uncounted.Add(-1)
	}
	var m *writeMark
	writeKeys(tx, func(k []byte) {
		if m == nil {
			m = &writeMark{}
			m.keys = m.one[:0] // most writes write one key
		}
		m.keys = append(m.keys, string(k))
	}, func() {
		if m == nil {
			m = &writeMark{}
		}
		m.all = true
	})
	if m == nil {
		return nil
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if m.all {
		t.inflightAll++
	}
	for _, k := range m.keys {
		t.inflight[k]++
	}
	if until := t.since.Add(t.dur + t.dur/leaseSlack); (cacheOn || t.seen.Load()) && t.term != 0 && now.Before(until) {
		m.hold = until
	}
	add := func(rid uint64, h *holder) *invalidation {
		if m.sends == nil {
			m.sends = map[uint64]*invalidation{}
		}
		inv := m.sends[rid]
		if inv == nil {
			inv = &invalidation{h: h}
			m.sends[rid] = inv
			h.owing++
		}
		return inv
	}
	if m.all {
		for rid, h := range t.holders {
			if now.Before(h.end) {
				add(rid, h).all = true
			}
		}
		clear(t.keys)
		return m
	}
	for _, k := range m.keys {
		nodes := t.keys[k]
		if nodes == nil {
			continue
		}
		delete(t.keys, k)
		for rid, epoch := range nodes {
			// A node whose epoch changed has flushed since it asked.
			if h := t.holders[rid]; h != nil && h.epoch == epoch && now.Before(h.end) {
				inv := add(rid, h)
				inv.keys = append(inv.keys, k)
			}
		}
	}
	return m
}

// ready reports whether m can be proposed at once.
func (m *writeMark) ready() bool { return m == nil || (len(m.sends) == 0 && m.hold.IsZero()) }

// invalidate sends m's invalidations and waits, for each node, for its
// acknowledgement or for its lease to end, whichever comes first; then
// for a new leader's hold.
func (t *tracker) invalidate(m *writeMark) {
	var wg sync.WaitGroup
	for rid, inv := range m.sends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.send(rid, inv)
		}()
	}
	wg.Wait()
	if d := time.Until(m.hold); d > 0 {
		time.Sleep(d)
	}
}

// send delivers one invalidation, retrying until the node's lease (as
// this node counts it) has run out.
func (t *tracker) send(rid uint64, inv *invalidation) {
	t.mu.Lock()
	deadline := inv.h.end
	t.mu.Unlock()
	t.invalsSent.Add(1)
	acked := false
	if rid == t.n.rid {
		t.n.near.apply(inv.all, inv.keys)
		acked = true
	} else {
		payload := encodeInvalidation(inv.all, inv.keys)
		for !acked && time.Now().Before(deadline) {
			ctx, cancel := context.WithDeadline(t.n.ctx, deadline)
			addr, ok := t.n.peerAddr(rid)
			if ok {
				st, _, err := t.n.peers.call(ctx, addr, rpcInvalidate, payload)
				acked = err == nil && st == rpcOK
			}
			cancel()
			if !acked {
				select {
				case <-time.After(min(20*time.Millisecond, time.Until(deadline))):
				case <-t.n.stop:
					return
				}
			}
		}
	}
	t.mu.Lock()
	inv.h.owing--
	if !acked {
		// The lease ran out: the node stopped serving from its cache,
		// and flushes before it serves again (a new epoch).
		t.leaseWaits.Add(1)
		if t.holders[rid] == inv.h {
			delete(t.holders, rid)
		}
	}
	t.mu.Unlock()
}

// endWrite: m's write was applied here, or will not be proposed.
func (t *tracker) endWrite(m *writeMark) {
	if m == nil {
		return
	}
	if m == uncountedMark {
		t.uncounted.Add(-1)
		return
	}
	t.mu.Lock()
	if m.all {
		t.inflightAll--
	}
	for _, k := range m.keys {
		if t.inflight[k]--; t.inflight[k] <= 0 {
			delete(t.inflight, k)
		}
	}
	t.mu.Unlock()
}

// revoke ends every lease before leadership is handed over: a transfer
// elects the next leader at once, without the election timeout that
// leases count on. It stops granting leases, sends every holder a flush and
// waits for each to acknowledge or for its lease to end. unrevoke undoes
// it if the transfer fails.
func (t *tracker) revoke() {
	t.mu.Lock()
	t.revoking = true
	now := time.Now()
	sends := map[uint64]*invalidation{}
	for rid, h := range t.holders {
		if now.Before(h.end) {
			h.owing++
			sends[rid] = &invalidation{h: h, all: true}
		}
	}
	clear(t.keys)
	t.mu.Unlock()
	t.invalidate(&writeMark{sends: sends})
}

func (t *tracker) unrevoke() {
	t.mu.Lock()
	t.revoking = false
	t.mu.Unlock()
}

// writeKeys calls key for every database 0 key tx may change, or all
// once if it may change keys it cannot name (scripts, flushes, commands
// it does not know).
func writeKeys(tx command.Tx, key func([]byte), all func()) {
	for i := range tx {
		c := &tx[i]
		switch c.Op {
		case command.OpFlushAll:
			all()
			return
		case command.OpEval:
			// A script may touch keys it did not declare, except the
			// node's own compare-and-delete.
			if c.DB == 0 && c.N == 1 && len(c.Args) >= 2 && bytes.Equal(c.Args[0], compareAndDeleteScript) {
				key(c.Args[1])
				continue
			}
			all()
			return
		case command.OpEvalSha:
			all()
			return
		case command.OpCopy:
			// The destination may be in another database than the source.
			if c.N == 0 && len(c.Args) > 0 {
				key(c.Args[0])
			}
			continue
		case command.OpMove:
			if c.DB == 0 || c.N == 0 {
				key(c.Key)
			}
			continue
		case command.OpSwapDB:
			// Every key of database 0 may change.
			if c.DB == 0 || c.N == 0 {
				all()
				return
			}
			continue
		}
		if c.DB != 0 {
			continue
		}
		switch c.Op {
		case command.OpFlushDB:
			all()
			return
		case command.OpMSet:
			for j := 0; j+1 < len(c.Args); j += 2 {
				key(c.Args[j])
			}
		case command.OpDel, command.OpDelExpired, command.OpEvict:
			for _, k := range c.Args {
				key(k)
			}
		case command.OpRename:
			key(c.Key)
			if len(c.Args) > 0 {
				key(c.Args[0])
			}
		case command.OpSet, command.OpGetEx, command.OpGetDel, command.OpExpire, command.OpPersist,
			command.OpAppend, command.OpIncrBy, command.OpHSet, command.OpHDel, command.OpHIncrBy,
			command.OpSAdd, command.OpSRem, command.OpMCStore, command.OpMCIncr, command.OpTouch,
			command.OpMCDelete, command.OpMCMetaGet, command.OpMCInvalidate, command.OpMCStoreStale,
			command.OpSetRange, command.OpIncrByFloat, command.OpSetBit, command.OpBitField, command.OpBitOp,
			command.OpHIncrByFloat, command.OpSPop, command.OpSUnionStore, command.OpSInterStore, command.OpSDiffStore,
			command.OpLPush, command.OpLPop, command.OpLSet, command.OpLInsert, command.OpLRem, command.OpLTrim,
			command.OpZAdd, command.OpZRem, command.OpZRemRange, command.OpZPop,
			command.OpZRangeStore, command.OpZUnionStore, command.OpZInterStore, command.OpZDiffStore,
			command.OpRestore, command.OpSortStore,
			command.OpXAdd, command.OpXTrim, command.OpXDel, command.OpXSetID:
			key(c.Key) // for the *STORE ops, the destination
		case command.OpSMove, command.OpLMove:
			key(c.Key)
			if len(c.Args) > 0 {
				key(c.Args[0]) // the destination
			}
		case command.OpScriptLoad, command.OpScriptFlush, command.OpPublish, command.OpWatchCheck,
			command.OpACLSetUser, command.OpACLDelUser:
			// No key changes.
		default:
			if c.Op.IsWrite() || !c.Op.Valid() {
				all()
				return
			}
		}
	}
}

// compareAndDeleteScript deletes KEYS[1] if its value is ARGV[1]; it
// touches no other key, so a write of it invalidates that key alone.
var compareAndDeleteScript = []byte(`if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`)

// CompareAndDelete deletes key (in database 0) if, and only if, its value
// is value, in one step; it reports whether it deleted it.
func (n *Node) CompareAndDelete(ctx context.Context, key string, value []byte) (bool, error) {
	res, err := n.Write(ctx, command.Tx{{Op: command.OpEval, N: 1, Args: [][]byte{compareAndDeleteScript, []byte(key), value}}})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return false, err
	}
	r := res.Results[0]
	if r.Kind == command.KindError {
		return false, r.Err
	}
	return r.Int == 1, nil
}

// Wire formats of the near-cache requests (rpc.go's rpcLease, rpcTrack,
// rpcInvalidate).

// encodeGrant: leader | term | epoch | lease in ns, 8 bytes each.
func encodeGrant(g leaseGrant) []byte {
	b := make([]byte, 32)
	binary.BigEndian.PutUint64(b[0:], g.leader)
	binary.BigEndian.PutUint64(b[8:], g.term)
	binary.BigEndian.PutUint64(b[16:], g.epoch)
	binary.BigEndian.PutUint64(b[24:], uint64(g.dur))
	return b
}

var errBadNearRequest = errors.New("malformed near-cache request")

func decodeGrant(b []byte) (leaseGrant, error) {
	if len(b) != 32 {
		return leaseGrant{}, errBadNearRequest
	}
	return leaseGrant{
		leader: binary.BigEndian.Uint64(b[0:]), term: binary.BigEndian.Uint64(b[8:]),
		epoch: binary.BigEndian.Uint64(b[16:]), dur: time.Duration(binary.BigEndian.Uint64(b[24:])),
	}, nil
}

// encodeInvalidation: all byte | (uvarint length | key)…
func encodeInvalidation(all bool, keys []string) []byte {
	b := []byte{0}
	if all {
		b[0] = 1
	}
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	return b
}

func decodeInvalidation(b []byte) (all bool, keys []string, err error) {
	if len(b) == 0 {
		return false, nil, errBadNearRequest
	}
	all, b = b[0] == 1, b[1:]
	for len(b) > 0 {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return false, nil, errBadNearRequest
		}
		keys = append(keys, string(b[n:n+int(l)]))
		b = b[n+int(l):]
	}
	return all, keys, nil
}

package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// The node's glue between its near-cache (nearcache.go), the leader's
// tracker (tracking.go) and the peer port.

// leaseFor is the lease length for an election timeout: half of it, so
// that a lease ends well before a new leader can be elected even if the
// nodes' clocks run at somewhat different rates (see DESIGN.md).
func leaseFor(electionTimeout time.Duration) time.Duration { return electionTimeout / 2 }

// NearGet is a linearizable GET of key in database 0 that is served from
// the near-cache when it holds the key (Config.NearCacheBytes), with no
// round trip. On a miss it asks the leader to track the key for this node,
// reads it as Read does and caches what it read. Without a near-cache it
// is Read. The value returned is the caller's.
func (n *Node) NearGet(ctx context.Context, key string) (val []byte, ok bool, err error) {
	c := n.near
	if c == nil {
		return n.getValue(ctx, key)
	}
	if val, ok, hit := c.get(key); hit {
		return val, ok, nil
	}
	gen := c.beginFill(key)
	var grant *leaseGrant
	if c.leaseRunning() {
		grant = n.askTrack(ctx, key)
	}
	start := time.Now()
	var until time.Time
	var rerr error
	err = n.linearizable(ctx, func() { val, ok, until, rerr = n.readValue(key, start) })
	if err == nil {
		err = rerr
	}
	if err != nil {
		grant = nil
	}
	c.endFill(key, gen, grant, val, ok, until)
	if err != nil {
		return nil, false, err
	}
	return val, ok, nil
}

// getValue is GET through the normal read path.
func (n *Node) getValue(ctx context.Context, key string) ([]byte, bool, error) {
	r, err := n.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte(key)})
	switch {
	case err != nil:
		return nil, false, err
	case r.Kind == command.KindError:
		return nil, false, r.Err
	case r.Kind == command.KindNil:
		return nil, false, nil
	}
	return r.Bulk, true, nil
}

// readValue reads key's value and expiry from this node's applied state,
// in one read. until is when the value stops being valid on this node's
// monotonic clock, counted from start (taken before the read, so early
// rather than late); zero when the key does not expire.
func (n *Node) readValue(key string, start time.Time) (val []byte, ok bool, until time.Time, err error) {
	n.fsm.read(func(ks *keyspace.Keyspace) {
		now := max(time.Now().UnixMilli(), ks.Stamp())
		e := ks.Get(0, key, now)
		if e == nil {
			return
		}
		if e.Type != keyspace.TypeString {
			err = command.ErrWrongType
			return
		}
		e.Touch(now)
		val, ok = append([]byte(nil), e.Str...), true
		if e.ExpireAt != 0 {
			until = start.Add(time.Duration(e.ExpireAt-now) * time.Millisecond)
		}
	})
	return val, ok, until, err
}

// askTrack asks the leader to track key for this node; nil means "do not
// cache" (or the leader could not be asked).
func (n *Node) askTrack(ctx context.Context, key string) *leaseGrant {
	lid, _ := n.group.Leader()
	if lid == n.rid {
		if g, ok := n.track.track(n.rid, key); ok {
			return &g
		}
		return nil
	}
	addr, ok := n.peerAddr(lid)
	if lid == 0 || !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ElectionTimeout)
	defer cancel()
	payload := binary.BigEndian.AppendUint64(nil, n.rid)
	st, body, err := n.peers.call(ctx, addr, rpcTrack, append(payload, key...))
	if err != nil || st != rpcOK {
		return nil
	}
	g, err := decodeGrant(body)
	if err != nil {
		return nil
	}
	return &g
}

// runLeaseKeeper renews this node's lease three times per lease. A node
// that cannot reach the leader lets it run out and stops serving from its
// cache.
func (n *Node) runLeaseKeeper() {
	defer n.wg.Done()
	t := time.NewTicker(n.track.dur / 3)
	defer t.Stop()
	for {
		n.renewLease()
		select {
		case <-t.C:
		case <-n.stop:
			return
		}
	}
}

func (n *Node) renewLease() {
	lid, _ := n.group.Leader()
	if lid == 0 {
		return
	}
	// The lease runs from before the request leaves: the leader's
	// confirmation comes later, so the lease ends here first.
	sent := time.Now()
	ctx, cancel := context.WithTimeout(n.ctx, n.track.dur)
	defer cancel()
	var g leaseGrant
	var ok bool
	if lid == n.rid {
		g, ok = n.track.grant(ctx, n.rid)
	} else {
		addr, known := n.peerAddr(lid)
		if !known {
			return
		}
		st, body, err := n.peers.call(ctx, addr, rpcLease, binary.BigEndian.AppendUint64(nil, n.rid))
		if err != nil {
			return // unreachable: the lease runs out by itself
		}
		if st == rpcOK {
			g, err = decodeGrant(body)
			ok = err == nil
		}
	}
	if !ok {
		// Refused (not the leader, or this node owes an acknowledgement):
		// stop serving at once rather than at the lease's end.
		n.near.dropLease()
		return
	}
	n.near.setLease(g, sent, n.track.dur)
}

// confirmLeadership returns nil once a quorum has confirmed, after the
// call, that this node leads (a ReadIndex round).
func (n *Node) confirmLeadership(ctx context.Context) error {
	done := make(chan error, 1)
	n.group.ReadIndex(func(_ uint64, err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stop:
		return ErrShutdown
	}
}

// handleNear answers the near-cache requests of peers.
func (n *Node) handleNear(ctx context.Context, typ byte, payload []byte) (byte, []byte) {
	bad := func() (byte, []byte) {
		return rpcError, command.AppendTxResult(nil, command.TxResult{Err: fmt.Errorf("%w", errBadNearRequest)})
	}
	switch typ {
	case rpcLease:
		if len(payload) != 8 {
			return bad()
		}
		ctx, cancel := context.WithTimeout(ctx, n.track.dur)
		defer cancel()
		if g, ok := n.track.grant(ctx, binary.BigEndian.Uint64(payload)); ok {
			return rpcOK, encodeGrant(g)
		}
		return rpcRetry, nil
	case rpcTrack:
		if len(payload) < 8 {
			return bad()
		}
		if g, ok := n.track.track(binary.BigEndian.Uint64(payload), string(payload[8:])); ok {
			return rpcOK, encodeGrant(g)
		}
		return rpcRetry, nil
	case rpcInvalidate:
		all, keys, err := decodeInvalidation(payload)
		if err != nil {
			return bad()
		}
		n.near.apply(all, keys)
		return rpcOK, nil
	}
	return bad()
}

// dropWrite removes what tx writes from this node's own cache before tx is
// sent: the leader's invalidation would do it too, but this node need not
// wait for it to stop serving a value it is itself overwriting.
func (c *nearCache) dropWrite(tx command.Tx) {
	if c == nil {
		return
	}
	var keys []string
	all := false
	writeKeys(tx, func(k []byte) { keys = append(keys, string(k)) }, func() { all = true })
	switch {
	case all:
		c.flush()
	case len(keys) > 0:
		c.invalidate(keys)
	}
}

// NearStats counts the near-cache's work on this node.
type NearStats struct {
	Entries                   int
	Bytes                     int64
	Hits, Misses, Uncacheable uint64 // reads; Uncacheable: misses whose value could not be cached
	InvalidationsReceived     uint64
	Flushes                   uint64
	// On this node as leader:
	InvalidationsSent, LeaseWaits uint64 // LeaseWaits: a node did not answer and its lease was waited out
}

// NearStats reports the near-cache's counters (zero without one).
func (n *Node) NearStats() NearStats {
	s := NearStats{InvalidationsSent: n.track.invalsSent.Load(), LeaseWaits: n.track.leaseWaits.Load()}
	if c := n.near; c != nil {
		s.Entries, s.Bytes = c.size()
		s.Hits, s.Misses, s.Uncacheable = c.hits.Load(), c.misses.Load(), c.uncacheable.Load()
		s.InvalidationsReceived, s.Flushes = c.invalsRecv.Load(), c.flushes.Load()
	}
	return s
}

package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Any node serves any command: the leader executes it, a follower forwards
// it to the leader over the peer port and relays the reply. While there is
// no leader (an election, a leadership transfer) requests wait, up to
// FailoverWait, and are retried against the new leader, but only when the
// old one certainly did nothing with them: a write whose outcome is unknown
// (the leader died after receiving it) is reported as failed, never
// silently sent twice.

// errRetry means the request was not executed and may be sent to the
// leader again.
var errRetry = errors.New("not executed: no leader to take it")

// route runs attempt against the current leader until it is done or
// FailoverWait passes. attempt gets "" when this node leads, else the
// leader's peer address, and reports whether it should be retried.
func (n *Node) route(ctx context.Context, attempt func(leader string, changed <-chan struct{}) (retry bool, err error)) error {
	if err := n.Healthy(); err != nil {
		return err
	}
	deadline := time.Now().Add(n.cfg.FailoverWait)
	backoff := time.Millisecond
	for {
		// The change channel is taken before the leader is read, so that
		// a change in between is not missed.
		changed := n.leaderChange()
		if leader, ok := n.currentLeader(); ok {
			retry, err := attempt(leader, changed)
			if !retry {
				return err
			}
		}
		if time.Now().After(deadline) {
			return ErrNoLeader
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-n.stop:
			t.Stop()
			return ErrShutdown
		}
		backoff = min(backoff*2, 20*time.Millisecond)
	}
}

// currentLeader returns "" when this node leads and takes requests, else
// the leader's peer address; ok is false while no leader is known.
func (n *Node) currentLeader() (addr string, ok bool) {
	if n.group.IsLeader() {
		return "", !n.draining.Load()
	}
	id, _ := n.group.Leader()
	if id == 0 || id == n.rid {
		return "", false
	}
	return n.peerAddr(id)
}

// leads reports whether this node leads and takes requests.
func (n *Node) leads() bool {
	return n.group.IsLeader() && !n.draining.Load()
}

// Write proposes a transaction and returns its result once the entry that
// carries it is committed and applied, whichever node leads.
func (n *Node) Write(ctx context.Context, tx command.Tx) (command.TxResult, error) {
	n.near.dropWrite(tx)
	var res command.TxResult
	err := n.route(ctx, func(leader string, changed <-chan struct{}) (bool, error) {
		var err error
		if leader == "" {
			res, err = n.propose(ctx, tx)
		} else {
			res, err = n.forwardWrite(ctx, leader, changed, tx)
		}
		return errors.Is(err, errRetry), err
	})
	return res, err
}

// WriteAsync is Write for callers that must not wait (the event loops):
// done gets the result, on another goroutine or before WriteAsync returns.
// On the leader the transaction goes straight to the proposal queue and
// done runs on the apply thread; a follower forwards it over its open
// connection to the leader and done runs on that connection's reader.
// Retries (no leader yet, a leader that did not take it) wait on timers.
// Only a follower that has no connection to the leader yet, or whose
// queues are full, takes the slow path on a goroutine of its own, which
// dials and waits as Write does.
func (n *Node) WriteAsync(tx command.Tx, done func(command.TxResult, error)) {
	if err := n.Healthy(); err != nil {
		done(command.TxResult{}, err)
		return
	}
	n.near.dropWrite(tx)
	n.routeAsync(tx, time.Now().Add(n.cfg.FailoverWait), time.Millisecond, done)
}

// routeAsync is route for WriteAsync: one attempt now, the next on a timer.
func (n *Node) routeAsync(tx command.Tx, deadline time.Time, backoff time.Duration, done func(command.TxResult, error)) {
	retry := func(res command.TxResult, err error) {
		if !errors.Is(err, errRetry) {
			done(res, err)
			return
		}
		if time.Now().After(deadline) {
			done(command.TxResult{}, ErrNoLeader)
			return
		}
		time.AfterFunc(backoff, func() {
			select {
			case <-n.stop:
				done(command.TxResult{}, ErrShutdown)
			default:
				n.routeAsync(tx, deadline, min(backoff*2, 20*time.Millisecond), done)
			}
		})
	}
	// The epoch is read before the leader, so that a change in between
	// is not missed (see forwardAsync).
	epoch := n.leaderEpoch()
	leader, ok := n.currentLeader()
	switch {
	case !ok:
		retry(command.TxResult{}, errRetry)
	case leader == "":
		if !n.proposeAsync(tx, retry) {
			go n.writeSlow(tx, done)
		}
	default:
		if !n.forwardAsync(leader, epoch, tx, retry) {
			go n.writeSlow(tx, done)
		}
	}
}

func (n *Node) writeSlow(tx command.Tx, done func(command.TxResult, error)) {
	done(n.Write(context.Background(), tx))
}

// forwardAsync is forwardWrite for WriteAsync: it sends the write to the
// leader at addr over the open connection and calls cb with the outcome,
// errRetry if the leader certainly did nothing with it. As forwardWrite
// does, it stops waiting an election timeout after leadership moves (epoch
// is the leadership seen when addr was chosen) and reports the outcome
// unknown. It returns false, doing nothing, when there is no open
// connection to addr or its queue is full.
func (n *Node) forwardAsync(addr string, epoch uint64, tx command.Tx, cb func(command.TxResult, error)) bool {
	cl := n.peers.connected(addr)
	if cl == nil {
		return false
	}
	var answered atomic.Bool
	var watch atomic.Uint64
	var id uint64
	finish := func(res command.TxResult, err error) {
		if answered.CompareAndSwap(false, true) {
			n.unwatch(watch.Load())
			cb(res, err)
		}
	}
	id, ok := cl.callAsync(rpcWrite, command.EncodeBatch(nil, command.Header{}, []command.Tx{tx}), func(rep rpcReply, ok bool) {
		if !ok {
			finish(command.TxResult{}, fmt.Errorf("%w: %v (the write may or may not have been applied)", ErrNoLeader, errConnLost))
			return
		}
		finish(decodeForwarded(rep.status, rep.payload))
	})
	if !ok {
		return false
	}
	watch.Store(n.watchLeader(epoch, func() {
		time.AfterFunc(n.cfg.ElectionTimeout, func() {
			if !answered.Load() {
				cl.forget(id)
				finish(command.TxResult{}, fmt.Errorf("%w: leadership moved while the leader held the write (it may or may not have been applied)", ErrNoLeader))
			}
		})
	}))
	if answered.Load() {
		n.unwatch(watch.Load()) // answered before the watch was registered
	}
	return true
}

// decodeForwarded turns the leader's reply to a forwarded write into its
// result.
func decodeForwarded(st byte, body []byte) (command.TxResult, error) {
	if st == rpcRetry {
		return command.TxResult{}, errRetry
	}
	res, err := command.DecodeTxResult(body)
	if err != nil {
		return command.TxResult{}, err
	}
	if st != rpcOK {
		return command.TxResult{}, res.Err
	}
	return res, nil
}

// forwardWrite sends a write to the leader at addr. If leadership changes
// (changed is closed) while it waits and the old leader does not answer within an election
// timeout (it was paused or cut off, and another was elected), it stops
// waiting: the write was sent, so its outcome is unknown and it is
// reported as failed, never sent again. An old leader that is alive
// answers in time: "retry" if the write never reached its log.
func (n *Node) forwardWrite(ctx context.Context, leader string, changed <-chan struct{}, tx command.Tx) (command.TxResult, error) {
	st, body, err := n.peers.callAbortable(ctx, changed, n.cfg.ElectionTimeout, leader, rpcWrite, command.EncodeBatch(nil, command.Header{}, []command.Tx{tx}))
	switch {
	case errors.Is(err, errAborted):
		return command.TxResult{}, fmt.Errorf("%w: leadership moved while the leader held the write (it may or may not have been applied)", ErrNoLeader)
	case errors.Is(err, errNotSent):
		return command.TxResult{}, errRetry
	case err != nil:
		if ctx.Err() != nil {
			return command.TxResult{}, err
		}
		return command.TxResult{}, fmt.Errorf("%w: %v (the write may or may not have been applied)", ErrNoLeader, err)
	}
	return decodeForwarded(st, body)
}

// Read executes a read-only command linearizably, on this node's own
// state after a read barrier (see readBarrier): any node serves reads
// itself, without forwarding them. While no leader is known it waits, up
// to FailoverWait.
func (n *Node) Read(ctx context.Context, c *command.Cmd) (command.Result, error) {
	var r command.Result
	err := n.linearizable(ctx, func() { r = n.readState(c) })
	return r, err
}

// linearizable runs read, which reads this node's state, once a read
// barrier makes that state hold every write acknowledged before the call.
func (n *Node) linearizable(ctx context.Context, read func()) error {
	if err := n.Healthy(); err != nil {
		return err
	}
	if n.cfg.UnsafeStaleReads && !n.group.IsLeader() {
		read()
		return nil
	}
	deadline := time.Now().Add(n.cfg.FailoverWait)
	for {
		if err := n.waitReadable(ctx, deadline); err != nil {
			return err
		}
		err := n.readBarrier(ctx)
		if err == nil {
			read()
			return nil
		}
		if !readRetryable(err) || ctx.Err() != nil {
			return err
		}
		if time.Now().After(deadline) {
			return ErrNoLeader
		}
	}
}

// ReadAsync is Read for callers that must not wait (the event loops):
// done gets the result, on another goroutine or before ReadAsync returns.
// A leader that is the only voter answers at once; otherwise the read
// waits for a ReadIndex round and its apply through callbacks (done then
// runs on the group's apply thread), bounded by FailoverWait. Only while
// no leader is known, or when a round fails and must be retried, does it
// take the slow path on a goroutine of its own.
func (n *Node) ReadAsync(c *command.Cmd, done func(command.Result, error)) {
	if err := n.Healthy(); err != nil {
		done(command.Result{}, err)
		return
	}
	if r, ok := n.ReadNow(c); ok {
		done(r, nil)
		return
	}
	if id, _ := n.group.Leader(); id == 0 {
		go n.readSlow(c, done)
		return
	}
	var once sync.Once
	finish := func(r command.Result, err error) bool {
		ran := false
		once.Do(func() { ran = true; done(r, err) })
		return ran
	}
	timer := time.AfterFunc(n.cfg.FailoverWait, func() { finish(command.Result{}, ErrNoLeader) })
	retry := func(err error) {
		timer.Stop()
		if readRetryable(err) {
			once.Do(func() { go n.readSlow(c, done) })
			return
		}
		finish(command.Result{}, err)
	}
	n.group.ReadIndex(func(idx uint64, err error) {
		if err != nil {
			retry(err)
			return
		}
		n.group.WaitApplied(idx, func(err error) {
			if err != nil {
				retry(err)
				return
			}
			timer.Stop()
			once.Do(func() { done(n.readState(c), nil) })
		})
	})
}

// ReadNow answers a read if it can without waiting for anything: on a
// leader that is the only voter (see readBarrier). Otherwise it reports
// false and the caller uses ReadAsync. It lets a front end answer the
// common read with no callback at all.
func (n *Node) ReadNow(c *command.Cmd) (command.Result, bool) {
	if n.Healthy() != nil {
		return command.Result{}, false
	}
	if (n.cfg.UnsafeStaleReads && !n.group.IsLeader()) || (n.group.LeaderReady() && n.soleVoter()) {
		return n.readState(c), true
	}
	return command.Result{}, false
}

func (n *Node) readSlow(c *command.Cmd, done func(command.Result, error)) {
	done(n.Read(context.Background(), c))
}

// readState executes c on this node's applied state.
func (n *Node) readState(c *command.Cmd) command.Result {
	var r command.Result
	n.fsm.read(func(ks *keyspace.Keyspace) {
		// Never read at a time before the log's: a key the log has seen
		// expire stays expired even if this clock lags the old leader's.
		r = n.fsm.exec.Read(ks, max(time.Now().UnixMilli(), ks.Stamp()), c)
	})
	return r
}

// handleRPC answers a peer's call.
func (n *Node) handleRPC(ctx context.Context, typ byte, payload []byte) (byte, []byte) {
	switch typ {
	case rpcWrite:
		_, txs, err := command.DecodeBatch(payload)
		if err == nil && len(txs) != 1 {
			err = fmt.Errorf("%w: want one transaction", command.ErrBadEncoding)
		}
		if err != nil {
			return rpcError, command.AppendTxResult(nil, command.TxResult{Err: err})
		}
		n.lastForward.Store(time.Now().UnixNano())
		if n.Healthy() != nil {
			return rpcRetry, nil
		}
		if !n.enter() {
			return rpcRetry, nil
		}
		defer n.leave()
		if !n.leads() {
			return rpcRetry, nil
		}
		res, err := n.propose(ctx, txs[0])
		if errors.Is(err, errRetry) {
			return rpcRetry, nil
		}
		if err != nil {
			return rpcError, command.AppendTxResult(nil, command.TxResult{Err: err})
		}
		return rpcOK, command.AppendTxResult(nil, res)
	case rpcControl:
		return n.handleControl(payload)
	case rpcLease, rpcTrack, rpcInvalidate:
		return n.handleNear(ctx, typ, payload)
	}
	return rpcError, command.AppendTxResult(nil, command.TxResult{Err: fmt.Errorf("unknown peer request %q", typ)})
}

package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hatcheck/hatcheck/internal/cluster/group"
	"github.com/hatcheck/hatcheck/internal/command"
)

// A proposal is one client transaction waiting for its log entry. It is
// answered through cb if set (an event loop's request: nothing waits),
// else by closing done.
type proposal struct {
	tx   command.Tx
	res  command.TxResult
	err  error
	done chan struct{}
	cb   func(command.TxResult, error)
	// The write's near-cache mark (tracking.go), ended when it is
	// answered: applied, or never to be.
	mark    *writeMark
	tracker *tracker
}

// finish answers the proposal.
func (p *proposal) finish() {
	if p.mark != nil {
		p.tracker.endWrite(p.mark)
		p.mark = nil
	}
	if p.cb != nil {
		p.cb(p.res, p.err)
		return
	}
	close(p.done)
}

// Batching limits: one log entry carries at most this many transactions or
// bytes. While one entry is being fsync'd the next fills up, so under load
// many client writes share one fsync (group commit).
//
// maxInflightEntries bounds the entries handed to Raft and not yet applied.
// Proposing does not block, so without the bound every proposal would
// become its own entry; with it, proposals that arrive while the log is
// busy wait in the queue and leave together in the next entry.
//
// On the etcd raft core (2026-11-27) 1 and 4 in flight measured the same
// within the noise (single node and three nodes, writes only: both
// CPU-bound), so 1 stays. On the hashicorp/raft core, one entry in flight
// measured best (hatcheck bench, 50 connections, server on one CPU;
// same-run comparisons): writes only 12.3k → 16.4k ops/s (24
// writes per entry instead of 8), the 1:4 mix 26–37k → 41–42k, three nodes
// 7.9–8.9k → 12.2–12.6k, pipeline 16 125–151k → 154–161k. Each entry costs
// CPU on its own (an fsync is ~75 µs of CPU on a virtual disk, and a round
// of Raft messages), and with several in flight a write also waited behind
// every entry ahead of it; a second entry's fsync overlapping the first
// one's apply did not make up for either.
const (
	maxBatchTxs        = 512
	maxBatchBytes      = 1 << 20
	maxInflightEntries = 1
)

// propose hands a transaction to this node's log as leader and waits for
// its result. errRetry means it never entered the log.
func (n *Node) propose(ctx context.Context, tx command.Tx) (command.TxResult, error) {
	if !n.opsAdmitted(tx) && !n.admitOps(ctx, tx) {
		return command.TxResult{}, ErrNotUpgraded
	}
	if !n.enter() {
		return command.TxResult{}, errRetry
	}
	defer n.leave()
	// Every cached copy of what tx writes goes before tx is proposed
	// (see DESIGN.md, "Near-cache").
	m := n.track.beginWrite(tx, n.near != nil)
	if !m.ready() {
		n.track.invalidate(m)
	}
	p := &proposal{tx: tx, done: make(chan struct{}), mark: m, tracker: n.track}
	n.closeMu.RLock()
	if n.closed {
		n.closeMu.RUnlock()
		n.track.endWrite(m)
		return command.TxResult{}, ErrShutdown
	}
	select {
	case n.proposals <- p:
	case <-ctx.Done():
		n.closeMu.RUnlock()
		n.track.endWrite(m)
		return command.TxResult{}, ctx.Err()
	}
	n.closeMu.RUnlock()
	// Once proposed, the outcome is decided by the log; wait for it even if
	// the client has gone, so that the result is never misreported.
	<-p.done
	return p.res, p.err
}

// proposeAsync hands a transaction to this node's log as leader without
// waiting: cb gets the result from the apply thread. It reports false,
// and does nothing, when the proposal cannot be queued at once (not
// serving, shutting down, queue full); the caller then takes the slow
// path.
func (n *Node) proposeAsync(tx command.Tx, cb func(command.TxResult, error)) bool {
	if !n.opsAdmitted(tx) {
		// An op not every member is known to apply: ask them, off the
		// caller's thread, then write as if anew.
		go func() {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.FailoverWait)
			defer cancel()
			if !n.admitOps(ctx, tx) {
				cb(command.TxResult{}, ErrNotUpgraded)
				return
			}
			n.WriteAsync(tx, cb)
		}()
		return true
	}
	if !n.enter() {
		return false
	}
	m := n.track.beginWrite(tx, n.near != nil)
	p := &proposal{tx: tx, mark: m, tracker: n.track, cb: func(res command.TxResult, err error) {
		n.leave()
		cb(res, err)
	}}
	if !m.ready() {
		// Invalidations to wait for: on a goroutine of its own, which
		// then queues the proposal as propose does.
		go func() {
			n.track.invalidate(m)
			n.closeMu.RLock()
			defer n.closeMu.RUnlock()
			if n.closed {
				p.err = ErrShutdown
				p.finish()
				return
			}
			select {
			case n.proposals <- p:
			case <-n.stop:
				p.err = ErrShutdown
				p.finish()
			}
		}()
		return true
	}
	n.closeMu.RLock()
	defer n.closeMu.RUnlock()
	if n.closed {
		n.leave()
		n.track.endWrite(m)
		return false
	}
	select {
	case n.proposals <- p:
		return true
	default:
		n.leave()
		n.track.endWrite(m)
		return false
	}
}

func (n *Node) runProposer() {
	defer n.wg.Done()
	var last int64
	lastBatch := 0 // transactions in the entry before
	for {
		var first *proposal
		select {
		case first = <-n.proposals:
		case <-n.stop:
			n.failQueued()
			return
		}
		// Wait for room in flight; proposals keep queuing meanwhile.
		select {
		case n.slots <- struct{}{}:
		case <-n.stop:
			first.err = ErrShutdown
			first.finish()
			n.failQueued()
			return
		}
		if n.cfg.CommitWait > 0 && lastBatch > 1 && len(n.proposals) == 0 {
			// Several clients write: hold the entry open for theirs.
			n.commitWaits.Add(1)
			time.Sleep(n.cfg.CommitWait)
		}
		props := []*proposal{first}
		size := txSize(first.tx)
	fill:
		for len(props) < maxBatchTxs && size < maxBatchBytes {
			select {
			case p := <-n.proposals:
				props = append(props, p)
				size += txSize(p.tx)
			default:
				break fill
			}
		}
		now := time.Now().UnixMilli()
		if now < last {
			now = last
		}
		last = now
		lastBatch = len(props)
		maxmem, policy := n.MaxMemory()
		h := command.Header{Now: now, MaxMemory: maxmem, Policy: policy}
		txs := make([]command.Tx, 0, len(props)+1)
		skip := 0
		var evMark *writeMark
		if ev := n.evictions(maxmem, policy); ev != nil {
			// Rare (memory is over the limit under an eviction policy):
			// the proposer itself waits for the victims' invalidations.
			if evMark = n.track.beginWrite(ev, false); !evMark.ready() {
				n.track.invalidate(evMark)
			}
			txs = append(txs, ev)
			skip = 1
		}
		for _, p := range props {
			txs = append(txs, p.tx)
		}
		data := command.EncodeBatch(make([]byte, group.ProposalHeader, group.ProposalHeader+size+64), h, txs)
		n.group.Propose(data, func(r any, err error) {
			n.answer(props, skip, r, err)
			n.track.endWrite(evMark)
		})
	}
}

// answer hands every transaction of an entry its result. It runs on the
// group's apply thread (or its loop, for an entry that never committed
// here) and does not block.
func (n *Node) answer(props []*proposal, skip int, r any, err error) {
	<-n.slots
	var results []command.TxResult
	switch {
	case errors.Is(err, group.ErrDropped):
		// Refused before entering the log: safe to send to the new leader.
		err = fmt.Errorf("%w: %v", errRetry, err)
	case errors.Is(err, group.ErrUnknownOutcome):
		err = fmt.Errorf("%w: %v", ErrNoLeader, err)
	case errors.Is(err, group.ErrStopped):
		err = ErrShutdown
	case err == nil:
		switch r := r.(type) {
		case []command.TxResult:
			results = r
		case error:
			err = r
		default:
			err = fmt.Errorf("unexpected apply result %T", r)
		}
	}
	if err == nil && len(results) != len(props)+skip {
		err = fmt.Errorf("apply returned %d results for %d transactions", len(results), len(props)+skip)
	}
	if err != nil && !errors.Is(err, errRetry) && !errors.Is(err, ErrShutdown) {
		n.log.Warn("log entry failed", "err", err, "transactions", len(props))
	}
	if skip > 0 && err == nil && len(results[0].Results) > 0 {
		n.evicted.Add(uint64(sumInts(results[0].Results)))
	}
	for i, p := range props {
		if err != nil {
			p.err = err
		} else {
			p.res = results[i+skip]
		}
		p.finish()
	}
}

// failQueued answers proposals still queued at shutdown.
func (n *Node) failQueued() {
	for {
		select {
		case p := <-n.proposals:
			p.err = ErrShutdown
			p.finish()
		default:
			return
		}
	}
}

func sumInts(rs []command.Result) int64 {
	var s int64
	for _, r := range rs {
		s += r.Int
	}
	return s
}

func txSize(tx command.Tx) int {
	n := 0
	for i := range tx {
		n += 16 + len(tx[i].Key)
		for _, a := range tx[i].Args {
			n += 4 + len(a)
		}
	}
	return n
}

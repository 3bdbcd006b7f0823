package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

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
func (n *Node) route(ctx context.Context, attempt func(leader string) (retry bool, err error)) error {
	deadline := time.Now().Add(n.cfg.FailoverWait)
	backoff := time.Millisecond
	for {
		if leader, ok := n.currentLeader(); ok {
			retry, err := attempt(leader)
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
	if n.raft.State() == raft.Leader {
		return "", !n.draining.Load()
	}
	a, id := n.raft.LeaderWithID()
	if a == "" || string(id) == n.id {
		return "", false
	}
	return string(a), true
}

// leads reports whether this node leads and takes requests.
func (n *Node) leads() bool {
	return n.raft.State() == raft.Leader && !n.draining.Load()
}

// Write proposes a transaction and returns its result once the entry that
// carries it is committed and applied, whichever node leads.
func (n *Node) Write(ctx context.Context, tx command.Tx) (command.TxResult, error) {
	var res command.TxResult
	err := n.route(ctx, func(leader string) (bool, error) {
		var err error
		if leader == "" {
			res, err = n.propose(ctx, tx)
		} else {
			res, err = n.forwardWrite(ctx, leader, tx)
		}
		return errors.Is(err, errRetry), err
	})
	return res, err
}

func (n *Node) forwardWrite(ctx context.Context, leader string, tx command.Tx) (command.TxResult, error) {
	st, body, err := n.peers.call(ctx, leader, rpcWrite, command.EncodeBatch(nil, command.Header{}, []command.Tx{tx}))
	switch {
	case errors.Is(err, errNotSent):
		return command.TxResult{}, errRetry
	case err != nil:
		if ctx.Err() != nil {
			return command.TxResult{}, err
		}
		return command.TxResult{}, fmt.Errorf("%w: %v (the write may or may not have been applied)", ErrNoLeader, err)
	case st == rpcRetry:
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

// Read executes a read-only command linearizably: after a read barrier, on
// the leader's applied state. A follower forwards it to the leader.
func (n *Node) Read(ctx context.Context, c *command.Cmd) (command.Result, error) {
	if n.cfg.UnsafeStaleReads && n.raft.State() != raft.Leader {
		return n.readState(c), nil
	}
	var r command.Result
	err := n.route(ctx, func(leader string) (bool, error) {
		var err error
		if leader == "" {
			r, err = n.readLocal(ctx, c)
		} else {
			r, err = n.forwardRead(ctx, leader, c)
		}
		// Reads change nothing, so any failure to reach a leader is retried.
		retry := errors.Is(err, errRetry) || errors.Is(err, ErrNoLeader) ||
			errors.Is(err, errNotSent) || errors.Is(err, errConnLost)
		return retry && ctx.Err() == nil, err
	})
	return r, err
}

func (n *Node) readLocal(ctx context.Context, c *command.Cmd) (command.Result, error) {
	if err := n.readBarrier(ctx); err != nil {
		return command.Result{}, err
	}
	return n.readState(c), nil
}

// readState executes c on this node's applied state.
func (n *Node) readState(c *command.Cmd) command.Result {
	var r command.Result
	n.fsm.read(func(ks *keyspace.Keyspace) {
		// Never read at a time before the log's: a key the log has seen
		// expire stays expired even if this clock lags the old leader's.
		r = command.Read(ks, max(time.Now().UnixMilli(), ks.Stamp()), c)
	})
	return r
}

func (n *Node) forwardRead(ctx context.Context, leader string, c *command.Cmd) (command.Result, error) {
	// A read changes nothing, so if leadership moves while it waits (the
	// old leader paused or cut off) it is asked of the new leader instead.
	st, body, err := n.peers.callAbortable(ctx, n.leaderChange(), leader, rpcRead, command.EncodeBatch(nil, command.Header{}, []command.Tx{{*c}}))
	if errors.Is(err, errAborted) {
		return command.Result{}, errRetry
	}
	if err != nil {
		return command.Result{}, err
	}
	switch st {
	case rpcOK:
		return command.DecodeResult(body)
	case rpcRetry:
		return command.Result{}, errRetry
	}
	res, err := command.DecodeTxResult(body)
	if err != nil {
		return command.Result{}, err
	}
	return command.Result{}, res.Err
}

// handleRPC answers a peer's call.
func (n *Node) handleRPC(ctx context.Context, typ byte, payload []byte) (byte, []byte) {
	switch typ {
	case rpcWrite, rpcRead:
		_, txs, err := command.DecodeBatch(payload)
		if err == nil && (len(txs) != 1 || (typ == rpcRead && len(txs[0]) != 1)) {
			err = fmt.Errorf("%w: want one transaction", command.ErrBadEncoding)
		}
		if err != nil {
			return rpcError, command.AppendTxResult(nil, command.TxResult{Err: err})
		}
		n.lastForward.Store(time.Now().UnixNano())
		if !n.enter() {
			return rpcRetry, nil
		}
		defer n.leave()
		if !n.leads() {
			return rpcRetry, nil
		}
		if typ == rpcRead {
			r, err := n.readLocal(ctx, &txs[0][0])
			if errors.Is(err, ErrNoLeader) || errors.Is(err, errRetry) {
				return rpcRetry, nil
			}
			if err != nil {
				return rpcError, command.AppendTxResult(nil, command.TxResult{Err: err})
			}
			return rpcOK, command.AppendResult(nil, r)
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
	}
	return rpcError, command.AppendTxResult(nil, command.TxResult{Err: fmt.Errorf("unknown peer request %q", typ)})
}

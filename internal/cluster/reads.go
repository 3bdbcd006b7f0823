package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/hatcheck/hatcheck/internal/cluster/group"
)

// readBarrier makes a read linearizable: when it returns nil, this node's
// state holds every write acknowledged before it was called.
//
// A leader that is the only voter needs no round trip: nobody else can be
// elected, and it answers a write only after applying it, so once it has
// applied an entry of its own term (and with it everything earlier leaders
// committed) its state is current. Any other node asks for a ReadIndex —
// the group batches every read waiting at that moment into one round, and
// a follower's round goes to the leader — then waits until it has applied
// that index, and serves the read itself.
func (n *Node) readBarrier(ctx context.Context) error {
	if n.group.LeaderReady() && n.soleVoter() {
		return nil
	}
	done := make(chan error, 1)
	n.group.ReadIndex(func(idx uint64, err error) {
		if err != nil {
			done <- err
			return
		}
		n.group.WaitApplied(idx, func(err error) { done <- err })
	})
	// A node cut off after it got its index, or one whose log stopped
	// (see Healthy), would wait for its apply for ever.
	t := time.NewTimer(n.cfg.FailoverWait)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return ErrNoLeader
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stop:
		return ErrShutdown
	}
}

// soleVoter reports whether this node is the only voter of the
// configuration applied so far. A configuration that adds a voter is
// committed by this node alone and applied here before any other node can
// count on it, so a stale "true" cannot outlive this node's leadership.
func (n *Node) soleVoter() bool {
	v := n.group.Voters()
	return len(v) == 1 && v[0] == n.rid
}

// readRetryable reports whether a failed read barrier may simply be tried
// again: reads change nothing.
func readRetryable(err error) bool {
	return errors.Is(err, group.ErrReadAborted) || errors.Is(err, ErrNoLeader)
}

// waitReadable waits until a read barrier is worth trying: a leader is
// known (it may be this node). It fails with ErrNoLeader after
// FailoverWait.
func (n *Node) waitReadable(ctx context.Context, deadline time.Time) error {
	backoff := time.Millisecond
	for {
		if id, _ := n.group.Leader(); id != 0 {
			return nil
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

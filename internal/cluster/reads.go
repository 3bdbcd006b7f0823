package cluster

import (
	"context"

	"github.com/hashicorp/raft"
)

// readBarrier makes a read linearizable, ReadIndex style: note the commit
// index, confirm with a quorum that this node still leads (one VerifyLeader
// round shared by every read waiting at that moment), then wait until the
// FSM has applied up to the noted index.
func (n *Node) readBarrier(ctx context.Context) error {
	if err := n.waitReady(ctx); err != nil {
		return err
	}
	idx := n.raft.CommitIndex()
	if n.soleVoter() {
		// No other node can be elected while this one is the only voter,
		// so there is no leadership to confirm. (VerifyLeader runs on
		// raft's leader loop, behind log writes and their fsync.)
		return n.fsm.waitUntil(ctx, func() bool { return n.appliedThrough(idx) })
	}
	ch := make(chan error, 1)
	select {
	case n.verifyReqs <- ch:
	case <-n.stop:
		return ErrShutdown
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-ch:
		if err != nil {
			return ErrNoLeader
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	return n.fsm.waitUntil(ctx, func() bool { return n.appliedThrough(idx) })
}

// soleVoter reports whether this node is the only voter of its
// configuration. Reading the configuration allocates a copy of it, so the
// answer is cached until forgetVoters: a leader's configuration changes only
// through its own membership calls (applyControl), which forget it before
// and after, and every leadership change forgets it too. The cache holds a
// generation (bits 2–63), a known bit (1) and the answer (bit 0); an answer
// computed while the generation moved on is used once and not stored.
func (n *Node) soleVoter() bool {
	c := n.sole.Load()
	if c&2 != 0 {
		return c&1 != 0
	}
	sole := n.readSoleVoter()
	v := c | 2
	if sole {
		v |= 1
	}
	n.sole.CompareAndSwap(c, v)
	return sole
}

// forgetVoters drops the cached soleVoter answer.
func (n *Node) forgetVoters() {
	for {
		c := n.sole.Load()
		if n.sole.CompareAndSwap(c, c&^3+4) {
			return
		}
	}
}

func (n *Node) readSoleVoter() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	voters := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			if string(s.ID) != n.id {
				return false
			}
			voters++
		}
	}
	return voters == 1
}

// appliedThrough reports whether every command entry up to idx has been
// applied on this leader. Raft hands only command entries to the FSM, so
// the FSM's own index stops at the last command and may stay below a later
// no-op or barrier entry. After leaderReady, every earlier term's command is
// applied, and the only commands not yet applied are this node's own
// in-flight proposals: with none pending, everything is applied.
func (n *Node) appliedThrough(idx uint64) bool {
	return n.fsm.applied.Load() >= idx || n.pending.Load() == 0
}

// waitReady waits until a new leader has applied a barrier of its own term,
// so that its commit index covers every write acknowledged by earlier
// leaders. It returns errRetry at once if this node does not lead.
func (n *Node) waitReady(ctx context.Context) error {
	err := n.waitFor(ctx, func() bool { return n.leaderReady.Load() || !n.leads() })
	if err == nil && !n.leaderReady.Load() {
		return errRetry
	}
	return err
}

// runVerifier answers read barriers in rounds: every request that arrived
// before a round starts shares that round's VerifyLeader.
func (n *Node) runVerifier() {
	defer n.wg.Done()
	for {
		var waiting []chan error
		select {
		case ch := <-n.verifyReqs:
			waiting = append(waiting, ch)
		case <-n.stop:
			return
		}
	more:
		for {
			select {
			case ch := <-n.verifyReqs:
				waiting = append(waiting, ch)
			default:
				break more
			}
		}
		err := n.raft.VerifyLeader().Error()
		for _, ch := range waiting {
			ch <- err
		}
	}
}

// watchLeadership tracks whether this node leads and has applied a barrier
// in its term.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	for {
		select {
		case leader := <-n.raft.LeaderCh():
			n.leaderReady.Store(false)
			n.forgetVoters()
			if !leader {
				n.log.Info("lost leadership")
				continue
			}
			if err := n.raft.Barrier(n.cfg.FailoverWait).Error(); err != nil {
				n.log.Warn("barrier after election failed", "err", err)
				continue
			}
			n.log.Info("leading", "term", n.raft.CurrentTerm(), "index", n.fsm.applied.Load())
			n.leaderReady.Store(true)
		case <-n.stop:
			return
		}
	}
}

package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// waitPoll is how often WaitReplicas asks the members again, and
// waitAskTimeout how long it waits for one member's answer.
const (
	waitPoll       = 20 * time.Millisecond
	waitAskTimeout = 500 * time.Millisecond
)

// WaitReplicas is redis's WAIT in a cluster: it counts the voters other
// than the leader that have applied every entry committed when it was
// called — which includes every write acknowledged to any client before
// then, on any node — and waits until want of them have, or ctx ends. It
// returns the last count. The committed index is the leader's (asked when
// this node does not lead; this node's own when no leader answers).
// Members are asked for their applied index as the dashboard asks them
// (a member that does not answer does not count); a follower counts
// itself from its own.
func (n *Node) WaitReplicas(ctx context.Context, want int) (int, error) {
	target := n.group.CommitIndex()
	if !n.group.IsLeader() {
		if lid, addr := n.Leader(); lid != "" {
			qctx, cancel := context.WithTimeout(ctx, memberInfoTimeout)
			info, err := n.peerInfo(qctx, addr, false)
			cancel()
			if err == nil && info.Commit > target {
				target = info.Commit
			}
		}
	}
	for {
		got := n.countApplied(target)
		if got >= want {
			return got, nil
		}
		select {
		case <-time.After(waitPoll):
		case <-ctx.Done():
			return got, nil
		case <-n.stop:
			return got, ErrShutdown
		}
	}
}

// countApplied counts the voters other than the leader whose applied
// index has reached target. Each is asked with its own deadline, not
// WAIT's, so that a count under way when WAIT's time is up completes.
func (n *Node) countApplied(target uint64) int {
	var count atomic.Int32
	var wg sync.WaitGroup
	for _, m := range n.Servers() {
		if !m.Voter || m.Leader {
			continue
		}
		if m.ID == n.id {
			if n.group.AppliedIndex() >= target {
				count.Add(1)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(n.ctx, waitAskTimeout)
			defer cancel()
			if info, err := n.peerInfo(ctx, m.PeerAddr, false); err == nil && info.ID == m.ID && info.Applied >= target {
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(count.Load())
}

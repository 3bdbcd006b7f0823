package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hatcheck/hatcheck/internal/cluster/group"
	"github.com/hatcheck/hatcheck/internal/command"
)

// Mixed versions during a rolling upgrade. Every node tells the others,
// in its metadata, how many op codes it can apply (metaLogOps; a node of a
// release before this says nothing and applies command.LegacyOps). A
// leader proposes a transaction only if every member, voter or learner,
// that it can reach or has heard from can apply its highest op; otherwise
// the client gets ErrNotUpgraded and nothing is written. A node that
// nevertheless meets an entry it cannot apply — it was down and unknown
// when the entry was proposed, or it joined with an older version before
// the leader learnt of it — stops applying before it (group.Halt) and
// says why, rather than skip it and hold other data than the rest.

// metaLogOps is the metadata key of command.Ops.
const metaLogOps = "log-ops"

// ErrNotUpgraded: a member of the cluster runs an older version that
// cannot apply the command.
var ErrNotUpgraded = errors.New("a member of the cluster runs an older hatcheck that cannot apply this command; upgrade every node first")

// ErrUpgradeNeeded: this node met a log entry written by a newer version;
// it stopped applying the log until it is upgraded.
var ErrUpgradeNeeded = errors.New("this node runs an older hatcheck than the entries in its log; upgrade it")

// floorRefresh bounds how often a leader asks the members for their
// versions while a command is refused.
const floorRefresh = 500 * time.Millisecond

// opsAdmitted reports whether every member is known to apply tx.
func (n *Node) opsAdmitted(tx command.Tx) bool {
	return int64(tx.MaxOp()) < n.opsFloor.Load()
}

// admitOps decides for a tx that opsAdmitted refused: it asks the members
// (at most every floorRefresh) what they apply now — one may have been
// upgraded meanwhile — and reports whether tx is admitted.
func (n *Node) admitOps(ctx context.Context, tx command.Tx) bool {
	need := int(tx.MaxOp()) + 1
	n.floorMu.Lock()
	defer n.floorMu.Unlock()
	if time.Since(n.floorAsked) >= floorRefresh {
		n.floorAsked = time.Now()
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		floor := n.logOps
		for _, m := range n.Servers() {
			if m.ID == n.id {
				continue
			}
			meta, known := n.MetaCached(m.ID)
			lvl := -1 // unknown
			if meta != nil {
				lvl = opsOf(meta)
			}
			if !known || lvl < need {
				// Ask again: the member may have been upgraded.
				if info, err := n.MemberInfo(ctx, m.ID, m.PeerAddr); err == nil {
					lvl = opsOf(info.Meta)
				}
			}
			// A member no one can reach, and whose version was never
			// learnt, is not waited for: the others keep every command.
			// Should it be older, it stops at the first entry it cannot
			// apply when it comes back (group.Halt), and says so.
			if lvl >= 0 {
				floor = min(floor, lvl)
			}
		}
		n.opsFloor.Store(int64(floor))
	}
	return int64(need) <= n.opsFloor.Load()
}

// opsOf is what a member's metadata says it applies.
func opsOf(meta map[string]string) int {
	if v, err := strconv.Atoi(meta[metaLogOps]); err == nil && v > 0 {
		return v
	}
	return command.LegacyOps
}

// halted is the Halt for an entry this node cannot apply, nil if it can.
func (f *fsm) halted(txs []command.Tx) any {
	for _, tx := range txs {
		if op := tx.MaxOp(); int(op) >= f.ops {
			return group.Halt{Err: fmt.Errorf("%w: op %d (this node applies ops below %d)", command.ErrUnknownOp, op, f.ops)}
		}
	}
	return nil
}

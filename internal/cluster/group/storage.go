package group

import (
	"encoding/binary"
	"fmt"
	"io"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// appendJob is one unit of the append thread's work: a MsgStorageAppend
// from raft, or storage upkeep (recording a snapshot and compacting) that
// must not race the appends.
type appendJob struct {
	msg    raftpb.Message
	upkeep func() error
}

// runAppend is the append thread. Everything that queued while the
// previous write was in flight is written with one Append — one fsync for
// many Ready batches — and only then are the responses delivered: raft's
// own acknowledgement (MsgStorageAppendResp, and the leader's MsgAppResp to
// itself), a follower's MsgAppResp to its leader, a vote.
func (g *Group) runAppend() {
	defer g.wg.Done()
	var (
		jobs  []appendJob
		ents  []raftpb.Entry
		resps []raftpb.Message
		ok    bool
	)
	for {
		if jobs, ok = g.appendq.takeAll(jobs); !ok {
			return
		}
		for i := 0; i < len(jobs); {
			if jobs[i].upkeep != nil {
				if err := jobs[i].upkeep(); err != nil {
					g.log.Error("log upkeep failed", "err", err)
				}
				i++
				continue
			}
			if g.failed.Load() {
				// Nothing more is written or acknowledged; the queue is
				// still drained so that nothing waits on it for ever.
				i++
				continue
			}
			if snap := jobs[i].msg.Snapshot; snap != nil {
				if err := g.cfg.Storage.InstallSnapshot(snap.Metadata); err != nil {
					g.fatal("install snapshot", err)
					i++
					continue
				}
				// The apply thread restores it before any entry queued
				// after it; raft hands out no entry above the snapshot
				// until it hears the responses below.
				g.applyq.push(applyJob{restore: &snap.Metadata})
			}
			// Merge this message with the following plain ones.
			var hs raftpb.HardState
			ents, resps = ents[:0], resps[:0]
			j := i
			for ; j < len(jobs) && jobs[j].upkeep == nil && (j == i || jobs[j].msg.Snapshot == nil); j++ {
				m := &jobs[j].msg
				if st := (raftpb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}); !raft.IsEmptyHardState(st) {
					hs = st
				}
				ents = mergeEntries(ents, m.Entries)
				resps = append(resps, m.Responses...)
			}
			if len(ents) > 0 || !raft.IsEmptyHardState(hs) {
				if err := g.cfg.Storage.Append(hs, ents); err != nil {
					g.fatal("append to log", err)
					i = j
					continue
				}
			}
			g.deliver(resps)
			i = j
		}
		clear(jobs)
		clear(ents)
		clear(resps)
	}
}

// mergeEntries appends next to acc; where next starts at or below acc's
// end (a newer leader's entries), the older ones from that index on go.
func mergeEntries(acc, next []raftpb.Entry) []raftpb.Entry {
	if len(next) == 0 {
		return acc
	}
	if len(acc) > 0 {
		first := acc[0].Index
		switch {
		case next[0].Index <= first:
			acc = acc[:0]
		case next[0].Index <= acc[len(acc)-1].Index:
			acc = acc[:next[0].Index-first]
		}
	}
	return append(acc, next...)
}

// deliver hands responses to their targets: this node's raft through the
// loop, peers through the transport.
func (g *Group) deliver(resps []raftpb.Message) {
	if len(resps) == 0 {
		return
	}
	var local, remote []raftpb.Message
	for _, m := range resps {
		if m.To == g.cfg.ID {
			local = append(local, m)
		} else {
			remote = append(remote, m)
		}
	}
	if len(remote) > 0 {
		g.cfg.Transport.Send(remote)
	}
	if len(local) > 0 {
		g.Step(local)
	}
}

// fatal is a storage failure: nothing more is written or acknowledged
// from this node (a write that is not durable must not count toward a
// quorum), and it falls silent toward its peers — no heartbeats, no
// votes — so that a leader with a failed disk is replaced instead of
// holding the cluster's writes. Its proposals fail as of unknown outcome
// when it learns of the next leader. The node stays up so that it can say
// why; it needs a restart once the disk is healthy.
func (g *Group) fatal(what string, err error) {
	if g.failed.CompareAndSwap(false, true) {
		g.log.Error("storage failed: this node stops acknowledging writes; restart it once the disk is healthy", "op", what, "err", err)
	}
}

// Failed reports whether a storage failure, or a Halt, stopped this node.
func (g *Group) Failed() bool { return g.failed.Load() }

// halt stops applying at entry index (see Halt).
func (g *Group) halt(index uint64, err error) {
	err = fmt.Errorf("cannot apply log entry %d: %w", index, err)
	g.halted.Store(&err)
	if g.failed.CompareAndSwap(false, true) {
		g.log.Error("stopped applying the log: upgrade this node to the version the others run", "index", index, "err", err)
	}
}

// Halted is why the state machine halted (see Halt), nil if it did not.
func (g *Group) Halted() error {
	if p := g.halted.Load(); p != nil {
		return *p
	}
	return nil
}

// Snapshot data is the group's member table (length-prefixed JSON) followed
// by the state machine's data.

func (g *Group) writeSnapshot(meta raftpb.SnapshotMetadata, members []byte, encode func(io.Writer) error) error {
	w, err := g.cfg.Snapshots.Create(meta)
	if err != nil {
		return err
	}
	if err := writeSnapshotData(w, members, encode); err != nil {
		_ = w.Abort()
		return err
	}
	return w.Commit()
}

func writeSnapshotData(w io.Writer, members []byte, encode func(io.Writer) error) error {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(members)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(members); err != nil {
		return err
	}
	return encode(w)
}

// EncodeSnapshot writes snapshot data as the group writes it — the member
// table, then the state machine's data from encode — for a snapshot made
// outside a running group (converting an old data directory).
func EncodeSnapshot(w io.Writer, members []Member, encode func(io.Writer) error) error {
	var t membersTable
	for _, m := range members {
		t.set(m)
	}
	return writeSnapshotData(w, t.encode(), encode)
}

// restore loads a snapshot into the state machine and the member table.
func (g *Group) restore(meta raftpb.SnapshotMetadata) error {
	r, _, err := g.cfg.Snapshots.Open(meta)
	if err != nil {
		return fmt.Errorf("open snapshot %d: %w", meta.Index, err)
	}
	defer r.Close()
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return fmt.Errorf("snapshot %d: %w", meta.Index, err)
	}
	members := make([]byte, binary.BigEndian.Uint32(n[:]))
	if _, err := io.ReadFull(r, members); err != nil {
		return fmt.Errorf("snapshot %d: %w", meta.Index, err)
	}
	if err := g.members.decode(members); err != nil {
		return fmt.Errorf("snapshot %d members: %w", meta.Index, err)
	}
	if err := g.cfg.StateMachine.Restore(r); err != nil {
		return fmt.Errorf("snapshot %d: %w", meta.Index, err)
	}
	cs := meta.ConfState
	g.confState.Store(&cs)
	g.snapIndex.Store(meta.Index)
	g.setApplied(meta.Index, meta.Term)
	return nil
}

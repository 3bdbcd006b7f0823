package group

import (
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// applyJob is one unit of the apply thread's work: committed entries
// (MsgStorageApply) or a snapshot received from the leader to restore.
type applyJob struct {
	msg      raftpb.Message
	restore  *raftpb.SnapshotMetadata
	snapshot func(index uint64, err error) // Snapshot's request
}

// runApply is the apply thread: committed entries go to the state machine
// in log order, each proposal of this node is answered from here with the
// result of its own entry, and snapshots are taken and restored here.
func (g *Group) runApply() {
	defer g.wg.Done()
	var (
		jobs []applyJob
		ok   bool
	)
	for {
		if jobs, ok = g.applyq.takeAll(jobs); !ok {
			return
		}
		for _, job := range jobs {
			if g.failed.Load() {
				// Drained, not applied: see fatal.
				if job.snapshot != nil {
					job.snapshot(0, ErrFailed)
				}
				continue
			}
			if job.restore != nil {
				if err := g.restore(*job.restore); err != nil {
					g.fatal("restore snapshot", err)
					continue
				}
				g.membersChanged()
				g.log.Info("restored a snapshot from the leader", "index", job.restore.Index, "term", job.restore.Term)
				if g.cfg.OnSnapshot != nil {
					g.cfg.OnSnapshot(job.restore.Index, job.restore.Term, true)
				}
				continue
			}
			if job.snapshot != nil {
				g.snapshotOnRequest(job.snapshot)
				continue
			}
			ents := job.msg.Entries
			applied := 0
			for i := range ents {
				if !g.applyEntry(&ents[i]) {
					break // halted: see Halt
				}
				applied++
			}
			if applied > 0 {
				last := ents[applied-1]
				g.setApplied(last.Index, last.Term)
			}
			if applied < len(ents) {
				continue
			}
			g.deliver(job.msg.Responses)
			g.maybeSnapshot()
		}
		clear(jobs)
	}
}

// Halt is what a StateMachine's Apply returns for an entry it can neither
// apply nor skip — one written by a newer version, whose ops it does not
// know: skipping it would leave this node's state different from the
// others'. The group stops applying before that entry (it stays
// unapplied, so a restart with a newer version applies it) and fails: see
// Failed and Halted.
type Halt struct{ Err error }

// applyEntry applies one committed entry; false means the state machine
// halted on it.
func (g *Group) applyEntry(e *raftpb.Entry) bool {
	switch e.Type {
	case raftpb.EntryNormal:
		// A new leader's first entry is empty; proposals carry their id.
		if len(e.Data) < ProposalHeader {
			return true
		}
		res := g.cfg.StateMachine.Apply(e.Index, e.Data[ProposalHeader:])
		if h, ok := res.(Halt); ok {
			g.halt(e.Index, h.Err)
			return false
		}
		if done := g.take(propID(e.Data[:ProposalHeader])); done != nil {
			done(res, nil)
		}
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			g.log.Error("undecodable membership change", "index", e.Index, "err", err)
			return true
		}
		g.applyConfChange(e.Index, cc.AsV2())
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err := cc.Unmarshal(e.Data); err != nil {
			g.log.Error("undecodable membership change", "index", e.Index, "err", err)
			return true
		}
		g.applyConfChange(e.Index, cc)
	}
	return true
}

// setApplied publishes the applied index and wakes the waiters it
// satisfies.
func (g *Group) setApplied(index, term uint64) {
	g.appliedTerm.Store(term)
	g.appliedMu.Lock()
	g.applied.Store(index)
	var ready []appliedWaiter
	kept := g.appliedWaiters[:0]
	for _, w := range g.appliedWaiters {
		if w.index <= index {
			ready = append(ready, w)
		} else {
			kept = append(kept, w)
		}
	}
	clear(g.appliedWaiters[len(kept):])
	g.appliedWaiters = kept
	g.appliedMu.Unlock()
	for _, w := range ready {
		w.done(nil)
	}
}

// maybeSnapshot starts a snapshot once enough entries were applied since
// the last one. The state machine captures a view here, between two
// applies; encoding and writing it runs beside later applies. When it is
// durable, the append thread records it and compacts the log behind it,
// keeping TrailingEntries.
func (g *Group) maybeSnapshot() {
	applied := g.applied.Load()
	if g.snapshotting.Load() || applied < g.snapIndex.Load()+g.cfg.SnapshotEntries {
		return
	}
	g.snapshotNow(nil)
}

// snapshotOnRequest waits for a snapshot in progress, then takes one of
// everything applied so far, unless the last one already holds it.
func (g *Group) snapshotOnRequest(done func(uint64, error)) {
	for g.snapshotting.Load() {
		time.Sleep(time.Millisecond)
	}
	applied := g.applied.Load()
	if applied == 0 || applied == g.snapIndex.Load() {
		done(g.snapIndex.Load(), nil)
		return
	}
	g.snapshotNow(done)
}

// snapshotNow captures the state machine and writes the snapshot on
// another goroutine; done (if any) hears when it is recorded in the log.
func (g *Group) snapshotNow(done func(uint64, error)) {
	if done == nil {
		done = func(uint64, error) {}
	}
	applied := g.applied.Load()
	g.snapshotting.Store(true)
	meta := raftpb.SnapshotMetadata{Index: applied, Term: g.appliedTerm.Load(), ConfState: *g.confState.Load()}
	members := g.members.encode()
	encode := g.cfg.StateMachine.Snapshot()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := g.writeSnapshot(meta, members, encode); err != nil {
			g.log.Error("snapshot failed", "index", meta.Index, "err", err)
			g.snapshotting.Store(false)
			done(0, err)
			return
		}
		// In progress until the log has recorded it: the next one is
		// measured from its index.
		g.appendq.push(appendJob{upkeep: func() error {
			err := g.recordSnapshot(meta)
			g.snapshotting.Store(false)
			done(meta.Index, err)
			return err
		}})
		g.log.Debug("snapshot taken", "index", meta.Index, "term", meta.Term)
		if g.cfg.OnSnapshot != nil {
			g.cfg.OnSnapshot(meta.Index, meta.Term, false)
		}
	}()
}

// recordSnapshot tells the log about a snapshot written to disk and
// compacts the log behind it, keeping TrailingEntries. It runs on the
// append thread.
func (g *Group) recordSnapshot(meta raftpb.SnapshotMetadata) error {
	if err := g.cfg.Storage.SetSnapshot(meta); err != nil {
		return err
	}
	g.snapIndex.Store(meta.Index)
	first, err := g.cfg.Storage.FirstIndex()
	if err != nil || meta.Index < g.cfg.TrailingEntries+first {
		return err
	}
	return g.cfg.Storage.Compact(meta.Index - g.cfg.TrailingEntries)
}

// Snapshot takes a snapshot of everything applied so far and waits until
// the log has recorded it (a clean shutdown does this, so that the next
// start replays little). It returns the snapshot's index; with nothing
// applied since the last snapshot it takes none and returns that one's.
func (g *Group) Snapshot() (uint64, error) {
	type res struct {
		index uint64
		err   error
	}
	ch := make(chan res, 1)
	g.applyq.push(applyJob{snapshot: func(index uint64, err error) { ch <- res{index, err} }})
	select {
	case r := <-ch:
		return r.index, r.err
	case <-g.stop:
		return 0, ErrStopped
	}
}

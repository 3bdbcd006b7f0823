package cluster

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/cluster/group"
	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// fsm is a thin shim between the Raft group and the keyspace. Apply,
// Snapshot and Restore run on the group's apply thread, one at a time;
// reads run on client goroutines under the read lock, concurrently with
// each other. The encoding a snapshot returns runs on its own goroutine,
// beside later Applies, over an immutable view.
type fsm struct {
	databases int
	exec      *command.Executor // runs the commands; holds the compiled-script cache
	ops       int               // ops below this are applied; command.Ops(), lower in tests

	mu     sync.RWMutex // guards ks and events
	ks     *keyspace.Keyspace
	events keyspace.Events // receives PUBLISH and keyspace notifications

	snapshots         atomic.Uint64 // snapshots persisted
	restores          atomic.Uint64 // snapshots restored (at start, or installed from the leader)
	lastSnapshotNanos atomic.Int64  // how long the last encoding took
}

func newFSM(databases int, exec *command.Executor, ops int) *fsm {
	return &fsm{databases: databases, exec: exec, ks: keyspace.New(databases), ops: ops}
}

// Apply applies one committed entry: a batch of transactions stamped by the
// leader. The result is the []command.TxResult in the batch's order, or an
// error if the entry cannot be decoded (which every node then reports
// alike), or a group.Halt for an entry holding ops this node cannot apply
// (written by a newer version: see versions.go).
func (f *fsm) Apply(index uint64, data []byte) any {
	h, txs, err := command.DecodeBatch(data)
	if errors.Is(err, command.ErrUnknownOp) {
		return group.Halt{Err: err}
	}
	if err != nil {
		return err
	}
	if halt := f.halted(txs); halt != nil {
		return halt
	}
	res := make([]command.TxResult, len(txs))
	f.mu.Lock()
	events := f.events
	f.ks.SetStamp(h.Now)
	f.ks.BeginEntry(index)
	h.Index = index
	// Time never runs backwards in the log: a new leader whose clock is
	// behind the previous one's applies at the later time.
	h.Now = f.ks.Stamp()
	for j, tx := range txs {
		res[j] = f.exec.Apply(f.ks, h, tx)
	}
	f.mu.Unlock()
	if e, ok := events.(keyspace.ApplyEvents); ok {
		e.Applied(index)
	}
	return res
}

// setEvents sets the receiver of events applied from now on.
func (f *fsm) setEvents(e keyspace.Events) {
	f.mu.Lock()
	f.events = e
	f.ks.SetEvents(e)
	f.mu.Unlock()
}

// read runs fn with the keyspace under the read lock.
func (f *fsm) read(fn func(ks *keyspace.Keyspace)) {
	f.mu.RLock()
	fn(f.ks)
	f.mu.RUnlock()
}

// Snapshot captures an immutable view of the keyspace between two applies
// and returns its encoder, which releases the view when it is done (until
// then the keyspace defers reusing freed memory). The encoder is called at
// most once.
func (f *fsm) Snapshot() func(io.Writer) error {
	f.mu.RLock()
	v := f.ks.View()
	f.mu.RUnlock()
	return func(w io.Writer) error {
		defer v.Release()
		start := time.Now()
		if err := v.Encode(w); err != nil {
			return err
		}
		f.snapshots.Add(1)
		f.lastSnapshotNanos.Store(int64(time.Since(start)))
		return nil
	}
}

// Restore replaces the keyspace with a snapshot's contents.
func (f *fsm) Restore(r io.Reader) error {
	ks, err := keyspace.Decode(r, f.databases)
	if err != nil {
		return err
	}
	f.mu.Lock()
	ks.SetEvents(f.events)
	f.ks = ks
	events := f.events
	f.mu.Unlock()
	f.restores.Add(1)
	if w, ok := events.(keyspace.ReplaceWatcher); ok {
		w.Replaced()
	}
	// Every key may have changed, and no event says which.
	ks.NotifyFlush(-1)
	return nil
}

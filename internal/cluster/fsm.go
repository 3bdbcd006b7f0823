package cluster

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// fsm is a thin shim between Raft and the keyspace. Apply and Restore run on
// Raft's FSM goroutine, one at a time; reads run on client goroutines under
// the read lock, concurrently with each other.
type fsm struct {
	databases int

	mu     sync.RWMutex // guards ks and events
	ks     *keyspace.Keyspace
	events keyspace.Events // receives PUBLISH and keyspace notifications

	applied  atomic.Uint64 // index of the last command entry applied
	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced after every apply

	snapshots         atomic.Uint64 // snapshots persisted
	restores          atomic.Uint64 // snapshots restored (at start, or installed from the leader)
	lastSnapshotNanos atomic.Int64  // how long the last Persist took
}

func newFSM(databases int) *fsm {
	return &fsm{databases: databases, ks: keyspace.New(databases), notify: make(chan struct{})}
}

var _ raft.BatchingFSM = (*fsm)(nil)

// Apply applies one log entry; see ApplyBatch.
func (f *fsm) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries. Each command entry is a batch of
// transactions stamped by the leader; the response for the entry is the
// []command.TxResult in the same order, or an error if the entry cannot be
// decoded (which every node then reports alike).
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	f.mu.Lock()
	var last uint64
	for i, l := range logs {
		last = l.Index
		if l.Type != raft.LogCommand {
			continue
		}
		h, txs, err := command.DecodeBatch(l.Data)
		if err != nil {
			out[i] = err
			continue
		}
		f.ks.SetStamp(h.Now)
		f.ks.BeginEntry(l.Index)
		h.Index = l.Index
		// Time never runs backwards in the log: a new leader whose clock is
		// behind the previous one's applies at the later time.
		h.Now = f.ks.Stamp()
		res := make([]command.TxResult, len(txs))
		for j, tx := range txs {
			res[j] = command.Apply(f.ks, h, tx)
		}
		out[i] = res
	}
	f.mu.Unlock()
	if last > 0 {
		f.setApplied(last)
	}
	return out
}

func (f *fsm) setApplied(idx uint64) {
	f.applied.Store(idx)
	f.broadcast()
}

// broadcast wakes every waitUntil caller to re-check its condition.
func (f *fsm) broadcast() {
	f.notifyMu.Lock()
	close(f.notify)
	f.notify = make(chan struct{})
	f.notifyMu.Unlock()
}

// waitUntil blocks until cond holds; cond is re-checked after every apply
// and every broadcast.
func (f *fsm) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		f.notifyMu.Lock()
		ch := f.notify
		f.notifyMu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
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

// Snapshot captures an immutable view; Raft calls it on the FSM goroutine,
// so no Apply runs meanwhile. Persist then encodes the view concurrently
// with later Applies.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	v := f.ks.View()
	f.mu.RUnlock()
	return &snapshot{fsm: f, view: v}, nil
}

// Restore replaces the keyspace with a snapshot's contents.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	ks, err := keyspace.Decode(rc, f.databases)
	if err != nil {
		return err
	}
	f.mu.Lock()
	ks.SetEvents(f.events)
	f.ks = ks
	f.mu.Unlock()
	f.restores.Add(1)
	return nil
}

type snapshot struct {
	fsm  *fsm
	view *keyspace.View
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	if err := s.view.Encode(sink); err != nil {
		_ = sink.Cancel()
		return err
	}
	if err := sink.Close(); err != nil {
		return err
	}
	s.fsm.snapshots.Add(1)
	s.fsm.lastSnapshotNanos.Store(int64(time.Since(start)))
	return nil
}

func (s *snapshot) Release() {}

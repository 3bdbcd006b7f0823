// Package group runs one Raft group: an etcd raft RawNode driven by a loop
// of ours, with asynchronous storage writes. Three goroutines share the work:
//
//   - the loop owns the RawNode: it ticks, takes proposals, read requests
//     and peer messages, and routes what each Ready produces — messages to
//     peers go to the transport at once, log writes to the append thread,
//     committed entries to the apply thread;
//   - the append thread makes log entries and hard state durable, merging
//     everything that queued up during the previous write into one Append
//     (one fsync: group commit), then delivers the responses raft attached
//     (its own acknowledgement, a follower's MsgAppResp, votes);
//   - the apply thread hands committed entries to the state machine in log
//     order, answers the proposals they carry, takes snapshots and restores
//     received ones.
//
// The leader therefore writes its own log while its followers write theirs
// (Raft thesis §10.2.1): an entry commits when a majority has it on disk,
// whichever disks those are. No goroutine and no future exists per request:
// a proposal is a callback, called by the apply thread when its entry is
// applied (or by the loop when its fate is decided otherwise).
//
// Several groups could share one storage engine and one transport (see the
// package cluster's DESIGN.md); nothing here is process-wide.
package group

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Errors passed to proposal and read callbacks.
var (
	// ErrDropped means the proposal never entered the log (this node does
	// not lead, or leads without a quorum yet): it may be sent again.
	ErrDropped = errors.New("group: proposal not taken (no leader here)")
	// ErrUnknownOutcome means the proposal entered this node's log but
	// leadership changed before it was applied: it may or may not commit.
	ErrUnknownOutcome = errors.New("group: leadership changed before the proposal was applied (it may or may not have been)")
	// ErrReadAborted means a read barrier got no answer (leadership changed
	// or the leader could not be reached); a read may simply be retried.
	ErrReadAborted = errors.New("group: read barrier not confirmed")
	// ErrStopped means the group was closed.
	ErrStopped = errors.New("group: stopped")
	// ErrFailed means this node's storage failed (see Failed).
	ErrFailed = errors.New("group: this node's log could not be written")
	// ErrConfChangePending means another membership change is still being
	// applied; Raft takes one at a time.
	ErrConfChangePending = errors.New("group: another membership change is in progress")
)

// Storage is the durable log. raft.Storage reads may run concurrently with
// the writes; the writes are called from the append thread only.
type Storage interface {
	raft.Storage
	// Append makes hs (unless empty) and ents durable before returning,
	// truncating any suffix that ents overwrite.
	Append(hs raftpb.HardState, ents []raftpb.Entry) error
	// InstallSnapshot replaces the log by a snapshot received from a leader.
	InstallSnapshot(meta raftpb.SnapshotMetadata) error
	// SetSnapshot records a snapshot of this node's own state.
	SetSnapshot(meta raftpb.SnapshotMetadata) error
	// Compact drops entries up to index (at most the latest snapshot's).
	Compact(index uint64) error
	// SyncCommit makes the commit index durable at index or beyond.
	SyncCommit(index uint64) error
}

// Snapshots stores snapshot data files.
type Snapshots interface {
	Create(meta raftpb.SnapshotMetadata) (SnapshotWriter, error)
	Open(meta raftpb.SnapshotMetadata) (io.ReadCloser, int64, error)
}

// SnapshotWriter receives one snapshot's data; Commit makes it durable.
type SnapshotWriter interface {
	io.Writer
	Commit() error
	Abort() error
}

// Transport sends messages to peers. Send must not block: a message it
// cannot deliver is dropped (Raft resends).
type Transport interface {
	Send(msgs []raftpb.Message)
}

// StateMachine is what the log is applied to. Apply and Restore run on the
// apply thread, one at a time, in log order. Snapshot runs there too and
// must return quickly: it captures a view, and the returned function
// encodes that view later, on another goroutine, while Apply goes on.
type StateMachine interface {
	Apply(index uint64, data []byte) any
	Snapshot() func(w io.Writer) error
	Restore(r io.Reader) error
}

// Config configures a group. Zero values take the defaults on each field.
type Config struct {
	ID           uint64 // this node's id in the group; not 0
	Storage      Storage
	Snapshots    Snapshots
	Transport    Transport
	StateMachine StateMachine
	// Tick is the unit of Raft's timers; default 50 ms.
	Tick time.Duration
	// ElectionTicks: a follower that hears nothing from a leader for a
	// random time in [ElectionTicks, 2×ElectionTicks) ticks campaigns; a
	// leader that hears from no quorum for as long steps down (CheckQuorum).
	// Default 10. HeartbeatTicks: default 1.
	ElectionTicks, HeartbeatTicks int
	// SnapshotEntries: a snapshot is taken once this many entries were
	// applied since the last one; TrailingEntries stay in the log behind it
	// so that a briefly absent follower catches up from the log. Defaults
	// 16384 and 10240.
	SnapshotEntries, TrailingEntries uint64
	// ConfChangeTimeout bounds the wait for a membership change to be
	// applied; default 10 s. Raft drops a change it cannot take (another
	// is still pending, or it would leave no voter) without a word, so
	// without a bound its caller could wait forever.
	ConfChangeTimeout time.Duration
	// MaxSizePerMsg bounds the entries in one append message (default
	// 1 MiB); MaxInflightMsgs bounds append messages in flight to a
	// follower (default 256).
	MaxSizePerMsg   uint64
	MaxInflightMsgs int
	// OnLeaderChange is called from the loop, which it must not block,
	// with the new leader (0 while none is known) and term.
	OnLeaderChange func(leader, term uint64)
	// OnMembership is called from the apply thread when a change
	// concerning this node is applied: false when it is removed, true when
	// it is added (again: a node that rejoins under its old name replays
	// the removal of its former self before its own addition).
	OnMembership func(member bool)
	// OnMembers is called from the apply thread (and from Open) with the
	// member table whenever it changes, e.g. to tell the transport where
	// peers are.
	OnMembers func([]Member)
	// OnSnapshot is called when this node has written a snapshot of its
	// own (fromLeader false; from the writing goroutine) or restored one
	// the leader sent (true; from the apply thread). It must not block.
	OnSnapshot func(index, term uint64, fromLeader bool)
	Logger     *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Tick == 0 {
		c.Tick = 50 * time.Millisecond
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = 1
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = 16384
	}
	if c.TrailingEntries == 0 {
		c.TrailingEntries = 10240
	}
	if c.ConfChangeTimeout == 0 {
		c.ConfChangeTimeout = 10 * time.Second
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = 1 << 20
	}
	if c.MaxInflightMsgs == 0 {
		c.MaxInflightMsgs = 256
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Group is one running Raft group.
type Group struct {
	cfg Config
	log *slog.Logger
	rn  *raft.RawNode // the loop's only

	// Inputs of the loop.
	propc chan proposal
	recvc chan []raftpb.Message
	readc chan func(uint64, error)
	ctlc  chan func()

	appendq queue[appendJob]
	applyq  queue[applyJob]

	// pending holds this node's proposals by id until applied or failed.
	pendingMu sync.Mutex
	pending   map[propID]func(any, error)
	nonce     uint64 // random per process: ids never repeat across restarts
	seq       atomic.Uint64

	// State published by the loop for other goroutines.
	leader    atomic.Uint64
	term      atomic.Uint64
	commit    atomic.Uint64
	isLeader  atomic.Bool
	state     atomic.Uint64 // raft.StateType
	applied   atomic.Uint64 // by the apply thread
	snapIndex atomic.Uint64

	members membersTable

	// The apply thread's own state, published for readers.
	confState    atomic.Pointer[raftpb.ConfState] // as of the last applied entry
	appliedTerm  atomic.Uint64                    // term of the last applied entry
	snapshotting atomic.Bool                      // a snapshot is being written
	confBusy     atomic.Bool                      // a membership change is in flight
	failed       atomic.Bool                      // storage failed or the state machine halted; see fatal, halt
	halted       atomic.Pointer[error]            // why the state machine halted

	appliedMu      sync.Mutex
	appliedWaiters []appliedWaiter

	stop    chan struct{}
	stopped atomic.Bool
	wg      sync.WaitGroup
}

type proposal struct {
	data []byte // ProposalHeader bytes reserved at the front
	cc   *raftpb.ConfChangeV2
	done func(any, error)
}

// ProposalHeader is how many bytes at the front of a proposal's data the
// group owns: it writes the proposal's id there, so that the apply thread
// can find whom to answer without a copy of the data.
const ProposalHeader = 16

type propID [ProposalHeader]byte

// Open starts a group. If the storage is empty and peers is not, the group
// is bootstrapped with them as voters; with both empty the node waits to be
// added by a leader. The state machine must hold the state of the latest
// snapshot in Snapshots that the log knows (Storage.Snapshot), which Open
// restores into it.
func Open(cfg Config, bootstrap []Member) (*Group, error) {
	cfg.setDefaults()
	g := &Group{
		cfg:     cfg,
		log:     cfg.Logger,
		propc:   make(chan proposal, 4096),
		recvc:   make(chan []raftpb.Message, 1024),
		readc:   make(chan func(uint64, error), 4096),
		ctlc:    make(chan func(), 16),
		pending: map[propID]func(any, error){},
		stop:    make(chan struct{}),
	}
	g.appendq.init()
	g.applyq.init()
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	g.nonce = binary.LittleEndian.Uint64(nonce[:])

	snap, err := cfg.Storage.Snapshot()
	if err != nil {
		return nil, err
	}
	if !raft.IsEmptySnap(snap) {
		if err := g.restore(snap.Metadata); err != nil {
			return nil, err
		}
	}
	last, err := cfg.Storage.LastIndex()
	if err != nil {
		return nil, err
	}
	rc := &raft.Config{
		ID:                        cfg.ID,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             cfg.HeartbeatTicks,
		Storage:                   cfg.Storage,
		Applied:                   snap.Metadata.Index,
		AsyncStorageWrites:        true,
		MaxSizePerMsg:             cfg.MaxSizePerMsg,
		MaxInflightMsgs:           cfg.MaxInflightMsgs,
		MaxUncommittedEntriesSize: 1 << 30,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		DisableProposalForwarding: true,
		StepDownOnRemoval:         true,
		Logger:                    newRaftLogger(g.log),
	}
	if g.rn, err = raft.NewRawNode(rc); err != nil {
		return nil, err
	}
	if last == 0 && raft.IsEmptySnap(snap) && len(bootstrap) > 0 {
		peers := make([]raft.Peer, len(bootstrap))
		for i, m := range bootstrap {
			peers[i] = raft.Peer{ID: m.ID, Context: encodeMemberContext(propID{}, m)}
		}
		if err := g.rn.Bootstrap(peers); err != nil {
			return nil, err
		}
	}
	if g.confState.Load() == nil {
		g.confState.Store(&raftpb.ConfState{})
	}
	g.applied.Store(snap.Metadata.Index)
	g.membersChanged()
	g.wg.Add(3)
	go g.run()
	go g.runAppend()
	go g.runApply()
	return g, nil
}

// Close stops the group's goroutines. Proposals and reads still waiting
// fail with ErrStopped (a proposal already in the log may still commit on
// other nodes).
func (g *Group) Close() error {
	if !g.stopped.CompareAndSwap(false, true) {
		return nil
	}
	close(g.stop)
	g.appendq.close()
	g.applyq.close()
	g.wg.Wait()
	g.failPending(ErrStopped)
	g.failAppliedWaiters()
	return nil
}

// Propose hands data (whose first ProposalHeader bytes are the group's) to
// the log. done is called once: with what StateMachine.Apply returned for
// the entry, or with ErrDropped (never entered the log; try the leader),
// ErrUnknownOutcome or ErrStopped. It runs on the apply thread or the loop
// and must not block.
func (g *Group) Propose(data []byte, done func(any, error)) {
	if len(data) < ProposalHeader {
		panic("group: proposal shorter than ProposalHeader")
	}
	g.submit(proposal{data: data, done: done})
}

func (g *Group) submit(p proposal) {
	select {
	case g.propc <- p:
	case <-g.stop:
		p.done(nil, ErrStopped)
	}
}

// ReadIndex asks for a read barrier: done gets an index such that every
// write acknowledged before the call is at or below it. Requests that wait
// at the same moment share one round of heartbeats. A follower asks its
// leader. Wait for the index with WaitApplied before reading.
func (g *Group) ReadIndex(done func(index uint64, err error)) {
	select {
	case g.readc <- done:
	case <-g.stop:
		done(0, ErrStopped)
	}
}

// WaitApplied calls done once the state machine has applied index (at
// once if it has), from the apply thread or the caller.
func (g *Group) WaitApplied(index uint64, done func(error)) {
	g.appliedMu.Lock()
	if g.applied.Load() >= index {
		g.appliedMu.Unlock()
		done(nil)
		return
	}
	if g.stopped.Load() {
		g.appliedMu.Unlock()
		done(ErrStopped)
		return
	}
	g.appliedWaiters = append(g.appliedWaiters, appliedWaiter{index, done})
	g.appliedMu.Unlock()
}

type appliedWaiter struct {
	index uint64
	done  func(error)
}

// Step hands messages received from peers to the loop. It blocks only
// while the loop's inbox is full.
func (g *Group) Step(msgs []raftpb.Message) {
	select {
	case g.recvc <- msgs:
	case <-g.stop:
	}
}

// Leader is the current leader's id (0 while none is known) and term.
func (g *Group) Leader() (id, term uint64) { return g.leader.Load(), g.term.Load() }

// State is this node's role: follower, (pre-)candidate or leader.
func (g *Group) State() raft.StateType { return raft.StateType(g.state.Load()) }

// IsLeader reports whether this node leads.
func (g *Group) IsLeader() bool { return g.isLeader.Load() }

// CommitIndex and AppliedIndex are this node's.
func (g *Group) CommitIndex() uint64  { return g.commit.Load() }
func (g *Group) AppliedIndex() uint64 { return g.applied.Load() }

// LeaderReady reports whether this node leads and has applied an entry of
// its own term, and so every entry earlier leaders committed: its state
// holds every acknowledged write.
func (g *Group) LeaderReady() bool {
	return g.isLeader.Load() && g.appliedTerm.Load() >= g.term.Load()
}

// Voters lists the voting members as of the last applied entry.
func (g *Group) Voters() []uint64 { return g.confState.Load().Voters }

// SnapshotIndex is the index of the last snapshot taken or installed.
func (g *Group) SnapshotIndex() uint64 { return g.snapIndex.Load() }

// Status is etcd raft's view of this node (progress of followers on a
// leader), taken on the loop.
func (g *Group) Status() (raft.Status, error) {
	var st raft.Status
	err := g.onLoop(func() { st = g.rn.Status() })
	return st, err
}

// TransferLeadership asks the leader (this node) to hand over to id.
func (g *Group) TransferLeadership(id uint64) error {
	return g.onLoop(func() { g.rn.TransferLeader(id) })
}

// ReportUnreachable and ReportSnapshot pass the transport's findings to
// raft.
func (g *Group) ReportUnreachable(id uint64) {
	_ = g.onLoopAsync(func() { g.rn.ReportUnreachable(id) })
}

func (g *Group) ReportSnapshot(id uint64, ok bool) {
	st := raft.SnapshotFinish
	if !ok {
		st = raft.SnapshotFailure
	}
	_ = g.onLoopAsync(func() { g.rn.ReportSnapshot(id, st) })
}

// onLoop runs fn on the loop and waits for it.
func (g *Group) onLoop(fn func()) error {
	done := make(chan struct{})
	if err := g.onLoopAsync(func() { fn(); close(done) }); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-g.stop:
		return ErrStopped
	}
}

func (g *Group) onLoopAsync(fn func()) error {
	select {
	case g.ctlc <- fn:
		return nil
	case <-g.stop:
		return ErrStopped
	}
}

// newID reserves a proposal id and registers done under it.
func (g *Group) register(done func(any, error)) propID {
	var id propID
	binary.LittleEndian.PutUint64(id[:8], g.nonce)
	binary.LittleEndian.PutUint64(id[8:], g.seq.Add(1))
	g.pendingMu.Lock()
	g.pending[id] = done
	g.pendingMu.Unlock()
	return id
}

// take removes and returns the callback registered under id, if any.
func (g *Group) take(id propID) func(any, error) {
	g.pendingMu.Lock()
	done := g.pending[id]
	delete(g.pending, id)
	g.pendingMu.Unlock()
	return done
}

// failPending fails every proposal still waiting.
func (g *Group) failPending(err error) {
	g.pendingMu.Lock()
	old := g.pending
	g.pending = map[propID]func(any, error){}
	g.pendingMu.Unlock()
	for _, done := range old {
		done(nil, err)
	}
}

func (g *Group) failAppliedWaiters() {
	g.appliedMu.Lock()
	ws := g.appliedWaiters
	g.appliedWaiters = nil
	g.appliedMu.Unlock()
	for _, w := range ws {
		w.done(ErrStopped)
	}
}

// queue is an unbounded FIFO between two goroutines. The loop must never
// block on the storage threads (the apply thread waits on the loop for
// membership changes), and raft's own limits bound what it holds.
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	signal chan struct{}
	closed bool
}

func (q *queue[T]) init() { q.signal = make(chan struct{}, 1) }

func (q *queue[T]) push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// takeAll waits for items and returns all of them; ok is false once the
// queue is closed.
func (q *queue[T]) takeAll(buf []T) ([]T, bool) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, false
		}
		if len(q.items) > 0 {
			buf = append(buf[:0], q.items...)
			clear(q.items)
			q.items = q.items[:0]
			q.mu.Unlock()
			return buf, true
		}
		q.mu.Unlock()
		<-q.signal
	}
}

func (q *queue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

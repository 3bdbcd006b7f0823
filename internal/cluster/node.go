// Package cluster owns the Raft group: the FSM over the keyspace, the log,
// stable and snapshot stores, the peer port, proposal batching, the read
// barrier and the leader-only expirer and evictor. Front ends reach it only
// through Write and Read.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Errors returned by Write and Read.
var (
	ErrNoLeader = command.ErrNoLeader
	ErrShutdown = command.ErrShutdown
	ErrNodeID   = errors.New("node id does not match the data directory")
)

// Config configures a node. Zero durations and sizes take the defaults
// documented on each field.
type Config struct {
	NodeID       string // default: the one stored in DataDir, else a random id
	DataDir      string
	PeerAddr     string // listen address of the peer port
	Advertise    string // address peers dial; default PeerAddr's bound address
	Databases    int    // default 16
	MaxMemory    int64  // bytes; 0 = unlimited
	Policy       command.Policy
	FailoverWait time.Duration // how long requests wait for a leader; default 5 s
	// ElectionTimeout is Raft's heartbeat and election timeout: a follower
	// that hears nothing from the leader for between one and two of these
	// starts an election. Default 500 ms (failover in about 1 s on a LAN).
	ElectionTimeout time.Duration
	// Join is the peer address of a member to ask for admission. A node
	// with an empty data dir and no Join bootstraps a new cluster.
	Join string
	// Secret, when set, must be presented by every peer connection.
	Secret string
	// Meta is what this node tells others about itself (its client
	// addresses), for discovery.
	Meta map[string]string
	// UnsafeStaleReads makes followers answer reads from their own state,
	// which may be behind the leader. For tests that show the linearizability
	// checker catches stale reads; never set it in production.
	UnsafeStaleReads bool
	// Snapshot policy: a snapshot is taken after SnapshotThreshold new entries
	// (checked every SnapshotInterval); TrailingLogs entries stay behind it
	// so that a briefly absent follower catches up from the log.
	SnapshotThreshold uint64        // default 16384
	SnapshotInterval  time.Duration // default 30 s
	TrailingLogs      uint64        // default 10240
	// LogSegmentSize is the size of one log file; old entries are deleted
	// a whole file at a time. Default 64 MiB.
	LogSegmentSize int
	Logger         *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Databases == 0 {
		c.Databases = 16
	}
	if c.FailoverWait == 0 {
		c.FailoverWait = 5 * time.Second
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = 500 * time.Millisecond
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 16384
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 30 * time.Second
	}
	if c.LogSegmentSize == 0 {
		c.LogSegmentSize = 64 << 20
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Node is one member of the Raft group.
type Node struct {
	cfg    Config
	id     string
	log    *slog.Logger
	raft   *raft.Raft
	fsm    *fsm
	wal    *wal.WAL
	meta   *metadb.BoltMetaDB
	mux    *peerMux
	peers  *peers
	trans  *raft.NetworkTransport
	snaps  *raft.FileSnapshotStore
	policy atomic.Uint32
	maxmem atomic.Int64

	closeMu sync.RWMutex
	closed  bool
	ctx     context.Context // canceled by Close
	cancel  context.CancelFunc

	closing  atomic.Bool // Close has been called
	draining atomic.Bool // a planned shutdown: forwarded requests go elsewhere
	// serving counts requests this node is executing as leader (forwarded
	// or its own); lastForward is when a peer last forwarded one (Unix ns).
	// HandOver waits on both.
	serving     atomic.Int64
	lastForward atomic.Int64

	metaMu    sync.Mutex
	members   map[string]memberMeta // what other members said about themselves
	leaderFns struct {
		sync.Mutex
		fns     []func(string)
		changed chan struct{} // closed at every leadership change
	}

	proposals chan *proposal
	inflight  chan inflight
	slots     chan struct{} // one per entry in flight
	stop      chan struct{}
	wg        sync.WaitGroup

	leaderReady atomic.Bool   // leader, and a barrier of its term is applied
	sole        atomic.Uint64 // soleVoter's cached answer (see there)
	pending     atomic.Int64  // entries proposed whose futures have not resolved
	verifyReqs  chan chan error

	expired atomic.Uint64
	evicted atomic.Uint64
}

// Open starts a node. With an empty data directory it bootstraps a new
// one-voter cluster; otherwise it restores its snapshot and log.
func Open(cfg Config) (*Node, error) {
	cfg.setDefaults()
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(filepath.Join(raftDir, "wal"), 0o700); err != nil {
		return nil, err
	}
	id, err := loadNodeID(cfg.DataDir, cfg.NodeID)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:        cfg,
		id:         id,
		log:        cfg.Logger.With("node", id),
		fsm:        newFSM(cfg.Databases),
		proposals:  make(chan *proposal, 4096),
		inflight:   make(chan inflight, maxInflightEntries),
		slots:      make(chan struct{}, maxInflightEntries),
		stop:       make(chan struct{}),
		verifyReqs: make(chan chan error, 1024),
		members:    map[string]memberMeta{},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.leaderFns.changed = make(chan struct{})
	n.SetMaxMemory(cfg.MaxMemory, cfg.Policy)
	hlog := newHCLog(n.log, "raft")

	ok := false
	defer func() {
		if !ok {
			n.closeStores()
		}
	}()
	if n.wal, n.meta, err = openLogStore(raftDir, cfg.LogSegmentSize, hlog); err != nil {
		return nil, err
	}
	// The cache serves followers the newest entries from memory. An entry
	// holds a whole batch (up to maxBatchBytes), so the cache is sized in
	// entries with that in mind: 1024 entries of 100 KB batches held
	// 110 MB of a 100,000-session node's 320 MB (heap profile after
	// `hatcheck bench --keys 100000`), and 64 still held 46 MB of 179 MB
	// after loading 100,000 sessions with pipelines (1 MiB entries);
	// followers further behind read the log file instead (raft-wal: an
	// in-memory offset index and a read from the page cache).
	logs, err := raft.NewLogCache(logCacheEntries, n.wal)
	if err != nil {
		return nil, err
	}
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hlog); err != nil {
		return nil, fmt.Errorf("open snapshots: %w", err)
	}
	if n.mux, err = newPeerMux(cfg.PeerAddr, cfg.Advertise, id, cfg.Secret, n.log); err != nil {
		return nil, fmt.Errorf("peer port: %w", err)
	}
	n.peers = &peers{mux: n.mux}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: n.mux.raft, MaxPool: 3, Timeout: time.Second, Logger: hlog,
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(id)
	rc.Logger = hlog
	rc.HeartbeatTimeout = cfg.ElectionTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.ElectionTimeout / 2
	rc.CommitTimeout = 20 * time.Millisecond
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 512
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NoSnapshotRestoreOnStart = false
	// A removed node keeps running (and can be added back); it simply
	// stops hearing from the leader.
	rc.ShutdownOnRemove = false

	existing, err := raft.HasExistingState(logs, n.wal, n.snaps)
	if err != nil {
		return nil, err
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, logs, n.wal, n.snaps, n.trans); err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	n.mux.start(func(c net.Conn) { serveRPC(n.ctx, c, n.handleRPC) })
	if !existing && cfg.Join == "" {
		n.log.Info("bootstrapping a new cluster", "peer_addr", string(n.trans.LocalAddr()))
		f := n.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{
			{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: n.trans.LocalAddr()},
		}})
		if err := f.Error(); err != nil {
			n.raft.Shutdown()
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	ok = true
	obs := make(chan raft.Observation, 16)
	n.raft.RegisterObserver(raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	}))
	n.wg.Add(7)
	go n.runProposer()
	go n.runResponder()
	go n.runVerifier()
	go n.watchLeadership()
	go n.runExpirer()
	go n.runPromoter()
	go n.runLeaderObserver(obs)
	if cfg.Join != "" {
		n.wg.Add(1)
		go n.runJoin(!existing)
	}
	return n, nil
}

// openLogStore opens the Raft log in raftDir/wal. raft-wal's Close leaves
// its metadata database open (and locked), so the caller owns that store
// and closes it after the log.
func openLogStore(raftDir string, segmentSize int, hlog hclog.Logger) (*wal.WAL, *metadb.BoltMetaDB, error) {
	dir := filepath.Join(raftDir, "wal")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithLogger(hlog), wal.WithMetaStore(meta), wal.WithSegmentSize(segmentSize))
	if err != nil {
		meta.Close()
		return nil, nil, fmt.Errorf("open log: %w", err)
	}
	return w, meta, nil
}

// loadNodeID returns the id stored in dir, storing want (or a new random id)
// on first start. A different non-empty want is an error: a node's identity
// belongs to its data.
func loadNodeID(dir, want string) (string, error) {
	p := filepath.Join(dir, "node-id")
	b, err := os.ReadFile(p)
	if err == nil {
		have := strings.TrimSpace(string(b))
		if want != "" && want != have {
			return "", fmt.Errorf("%w: %s holds %q, --node-id says %q", ErrNodeID, p, have, want)
		}
		return have, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if want == "" {
		var r [6]byte
		_, _ = rand.Read(r[:])
		want = "node-" + hex.EncodeToString(r[:])
	}
	if err := os.WriteFile(p, []byte(want+"\n"), 0o600); err != nil {
		return "", err
	}
	return want, nil
}

// ID is the node's id.
func (n *Node) ID() string { return n.id }

// PeerAddr is the address peers dial.
func (n *Node) PeerAddr() string { return string(n.trans.LocalAddr()) }

// SetMaxMemory changes the memory limit and policy. The leader stamps them on
// every batch, so they take effect in log order on every node.
func (n *Node) SetMaxMemory(bytes int64, p command.Policy) {
	n.maxmem.Store(bytes)
	n.policy.Store(uint32(p))
}

// MaxMemory returns the limit and policy in force.
func (n *Node) MaxMemory() (int64, command.Policy) {
	return n.maxmem.Load(), command.Policy(n.policy.Load())
}

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// waitFor polls cond until it holds, failing with ErrNoLeader after
// FailoverWait: the conditions it waits for are all "a usable leader".
func (n *Node) waitFor(ctx context.Context, cond func() bool) error {
	if cond() {
		return nil
	}
	deadline := time.NewTimer(n.cfg.FailoverWait)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			return ErrNoLeader
		case <-ctx.Done():
			return ctx.Err()
		case <-n.stop:
			return ErrShutdown
		}
	}
	return nil
}

// Close stops the node: no new writes are taken, queued and in-flight writes
// finish, a snapshot is taken so that the next start replays little, and
// Raft, the peer port and the stores are closed.
func (n *Node) Close() error {
	if !n.closing.CompareAndSwap(false, true) {
		return nil
	}
	n.HandOver()
	n.closeMu.Lock()
	n.closed = true
	n.closeMu.Unlock()
	close(n.stop)
	n.cancel()
	n.wg.Wait()
	var errs []error
	if err := n.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		errs = append(errs, fmt.Errorf("snapshot: %w", err))
	}
	if err := n.raft.Shutdown().Error(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, n.closeStores())
	return errors.Join(errs...)
}

// Abort stops the node the way a crash would, for tests: no hand-over, no
// snapshot, queued writes fail. What is in the log stays, as after kill -9.
func (n *Node) Abort() error {
	if !n.closing.CompareAndSwap(false, true) {
		return nil
	}
	n.closeMu.Lock()
	n.closed = true
	n.closeMu.Unlock()
	close(n.stop)
	n.cancel()
	// Stop talking to peers first, so nothing more leaves this node.
	n.peers.close()
	n.mux.Close()
	err := n.raft.Shutdown().Error()
	n.wg.Wait()
	return errors.Join(err, n.closeStores())
}

// HandOver prepares a planned shutdown of the leader so that clients see no
// failure: requests stop being taken here (forwarded ones are answered
// "retry", the node's own wait for the next leader), requests being executed
// finish, leadership moves to another voter, and the peer port keeps
// answering "retry" until peers have stopped forwarding here: a request on a
// peer connection that closes unanswered could not be retried safely. It
// does nothing on a follower or a cluster of one. Close calls it.
func (n *Node) HandOver() {
	if n.raft.State() != raft.Leader || !n.hasOtherVoters() {
		return
	}
	n.draining.Store(true)
	deadline := time.Now().Add(n.cfg.FailoverWait)
	for (n.serving.Load() > 0 || n.pending.Load() > 0 || len(n.proposals) > 0) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := n.raft.LeadershipTransfer().Error(); err != nil {
		n.log.Warn("leadership transfer before shutdown failed", "err", err)
		return
	}
	// Peers learn of the new leader from its first heartbeat, as this node
	// does; requests they forwarded before that are answered "retry" once
	// they arrive. Wait for the forwarding to stop.
	for time.Now().Before(deadline) {
		_, id := n.raft.LeaderWithID()
		quiet := time.Since(time.Unix(0, n.lastForward.Load())) >= handOverQuiet
		if id != "" && string(id) != n.id && quiet && n.serving.Load() == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	n.log.Info("handed leadership over before shutdown")
}

// handOverQuiet is how long no peer must have forwarded a request before a
// node that handed leadership over closes its peer port.
const handOverQuiet = 100 * time.Millisecond

// enter counts a request this node is about to execute as leader; it is
// false (and counts nothing) once a planned shutdown has begun. The count
// comes first, so HandOver either sees it or the request sees draining.
func (n *Node) enter() bool {
	n.serving.Add(1)
	if n.draining.Load() {
		n.serving.Add(-1)
		return false
	}
	return true
}

func (n *Node) leave() { n.serving.Add(-1) }

func (n *Node) hasOtherVoters() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.id {
			return true
		}
	}
	return false
}

func (n *Node) closeStores() error {
	var errs []error
	if n.peers != nil {
		n.peers.close()
	}
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	if n.mux != nil {
		errs = append(errs, n.mux.Close())
	}
	if n.wal != nil {
		errs = append(errs, n.wal.Close())
	}
	if n.meta != nil {
		errs = append(errs, n.meta.Close())
	}
	return errors.Join(errs...)
}

// logCacheEntries is how many recent log entries stay in memory. 16 rather
// than 64: RSS after loading 100,000 sessions 222–231 → 175–179 MB, three
// nodes on the mix unchanged within noise (11.8–13.5k ops/s either way).
const logCacheEntries = 16

// SetEvents sets who receives what applying the log publishes (PUBLISH
// messages, keyspace notifications) on this node.
func (n *Node) SetEvents(e keyspace.Events) { n.fsm.setEvents(e) }

// Stats is a point-in-time view for INFO and metrics.
type Stats struct {
	ID, State, Leader, LeaderID     string
	Term, CommitIndex, AppliedIndex uint64
	LastSnapshotIndex               uint64
	Snapshots, Restores             uint64
	LastSnapshotDuration            time.Duration
	Keys, Volatile                  []int
	UsedMemory                      int64
	Expired, Evicted                uint64
}

// Stats reports the node's state.
func (n *Node) Stats() Stats {
	addr, lid := n.raft.LeaderWithID()
	s := Stats{
		ID: n.id, State: n.raft.State().String(), Leader: string(addr), LeaderID: string(lid),
		Term: n.raft.CurrentTerm(), CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.fsm.applied.Load(),
		Snapshots: n.fsm.snapshots.Load(), Restores: n.fsm.restores.Load(), LastSnapshotDuration: time.Duration(n.fsm.lastSnapshotNanos.Load()),
		Expired: n.expired.Load(), Evicted: n.evicted.Load(),
	}
	if metas, err := n.snaps.List(); err == nil && len(metas) > 0 {
		s.LastSnapshotIndex = metas[0].Index
	}
	n.fsm.read(func(ks *keyspace.Keyspace) {
		s.UsedMemory = ks.Used()
		for db := 0; db < ks.Databases(); db++ {
			s.Keys = append(s.Keys, ks.Len(db))
			s.Volatile = append(s.Volatile, ks.VolatileLen(db))
		}
	})
	return s
}

// Ready reports whether the node can serve linearizable reads and writes:
// it leads and has applied everything committed in its term, or it knows a
// leader to forward to.
func (n *Node) Ready() bool {
	if n.raft.State() == raft.Leader {
		return n.leaderReady.Load() && n.appliedThrough(n.raft.CommitIndex())
	}
	_, ok := n.currentLeader()
	return ok
}

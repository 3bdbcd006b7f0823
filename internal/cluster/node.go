// Package cluster owns the node's Raft group (package group, over etcd
// raft): the state machine over the keyspace, the log and snapshot files
// (package raftlog), the peer port and its transport (package transport),
// proposal batching, forwarding, the read barrier, membership and the
// leader-only expirer and evictor. Front ends reach it only through Write
// and Read.
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/hatcheck/hatcheck/internal/cluster/group"
	"github.com/hatcheck/hatcheck/internal/cluster/raftlog"
	"github.com/hatcheck/hatcheck/internal/cluster/transport"
	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Errors returned by Write and Read.
var (
	ErrNoLeader = command.ErrNoLeader
	ErrShutdown = command.ErrShutdown
	ErrNodeID   = errors.New("node id does not match the data directory")
	ErrRemoved  = command.ErrRemoved
	// ErrStorageFailed: a write to this node's log failed; it stops
	// serving (and acknowledging) until restarted.
	ErrStorageFailed = command.ErrStorageFailed
)

// Config configures a node. Zero durations and sizes take the defaults
// documented on each field.
type Config struct {
	NodeID   string // default: the one stored in DataDir, else a random id
	DataDir  string
	PeerAddr string // listen address of the peer port
	// PeerListener, if set, is the peer port already bound (to PeerAddr);
	// the node owns it from Open on, and closes it if Open fails.
	PeerListener net.Listener
	Advertise    string // address peers dial; default PeerAddr's bound address
	Databases    int    // default 16
	MaxMemory    int64  // bytes; 0 = unlimited
	Policy       command.Policy
	FailoverWait time.Duration // how long requests wait for a leader; default 5 s
	// CommitWait is how long the leader holds a log entry open for more
	// writes when the entry before it carried several (writes arrive from
	// many clients) and nothing else is queued: each entry costs an fsync
	// and a round of messages, so on a busy node a short wait lets more
	// writes share one. A lone writer never waits. 0 = never.
	CommitWait time.Duration
	// ElectionTimeout: a follower that hears nothing from the leader for
	// between one and two of these starts an election, and a leader that
	// hears from no quorum for as long steps down. The leader sends
	// heartbeats ten times as often. Default 500 ms (failover in about
	// 1 s on a LAN).
	ElectionTimeout time.Duration
	// Join is the peer addresses of members to ask for admission, tried
	// in turn until one answers. A node with an empty data dir and no Join
	// bootstraps a new cluster; a node with data ignores Join unless it
	// finds it is not a member.
	Join []string
	// Secret, when set, must be presented by every peer connection.
	Secret string
	// PeerTLS, when set, makes the peer port mutual TLS. It is called for
	// every connection, accepted or dialed, so that certificates may
	// change while the node runs, and serves both ends: the accepting node
	// uses what it returns as is (it must require and verify a client
	// certificate: tls.RequireAndVerifyClientCert with ClientCAs), the
	// dialing node with ServerName set to the dialed host (so RootCAs must
	// verify the other nodes, and Certificates hold this node's client
	// certificate). Every member must use it or none.
	PeerTLS func() *tls.Config
	// Meta is what this node tells others about itself (its client
	// addresses), for discovery.
	Meta map[string]string
	// UnsafeStaleReads makes followers answer reads from their own state,
	// which may be behind the leader. For tests that show the linearizability
	// checker catches stale reads; never set it in production.
	UnsafeStaleReads bool
	// LogOps is how many op codes this node applies and tells the others
	// (see versions.go). Default command.Ops(); tests set it lower to play
	// a node of an older version.
	LogOps int
	// Snapshot policy: a snapshot is taken once SnapshotThreshold entries
	// were applied since the last one; TrailingLogs entries stay behind it
	// so that a briefly absent follower catches up from the log.
	SnapshotThreshold uint64 // default 16384
	TrailingLogs      uint64 // default 10240
	// LogSegmentSize is the size of one log file; old entries are deleted
	// a whole file at a time. Default 64 MiB.
	LogSegmentSize int
	// NearCacheBytes, when positive, gives the node a near-cache of that
	// many bytes for NearGet: values it read recently, served with no
	// round trip and never stale (the leader invalidates every copy before
	// it proposes a write; see DESIGN.md). 0: none. Every node grants and
	// honours near-cache leases whatever its own setting; give every node
	// the same one.
	NearCacheBytes int64
	Logger         *slog.Logger
	// ScriptCalls parses the commands scripts call (redis.call): the
	// Redis front end's redis.ScriptCalls. Every node needs it, since every
	// node runs the scripts in the log. nil: scripts can call no command.
	ScriptCalls command.CallBuilder
	// Startup, when set, ends a slow Open early: Open checks it between
	// its steps and while it reads the snapshot it restores, and returns
	// its error (with the data dir unlocked and the peer port closed).
	// Only Open looks at it.
	Startup context.Context
}

func (c *Config) setDefaults() {
	if c.Databases == 0 {
		c.Databases = 16
	}
	if c.LogOps == 0 {
		c.LogOps = command.Ops()
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
	rid    uint64 // id in the Raft group: raftID(id)
	log    *slog.Logger
	group  *group.Group
	fsm    *fsm
	rlog   *raftlog.Log
	snaps  *raftlog.Snapshots
	trans  *transport.Transport
	mux    *peerMux
	peers  *peers
	policy atomic.Uint32
	maxmem atomic.Int64

	closeMu sync.RWMutex
	closed  bool
	ctx     context.Context // canceled by Close
	cancel  context.CancelFunc

	closing  atomic.Bool // Close has been called
	draining atomic.Bool // a planned shutdown: forwarded requests go elsewhere
	removed  atomic.Bool // this node was removed from the cluster
	// Versions of the members (see versions.go): the ops every member is
	// known to apply, and when the leader last asked.
	logOps     int
	opsFloor   atomic.Int64
	floorMu    sync.Mutex
	floorAsked time.Time
	// addrErr, once set, says that the cluster knows this node by another
	// peer address than the one it has now (see checkPeerAddr).
	addrErr atomic.Pointer[error]
	// serving counts requests this node is executing as leader (forwarded
	// or its own); lastForward is when a peer last forwarded one (Unix ns).
	// HandOver waits on both.
	serving     atomic.Int64
	lastForward atomic.Int64
	commitWaits atomic.Uint64

	metaMu    sync.Mutex
	members   map[string]memberMeta // what other members said about themselves
	leaderFns struct {
		sync.Mutex
		fns     []func(string)
		changed chan struct{} // closed at every leadership change
		// epoch counts leadership changes; watchers are called once at
		// the next one (see watchLeader).
		epoch    uint64
		watchers map[uint64]func()
		nextW    uint64
	}
	leaderWake chan struct{}
	peersMu    sync.Mutex
	knownPeers map[uint64]knownPeer // what the transport was told
	// seenMembers is the member table syncPeers last saw, for membership
	// events; replayUntil is the commit index at start: changes applied
	// up to it are replayed from the log, not news.
	seenMembers map[uint64]memberState
	replayUntil uint64

	started time.Time
	events  eventLog
	load    atomic.Pointer[func() Load] // see SetLoad

	proposals chan *proposal
	slots     chan struct{} // one per entry in flight
	stop      chan struct{}
	wg        sync.WaitGroup

	expired atomic.Uint64
	evicted atomic.Uint64

	track *tracker   // the near-cache's leader side: every node has one
	near  *nearCache // nil without a near-cache
}

// raftID is a node's id in the Raft group: a hash of its name (etcd raft
// numbers its members). A join whose hash collides with another member's
// is refused.
func raftID(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	if id := h.Sum64(); id != 0 && id != raft.LocalAppendThread && id != raft.LocalApplyThread {
		return id
	}
	return 1
}

// Open starts a node. With an empty data directory and no Join it
// bootstraps a new one-voter cluster; otherwise it restores its snapshot
// and log. A data directory of a release before the etcd raft core is
// converted first (upgrade.go).
func Open(cfg Config) (n *Node, err error) {
	cfg.setDefaults()
	if ln := cfg.PeerListener; ln != nil {
		defer func() {
			if err != nil {
				ln.Close() // a second Close (the peer mux's) is harmless
			}
		}()
	}
	startup := cfg.Startup
	if startup == nil {
		startup = context.Background()
	}
	interrupted := func() error {
		if err := startup.Err(); err != nil {
			return fmt.Errorf("startup interrupted: %w", err)
		}
		return nil
	}
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return nil, err
	}
	id, err := loadNodeID(cfg.DataDir, cfg.NodeID)
	if err != nil {
		return nil, err
	}
	// What this node applies, told to the others (see versions.go); the
	// caller's map is not changed.
	meta := map[string]string{metaLogOps: strconv.Itoa(cfg.LogOps)}
	for k, v := range cfg.Meta {
		meta[k] = v
	}
	cfg.Meta = meta
	n = &Node{
		cfg:        cfg,
		logOps:     cfg.LogOps,
		id:         id,
		rid:        raftID(id),
		log:        cfg.Logger.With("node", id),
		fsm:        newFSM(cfg.Databases, command.NewExecutor(cfg.ScriptCalls), cfg.LogOps),
		proposals:  make(chan *proposal, 4096),
		slots:      make(chan struct{}, maxInflightEntries),
		stop:       make(chan struct{}),
		members:    map[string]memberMeta{},
		leaderWake: make(chan struct{}, 1),
		knownPeers: map[uint64]knownPeer{},
		started:    time.Now(),
		events:     eventLog{node: id},
	}
	// Until the members are asked (admitOps), every one is taken to apply
	// what every release does.
	n.opsFloor.Store(int64(min(cfg.LogOps, command.LegacyOps)))
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.track = newTracker(n, leaseFor(cfg.ElectionTimeout))
	if cfg.NearCacheBytes > 0 {
		n.near = newNearCache(cfg.NearCacheBytes)
	}
	n.leaderFns.changed = make(chan struct{})
	n.SetMaxMemory(cfg.MaxMemory, cfg.Policy)

	// n is the named result, nil once an error is returned: close what
	// this n opened.
	ok, opened := false, n
	defer func() {
		if !ok {
			opened.closeStores()
		}
	}()
	if err := upgradeDataDir(raftDir, cfg.Databases, n.log); err != nil {
		return nil, err
	}
	if err := interrupted(); err != nil {
		return nil, err
	}
	if n.rlog, err = raftlog.Open(filepath.Join(raftDir, "log"), raftlog.Options{SegmentSize: cfg.LogSegmentSize, Logger: n.log}); err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	if err := interrupted(); err != nil {
		return nil, err
	}
	if n.snaps, err = raftlog.OpenSnapshots(filepath.Join(raftDir, "snap"), 2, n.log); err != nil {
		return nil, fmt.Errorf("open snapshots: %w", err)
	}
	if err := interrupted(); err != nil {
		return nil, err
	}
	if n.mux, err = newPeerMux(cfg.PeerListener, cfg.PeerAddr, cfg.Advertise, id, cfg.Secret, cfg.PeerTLS, n.log); err != nil {
		return nil, fmt.Errorf("peer port: %w", err)
	}
	n.peers = &peers{mux: n.mux}
	n.trans = transport.New(transport.Config{
		ID: n.rid, Handler: raftHandler{n}, Snapshots: snapshotSource{n.snaps}, Logger: n.log,
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			return n.mux.dial(connRaft, addr, time.Second)
		},
		OnConnection: n.peerConnection,
	})
	hs, _, err := n.rlog.InitialState()
	if err != nil {
		return nil, err
	}
	last, err := n.rlog.LastIndex()
	if err != nil {
		return nil, err
	}
	existing := last > 0 || hs.Term > 0
	var bootstrap []group.Member
	switch {
	case existing:
		n.replayUntil = hs.Commit
		n.recordf(EventStart, "%s started with its log (commit index %d)", id, hs.Commit)
	case len(cfg.Join) == 0:
		n.log.Info("bootstrapping a new cluster", "peer_addr", n.PeerAddr())
		bootstrap = []group.Member{{ID: n.rid, Name: id, Addr: n.PeerAddr()}}
		n.recordf(EventStart, "%s started a new cluster", id)
	default:
		n.recordf(EventStart, "%s started empty, joining via %s", id, strings.Join(cfg.Join, ", "))
	}
	// The snapshot restored at start is read through startup: restoring a
	// large one is the longest step.
	snapStore := &snapshotStore{s: n.snaps, startup: startup}
	n.group, err = group.Open(group.Config{
		ID: n.rid, Storage: n.rlog, Snapshots: snapStore, Transport: n.trans, StateMachine: n.fsm,
		Tick: cfg.ElectionTimeout / 10, ElectionTicks: 10, HeartbeatTicks: 1,
		SnapshotEntries: cfg.SnapshotThreshold, TrailingEntries: cfg.TrailingLogs,
		OnLeaderChange: n.leaderChanged, OnMembership: n.onMembership, OnMembers: n.syncPeers,
		OnSnapshot: n.snapshotEvent, Logger: n.log,
	}, bootstrap)
	if err != nil {
		if ierr := interrupted(); ierr != nil {
			return nil, ierr
		}
		return nil, fmt.Errorf("start raft: %w", err)
	}
	snapStore.opened.Store(true)
	n.mux.start(func(c net.Conn) { serveRPC(n.ctx, c, n.handleRPC) }, n.trans.Serve, n.learnPeer)
	ok = true
	n.wg.Add(4)
	go n.runProposer()
	go n.runExpirer()
	go n.runPromoter()
	go n.runLeaderObserver()
	if len(cfg.Join) > 0 {
		n.wg.Add(1)
		go n.runJoin(!existing)
	}
	if existing {
		n.wg.Add(1)
		go n.checkPeerAddr(hs.Commit)
	}
	if n.near != nil {
		n.wg.Add(1)
		go n.runLeaseKeeper()
	}
	return n, nil
}

// raftHandler hands what the transport receives to the group.
type raftHandler struct{ n *Node }

func (h raftHandler) Receive(msgs []raftpb.Message) { h.n.group.Step(msgs) }

// ReceiveSnapshot stores a snapshot streamed by the leader, then hands its
// message to raft, which installs it through the append thread.
func (h raftHandler) ReceiveSnapshot(m raftpb.Message, data io.Reader) error {
	// Raft refuses a snapshot at or below its commit index; storing one
	// would only push an older, useful file out of the two kept.
	if idx := m.Snapshot.Metadata.Index; idx <= h.n.group.CommitIndex() {
		return fmt.Errorf("snapshot at %d is not ahead of this node's commit index %d", idx, h.n.group.CommitIndex())
	}
	w, err := h.n.snaps.Create(m.Snapshot.Metadata)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, data); err != nil {
		_ = w.Abort()
		return err
	}
	if err := w.Commit(); err != nil {
		return err
	}
	h.n.log.Info("received a snapshot from the leader", "index", m.Snapshot.Metadata.Index, "term", m.Snapshot.Metadata.Term)
	h.n.group.Step([]raftpb.Message{m})
	return nil
}

func (h raftHandler) ReportUnreachable(id uint64)       { h.n.group.ReportUnreachable(id) }
func (h raftHandler) ReportSnapshot(id uint64, ok bool) { h.n.group.ReportSnapshot(id, ok) }

// snapshotSource lets the transport stream snapshot files.
type snapshotSource struct{ s *raftlog.Snapshots }

func (s snapshotSource) OpenSnapshot(meta raftpb.SnapshotMetadata) (io.ReadCloser, int64, error) {
	return s.s.Open(meta)
}

// snapshotStore adapts raftlog.Snapshots to the group's interface. Reads
// of a snapshot fail once startup is done (Config.Startup) while Open
// runs; group.Open is the only reader then.
type snapshotStore struct {
	s       *raftlog.Snapshots
	startup context.Context
	opened  atomic.Bool // Open returned: startup no longer applies
}

func (s *snapshotStore) Create(meta raftpb.SnapshotMetadata) (group.SnapshotWriter, error) {
	return s.s.Create(meta)
}

func (s *snapshotStore) Open(meta raftpb.SnapshotMetadata) (io.ReadCloser, int64, error) {
	rc, size, err := s.s.Open(meta)
	if err != nil || s.opened.Load() || s.startup == nil {
		return rc, size, err
	}
	return ctxReadCloser{rc, s.startup}, size, nil
}

// ctxReadCloser is a ReadCloser whose reads fail once ctx is done.
type ctxReadCloser struct {
	io.ReadCloser
	ctx context.Context
}

func (r ctxReadCloser) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.ReadCloser.Read(p)
}

// knownPeer is a peer the transport was told of: from the member table,
// or learned from the peer's own hello before the table named it.
type knownPeer struct {
	addr, name string
	member     bool
}

// syncPeers tells the transport where the members are; the group calls it
// whenever its member table changes. A peer that left the table is
// forgotten; one learned from its hello and not (yet) in the table is
// kept: a restarted node's table is rebuilt from its log only as fast as
// the leader, who may be that peer, lets it commit.
func (n *Node) syncPeers(ms []group.Member) {
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	seen := map[uint64]bool{}
	for _, m := range ms {
		if m.ID == n.rid {
			continue
		}
		seen[m.ID] = true
		if p := n.knownPeers[m.ID]; p.addr != m.Addr || !p.member {
			if p.addr != m.Addr {
				n.trans.SetPeer(m.ID, m.Addr)
			}
			n.knownPeers[m.ID] = knownPeer{addr: m.Addr, name: m.Name, member: true}
		}
	}
	for id, p := range n.knownPeers {
		if p.member && !seen[id] {
			n.trans.RemovePeer(id)
			delete(n.knownPeers, id)
		}
	}
	now := make(map[uint64]memberState, len(ms))
	for _, m := range ms {
		now[m.ID] = memberState{name: m.Name, addr: m.Addr, learner: m.Learner}
	}
	// Changes applied before this node was in the table (a joining node
	// catching up on the cluster's history) and those the log replays at
	// start are not news.
	_, wasMember := n.seenMembers[n.rid]
	if wasMember && n.group != nil && n.group.AppliedIndex() >= n.replayUntil {
		n.memberEvents(n.seenMembers, now)
	}
	n.seenMembers = now
}

// learnPeer takes the address a Raft dialer gives for itself when the
// member table has none for it yet: a joining or restarted node hears from
// the leader before its applied log names the leader, and must be able to
// answer.
func (n *Node) learnPeer(name, addr string) {
	id := raftID(name)
	if id == n.rid || addr == "" {
		return
	}
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	if _, ok := n.knownPeers[id]; !ok {
		n.trans.SetPeer(id, addr)
		n.knownPeers[id] = knownPeer{addr: addr, name: name}
	}
}

// peerAddr is where the node with Raft id id listens: from the member
// table, else from what it said in its hello.
func (n *Node) peerAddr(id uint64) (string, bool) {
	if m, ok := n.group.Member(id); ok && m.Addr != "" {
		return m.Addr, true
	}
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	p, ok := n.knownPeers[id]
	return p.addr, ok && p.addr != ""
}

// onMembership hears the log add or remove this node. A node that
// rejoins under its old name replays the removal of its former self and
// then its own addition, so the flag follows the last one.
func (n *Node) onMembership(member bool) {
	if member {
		n.removed.Store(false)
		return
	}
	n.onRemoved()
}

// onRemoved: this node was removed from the cluster. It stops serving
// (requests fail with ErrRemoved) and says why; started again with an
// empty data dir and --join, it is added back as a new member.
func (n *Node) onRemoved() {
	n.removed.Store(true)
	n.log.Error("this node was removed from the cluster and serves no more requests; to add it back, start it with an empty data dir and --join")
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
func (n *Node) PeerAddr() string { return n.mux.advertise.String() }

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
func (n *Node) IsLeader() bool { return n.group.IsLeader() }

// stateName is the node's role as INFO and the cluster API name it.
func (n *Node) stateName() string {
	switch {
	case n.removed.Load():
		return "Removed"
	case n.group.State() == raft.StateLeader:
		return "Leader"
	case n.group.State() == raft.StateFollower:
		return "Follower"
	}
	return "Candidate"
}

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

// Close stops the node: no new writes are taken, queued and in-flight
// writes finish, a snapshot is taken, and the group, the peer port and the
// stores are closed.
func (n *Node) Close() error {
	if !n.closing.CompareAndSwap(false, true) {
		return nil
	}
	n.HandOver()
	n.closeMu.Lock()
	n.closed = true
	n.closeMu.Unlock()
	// Let queued and in-flight entries finish, so that their writers get
	// answers.
	deadline := time.Now().Add(n.cfg.FailoverWait)
	for (len(n.slots) > 0 || len(n.proposals) > 0) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(n.stop)
	n.cancel()
	n.wg.Wait()
	// A snapshot of everything applied, so that the next start replays
	// little.
	var errs []error
	if n.group.Failed() {
		// Nothing can be written; the log holds what it held.
	} else if idx, err := n.group.Snapshot(); err != nil {
		errs = append(errs, fmt.Errorf("snapshot: %w", err))
	} else {
		n.log.Info("snapshot complete", "index", idx)
	}
	return errors.Join(append(errs, n.closeStores())...)
}

// Abort stops the node the way a crash would, for tests: no hand-over,
// queued writes fail. What is in the log stays, as after kill -9.
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
	n.trans.Close()
	n.mux.Close()
	n.wg.Wait()
	return n.closeStores()
}

// HandOver prepares a planned shutdown of the leader so that clients see no
// failure: requests stop being taken here (forwarded ones are answered
// "retry", the node's own wait for the next leader), requests being executed
// finish, leadership moves to another voter, and the peer port keeps
// answering "retry" until peers have stopped forwarding here: a request on a
// peer connection that closes unanswered could not be retried safely. It
// does nothing on a follower or a cluster of one. Close calls it.
func (n *Node) HandOver() {
	if !n.group.IsLeader() || !n.hasOtherVoters() {
		return
	}
	n.draining.Store(true)
	deadline := time.Now().Add(n.cfg.FailoverWait)
	for (n.serving.Load() > 0 || len(n.slots) > 0 || len(n.proposals) > 0) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := n.transfer(""); err != nil {
		n.log.Warn("leadership transfer before shutdown failed", "err", err)
		return
	}
	// Peers learn of the new leader from its first heartbeat, as this node
	// does; requests they forwarded before that are answered "retry" once
	// they arrive. Wait for the forwarding to stop.
	for time.Now().Before(deadline) {
		id, _ := n.group.Leader()
		quiet := time.Since(time.Unix(0, n.lastForward.Load())) >= handOverQuiet
		if id != 0 && id != n.rid && quiet && n.serving.Load() == 0 {
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
	for _, v := range n.group.Voters() {
		if v != n.rid {
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
	// The transport first: the mux waits for the connections it handed
	// over, and the transport closes its own. The group before the mux:
	// closing it answers the proposals that forwarded requests on the
	// mux's connections may still wait for.
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	if n.group != nil {
		errs = append(errs, n.group.Close())
	}
	if n.mux != nil {
		errs = append(errs, n.mux.Close())
	}
	if n.rlog != nil {
		errs = append(errs, n.rlog.Close())
	}
	return errors.Join(errs...)
}

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
	// AvgTTL estimates, per database, the mean time to live in ms of the
	// keys with one, from a sample (INFO's avg_ttl, an estimate in redis
	// too); 0 when there are none.
	AvgTTL []int64
	// CommitWaits counts the log entries held open for more writes
	// (see Config.CommitWait).
	CommitWaits uint64
	Near        NearStats
	// LogAppend is how long appending entries to this node's log took,
	// fsync included.
	LogAppend raftlog.Latency
}

// FollowerLag is, on the leader, how many committed entries each other
// member has not yet acknowledged, by member id; nil elsewhere.
func (n *Node) FollowerLag() map[string]uint64 {
	if !n.group.IsLeader() {
		return nil
	}
	st, err := n.group.Status()
	if err != nil {
		return nil
	}
	lag := map[string]uint64{}
	for id, pr := range st.Progress {
		if id == n.rid {
			continue
		}
		m, ok := n.group.Member(id)
		if !ok {
			continue
		}
		if pr.Match < st.Commit {
			lag[m.Name] = st.Commit - pr.Match
		} else {
			lag[m.Name] = 0
		}
	}
	return lag
}

// Stats reports the node's state.
func (n *Node) Stats() Stats {
	lid, leader := n.Leader()
	_, term := n.group.Leader()
	s := Stats{
		ID: n.id, State: n.stateName(), Leader: leader, LeaderID: lid,
		Term: term, CommitIndex: n.group.CommitIndex(), AppliedIndex: n.group.AppliedIndex(),
		LastSnapshotIndex: n.group.SnapshotIndex(),
		Snapshots:         n.fsm.snapshots.Load(), Restores: n.fsm.restores.Load(), LastSnapshotDuration: time.Duration(n.fsm.lastSnapshotNanos.Load()),
		Expired: n.expired.Load(), Evicted: n.evicted.Load(), CommitWaits: n.commitWaits.Load(),
		Near: n.NearStats(), LogAppend: n.rlog.AppendLatency(),
	}
	n.fsm.read(func(ks *keyspace.Keyspace) {
		s.UsedMemory = ks.Used()
		now := time.Now().UnixMilli()
		for db := 0; db < ks.Databases(); db++ {
			s.Keys = append(s.Keys, ks.Len(db))
			s.Volatile = append(s.Volatile, ks.VolatileLen(db))
			s.AvgTTL = append(s.AvgTTL, avgTTL(ks, db, now))
		}
	})
	return s
}

// Healthy is nil unless this node was removed from the cluster or its
// log could not be written.
func (n *Node) Healthy() error {
	switch {
	case n.removed.Load():
		return ErrRemoved
	case n.addrErr.Load() != nil:
		return *n.addrErr.Load()
	case n.group != nil && n.group.Halted() != nil:
		return fmt.Errorf("%w: %w", ErrUpgradeNeeded, n.group.Halted())
	case n.group != nil && n.group.Failed():
		return ErrStorageFailed
	}
	return nil
}

// Replayed reports whether the node has applied the log it had at start
// (what it knew when it stopped: its ACL users among the rest).
func (n *Node) Replayed() bool { return n.group.AppliedIndex() >= n.replayUntil }

// Ready reports whether the node can serve linearizable reads and writes:
// it leads and has applied everything committed before its term, or it
// knows a leader to forward to.
func (n *Node) Ready() bool {
	if n.Healthy() != nil {
		return false
	}
	if n.group.IsLeader() {
		return n.group.LeaderReady()
	}
	_, ok := n.currentLeader()
	return ok
}

// ttlSamples is how many keys with a TTL avgTTL looks at per database.
const ttlSamples = 32

// avgTTL estimates the mean TTL (ms) of db's keys that have one, from
// keys sampled at a random point of the expiry index.
func avgTTL(ks *keyspace.Keyspace, db int, now int64) int64 {
	if ks.VolatileLen(db) == 0 {
		return 0
	}
	var sum, n int64
	ks.SampleVolatileAt(db, mrand.Uint64(), ttlSamples, func(_ string, e *keyspace.Entry) bool {
		if e.ExpireAt > now {
			sum += e.ExpireAt - now
			n++
		}
		return true
	})
	if n == 0 {
		return 0
	}
	return sum / n
}

package group

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// memStorage is etcd's MemoryStorage with the writes Storage adds. It
// counts Append calls, so tests can see group commit.
type memStorage struct {
	*raft.MemoryStorage
	// durable is the hard state a crash would leave: term and vote are
	// saved when they change, the commit index only by SyncCommit (as
	// raftlog saves it lazily otherwise).
	durableMu sync.Mutex
	durable   raftpb.HardState
	appends   atomic.Int64
	broken    atomic.Bool // Append fails, as on a full disk
	// commitSyncs counts SyncCommit calls.
	commitSyncs atomic.Int64
}

func (s *memStorage) Append(hs raftpb.HardState, ents []raftpb.Entry) error {
	if s.broken.Load() {
		return errors.New("no space left on device")
	}
	s.appends.Add(1)
	s.durableMu.Lock()
	if !raft.IsEmptyHardState(hs) && (hs.Term != s.durable.Term || hs.Vote != s.durable.Vote) {
		s.durable.Term, s.durable.Vote = hs.Term, hs.Vote
	}
	s.durableMu.Unlock()
	if !raft.IsEmptyHardState(hs) {
		if err := s.SetHardState(hs); err != nil {
			return err
		}
	}
	return s.MemoryStorage.Append(ents)
}

// SyncCommit counts the calls; the memory holds everything anyway.
func (s *memStorage) SyncCommit(index uint64) error {
	s.commitSyncs.Add(1)
	s.durableMu.Lock()
	s.durable.Commit = max(s.durable.Commit, index)
	s.durableMu.Unlock()
	return nil
}

// crash leaves the hard state a crash would: the commit index last synced.
func (s *memStorage) crash() {
	hs, _, _ := s.InitialState()
	hs.Commit = max(s.durableCommit(), s.snapIndex())
	_ = s.SetHardState(hs)
}

func (s *memStorage) durableCommit() uint64 {
	s.durableMu.Lock()
	defer s.durableMu.Unlock()
	return s.durable.Commit
}

func (s *memStorage) snapIndex() uint64 {
	snap, _ := s.MemoryStorage.Snapshot()
	return snap.Metadata.Index
}

func (s *memStorage) InstallSnapshot(meta raftpb.SnapshotMetadata) error {
	return s.ApplySnapshot(raftpb.Snapshot{Metadata: meta})
}

func (s *memStorage) SetSnapshot(meta raftpb.SnapshotMetadata) error {
	_, err := s.CreateSnapshot(meta.Index, &meta.ConfState, nil)
	if errors.Is(err, raft.ErrSnapOutOfDate) {
		return nil
	}
	return err
}

// memSnapshots keeps snapshot data in memory.
type memSnapshots struct {
	mu    sync.Mutex
	files map[uint64][]byte
}

type memSnapWriter struct {
	bytes.Buffer
	s     *memSnapshots
	index uint64
}

func (w *memSnapWriter) Commit() error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.files == nil {
		w.s.files = map[uint64][]byte{}
	}
	w.s.files[w.index] = w.Bytes()
	return nil
}

func (w *memSnapWriter) Abort() error { return nil }

func (s *memSnapshots) Create(meta raftpb.SnapshotMetadata) (SnapshotWriter, error) {
	return &memSnapWriter{s: s, index: meta.Index}, nil
}

func (s *memSnapshots) Open(meta raftpb.SnapshotMetadata) (io.ReadCloser, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.files[meta.Index]
	if !ok {
		return nil, 0, fmt.Errorf("no snapshot %d", meta.Index)
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

// kv is a state machine of "key=value" entries; Apply answers the index.
type kv struct {
	mu       sync.Mutex
	m        map[string]string
	restores int
	old      bool // plays an older version: halts on keys starting "new:"
}

func (s *kv) Apply(index uint64, data []byte) any {
	k, v, _ := bytes.Cut(data, []byte("="))
	if s.old && bytes.HasPrefix(k, []byte("new:")) {
		return Halt{Err: errors.New("an op of a newer version")}
	}
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]string{}
	}
	s.m[string(k)] = string(v)
	s.mu.Unlock()
	return index
}

func (s *kv) Snapshot() func(io.Writer) error {
	s.mu.Lock()
	b, _ := json.Marshal(s.m)
	s.mu.Unlock()
	return func(w io.Writer) error { _, err := w.Write(b); return err }
}

func (s *kv) Restore(r io.Reader) error {
	m := map[string]string{}
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return err
	}
	s.mu.Lock()
	s.m = m
	s.restores++
	s.mu.Unlock()
	return nil
}

func (s *kv) get(k string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	return v, ok
}

// network connects groups in memory; links can be cut. Snapshots are
// copied from the sender's store to the receiver's, as the real transport
// streams them.
type network struct {
	mu    sync.Mutex
	nodes map[uint64]*testNode
	cut   map[[2]uint64]bool
}

type testNode struct {
	id    uint64
	g     *Group
	st    *memStorage
	snaps *memSnapshots
	sm    *kv
	inbox chan []raftpb.Message
	done  chan struct{}
}

type netTransport struct {
	n    *network
	from uint64
}

func (t netTransport) Send(msgs []raftpb.Message) {
	for _, m := range msgs {
		t.n.mu.Lock()
		to := t.n.nodes[m.To]
		from := t.n.nodes[t.from]
		cut := t.n.cut[[2]uint64{t.from, m.To}] || t.n.cut[[2]uint64{m.To, t.from}]
		t.n.mu.Unlock()
		if to == nil || cut {
			continue
		}
		if m.Type == raftpb.MsgSnap {
			r, _, err := from.snaps.Open(m.Snapshot.Metadata)
			if err == nil {
				var w SnapshotWriter
				w, err = to.snaps.Create(m.Snapshot.Metadata)
				if err == nil {
					_, err = io.Copy(w, r)
					_ = w.Commit()
				}
			}
			from.g.ReportSnapshot(m.To, err == nil)
			if err != nil {
				continue
			}
		}
		select {
		case to.inbox <- []raftpb.Message{m}:
		default: // a full inbox drops, as a real transport does
		}
	}
}

func newNetwork() *network {
	return &network{nodes: map[uint64]*testNode{}, cut: map[[2]uint64]bool{}}
}

func (n *network) start(t *testing.T, id uint64, bootstrap []Member, tweak func(*Config)) *testNode {
	t.Helper()
	tn := &testNode{id: id, st: &memStorage{MemoryStorage: raft.NewMemoryStorage()}, snaps: &memSnapshots{}, sm: &kv{}}
	return n.run(t, tn, bootstrap, tweak)
}

// restart starts a stopped node again on its storage, as after a crash:
// the commit index falls back to what was synced, the state machine
// starts empty and replays the log.
func (n *network) restart(t *testing.T, old *testNode) *testNode {
	t.Helper()
	old.st.crash()
	return n.run(t, &testNode{id: old.id, st: old.st, snaps: old.snaps, sm: &kv{}}, nil, nil)
}

// run opens tn's group on the network and delivers its inbox.
func (n *network) run(t *testing.T, tn *testNode, bootstrap []Member, tweak func(*Config)) *testNode {
	t.Helper()
	tn.inbox, tn.done = make(chan []raftpb.Message, 4096), make(chan struct{})
	cfg := Config{ID: tn.id, Storage: tn.st, Snapshots: tn.snaps, Transport: netTransport{n, tn.id}, StateMachine: tn.sm, Tick: 10 * time.Millisecond}
	if tweak != nil {
		tweak(&cfg)
	}
	g, err := Open(cfg, bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	tn.g = g
	n.mu.Lock()
	n.nodes[tn.id] = tn
	n.mu.Unlock()
	go func() {
		for {
			select {
			case msgs := <-tn.inbox:
				g.Step(msgs)
			case <-tn.done:
				return
			}
		}
	}()
	t.Cleanup(func() { tn.stop(n) })
	return tn
}

func (tn *testNode) stop(n *network) {
	n.mu.Lock()
	if n.nodes[tn.id] == tn {
		delete(n.nodes, tn.id)
		close(tn.done)
	}
	n.mu.Unlock()
	tn.g.Close()
}

func (n *network) setCut(a, b uint64, cut bool) {
	n.mu.Lock()
	n.cut[[2]uint64{a, b}] = cut
	n.mu.Unlock()
}

// waitFor waits for cond. The bound is generous: under CI's full parallel
// -race run (real clients and chaos processes beside it on 2 CPUs) a
// 100 ms election timeout is often missed, and forming a three-node group
// took over 10 s there once.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// propose proposes "key=value" and waits for the callback.
func propose(g *Group, kv string) (any, error) {
	data := append(make([]byte, ProposalHeader, ProposalHeader+len(kv)), kv...)
	type res struct {
		v   any
		err error
	}
	ch := make(chan res, 1)
	g.Propose(data, func(v any, err error) { ch <- res{v, err} })
	select {
	case r := <-ch:
		return r.v, r.err
	case <-time.After(30 * time.Second):
		return nil, errors.New("proposal callback never called")
	}
}

func readIndex(g *Group) (uint64, error) {
	type res struct {
		idx uint64
		err error
	}
	ch := make(chan res, 1)
	g.ReadIndex(func(idx uint64, err error) { ch <- res{idx, err} })
	r := <-ch
	return r.idx, r.err
}

func waitLeader(t *testing.T, nodes ...*testNode) *testNode {
	t.Helper()
	var leader *testNode
	waitFor(t, "a leader", func() bool {
		for _, n := range nodes {
			if n.g.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

func TestSingleNodeAnswersEachProposalWithItsOwnResult(t *testing.T) {
	net := newNetwork()
	n := net.start(t, 1, []Member{{ID: 1, Name: "n1", Addr: "a1"}}, nil)
	waitLeader(t, n)
	const writers = 50
	var wg sync.WaitGroup
	results := make([]uint64, writers)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := propose(n.g, fmt.Sprintf("k%d=v%d", i, i))
			if err != nil {
				t.Errorf("proposal %d: %v", i, err)
				return
			}
			results[i] = v.(uint64)
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for i, idx := range results {
		if idx == 0 || seen[idx] {
			t.Fatalf("proposal %d answered with index %d (duplicate or none)", i, idx)
		}
		seen[idx] = true
		if v, _ := n.sm.get(fmt.Sprint("k", i)); v != fmt.Sprint("v", i) {
			t.Fatalf("k%d = %q", i, v)
		}
	}
	if got := n.st.appends.Load(); got >= writers {
		t.Errorf("%d proposals took %d log appends: no group commit", writers, got)
	}
	idx, err := readIndex(n.g)
	if err != nil || idx < results[writers-1] && idx < n.g.CommitIndex() {
		t.Fatalf("read index %d %v", idx, err)
	}
	if m, ok := n.g.Member(1); !ok || m.Name != "n1" || m.Addr != "a1" || m.Learner {
		t.Fatalf("bootstrap member: %+v %v", m, ok)
	}
}

// threeNodes bootstraps node 1 and adds 2 and 3 as learners, then
// promotes them, as joining nodes are.
func threeNodes(t *testing.T, net *network, tweak func(*Config)) []*testNode {
	t.Helper()
	n1 := net.start(t, 1, []Member{{ID: 1, Name: "n1", Addr: "a1"}}, tweak)
	waitLeader(t, n1)
	nodes := []*testNode{n1}
	for id := uint64(2); id <= 3; id++ {
		nodes = append(nodes, net.start(t, id, nil, tweak))
		m := Member{ID: id, Name: fmt.Sprint("n", id), Addr: fmt.Sprint("a", id)}
		for _, op := range []func(*Group) func(Member, func(error)){
			func(g *Group) func(Member, func(error)) { return g.AddLearner },
			func(g *Group) func(Member, func(error)) { return g.Promote },
		} {
			// On a loaded machine leadership may move meanwhile; both
			// changes can be asked again of whoever leads.
			waitFor(t, fmt.Sprint("membership change for ", id), func() bool {
				ch := make(chan error, 1)
				op(waitLeader(t, nodes...).g)(m, func(err error) { ch <- err })
				err := <-ch
				if err != nil && !errors.Is(err, ErrUnknownOutcome) && !errors.Is(err, ErrDropped) && !errors.Is(err, ErrConfChangePending) {
					t.Fatalf("membership change for %d: %v", id, err)
				}
				return err == nil
			})
		}
	}
	for _, n := range nodes {
		waitFor(t, "members known everywhere", func() bool {
			ms := n.g.Members()
			return len(ms) == 3 && !ms[1].Learner && !ms[2].Learner && ms[2].Addr == "a3"
		})
	}
	return nodes
}

func TestThreeNodesReplicateReadOnFollowerAndFailOver(t *testing.T) {
	net := newNetwork()
	nodes := threeNodes(t, net, nil)
	leader := waitLeader(t, nodes...)
	var last uint64
	for i := 0; i < 20; i++ {
		v, err := propose(leader.g, fmt.Sprintf("k%d=%d", i, i))
		if err != nil {
			t.Fatal(err)
		}
		last = v.(uint64)
	}
	for _, n := range nodes {
		if n == leader {
			continue
		}
		// A follower proposing gets ErrDropped at once: the caller
		// forwards to the leader.
		if _, err := propose(n.g, "x=1"); !errors.Is(err, ErrDropped) {
			t.Fatalf("proposal on a follower: %v", err)
		}
		// A follower's read barrier comes from the leader and covers
		// every acknowledged write.
		idx, err := readIndex(n.g)
		if err != nil || idx < last {
			t.Fatalf("follower read index %d (last write %d): %v", idx, last, err)
		}
		ch := make(chan error, 1)
		n.g.WaitApplied(idx, func(err error) { ch <- err })
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
		if v, _ := n.sm.get("k19"); v != "19" {
			t.Fatalf("follower read after barrier: %q", v)
		}
	}

	// The leader goes away; the others elect one and go on.
	leader.stop(net)
	var rest []*testNode
	for _, n := range nodes {
		if n != leader {
			rest = append(rest, n)
		}
	}
	next := waitLeader(t, rest...)
	if _, err := propose(next.g, "after=failover"); err != nil {
		t.Fatal(err)
	}
	for _, n := range rest {
		waitFor(t, "write after failover applied", func() bool { v, _ := n.sm.get("after"); return v == "failover" })
	}
}

// A leader cut off from its followers steps down (CheckQuorum); what it
// proposed meanwhile is reported as of unknown outcome, never as done and
// never as safe to resend.
func TestDeposedLeaderFailsItsProposalsAsUnknown(t *testing.T) {
	net := newNetwork()
	nodes := threeNodes(t, net, nil)
	leader := waitLeader(t, nodes...)
	for _, n := range nodes {
		if n != leader {
			net.setCut(leader.id, n.id, true)
		}
	}
	_, err := propose(leader.g, "lost=maybe")
	if !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("proposal on a cut-off leader: %v", err)
	}
	var rest []*testNode
	for _, n := range nodes {
		if n != leader {
			rest = append(rest, n)
		}
	}
	next := waitLeader(t, rest...)
	if _, err := propose(next.g, "k=v"); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n != leader {
			net.setCut(leader.id, n.id, false)
		}
	}
	// Healed, the old leader follows the new one and catches up.
	waitFor(t, "old leader catches up", func() bool { v, _ := leader.sm.get("k"); return v == "v" })
	if leader.g.IsLeader() && next.g.IsLeader() {
		t.Fatal("two leaders")
	}
}

// A follower that missed entries compacted away gets a snapshot, restores
// it, and then follows the log.
func TestLaggingFollowerCatchesUpFromSnapshot(t *testing.T) {
	net := newNetwork()
	small := func(c *Config) { c.SnapshotEntries = 20; c.TrailingEntries = 5 }
	nodes := threeNodes(t, net, small)
	leader := waitLeader(t, nodes...)
	var lag *testNode
	for _, n := range nodes {
		if n != leader {
			lag = n
			break
		}
	}
	for _, n := range nodes {
		net.setCut(lag.id, n.id, true)
	}
	for i := 0; i < 100; i++ {
		if _, err := propose(leader.g, fmt.Sprintf("s%d=%d", i, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "leader compacted its log", func() bool {
		first, _ := leader.st.FirstIndex()
		return leader.g.SnapshotIndex() > 0 && first > lag.g.AppliedIndex()+1
	})
	for _, n := range nodes {
		net.setCut(lag.id, n.id, false)
	}
	waitFor(t, "lagging follower caught up", func() bool { v, _ := lag.sm.get("s99"); return v == "99" })
	lag.sm.mu.Lock()
	restores := lag.sm.restores
	lag.sm.mu.Unlock()
	if restores == 0 {
		t.Fatal("caught up without a snapshot: the test did not compact enough")
	}
	if len(lag.g.Members()) != 3 {
		t.Fatalf("members after restore: %v", lag.g.Members())
	}
}

func TestRemovedNodeIsToldSo(t *testing.T) {
	net := newNetwork()
	var removed atomic.Bool
	nodes := threeNodes(t, net, func(c *Config) {
		if c.ID == 3 {
			c.OnMembership = func(member bool) { removed.Store(!member) }
		}
	})
	leader := waitLeader(t, nodes...)
	if leader.id == 3 {
		t.Skip("node 3 leads; removal of a leader is another test")
	}
	ch := make(chan error, 1)
	leader.g.Remove(3, func(err error) { ch <- err })
	if err := <-ch; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node 3 told it was removed", removed.Load)
	if len(leader.g.Members()) != 2 {
		t.Fatalf("members: %v", leader.g.Members())
	}
}

func TestMergeEntriesOverwritesSuffix(t *testing.T) {
	e := func(idx, term uint64) raftpb.Entry { return raftpb.Entry{Index: idx, Term: term} }
	got := mergeEntries(nil, []raftpb.Entry{e(1, 1), e(2, 1), e(3, 1)})
	got = mergeEntries(got, []raftpb.Entry{e(2, 2)})
	got = mergeEntries(got, []raftpb.Entry{e(3, 2), e(4, 2)})
	want := []raftpb.Entry{e(1, 1), e(2, 2), e(3, 2), e(4, 2)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	if got := mergeEntries([]raftpb.Entry{e(5, 1)}, []raftpb.Entry{e(3, 3)}); len(got) != 1 || got[0].Index != 3 {
		t.Fatalf("overwrite from below the start: %v", got)
	}
}

// A follower whose log cannot be written stops acknowledging and says so;
// the leader and the other follower go on committing.
func TestFailedStorageStopsAcknowledging(t *testing.T) {
	net := newNetwork()
	nodes := threeNodes(t, net, nil)
	leader := waitLeader(t, nodes...)
	var broken *testNode
	for _, n := range nodes {
		if n != leader {
			broken = n
			break
		}
	}
	broken.st.broken.Store(true)
	for i := 0; i < 20; i++ {
		if _, err := propose(leader.g, fmt.Sprintf("d%d=%d", i, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the broken follower to report its failure", broken.g.Failed)
	if v, ok := broken.sm.get("d19"); ok {
		t.Fatalf("a follower that could not write its log applied d19=%q", v)
	}
	st, err := leader.g.Status()
	if err != nil {
		t.Fatal(err)
	}
	if pr := st.Progress[broken.id]; pr.Match >= leader.g.CommitIndex() {
		t.Fatalf("the broken follower acknowledged up to %d (commit %d)", pr.Match, leader.g.CommitIndex())
	}
	if leader.g.Failed() {
		t.Fatal("the leader reports a failure it does not have")
	}
}

// A node restarted after a crash comes back with at least the membership
// it had applied: the commit index is synced when a membership change is
// applied, though it is otherwise saved lazily. Without that, the
// bootstrapping leader came back as the only voter of its own cluster,
// able to elect itself beside the real leader.
func TestRestartKeepsAppliedMembership(t *testing.T) {
	net := newNetwork()
	nodes := threeNodes(t, net, nil)
	n1 := nodes[0]
	if got := n1.st.commitSyncs.Load(); got < 5 {
		t.Fatalf("%d commit syncs for 5 membership changes", got)
	}
	n1.stop(net)
	// Cut off from the others, it can only replay what it has.
	for _, n := range nodes[1:] {
		net.setCut(n1.id, n.id, true)
	}
	again := net.restart(t, n1)
	waitFor(t, "the restarted node to replay its committed log", func() bool {
		return again.g.AppliedIndex() >= again.st.durableCommit()
	})
	if v := again.g.Voters(); len(v) != 3 {
		t.Fatalf("restarted with voters %v, want all three", v)
	}
	time.Sleep(20 * 10 * time.Millisecond) // two election timeouts, cut off
	if again.g.IsLeader() {
		t.Fatal("a node cut off from the others elected itself")
	}
}

// A leader whose log cannot be written falls silent: the others elect a
// new leader, and what it was asked meanwhile fails as of unknown outcome
// instead of waiting for ever.
func TestLeaderWithFailedStorageIsReplaced(t *testing.T) {
	net := newNetwork()
	nodes := threeNodes(t, net, nil)
	leader := waitLeader(t, nodes...)
	leader.st.broken.Store(true)
	if _, err := propose(leader.g, "x=1"); !errors.Is(err, ErrUnknownOutcome) && !errors.Is(err, ErrDropped) {
		t.Fatalf("proposal on a leader with a failed disk: %v", err)
	}
	var rest []*testNode
	for _, n := range nodes {
		if n != leader {
			rest = append(rest, n)
		}
	}
	next := waitLeader(t, rest...)
	if _, err := propose(next.g, "y=2"); err != nil {
		t.Fatal(err)
	}
	if !leader.g.Failed() || leader.g.IsLeader() {
		t.Fatalf("old leader: failed %v, leads %v", leader.g.Failed(), leader.g.IsLeader())
	}
}

// A state machine that halts on an entry stops the group before it: the
// entry stays unapplied, the node reports why, and a restart with a state
// machine that knows the entry applies it and goes on.
func TestHaltStopsBeforeTheEntry(t *testing.T) {
	net := newNetwork()
	n := net.start(t, 1, []Member{{ID: 1, Name: "n1", Addr: "a1"}}, nil)
	n.sm.old = true
	waitLeader(t, n)
	if _, err := propose(n.g, "a=1"); err != nil {
		t.Fatal(err)
	}
	before := n.g.AppliedIndex()
	answered := make(chan error, 1)
	n.g.Propose(append(make([]byte, ProposalHeader), "new:x=2"...), func(_ any, err error) { answered <- err })
	waitFor(t, "the halt", n.g.Failed)
	if err := n.g.Halted(); err == nil || !strings.Contains(err.Error(), "newer version") {
		t.Fatalf("Halted = %v", err)
	}
	if got := n.g.AppliedIndex(); got != before {
		t.Fatalf("applied index %d after the halt, want %d (the halted entry is not applied)", got, before)
	}
	if _, ok := n.sm.get("new:x"); ok {
		t.Fatal("the halted entry was applied")
	}
	select {
	case err := <-answered:
		t.Fatalf("the halted entry's proposal was answered (%v) before the node stopped", err)
	default:
	}
	n.stop(net)
	select {
	case err := <-answered:
		if err == nil {
			t.Fatal("the halted entry's proposal was answered as a success")
		}
	default:
	}
	again := net.restart(t, n) // a new kv: it knows "new:" entries
	waitFor(t, "the entry applied after the upgrade", func() bool { v, _ := again.sm.get("new:x"); return v == "2" })
	if again.g.Failed() {
		t.Fatal("the restarted node still fails")
	}
}

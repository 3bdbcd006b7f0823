package group

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Member is one node of the group as the log knows it: Raft's numeric id,
// with the name and peer address the node joined with. Names and
// addresses travel in the membership change entries and in snapshots, so
// every node knows every member's address from the log alone.
type Member struct {
	ID      uint64 `json:"id"`
	Name    string `json:"name"`
	Addr    string `json:"addr"`
	Learner bool   `json:"learner,omitempty"`
}

// membersTable is written by the apply thread and read by anyone.
type membersTable struct {
	mu sync.RWMutex
	m  map[uint64]Member
}

func (t *membersTable) set(m Member) {
	t.mu.Lock()
	if t.m == nil {
		t.m = map[uint64]Member{}
	}
	t.m[m.ID] = m
	t.mu.Unlock()
}

func (t *membersTable) remove(id uint64) {
	t.mu.Lock()
	delete(t.m, id)
	t.mu.Unlock()
}

func (t *membersTable) get(id uint64) (Member, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	m, ok := t.m[id]
	return m, ok
}

func (t *membersTable) list() []Member {
	t.mu.RLock()
	out := make([]Member, 0, len(t.m))
	for _, m := range t.m {
		out = append(out, m)
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (t *membersTable) encode() []byte {
	b, _ := json.Marshal(t.list())
	return b
}

func (t *membersTable) decode(b []byte) error {
	var ms []Member
	if err := json.Unmarshal(b, &ms); err != nil {
		return err
	}
	t.mu.Lock()
	t.m = map[uint64]Member{}
	for _, m := range ms {
		t.m[m.ID] = m
	}
	t.mu.Unlock()
	return nil
}

// Members lists the group's members as of the last applied entry.
func (g *Group) Members() []Member { return g.members.list() }

// Member returns one member.
func (g *Group) Member(id uint64) (Member, bool) { return g.members.get(id) }

// A membership change's Context is the proposal id followed by the JSON of
// the member it concerns.
func encodeMemberContext(id propID, m Member) []byte {
	b, _ := json.Marshal(m)
	return append(id[:len(id):len(id)], b...)
}

// AddLearner proposes adding m as a learner (it receives the log but does
// not vote). done is called when the change is applied, or fails as a
// proposal does; ErrConfChangePending if another change is in progress.
func (g *Group) AddLearner(m Member, done func(error)) {
	m.Learner = true
	g.changeMembers(raftpb.ConfChangeAddLearnerNode, m, done)
}

// Promote proposes making learner m a voter.
func (g *Group) Promote(m Member, done func(error)) {
	m.Learner = false
	g.changeMembers(raftpb.ConfChangeAddNode, m, done)
}

// Update proposes a new address for member m.
func (g *Group) Update(m Member, done func(error)) {
	g.changeMembers(raftpb.ConfChangeUpdateNode, m, done)
}

// Remove proposes removing member id.
func (g *Group) Remove(id uint64, done func(error)) {
	g.changeMembers(raftpb.ConfChangeRemoveNode, Member{ID: id}, done)
}

func (g *Group) changeMembers(typ raftpb.ConfChangeType, m Member, done func(error)) {
	if !g.confBusy.CompareAndSwap(false, true) {
		done(ErrConfChangePending)
		return
	}
	b, _ := json.Marshal(m)
	cc := &raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{{Type: typ, NodeID: m.ID}}, Context: b}
	// Raft refuses a change it cannot take without telling (the entry
	// becomes an empty one), so the slot is freed by whichever comes
	// first: the change applied, a failure, or the timeout.
	var once atomic.Bool
	finish := func(err error) {
		if once.CompareAndSwap(false, true) {
			g.confBusy.Store(false)
			done(err)
		}
	}
	timer := time.AfterFunc(g.cfg.ConfChangeTimeout, func() { finish(ErrUnknownOutcome) })
	g.submit(proposal{cc: cc, done: func(_ any, err error) {
		timer.Stop()
		finish(err)
	}})
}

// applyConfChange applies a committed membership change: raft's
// configuration (on the loop, which owns the RawNode), then the member
// table, then the proposer's callback.
func (g *Group) applyConfChange(index uint64, cc raftpb.ConfChangeV2) {
	// The commit index must be on disk at this entry before the change
	// takes effect here: a node restarted below it would campaign with
	// the configuration before it, and with one more change committed
	// meanwhile its quorum and its peers' need not overlap. Membership
	// changes are rare, so the extra fsync costs nothing.
	if err := g.syncCommit(index); err != nil {
		g.fatal("save the commit index", err)
		return
	}
	var cs *raftpb.ConfState
	if err := g.onLoop(func() { cs = g.rn.ApplyConfChange(cc) }); err != nil {
		return
	}
	g.confState.Store(cs)
	var id propID
	var m Member
	if len(cc.Context) >= ProposalHeader {
		id = propID(cc.Context[:ProposalHeader])
		if err := json.Unmarshal(cc.Context[ProposalHeader:], &m); err != nil {
			g.log.Warn("membership change without a member description", "index", index, "err", err)
		}
	}
	for _, c := range cc.Changes {
		switch c.Type {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			mm := m
			if mm.ID != c.NodeID {
				mm, _ = g.members.get(c.NodeID)
				mm.ID = c.NodeID
			}
			mm.Learner = c.Type == raftpb.ConfChangeAddLearnerNode
			g.members.set(mm)
			g.log.Info("member added", "id", c.NodeID, "name", mm.Name, "addr", mm.Addr, "learner", mm.Learner, "index", index)
			if c.NodeID == g.cfg.ID && g.cfg.OnMembership != nil {
				g.cfg.OnMembership(true)
			}
		case raftpb.ConfChangeRemoveNode:
			g.members.remove(c.NodeID)
			g.log.Info("member removed", "id", c.NodeID, "index", index)
			if c.NodeID == g.cfg.ID && g.cfg.OnMembership != nil {
				g.cfg.OnMembership(false)
			}
		case raftpb.ConfChangeUpdateNode:
			if old, ok := g.members.get(c.NodeID); ok && m.ID == c.NodeID {
				m.Learner = old.Learner
				g.members.set(m)
				g.log.Info("member moved", "id", c.NodeID, "name", m.Name, "addr", m.Addr, "index", index)
			}
		}
	}
	g.membersChanged()
	if id != (propID{}) {
		if done := g.take(id); done != nil {
			done(nil, nil)
		}
	}
}

// String describes a member for logs.
func (m Member) String() string { return fmt.Sprintf("%s(%x)@%s", m.Name, m.ID, m.Addr) }

func (g *Group) membersChanged() {
	if g.cfg.OnMembers != nil {
		g.cfg.OnMembers(g.members.list())
	}
}

// syncCommit has the append thread, which owns the storage's writes, make
// the commit index durable at index, and waits for it.
func (g *Group) syncCommit(index uint64) error {
	done := make(chan error, 1)
	g.appendq.push(appendJob{upkeep: func() error {
		err := g.cfg.Storage.SyncCommit(index)
		done <- err
		return err
	}})
	select {
	case err := <-done:
		return err
	case <-g.stop:
		return ErrStopped
	}
}

package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hatcheck/hatcheck/internal/cluster/group"
	"github.com/hatcheck/hatcheck/internal/command"
)

// Membership: a node started with Join asks the cluster to add it. The
// leader adds it as a learner (a non-voter), so that a node still copying the log or a
// snapshot never counts toward a quorum; the node asks to be promoted once
// the leader sees it within promoteSlack entries of the commit index. A node whose data dir
// was lost (it joins "fresh") loses its old vote: any member with its id or
// its address is removed first and it starts over as a non-voter.

// promoteSlack is how far behind the leader's last index a non-voter may
// be when it is promoted.
const promoteSlack = 1024

// errNotMember is how a leader refuses the join of a node that has data but
// is not a member (it was removed); the joining node recognises it in the
// reply's text.
const errNotMember = "is not a member of this cluster (it was removed)"

// membershipTimeout bounds one configuration change.
const membershipTimeout = 10 * time.Second

// controlRequest is a membership or information request between nodes.
type controlRequest struct {
	Op    string `json:"op"` // info | join | promote | remove | transfer
	ID    string `json:"id,omitempty"`
	Addr  string `json:"addr,omitempty"`
	Fresh bool   `json:"fresh,omitempty"`
	// Events asks an info reply to carry the node's recent events.
	Events bool `json:"events,omitempty"`
}

type controlReply struct {
	Error string    `json:"error,omitempty"`
	Info  *NodeInfo `json:"info,omitempty"`
}

// NodeInfo is what a node tells others about itself. Fields after Meta
// were added for the dashboard: a node of an older release leaves them
// out (zero).
type NodeInfo struct {
	ID         string            `json:"id"`
	PeerAddr   string            `json:"peer_addr"`
	State      string            `json:"state"`
	LeaderID   string            `json:"leader_id"`
	LeaderAddr string            `json:"leader_addr"`
	Term       uint64            `json:"term"`
	Applied    uint64            `json:"applied_index"`
	Meta       map[string]string `json:"meta,omitempty"`

	Commit uint64 `json:"commit_index,omitempty"`
	// Health is "ok", or why the node cannot serve (Healthy's error).
	Health     string    `json:"health,omitempty"`
	Started    time.Time `json:"started,omitzero"`
	Keys       int       `json:"keys"` // in every database, expired keys not yet deleted included
	UsedMemory int64     `json:"used_memory"`
	Load       *Load     `json:"load,omitempty"`   // nil until SetLoad
	Events     []Event   `json:"events,omitempty"` // only when asked for
}

// Load is a node's recent client work, as its front ends measured it
// over the last few seconds (the server measures; see SetLoad).
type Load struct {
	OpsPerSec float64 `json:"ops_per_sec"`
	// Command latency percentiles in seconds (0 when no command ran).
	P50     float64 `json:"p50_seconds"`
	P99     float64 `json:"p99_seconds"`
	Clients int     `json:"clients"` // connected now
}

// SetLoad sets where Info finds the node's recent load. fn is called for
// every info request, from any goroutine, and must be quick.
func (n *Node) SetLoad(fn func() Load) { n.load.Store(&fn) }

// Info describes this node.
func (n *Node) Info() NodeInfo {
	st := n.Stats()
	info := NodeInfo{
		ID: n.id, PeerAddr: n.PeerAddr(), State: st.State, Term: st.Term,
		Applied: st.AppliedIndex, Commit: st.CommitIndex, Meta: n.cfg.Meta,
		LeaderID: st.LeaderID, LeaderAddr: st.Leader, Health: "ok", Started: n.started, UsedMemory: st.UsedMemory,
	}
	if err := n.Healthy(); err != nil {
		info.Health = err.Error()
	}
	for _, k := range st.Keys {
		info.Keys += k
	}
	if fn := n.load.Load(); fn != nil {
		l := (*fn)()
		info.Load = &l
	}
	return info
}

// selfInfo is Info, with the recent events if asked for.
func (n *Node) selfInfo(events bool) NodeInfo {
	info := n.Info()
	if events {
		info.Events = n.Events()
	}
	return info
}

func (n *Node) handleControl(payload []byte) (byte, []byte) {
	var req controlRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return rpcError, command.AppendTxResult(nil, command.TxResult{Err: fmt.Errorf("bad control request: %v", err)})
	}
	if req.Op == "info" {
		info := n.selfInfo(req.Events)
		b, _ := json.Marshal(controlReply{Info: &info})
		return rpcOK, b
	}
	if !n.leads() {
		return rpcRetry, nil
	}
	var rep controlReply
	if err := n.applyControl(req); err != nil {
		rep.Error = err.Error()
	}
	b, _ := json.Marshal(rep)
	return rpcOK, b
}

// applyControl carries out a membership request on the leader. It waits
// until this leader has applied an entry of its own term: raft takes no
// membership change before that.
func (n *Node) applyControl(req controlRequest) error {
	if err := n.waitFor(n.ctx, func() bool { return n.group.LeaderReady() || !n.group.IsLeader() }); err != nil {
		return err
	}
	if !n.group.IsLeader() {
		return errRetry
	}
	switch req.Op {
	case "join":
		return n.addMember(req.ID, req.Addr, req.Fresh)
	case "promote":
		return n.promote(req.ID)
	case "remove":
		m, ok := n.member(req.ID)
		if !ok {
			return fmt.Errorf("no member %q", req.ID)
		}
		return n.changeMembers(func(done func(error)) { n.group.Remove(m.ID, done) })
	case "transfer":
		return n.transfer(req.ID)
	}
	return fmt.Errorf("unknown control operation %q", req.Op)
}

// changeMembers runs one membership change and waits for it to be applied.
func (n *Node) changeMembers(op func(done func(error))) error {
	ch := make(chan error, 1)
	op(func(err error) { ch <- err })
	select {
	case err := <-ch:
		return err
	case <-n.stop:
		return ErrShutdown
	}
}

// transfer hands leadership to the member id, or to the voter whose log
// is the most complete when id is "", and waits until this node no longer
// leads (up to FailoverWait).
func (n *Node) transfer(id string) error {
	var to uint64
	if id != "" {
		m, ok := n.member(id)
		if !ok {
			return fmt.Errorf("no member %q", id)
		}
		if m.Learner {
			return fmt.Errorf("member %q does not vote yet", id)
		}
		to = m.ID
	} else {
		st, err := n.group.Status()
		if err != nil {
			return err
		}
		var best uint64
		for pid, pr := range st.Progress {
			if pid != n.rid && !pr.IsLearner && (to == 0 || pr.Match > best) {
				to, best = pid, pr.Match
			}
		}
		if to == 0 {
			return errors.New("no other voter to hand leadership to")
		}
	}
	// A transfer elects the next leader at once, without the election
	// timeout that near-cache leases count on: end them first.
	n.track.revoke()
	if err := n.group.TransferLeadership(to); err != nil {
		n.track.unrevoke()
		return err
	}
	if err := n.waitFor(n.ctx, func() bool { return !n.group.IsLeader() }); err != nil {
		n.track.unrevoke()
		return err
	}
	return nil
}

// control sends a membership request to the leader, waiting for one up to
// FailoverWait.
func (n *Node) control(ctx context.Context, req controlRequest) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	return n.route(ctx, func(leader string, _ <-chan struct{}) (bool, error) {
		if leader == "" {
			err := n.applyControl(req)
			return errors.Is(err, errRetry), err
		}
		st, body, err := n.peers.call(ctx, leader, rpcControl, b)
		if err != nil {
			return errors.Is(err, errNotSent), err
		}
		return st == rpcRetry, controlResult(st, body)
	})
}

func controlResult(st byte, body []byte) error {
	switch st {
	case rpcRetry:
		return errRetry
	case rpcOK:
		var rep controlReply
		if err := json.Unmarshal(body, &rep); err != nil {
			return err
		}
		if rep.Error != "" {
			return errors.New(rep.Error)
		}
		return nil
	}
	res, err := command.DecodeTxResult(body)
	if err != nil {
		return err
	}
	return res.Err
}

// member finds a member by node id.
func (n *Node) member(id string) (group.Member, bool) {
	return n.group.Member(raftID(id))
}

// addMember adds a joining node as a learner (see the package comment
// above). A known node at a new address keeps its vote.
func (n *Node) addMember(id, addr string, fresh bool) error {
	if id == "" || addr == "" {
		return errors.New("join: node id and address are required")
	}
	if id == n.id {
		return fmt.Errorf("join: node id %q is the leader's own", id)
	}
	rid := raftID(id)
	if _, ok := n.group.Member(rid); !ok && !fresh {
		// A node with a log believes it is a member: if the cluster does
		// not, it was removed, and must not slip back in unnoticed.
		return fmt.Errorf("join: node %q %s; to add it back, start it with an empty data dir", id, errNotMember)
	}
	for _, m := range n.group.Members() {
		switch {
		case m.ID == rid && m.Name != id:
			return fmt.Errorf("join: node id %q collides with member %q; choose another --node-id", id, m.Name)
		case m.ID == rid && m.Addr == addr && !(fresh && !m.Learner):
			return nil // already a member (a repeated join)
		case m.ID == rid && !fresh:
			n.log.Info("member moved", "id", id, "from", m.Addr, "to", addr)
			return n.changeMembers(func(done func(error)) { n.group.Update(group.Member{ID: rid, Name: id, Addr: addr}, done) })
		case m.ID == rid || m.Addr == addr:
			if m.ID == n.rid {
				return fmt.Errorf("join: address %s is the leader's own", addr)
			}
			n.log.Info("removing a member's old identity before it rejoins", "id", m.Name, "address", m.Addr, "new_id", id)
			if err := n.changeMembers(func(done func(error)) { n.group.Remove(m.ID, done) }); err != nil {
				return err
			}
		}
	}
	n.log.Info("adding member as learner", "id", id, "address", addr)
	return n.changeMembers(func(done func(error)) { n.group.AddLearner(group.Member{ID: rid, Name: id, Addr: addr}, done) })
}

// promote makes a caught-up learner a voter: the leader's own record of
// how much of the log the learner holds decides.
func (n *Node) promote(id string) error {
	m, ok := n.member(id)
	if !ok {
		return fmt.Errorf("no member %q", id)
	}
	if !m.Learner {
		return nil
	}
	st, err := n.group.Status()
	if err != nil {
		return err
	}
	pr, ok := st.Progress[m.ID]
	if !ok {
		return fmt.Errorf("no progress known for %q", id)
	}
	if last := st.Commit; last > pr.Match+promoteSlack {
		return fmt.Errorf("not caught up: holds %d of %d", pr.Match, last)
	}
	n.log.Info("promoting member to voter", "id", id, "match", pr.Match)
	return n.changeMembers(func(done func(error)) { n.group.Promote(m, done) })
}

// runJoin asks the cluster at cfg.Join to add this node, retrying until it
// succeeds or the node closes.
func (n *Node) runJoin(fresh bool) {
	defer n.wg.Done()
	req := controlRequest{Op: "join", ID: n.id, Addr: n.PeerAddr(), Fresh: fresh}
	for attempt := 0; ; attempt++ {
		err := n.joinOnce(req)
		if err == nil {
			n.log.Info("joined the cluster", "via", n.cfg.Join)
			return
		}
		if strings.Contains(err.Error(), errNotMember) {
			n.onRemoved()
			return
		}
		if attempt%10 == 0 {
			n.log.Warn("join failed; retrying", "via", n.cfg.Join, "err", err)
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-n.stop:
			return
		}
	}
}

// joinOnce asks the nodes at cfg.Join, in turn, who leads, then asks the
// leader.
func (n *Node) joinOnce(req controlRequest) error {
	ctx, cancel := context.WithTimeout(n.ctx, membershipTimeout+5*time.Second)
	defer cancel()
	var info NodeInfo
	var errs []error
	for _, addr := range n.cfg.Join {
		i, err := n.peerInfo(ctx, addr, false)
		if err == nil && i.LeaderAddr == "" {
			err = errors.New("it knows no leader yet")
		}
		if err == nil {
			info = i
			break
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	if info.LeaderAddr == "" {
		return errors.Join(errs...)
	}
	b, _ := json.Marshal(req)
	st, body, err := n.peers.call(ctx, info.LeaderAddr, rpcControl, b)
	if err != nil {
		return err
	}
	return controlResult(st, body)
}

// peerInfo asks the node at addr to describe itself, with its recent
// events if asked for.
func (n *Node) peerInfo(ctx context.Context, addr string, events bool) (NodeInfo, error) {
	if addr == n.PeerAddr() {
		return n.selfInfo(events), nil
	}
	b, _ := json.Marshal(controlRequest{Op: "info", Events: events})
	st, body, err := n.peers.call(ctx, addr, rpcControl, b)
	if err != nil {
		return NodeInfo{}, err
	}
	if st != rpcOK {
		return NodeInfo{}, controlResult(st, body)
	}
	var rep controlReply
	if err := json.Unmarshal(body, &rep); err != nil || rep.Info == nil {
		return NodeInfo{}, fmt.Errorf("bad info reply from %s: %v", addr, err)
	}
	return *rep.Info, nil
}

// runPromoter asks the leader to promote this node while it is a
// non-voter.
func (n *Node) runPromoter() {
	defer n.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-n.stop:
			return
		}
		m, ok := n.member(n.id)
		if !ok || !m.Learner {
			continue
		}
		leader, ok := n.currentLeader()
		if !ok || leader == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, membershipTimeout)
		b, _ := json.Marshal(controlRequest{Op: "promote", ID: n.id})
		st, body, err := n.peers.call(ctx, leader, rpcControl, b)
		if err == nil {
			err = controlResult(st, body)
		}
		cancel()
		if err != nil {
			n.log.Debug("promotion not granted yet", "err", err)
		}
	}
}

// Member is one server in the cluster's configuration.
type Member struct {
	ID       string    `json:"id"`
	PeerAddr string    `json:"peer_addr"`
	Voter    bool      `json:"voter"`
	Leader   bool      `json:"leader"`
	Info     *NodeInfo `json:"info,omitempty"` // nil when the node did not answer
	Error    string    `json:"error,omitempty"`
}

// Servers lists the configuration as this node knows it, without asking
// anyone.
func (n *Node) Servers() []Member {
	lid, _ := n.group.Leader()
	var out []Member
	for _, m := range n.group.Members() {
		out = append(out, Member{ID: m.Name, PeerAddr: m.Addr, Voter: !m.Learner, Leader: m.ID == lid})
	}
	return out
}

// Progress is, on the leader, how much of the log each member has
// (Raft's match index), by member name: what INFO reports as the
// replicas' offsets. It is nil on a follower. It waits for the Raft loop
// once.
func (n *Node) Progress() map[string]uint64 {
	if !n.group.IsLeader() {
		return nil
	}
	st, err := n.group.Status()
	if err != nil {
		return nil
	}
	out := map[string]uint64{}
	for _, m := range n.group.Members() {
		if pr, ok := st.Progress[m.ID]; ok {
			out[m.Name] = pr.Match
		}
	}
	return out
}

// memberInfoTimeout bounds waiting for one member to describe itself.
const memberInfoTimeout = 2 * time.Second

// Members lists the configuration, asking every member to describe itself
// (members that do not answer within the context have no Info).
func (n *Node) Members(ctx context.Context) ([]Member, error) {
	return n.askMembers(ctx, false), nil
}

// MembersWithEvents is Members with each member's recent events in its
// Info, for the dashboard.
func (n *Node) MembersWithEvents(ctx context.Context) []Member {
	return n.askMembers(ctx, true)
}

func (n *Node) askMembers(ctx context.Context, events bool) []Member {
	out := n.Servers()
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, memberInfoTimeout)
			defer cancel()
			info, err := n.memberInfo(ctx, out[i].ID, out[i].PeerAddr, events)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Info = &info
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// MemberInfo asks a member to describe itself, remembering the answer's
// metadata (addresses do not change while a node runs).
func (n *Node) MemberInfo(ctx context.Context, id, peerAddr string) (NodeInfo, error) {
	return n.memberInfo(ctx, id, peerAddr, false)
}

func (n *Node) memberInfo(ctx context.Context, id, peerAddr string, events bool) (NodeInfo, error) {
	if id == n.id {
		return n.selfInfo(events), nil
	}
	info, err := n.peerInfo(ctx, peerAddr, events)
	if err == nil && info.ID != id {
		err = fmt.Errorf("node at %s is %q, not %q", peerAddr, info.ID, id)
	}
	n.metaMu.Lock()
	defer n.metaMu.Unlock()
	if err != nil {
		if m, ok := n.members[id]; !ok || m.meta == nil {
			n.members[id] = memberMeta{addr: peerAddr, failed: time.Now()}
		}
		return NodeInfo{}, err
	}
	n.members[id] = memberMeta{addr: peerAddr, meta: info.Meta}
	return info, nil
}

// metaRetry is how long a member that did not answer is not asked again
// for its metadata, so that discovery commands do not each wait for it.
const metaRetry = 5 * time.Second

// Meta returns a member's metadata, from memory when known.
// MetaCached is Meta without asking anyone: known is false when only
// asking the member would tell (its metadata was never fetched, or its
// last failure is old enough to try again). A member that recently failed
// to answer is known, with nil metadata.
func (n *Node) MetaCached(id string) (meta map[string]string, known bool) {
	if id == n.id {
		return n.cfg.Meta, true
	}
	s, ok := n.member(id)
	if !ok {
		return nil, true
	}
	n.metaMu.Lock()
	m, ok := n.members[id]
	n.metaMu.Unlock()
	switch {
	case !ok || m.addr != s.Addr:
		return nil, false
	case m.meta != nil:
		return m.meta, true
	}
	return nil, time.Since(m.failed) < metaRetry
}

func (n *Node) Meta(ctx context.Context, id string) (map[string]string, error) {
	if id == n.id {
		return n.cfg.Meta, nil
	}
	s, ok := n.member(id)
	if !ok {
		return nil, fmt.Errorf("no member %q", id)
	}
	n.metaMu.Lock()
	m, ok := n.members[id]
	n.metaMu.Unlock()
	if ok && m.addr == s.Addr {
		if m.meta != nil {
			return m.meta, nil
		}
		if time.Since(m.failed) < metaRetry {
			return nil, fmt.Errorf("member %q did not answer", id)
		}
	}
	info, err := n.MemberInfo(ctx, id, s.Addr)
	return info.Meta, err
}

// memberMeta is what a member said about itself, or when it last failed
// to answer (meta nil).
type memberMeta struct {
	addr   string
	meta   map[string]string
	failed time.Time
}

// Remove takes a member out of the cluster.
func (n *Node) Remove(ctx context.Context, id string) error {
	if _, ok := n.member(id); !ok {
		return fmt.Errorf("no member %q", id)
	}
	return n.control(ctx, controlRequest{Op: "remove", ID: id})
}

// TransferLeadership asks the leader to hand leadership to the member id,
// or to the most up-to-date voter when id is "".
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	return n.control(ctx, controlRequest{Op: "transfer", ID: id})
}

// Leader returns the leader's id and peer address ("" when none is known).
func (n *Node) Leader() (id, peerAddr string) {
	lid, _ := n.group.Leader()
	if m, ok := n.group.Member(lid); ok {
		return m.Name, m.Addr
	}
	return "", ""
}

// OnLeaderChange registers fn to be called, from one goroutine, with the
// new leader's id ("" while there is none) whenever leadership changes.
func (n *Node) OnLeaderChange(fn func(leaderID string)) {
	n.leaderFns.Lock()
	n.leaderFns.fns = append(n.leaderFns.fns, fn)
	n.leaderFns.Unlock()
}

// leaderChange returns a channel closed at the next leadership change.
func (n *Node) leaderChange() <-chan struct{} {
	n.leaderFns.Lock()
	defer n.leaderFns.Unlock()
	return n.leaderFns.changed
}

// leaderEpoch is the number of leadership changes so far.
func (n *Node) leaderEpoch() uint64 {
	n.leaderFns.Lock()
	defer n.leaderFns.Unlock()
	return n.leaderFns.epoch
}

// watchLeader calls fn once at the first leadership change after epoch
// (at once if there was one already) and returns the key that unwatch
// takes. fn runs on the group's loop and must not block.
func (n *Node) watchLeader(epoch uint64, fn func()) uint64 {
	n.leaderFns.Lock()
	if n.leaderFns.epoch != epoch {
		n.leaderFns.Unlock()
		fn()
		return 0
	}
	n.leaderFns.nextW++
	key := n.leaderFns.nextW
	if n.leaderFns.watchers == nil {
		n.leaderFns.watchers = map[uint64]func(){}
	}
	n.leaderFns.watchers[key] = fn
	n.leaderFns.Unlock()
	return key
}

// unwatch forgets a watchLeader function that has not run.
func (n *Node) unwatch(key uint64) {
	if key == 0 {
		return
	}
	n.leaderFns.Lock()
	delete(n.leaderFns.watchers, key)
	n.leaderFns.Unlock()
}

// leaderChanged is the group's OnLeaderChange: it runs on the group's loop,
// so it only wakes what waits and leaves the callbacks to
// runLeaderObserver.
func (n *Node) leaderChanged(leader, term uint64) {
	n.track.leaderChanged(leader == n.rid, term)
	n.leaderFns.Lock()
	close(n.leaderFns.changed)
	n.leaderFns.changed = make(chan struct{})
	n.leaderFns.epoch++
	watchers := n.leaderFns.watchers
	n.leaderFns.watchers = nil
	n.leaderFns.Unlock()
	for _, w := range watchers {
		w()
	}
	select {
	case n.leaderWake <- struct{}{}:
	default:
	}
}

// runLeaderObserver calls the OnLeaderChange functions with the leader's
// name once the member table knows it.
func (n *Node) runLeaderObserver() {
	defer n.wg.Done()
	last := "\x00"
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.leaderWake:
		case <-t.C:
		case <-n.stop:
			return
		}
		id, _ := n.Leader()
		if id == last {
			continue
		}
		// Before its first leader a starting node knows none: not news.
		if id != "" || last != "\x00" {
			n.leaderEvent(id)
		}
		last = id
		n.leaderFns.Lock()
		fns := append([]func(string){}, n.leaderFns.fns...)
		n.leaderFns.Unlock()
		for _, fn := range fns {
			fn(id)
		}
	}
}

// ErrPeerAddrChanged: the node was restarted with a peer address other
// than the one the cluster knows it by. The other members keep sending to
// the old address, so the node would never hear from them; it serves
// nothing and says how to fix it.
var ErrPeerAddrChanged = errors.New("this node's peer address is not the one the cluster knows it by")

// checkPeerAddr compares, once the log this node had at start (up to
// commit) is applied, the peer address the configuration holds for this
// node with the one it has now.
func (n *Node) checkPeerAddr(commit uint64) {
	defer n.wg.Done()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for n.group.AppliedIndex() < commit {
		select {
		case <-t.C:
		case <-n.stop:
			return
		}
	}
	m, ok := n.group.Member(n.rid)
	if !ok || m.Addr == n.PeerAddr() {
		return
	}
	if n.soleVoter() {
		// Nobody dials this node: it records its new address itself, so
		// that nodes joining later reach it.
		n.updateOwnAddr(m)
		return
	}
	err := fmt.Errorf("%w: the cluster knows node %s at %s, but it now has %s, so the others cannot reach it; "+
		"start it with --peer-addr (or --peer-advertise) %s, or remove it (hatcheck cluster remove %s) and start it with an empty data dir and --join",
		ErrPeerAddrChanged, n.id, m.Addr, n.PeerAddr(), m.Addr, n.id)
	n.addrErr.Store(&err)
	n.log.Error(err.Error())
}

// updateOwnAddr records this node's new peer address in the configuration,
// once it leads (a sole voter elects itself at once).
func (n *Node) updateOwnAddr(m group.Member) {
	old := m.Addr
	m.Addr = n.PeerAddr()
	deadline := time.Now().Add(n.cfg.FailoverWait)
	for !n.group.IsLeader() {
		if time.Now().After(deadline) {
			n.log.Warn("peer address changed, but this node did not lead in time to record it", "old", old, "new", m.Addr)
			return
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-n.stop:
			return
		}
	}
	if err := n.changeMembers(func(done func(error)) { n.group.Update(m, done) }); err != nil {
		n.log.Warn("peer address changed, but recording it failed", "old", old, "new", m.Addr, "err", err)
		return
	}
	n.log.Info("peer address changed; recorded in the configuration", "old", old, "new", m.Addr)
}

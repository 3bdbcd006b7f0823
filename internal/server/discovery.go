package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hatcheck/hatcheck/internal/admin"
	"github.com/hatcheck/hatcheck/internal/cluster"
	"github.com/hatcheck/hatcheck/internal/redis"
)

// metaRedis is the metadata key under which a node tells the others its
// Redis address.
const metaRedis = "redis"

// nodeAdapter gives the Redis front end the node view it declares: the
// cluster in Redis terms (master = leader), for INFO, ROLE and SENTINEL.
type nodeAdapter struct {
	*cluster.Node
	selfRedis string
}

// Role is "master" on the leader, "slave" elsewhere.
func (a nodeAdapter) Role() string {
	if a.IsLeader() {
		return "master"
	}
	return "slave"
}

func (a nodeAdapter) Info() redis.NodeInfo {
	st := a.Stats()
	ctx, cancel := context.WithTimeout(context.Background(), discoveryTimeout)
	defer cancel()
	info := a.info(st, a.redisAddr(ctx, st.LeaderID))
	info.ReplicaOffsets = a.Progress()
	return info
}

// info is the NodeInfo of st, with the leader's Redis address.
func (a nodeAdapter) info(st cluster.Stats, leaderAddr string) redis.NodeInfo {
	role := "slave"
	if st.State == "Leader" {
		role = "master"
	}
	return redis.NodeInfo{Role: role, LeaderAddr: leaderAddr, Keys: st.Keys, Volatile: st.Volatile,
		UsedMemory: st.UsedMemory, Expired: st.Expired, Evicted: st.Evicted, ReplOffset: st.AppliedIndex, AvgTTL: st.AvgTTL}
}

// discoveryTimeout bounds asking members for their addresses.
const discoveryTimeout = time.Second

// redisAddr is a member's Redis address, "" when unknown.
func (a nodeAdapter) redisAddr(ctx context.Context, id string) string {
	if id == "" {
		return ""
	}
	meta, err := a.Meta(ctx, id)
	if err != nil {
		return ""
	}
	return meta[metaRedis]
}

// ViewNow is Info and Topology from what this node already knows of the
// members' addresses; ok is false when some member would have to be asked
// (the front end then asks off its event loop, with Info and Topology).
func (a nodeAdapter) ViewNow() (redis.NodeInfo, redis.Topology, bool) {
	addr := func(id string) (string, bool) {
		if id == "" {
			return "", true
		}
		meta, known := a.MetaCached(id)
		return meta[metaRedis], known
	}
	st := a.Stats()
	leaderAddr, ok := addr(st.LeaderID)
	if !ok {
		return redis.NodeInfo{}, redis.Topology{}, false
	}
	t := redis.Topology{Epoch: st.Term, Self: a.selfRedis}
	for _, s := range a.Servers() {
		ra, ok := addr(s.ID)
		if !ok {
			return redis.NodeInfo{}, redis.Topology{}, false
		}
		if ra == "" {
			continue
		}
		t.Members = append(t.Members, redis.Instance{ID: s.ID, Addr: ra, Leader: s.Leader})
		if s.Leader {
			t.Leader = ra
		}
	}
	return a.info(st, leaderAddr), t, true
}

func (a nodeAdapter) Topology(ctx context.Context) redis.Topology {
	servers := a.Servers()
	t := redis.Topology{Epoch: a.Stats().Term, Self: a.selfRedis}
	addrs := make([]string, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addrs[i] = a.redisAddr(ctx, s.ID)
		}()
	}
	wg.Wait()
	for i, s := range servers {
		if addrs[i] == "" {
			continue
		}
		t.Members = append(t.Members, redis.Instance{ID: s.ID, Addr: addrs[i], Leader: s.Leader})
		if s.Leader {
			t.Leader = addrs[i]
		}
	}
	return t
}

// announceLeaders publishes Sentinel's +switch-master to this node's
// subscribers whenever the leader changes to a different Redis address.
func announceLeaders(node *cluster.Node, a nodeAdapter, rs *redis.Server, service string, log *slog.Logger) {
	var last string
	if id, _ := node.Leader(); id != "" {
		ctx, cancel := context.WithTimeout(context.Background(), discoveryTimeout)
		last = a.redisAddr(ctx, id)
		cancel()
	}
	node.OnLeaderChange(func(id string) {
		if id == "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), discoveryTimeout)
		addr := a.redisAddr(ctx, id)
		cancel()
		if addr == "" || addr == last {
			return
		}
		if last != "" {
			oh, op, _ := net.SplitHostPort(last)
			nh, np, _ := net.SplitHostPort(addr)
			n := rs.PublishLocal("+switch-master", fmt.Sprintf("%s %s %s %s %s", service, oh, op, nh, np))
			log.Info("leader changed", "from", last, "to", addr, "notified", n)
		}
		last = addr
	})
}

// advertised returns the address to tell others for a bound listener: the
// explicit one if set, else the bound address with an unspecified host
// replaced by peerHost.
func advertised(explicit string, bound net.Addr, peerHost string) string {
	if explicit != "" {
		return explicit
	}
	host, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return bound.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() && peerHost != "" {
		host = peerHost
	}
	return net.JoinHostPort(host, port)
}

// clusterAPI gives the HTTP cluster API its view of the node.
type clusterAPI struct{ node *cluster.Node }

// ClusterStatus is GET /cluster's answer.
type ClusterStatus struct {
	ID       string           `json:"id"`
	LeaderID string           `json:"leader_id"`
	Term     uint64           `json:"term"`
	Members  []cluster.Member `json:"members"`
}

func (c clusterAPI) Status(ctx context.Context) (any, error) {
	ms, err := c.node.Members(ctx)
	if err != nil {
		return nil, err
	}
	id, _ := c.node.Leader()
	return ClusterStatus{ID: c.node.ID(), LeaderID: id, Term: c.node.Stats().Term, Members: ms}, nil
}

// Overview asks every member to describe itself, with its load and
// recent events, for the dashboard. The events are this node's, and the
// others' own (their start, peer links, snapshots, slow commands): every
// node sees leader and membership changes alike, so those are taken from
// this node only.
func (c clusterAPI) Overview(ctx context.Context) (admin.Overview, error) {
	self := c.node.ID()
	lid, _ := c.node.Leader()
	ov := admin.Overview{Self: self, LeaderID: lid, Term: c.node.Stats().Term, Time: time.Now()}
	for _, m := range c.node.MembersWithEvents(ctx) {
		v := admin.MemberView{ID: m.ID, PeerAddr: m.PeerAddr, Voter: m.Voter, Error: m.Error}
		if i := m.Info; i != nil {
			v.Up, v.RedisAddr, v.Role, v.Health = true, i.Meta[metaRedis], strings.ToLower(i.State), i.Health
			v.Term, v.Commit, v.Applied, v.Started = i.Term, i.Commit, i.Applied, i.Started
			v.Keys, v.UsedMemory = i.Keys, i.UsedMemory
			if i.Load != nil {
				l := admin.Load(*i.Load)
				v.Load = &l
			}
			for _, e := range i.Events {
				if m.ID == self || !cluster.ClusterWide(e.Kind) {
					ov.Events = append(ov.Events, admin.Event(e))
				}
			}
		}
		ov.Members = append(ov.Members, v)
	}
	return ov, nil
}

func (c clusterAPI) Remove(ctx context.Context, id string) error {
	return c.node.Remove(ctx, id)
}

func (c clusterAPI) Backup(ctx context.Context, w io.Writer) (int, error) {
	return c.node.Backup(ctx, w)
}

func (c clusterAPI) TransferLeadership(ctx context.Context, id string) error {
	return c.node.TransferLeadership(ctx, id)
}

// Package hatcheck runs a hatcheck node inside a Go program: the
// application servers themselves form the replicated group, joined by their
// peer addresses, with no session server to run beside them.
//
// An embedded node keeps the guarantees of a separate hatcheck server: a
// write returns once it is on a majority of the nodes' disks, every read is
// linearizable on whichever node it is made, a new leader takes over about
// a second after the old one fails, and a restarted node catches up by
// itself. It can also open the Redis, memcached and HTTP ports, so that
// redis-cli and other languages' session handlers reach the same data.
//
// A three-node group, each node in its own process:
//
//	// first server: starts a new group (empty data dir, no Join)
//	n, err := hatcheck.Open(ctx, hatcheck.Config{DataDir: "data", PeerAddr: "10.0.0.1:7481", Secret: "s3cret"})
//	// the others join it
//	n, err := hatcheck.Open(ctx, hatcheck.Config{DataDir: "data", PeerAddr: "10.0.0.2:7481", Secret: "s3cret",
//		Join: []string{"10.0.0.1:7481"}})
//
// Sessions on top of it: see package github.com/hatcheck/hatcheck/session
// and its EmbeddedStore.
package hatcheck

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hatcheck/hatcheck/internal/cluster"
	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/server"
)

// Config is an embedded node's settings. Only DataDir is required.
type Config struct {
	// NodeID names the node in the group; default: the one stored in
	// DataDir, else a random id.
	NodeID string
	// DataDir holds the node's log, snapshots and id. Only one node may use
	// a directory at a time.
	DataDir string
	// PeerAddr is the listen address of the peer port, through which the
	// nodes replicate (default 127.0.0.1:0, a free port on loopback).
	PeerAddr string
	// PeerAdvertise is the address other nodes dial (default: the bound
	// PeerAddr).
	PeerAdvertise string
	// Join is the peer addresses of members of the group to join, asked in
	// turn. A node with an empty DataDir and no Join starts a new group;
	// a node with data rejoins the group it belongs to.
	Join []string
	// Secret must be presented by every peer connection, and is the
	// password of the Redis and memcached ports. Required for any address
	// beyond loopback.
	Secret string
	// TLSCertFile, TLSKeyFile and TLSCACertFile, when set, make the peer
	// port speak mutual TLS: every node presents its certificate and
	// accepts only peers whose certificate the CA signed. Required for a
	// PeerAddr or Join beyond loopback (the sessions travel on it). The
	// files are PEM, as for hatcheck serve's --tls-* flags.
	TLSCertFile, TLSKeyFile, TLSCACertFile string
	// RedisAddr, MemcacheAddr and HTTPAddr, when set, open those ports
	// too (Redis protocol; memcached text and binary protocols; health,
	// metrics and the cluster API over HTTP). Default: none.
	RedisAddr, MemcacheAddr, HTTPAddr string
	// MaxMemory bounds the data held, in bytes; writes that would grow it
	// past the bound fail (0: no bound).
	MaxMemory int64
	// ElectionTimeout: a follower that hears nothing from the leader for
	// between one and two of these starts an election (default 500 ms).
	ElectionTimeout time.Duration
	// FailoverWait is how long a request waits for a leader before it
	// fails (default 5 s).
	FailoverWait time.Duration
	// NearCacheBytes, when positive, keeps the values this node's Get
	// read recently in memory, up to about that many bytes (64 << 20 is
	// a good start), so that reading them again takes no round trip. The
	// cache is never stale: a write anywhere removes every cached copy of
	// what it writes before it is acknowledged, and a node that cannot
	// hear from the leader stops using its cache within half an
	// ElectionTimeout. What it costs: a write of a key another node
	// caches waits for that node's acknowledgement (a round trip), or,
	// if the node cannot be reached, for its lease to run out (at most
	// half an ElectionTimeout); a new leader holds writes for half an
	// ElectionTimeout after it is elected. Give every node of a group the
	// same setting. Default 0: no near-cache.
	NearCacheBytes int64
	// Logger receives the node's log (default: discarded).
	Logger *slog.Logger
}

// Node is a running embedded node. Its methods are safe for concurrent
// use. With Config.NearCacheBytes, Get serves values it read recently from
// memory, and is still linearizable.
type Node struct {
	srv  *server.Server
	node *cluster.Node
}

// Errors a Node's methods return.
var (
	// ErrNoLeader: no leader could be reached within FailoverWait (a
	// majority of the group is down or unreachable).
	ErrNoLeader = command.ErrNoLeader
	// ErrClosed: the node was closed.
	ErrClosed = command.ErrShutdown
	// ErrWrongType: the key holds a hash or a set, not a value.
	ErrWrongType = command.ErrWrongType
	// ErrOOM: the write would grow the data past MaxMemory.
	ErrOOM = command.ErrOOM
)

// Open starts a node and waits until it can serve as a full member: until
// it leads a group of its own, or is a voter of the group it joined (it
// has caught up with the leader's log) and knows its leader. If ctx ends
// first — while the node is still opening, too — the node is stopped and
// an error wrapping ctx's returned.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	c := config.Default()
	c.RedisAddr, c.MemcacheAddr, c.HTTPAddr = cfg.RedisAddr, cfg.MemcacheAddr, cfg.HTTPAddr
	c.NodeID, c.DataDir, c.PeerAdvertise, c.RequirePass = cfg.NodeID, cfg.DataDir, cfg.PeerAdvertise, cfg.Secret
	c.PeerAddr = cfg.PeerAddr
	if c.PeerAddr == "" {
		c.PeerAddr = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: hatcheck.Config.DataDir must be set", config.ErrInvalid)
	}
	c.Join = strings.Join(cfg.Join, ",")
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" || cfg.TLSCACertFile != "" {
		c.TLSPeers = true
		c.TLSCertFile, c.TLSKeyFile, c.TLSCACertFile = cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCACertFile
	}
	c.MaxMemory = config.Size(cfg.MaxMemory)
	if cfg.ElectionTimeout != 0 {
		c.ElectionTimeout = cfg.ElectionTimeout
	}
	if cfg.FailoverWait != 0 {
		c.FailoverWait = cfg.FailoverWait
	}
	c.NearCacheBytes = cfg.NearCacheBytes
	srv, err := server.StartContext(ctx, c, cfg.Logger)
	if err != nil {
		return nil, err
	}
	n := &Node{srv: srv, node: srv.Node()}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !n.node.Ready() || !n.voter() {
		if err := n.node.Healthy(); err != nil {
			_ = srv.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			_ = srv.Abort()
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
	return n, nil
}

// voter reports whether this node votes in the group it knows.
func (n *Node) voter() bool {
	for _, m := range n.node.Servers() {
		if m.ID == n.node.ID() {
			return m.Voter
		}
	}
	return false
}

// Close stops the node gracefully: a leader first hands leadership to
// another node, so that the others go on without an election; requests
// being served finish; the node takes a snapshot and closes its ports.
func (n *Node) Close() error { return n.srv.Close() }

// ID is the node's id in the group.
func (n *Node) ID() string { return n.node.ID() }

// PeerAddr is the address other nodes reach this one at (give it to the
// next node's Config.Join).
func (n *Node) PeerAddr() string { return n.node.PeerAddr() }

// RedisAddr, MemcacheAddr and HTTPAddr are the bound addresses of the
// ports opened ("" for a port not opened).
func (n *Node) RedisAddr() string { return n.srv.RedisAddr() }

// MemcacheAddr is the bound memcached address ("" when not opened).
func (n *Node) MemcacheAddr() string { return n.srv.MemcacheAddr() }

// HTTPAddr is the bound HTTP address ("" when not opened).
func (n *Node) HTTPAddr() string { return n.srv.HTTPAddr() }

// IsLeader reports whether this node leads the group now.
func (n *Node) IsLeader() bool { return n.node.IsLeader() }

// Leader is the id of the node that leads the group ("" while none is
// known).
func (n *Node) Leader() string {
	id, _ := n.node.Leader()
	return id
}

// Get returns a key's value; ok is false when the key does not exist (or
// has expired). The read is linearizable: it sees every write acknowledged
// before it began, on any node — also when it is served from the
// near-cache (Config.NearCacheBytes), with no round trip.
func (n *Node) Get(ctx context.Context, key string) (value []byte, ok bool, err error) {
	return n.node.NearGet(ctx, key)
}

// CacheStats counts the near-cache's work on this node (see
// Config.NearCacheBytes).
type CacheStats struct {
	Entries int   // values (or absences) held
	Bytes   int64 // their approximate size
	// Hits were served from the cache; Misses read through the group;
	// Uncacheable misses could not be cached (a write of the key was in
	// flight, or the lease was not running).
	Hits, Misses, Uncacheable uint64
	// InvalidationsReceived from the leader; Flushes of the whole cache
	// (a new leader, a lease that ran out, a write of unknown keys).
	InvalidationsReceived, Flushes uint64
	// While this node led: InvalidationsSent to caching nodes, and
	// LeaseWaits, invalidations a node did not acknowledge, whose
	// writes waited for its lease to run out.
	InvalidationsSent, LeaseWaits uint64
}

// CacheStats reports the near-cache's counters.
func (n *Node) CacheStats() CacheStats { return CacheStats(n.node.NearStats()) }

// Set stores a value under key, replacing what was there. With ttl > 0
// the key expires after ttl (in milliseconds, rounded up); with ttl 0 it
// does not expire. Set returns once the write is on a majority of the
// nodes' disks.
func (n *Node) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := n.write(ctx, setCmd(key, value, ttl, 0))
	return err
}

// SetNX stores a value under key only if the key does not exist; it
// reports whether it stored it. ttl is as for Set.
func (n *Node) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	r, err := n.write(ctx, setCmd(key, value, ttl, command.FlagNX))
	return err == nil && r.Kind == command.KindOK, err
}

// Delete removes keys and returns how many existed.
func (n *Node) Delete(ctx context.Context, keys ...string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	args := make([][]byte, len(keys))
	for i, k := range keys {
		args[i] = []byte(k)
	}
	r, err := n.write(ctx, command.Cmd{Op: command.OpDel, Args: args})
	return int(r.Int), err
}

// DeleteIf removes key if, and only if, its value is value, in one atomic
// step; it reports whether it removed it. It releases a lock taken with
// SetNX without removing a lock another holder took after it expired.
func (n *Node) DeleteIf(ctx context.Context, key string, value []byte) (bool, error) {
	return n.node.CompareAndDelete(ctx, key, value)
}

// Expire sets a key's time to live (ttl > 0) and reports whether the key
// exists.
func (n *Node) Expire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("hatcheck: Expire with ttl %v: want a positive ttl (use Delete)", ttl)
	}
	r, err := n.write(ctx, command.Cmd{Op: command.OpExpire, Key: []byte(key), N: ttlMillis(ttl), Flags: command.FlagExpireRel})
	return err == nil && r.Int == 1, err
}

func setCmd(key string, value []byte, ttl time.Duration, flags uint32) command.Cmd {
	c := command.Cmd{Op: command.OpSet, Key: []byte(key), Args: [][]byte{value}, Flags: flags}
	if ttl > 0 {
		c.Flags |= command.FlagExpireRel
		c.N = ttlMillis(ttl)
	}
	return c
}

// ttlMillis is ttl in milliseconds, rounded up so that a ttl under 1 ms
// still expires later rather than at once.
func ttlMillis(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}

func (n *Node) write(ctx context.Context, c command.Cmd) (command.Result, error) {
	res, err := n.node.Write(ctx, command.Tx{c})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return command.Result{}, err
	}
	return resultErr(res.Results[0])
}

func resultErr(r command.Result) (command.Result, error) {
	if r.Kind == command.KindError {
		return r, r.Err
	}
	return r, nil
}

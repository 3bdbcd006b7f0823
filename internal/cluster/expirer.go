package cluster

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Active expiry, as redis does it: every cycle the leader samples keys that
// have a TTL in each database and deletes the expired ones through the log;
// while a quarter or more of a sample was expired it samples again, within a
// time budget. The keyspace keeps keys with a TTL in time buckets and
// samples the earliest first, so a sample is mostly expired keys while
// there are any. Followers never delete by their own clock; reads treat an
// expired key as absent on every node.
const (
	expireCycle   = 100 * time.Millisecond
	expireSamples = 20
	expireBudget  = 25 * time.Millisecond
)

func (n *Node) runExpirer() {
	defer n.wg.Done()
	t := time.NewTicker(expireCycle)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-n.stop:
			return
		}
		if !n.group.LeaderReady() || n.draining.Load() {
			continue
		}
		start := time.Now()
		for time.Since(start) < expireBudget {
			tx, sampled, found := n.sampleExpired(time.Now().UnixMilli())
			if len(tx) > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), n.cfg.FailoverWait)
				res, err := n.propose(ctx, tx)
				cancel()
				if err != nil {
					break
				}
				for _, r := range res.Results {
					n.expired.Add(uint64(r.Int))
				}
			}
			if sampled == 0 || found*4 < sampled {
				break
			}
		}
	}
}

// sampleExpired returns a transaction deleting the expired keys found in a
// sample of each database, with the counts sampled and found.
func (n *Node) sampleExpired(now int64) (command.Tx, int, int) {
	var tx command.Tx
	sampled, found := 0, 0
	n.fsm.read(func(ks *keyspace.Keyspace) {
		for db := 0; db < ks.Databases(); db++ {
			var keys [][]byte
			ks.SampleVolatile(db, expireSamples, func(k string, e *keyspace.Entry) bool {
				sampled++
				if e.Expired(now) {
					keys = append(keys, []byte(k))
				}
				return true
			})
			if len(keys) > 0 {
				found += len(keys)
				tx = append(tx, command.Cmd{Op: command.OpDelExpired, DB: uint8(db), Args: keys})
			}
		}
	})
	return tx, sampled, found
}

// evictionSamples is how many keys each eviction pick compares (redis's
// maxmemory-samples default).
const evictionSamples = 5

// evictions chooses keys to evict when used memory is over the limit under
// an eviction policy, approximating LRU or shortest-TTL by sampling as redis
// does. It runs on the leader only, before a batch is proposed; the deletes
// travel in the batch's first transaction so that every node evicts alike.
func (n *Node) evictions(maxmem int64, policy command.Policy) command.Tx {
	if maxmem <= 0 || policy == command.NoEviction {
		return nil
	}
	var tx command.Tx
	n.fsm.read(func(ks *keyspace.Keyspace) {
		over := ks.Used() - maxmem
		if over <= 0 {
			return
		}
		type dbKey struct {
			db  int
			key string
		}
		chosen := map[dbKey]bool{}
		byDB := map[int][][]byte{}
		for tries := 0; over > 0 && tries < 256; tries++ {
			db := rand.IntN(ks.Databases())
			var bestKey string
			var best *keyspace.Entry
			consider := func(k string, e *keyspace.Entry) bool {
				if chosen[dbKey{db, k}] {
					return true
				}
				if best == nil || betterVictim(policy, e, best) {
					bestKey, best = k, e
				}
				return true
			}
			switch policy {
			case command.AllKeysLRU:
				ks.SampleKeys(db, rand.Uint64(), evictionSamples, consider)
			case command.VolatileTTL:
				// The earliest expiry buckets hold the shortest TTLs.
				ks.SampleVolatile(db, evictionSamples, consider)
			default:
				ks.SampleVolatileAt(db, rand.Uint64(), evictionSamples, consider)
			}
			if best == nil {
				continue
			}
			chosen[dbKey{db, bestKey}] = true
			byDB[db] = append(byDB[db], []byte(bestKey))
			over -= best.Size(bestKey)
		}
		for db := 0; db < ks.Databases(); db++ {
			if keys := byDB[db]; len(keys) > 0 {
				tx = append(tx, command.Cmd{Op: command.OpEvict, DB: uint8(db), Args: keys})
			}
		}
	})
	return tx
}

func betterVictim(p command.Policy, a, b *keyspace.Entry) bool {
	if p == command.VolatileTTL {
		return a.ExpireAt < b.ExpireAt
	}
	return a.LastAccess() < b.LastAccess()
}

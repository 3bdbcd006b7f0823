package clustertest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/hatcheck/hatcheck/internal/cluster"
	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/history"
)

// execNode runs one operation of the history workload on a node through
// its Go API, reads through the near-cache, as an embedded node does.
func execNode(ctx context.Context, n *cluster.Node, in history.Input) history.Output {
	const hour = int64(time.Hour / time.Millisecond)
	write := func(c command.Cmd) (command.Result, bool) {
		res, err := n.Write(ctx, command.Tx{c})
		if err != nil || res.Err != nil || res.Results[0].Kind == command.KindError {
			return command.Result{}, false
		}
		return res.Results[0], true
	}
	key := []byte(in.Key)
	switch in.Kind {
	case history.Set:
		_, ok := write(command.Cmd{Op: command.OpSet, Key: key, Args: [][]byte{[]byte(in.Value)}, Flags: command.FlagExpireRel, N: hour})
		return history.Output{Unknown: !ok}
	case history.SetNX:
		r, ok := write(command.Cmd{Op: command.OpSet, Key: key, Args: [][]byte{[]byte(in.Value)}, Flags: command.FlagExpireRel | command.FlagNX, N: hour})
		return history.Output{Unknown: !ok, Exists: r.Kind == command.KindOK}
	case history.Get:
		v, ok, err := n.NearGet(ctx, in.Key)
		return history.Output{Unknown: err != nil, Exists: ok, Value: string(v)}
	case history.Del:
		r, ok := write(command.Cmd{Op: command.OpDel, Args: [][]byte{key}})
		return history.Output{Unknown: !ok, Exists: r.Int == 1}
	case history.Expire:
		r, ok := write(command.Cmd{Op: command.OpExpire, Key: key, Flags: command.FlagExpireRel, N: hour})
		return history.Output{Unknown: !ok, Exists: r.Int == 1}
	}
	panic("unknown operation")
}

// TestNearCacheLinearizableUnderFaults: three nodes with near-caches read
// (two thirds of the operations, many served from the caches) and write a few
// keys while the leader is killed and restarted, stalled (its traffic held,
// as if paused) and cut off, and a follower is cut off. Porcupine must find
// the history linearizable, and no acknowledged write may be lost.
func TestNearCacheLinearizableUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault-injection run")
	}
	c := Start(t, 3, func(cfg *config.Config) {
		cfg.NearCacheBytes = 1 << 20
		cfg.FailoverWait = 3 * time.Second
	})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	rec := history.NewRecorder()
	var (
		wg     sync.WaitGroup
		ops    atomic.Int64
		ackMu  sync.Mutex
		acked  = map[int][]string{}
		hitsAt = map[string]uint64{} // per node id, hits of the runs before a restart
	)
	const workers, keys = 6, 4
	for w := 0; w < workers; w++ {
		node := c.Nodes[w%len(c.Nodes)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for seq := 0; ctx.Err() == nil; seq++ {
				s := node.Server()
				if s == nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				n := s.Node()
				opCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				val := fmt.Sprintf("w%d-%d", w, seq)
				if rng.IntN(10) == 0 {
					res, err := n.Write(opCtx, command.Tx{{Op: command.OpSAdd, Key: fmt.Appendf(nil, "acked:%d", w), Args: [][]byte{[]byte(val)}}})
					if err == nil && res.Err == nil {
						ackMu.Lock()
						acked[w] = append(acked[w], val)
						ackMu.Unlock()
					}
					cancel()
					continue
				}
				kind := history.Get
				if rng.IntN(3) == 0 {
					kind = []history.Kind{history.Set, history.SetNX, history.Del, history.Expire}[rng.IntN(4)]
				}
				in := history.Input{Kind: kind, Key: fmt.Sprintf("sess:%d", rng.IntN(keys)), Value: val}
				out := rec.Do(w, in, func() history.Output { return execNode(opCtx, n, in) })
				cancel()
				ops.Add(1)
				if out.Unknown {
					time.Sleep(50 * time.Millisecond)
				} else {
					time.Sleep(time.Duration(rng.IntN(4)) * time.Millisecond)
				}
			}
		}()
	}
	hits := func() uint64 {
		var h uint64
		for _, n := range c.Nodes {
			if s := n.Server(); s != nil {
				h += s.Node().NearStats().Hits + hitsAt[n.ID]
			}
		}
		return h
	}

	// Each fault lasts 3 s, with 3 s of calm after it.
	leader := func() *Node { return c.Leader() }
	faults := []struct {
		name        string
		target      func() *Node
		start, heal func(n *Node)
	}{
		{"kill the leader", leader, func(n *Node) {
			hitsAt[n.ID] += n.Server().Node().NearStats().Hits
			n.Kill()
		}, (*Node).Start},
		{"stall the leader", leader, func(n *Node) { c.Net.Stall(n.ID) }, func(*Node) { c.Net.Resume() }},
		{"cut off the leader", leader, func(n *Node) { c.Net.Isolate(n.ID) }, func(*Node) { c.Net.Heal() }},
		{"cut off a follower", func() *Node { return c.Others(c.Leader())[0] },
			func(n *Node) { c.Net.Isolate(n.ID) }, func(*Node) { c.Net.Heal() }},
	}
	time.Sleep(3 * time.Second)
	for _, f := range faults {
		n := f.target()
		t.Logf("%s %s", f.name, n.ID)
		f.start(n)
		time.Sleep(3 * time.Second)
		f.heal(n)
		time.Sleep(3 * time.Second)
	}
	stop()
	wg.Wait()

	c.WaitVoters(3)
	var sent, waits uint64
	for _, n := range c.Nodes {
		s := n.Server().Node().NearStats()
		sent += s.InvalidationsSent
		waits += s.LeaseWaits
	}
	h := hits()
	lost, total := 0, 0
	check := c.Leader().Server().Node()
	for w, vals := range acked {
		r, err := check.Read(Ctx(t, 30*time.Second), &command.Cmd{Op: command.OpSMembers, Key: fmt.Appendf(nil, "acked:%d", w)})
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, m := range r.Array {
			have[string(m.Bulk)] = true
		}
		for _, v := range vals {
			total++
			if !have[v] {
				lost++
			}
		}
	}
	res, info := porcupine.CheckOperationsVerbose(history.Model, rec.Operations(), 60*time.Second)
	t.Logf("%d operations (%s), %d near-cache hits, %d invalidations sent, %d leases waited out; acknowledged writes lost %d of %d; verdict %s",
		ops.Load(), history.Describe(rec.Operations()), h, sent, waits, lost, total, res)
	if res != porcupine.Ok {
		if res == porcupine.Illegal {
			path := filepath.Join(os.TempDir(), fmt.Sprintf("nearcache-history-%d.html", time.Now().Unix()))
			if err := porcupine.VisualizePath(history.Model, info, path); err == nil {
				t.Logf("the history is drawn in %s", path)
			}
		}
		t.Fatalf("porcupine: %v", res)
	}
	if lost > 0 {
		t.Fatalf("%d acknowledged writes lost", lost)
	}
	if h == 0 || sent == 0 {
		t.Fatal("the near-cache was not exercised")
	}
}

// Package history runs a session-like workload against Redis-protocol
// endpoints, records every operation's call and return time and checks
// the history for linearizability with porcupine, plus a direct count of
// acknowledged writes lost. The fault-injection tests (clustertest's and
// tests/chaos) share it.
package history

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	goredis "github.com/redis/go-redis/v9"
)

// Kind is an operation of the workload.
type Kind uint8

// The operations, as session handlers use them. TTLs are long (an hour), so
// nothing expires during a run and EXPIRE only reports whether the key
// exists.
const (
	Set    Kind = iota // SET k v EX 3600
	SetNX              // SET k v NX PX 3600000
	Get                // GET k
	Del                // DEL k
	Expire             // EXPIRE k 3600
)

var kindNames = []string{"set", "setnx", "get", "del", "expire"}

func (k Kind) String() string { return kindNames[k] }

// Input is one operation's request.
type Input struct {
	Kind  Kind
	Key   string
	Value string
}

// Output is its reply. Unknown means the outcome is unknown (an error or a
// timeout): a write may or may not have been applied.
type Output struct {
	Unknown bool
	Exists  bool   // Get: the key had a value; SetNX: it was set; Del/Expire: the key existed
	Value   string // Get
}

// state is one key's register: absent, or a value.
type state struct {
	exists bool
	value  string
}

// Model is the per-key model: keys are independent, so the history is
// partitioned by key.
var Model = (&porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(Input).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() []interface{} { return []interface{}{state{}} },
	Step: func(st, in, out interface{}) []interface{} {
		s, i, o := st.(state), in.(Input), out.(Output)
		var next state
		var result Output
		switch i.Kind {
		case Set:
			next = state{true, i.Value}
		case SetNX:
			next, result.Exists = s, !s.exists
			if !s.exists {
				next = state{true, i.Value}
			}
		case Get:
			next, result = s, Output{Exists: s.exists, Value: s.value}
		case Del:
			next, result.Exists = state{}, s.exists
		case Expire:
			next, result.Exists = s, s.exists
		}
		if o.Unknown {
			// Applied or not: both are possible.
			if next == s {
				return []interface{}{s}
			}
			return []interface{}{s, next}
		}
		if result != o {
			return nil
		}
		return []interface{}{next}
	},
	DescribeOperation: func(in, out interface{}) string {
		i, o := in.(Input), out.(Output)
		res := fmt.Sprint(o.Exists)
		switch {
		case o.Unknown:
			res = "?"
		case i.Kind == Get && o.Exists:
			res = o.Value
		case i.Kind == Get:
			res = "nil"
		}
		return fmt.Sprintf("%s(%s %s) -> %s", i.Kind, i.Key, i.Value, res)
	},
}).ToModel()

// Recorder collects a history from concurrent clients.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

// NewRecorder starts a history now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

func (r *Recorder) now() int64 { return int64(time.Since(r.start)) }

// Since is the time since the history began, on the operations' clock.
func (r *Recorder) Since() time.Duration { return time.Since(r.start) }

// Do runs op for client and records it with its call and return times.
func (r *Recorder) Do(client int, in Input, op func() Output) Output {
	call := r.now()
	out := op()
	ret := r.now()
	if out.Unknown {
		// It may take effect any time later: it stays open to the end.
		ret = 1<<63 - 1
	}
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	r.mu.Unlock()
	return out
}

// Operations returns the history so far.
func (r *Recorder) Operations() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]porcupine.Operation(nil), r.ops...)
}

// Check checks the history for linearizability within timeout.
func (r *Recorder) Check(timeout time.Duration) porcupine.CheckResult {
	return porcupine.CheckOperationsTimeout(Model, r.Operations(), timeout)
}

// Exec sends in to a Redis-protocol client and classifies the reply.
func Exec(ctx context.Context, c goredis.UniversalClient, in Input) Output {
	switch in.Kind {
	case Set:
		err := c.Set(ctx, in.Key, in.Value, time.Hour).Err()
		return Output{Unknown: err != nil}
	case SetNX:
		ok, err := c.SetNX(ctx, in.Key, in.Value, time.Hour).Result()
		return Output{Unknown: err != nil, Exists: ok}
	case Get:
		v, err := c.Get(ctx, in.Key).Result()
		if errors.Is(err, goredis.Nil) {
			return Output{}
		}
		return Output{Unknown: err != nil, Exists: err == nil, Value: v}
	case Del:
		n, err := c.Del(ctx, in.Key).Result()
		return Output{Unknown: err != nil, Exists: n == 1}
	case Expire:
		ok, err := c.Expire(ctx, in.Key, time.Hour).Result()
		return Output{Unknown: err != nil, Exists: ok}
	}
	panic("unknown operation")
}

// Workload is the session-like load: Clients workers per endpoint, each
// doing random operations on Keys keys with unique values, and each also
// adding unique members to its own set so that lost acknowledged writes
// can be counted directly.
type Workload struct {
	Keys    int
	Timeout time.Duration // per operation; default 10 s
}

// Report is one run's outcome.
type Report struct {
	Ops, OK, Failed, Unknown int
	Acked, Lost              int // acknowledged set additions, and those missing at the end
	Verdict                  porcupine.CheckResult

	acked [][]string // per client, the set members acknowledged
}

func (r Report) String() string {
	return fmt.Sprintf("operations %d: ok %d, failed %d, unknown %d; acknowledged writes lost %d of %d; verdict %s",
		r.Ops, r.OK, r.Failed, r.Unknown, r.Lost, r.Acked, r.Verdict)
}

// Run drives clients until ctx ends, then checks the history for
// linearizability (within checkTimeout) and returns the report. Call
// CheckLoss once the cluster is whole again.
func (w Workload) Run(ctx context.Context, rec *Recorder, clients []goredis.UniversalClient, checkTimeout time.Duration) Report {
	if w.Timeout == 0 {
		w.Timeout = 10 * time.Second
	}
	var mu sync.Mutex
	var rep Report
	acked := make([][]string, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			for seq := 0; ctx.Err() == nil; seq++ {
				opCtx, cancel := context.WithTimeout(context.Background(), w.Timeout)
				val := fmt.Sprintf("c%d-%d", i, seq)
				if rng.IntN(8) == 0 {
					// Loss check: an acknowledged SADD must survive.
					err := c.SAdd(opCtx, fmt.Sprintf("acked:%d", i), val).Err()
					if err == nil {
						acked[i] = append(acked[i], val)
					}
					cancel()
					continue
				}
				in := Input{Kind: Kind(rng.IntN(5)), Key: fmt.Sprintf("sess:%d", rng.IntN(w.Keys)), Value: val}
				out := rec.Do(i, in, func() Output { return Exec(opCtx, c, in) })
				cancel()
				mu.Lock()
				rep.Ops++
				switch {
				case !out.Unknown:
					rep.OK++
				case in.Kind == Get:
					rep.Failed++ // a failed read changes nothing
				default:
					rep.Unknown++
				}
				mu.Unlock()
				if out.Unknown {
					time.Sleep(50 * time.Millisecond) // do not spin while there is no leader
				}
			}
		}()
	}
	wg.Wait()
	rep.acked = acked
	rep.Verdict = rec.Check(checkTimeout)
	return rep
}

// CheckLoss reads every client's set through check and counts the
// acknowledged members missing.
func (r *Report) CheckLoss(check goredis.UniversalClient) {
	r.Acked, r.Lost = 0, 0
	for i, acked := range r.acked {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		members, err := check.SMembers(ctx, fmt.Sprintf("acked:%d", i)).Result()
		cancel()
		have := map[string]bool{}
		for _, m := range members {
			have[m] = true
		}
		r.Acked += len(acked)
		for _, v := range acked {
			if err != nil || !have[v] {
				r.Lost++
			}
		}
	}
}

// Describe renders a short per-kind summary of a history, for failures.
func Describe(ops []porcupine.Operation) string {
	counts := map[string]int{}
	for _, op := range ops {
		counts[op.Input.(Input).Kind.String()]++
	}
	var parts []string
	for k, n := range counts {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

package redis

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// Blocking list pops (BLPOP, BRPOP, BLMPOP, BLMOVE, BRPOPLPUSH) and
// sorted set pops (BZPOPMIN, BZPOPMAX, BZMPOP: ZMPOP's tries, whose
// elements travel as member, score pairs and are pushed back with ZADD).
//
// A pop changes the list, so it is a log entry like any write: every node
// must remove the same element. A blocked client therefore waits on the
// node it is connected to, in this registry, and that node proposes pops
// for it:
//
//   - First a try: the command's non-blocking form (LMPOP of its keys, or
//     LMOVE). If it takes something, that is the reply; if it finds every
//     key empty, the client is armed and waits.
//   - Applying any entry that touches a key (Server.Notify, on every node)
//     kicks that key's queue here: the first armed client waiting on it, in
//     arrival order, gets a try, proposed as a write (forwarded to the
//     leader from a follower) and decided in log order. One try per key is
//     in flight at a time; a change seen meanwhile kicks the key again when
//     it ends. A try that finds nothing (another node's client, or a plain
//     LPOP, took the element first) re-arms the client: nothing is popped
//     twice.
//   - Every try carries a token (this process's random prefix and a
//     sequence number). Applying it reports what it took to the token's
//     node (keyspace.PopWatcher), so the outcome is known even when the
//     proposal's reply is lost in a failover ("may or may not have been
//     applied"): the client is then re-armed and retried with a new token,
//     and if the lost try turns out to have popped something after all,
//     its elements are pushed back where they came from rather than lost.
//     So are the elements of a try that applies after its client
//     disconnected. (A try of BLMOVE needs no push back: its element is in
//     the destination list, where a reliable queue looks for it.)
//   - The timeout runs on this node; a try in flight when it fires still
//     answers with what it took.
//
// Arrival order is kept among the clients of one node, per key. Clients on
// different nodes race: whichever node's try the log orders first wins.
//
// Cost: a client that has to wait has cost one log entry (its first try,
// which found nothing), and each change of a key with waiting clients costs
// one more per client it may serve. A worker looping on BLPOP with a short
// timeout therefore writes an entry per timeout. A linearizable read in
// place of the first try (the client registered before it, so that no push
// slips between) would spare that entry; not done yet.
type blocking struct {
	srv    *Server
	prefix [8]byte // tokens of this process start with it

	n  atomic.Int64 // clients registered: Notify's fast path
	mu sync.Mutex
	// queues are the clients waiting on each key, in arrival order.
	queues map[blockKey]*waitQueue
	// tries are the tries in flight by token, and the lost ones (their
	// proposal failed) until they are seen applied or given up on.
	tries map[string]*try
	seq   uint64
}

type blockKey struct {
	db  uint8
	key string
}

type waitQueue struct {
	key     blockKey
	clients []*blocked
	busy    bool // a try kicked by this key is in flight
	dirty   bool // the key changed while no armed client could be tried
}

// blocked is one waiting client.
type blocked struct {
	c       *conn
	spec    *cmdSpec
	cmd     command.Cmd // the non-blocking form; its arguments are its own
	keys    []blockKey
	done    func(func()) // the connection's Await completion
	timer   *time.Timer
	backoff time.Duration

	trying    bool // a try is in flight
	finished  bool // answered, or given up
	expired   bool // the timeout fired (or CLIENT UNBLOCK came) during a try
	unblocked bool // CLIENT UNBLOCK … ERROR: the reply is the error, not a timeout's
	cancelled bool // the connection closed during a try
	stopping  bool // the server is shutting down
}

// try is one proposed pop.
type try struct {
	b    *blocked
	kick *waitQueue // the queue whose change started it; nil for the first try
	lost bool       // its proposal failed: its outcome is unknown
	at   time.Time
	// What applying it took, if this node applied it before the reply.
	applied bool
	key     string
	elems   [][]byte
}

func newBlocking(s *Server) *blocking {
	b := &blocking{srv: s, queues: map[blockKey]*waitQueue{}, tries: map[string]*try{}}
	_, _ = rand.Read(b.prefix[:])
	return b
}

// block runs a blocking command: its first try, then, if every key is
// empty, waiting.
func (c *conn) block(spec *cmdSpec, cmd command.Cmd, timeout time.Duration) {
	cmd.Key = bytes.Clone(cmd.Key)
	cmd.Args = cloneArgs(cmd.Args)
	b := &blocked{c: c, spec: spec, cmd: cmd}
	if cmd.Op == command.OpLMove {
		b.keys = []blockKey{{cmd.DB, string(cmd.Key)}}
	} else {
		for _, k := range cmd.Args {
			b.keys = append(b.keys, blockKey{cmd.DB, string(k)})
		}
	}
	c.Await(func(done func(func())) {
		b.done = done
		c.srv.blocking.add(b, timeout)
	})
}

func cloneArgs(a [][]byte) [][]byte {
	out := make([][]byte, len(a))
	for i, x := range a {
		out[i] = bytes.Clone(x)
	}
	return out
}

func (bl *blocking) add(b *blocked, timeout time.Duration) {
	bl.mu.Lock()
	defer bl.mu.Unlock()
	b.c.blocked = b
	for _, k := range b.keys {
		q := bl.queues[k]
		if q == nil {
			q = &waitQueue{key: k}
			bl.queues[k] = q
		}
		if !slices.Contains(q.clients, b) { // BLPOP k k
			q.clients = append(q.clients, b)
		}
	}
	bl.n.Add(1)
	if timeout > 0 {
		b.timer = time.AfterFunc(timeout, func() { bl.expire(b) })
	}
	bl.startTry(b, nil)
}

// startTry proposes a pop for b. Called with mu held; the proposal itself
// runs on a goroutine of its own, as this may be called while an entry is
// being applied.
func (bl *blocking) startTry(b *blocked, kick *waitQueue) {
	b.trying = true
	if kick != nil {
		kick.busy = true
	}
	bl.seq++
	token := make([]byte, 16)
	copy(token, bl.prefix[:])
	binary.BigEndian.PutUint64(token[8:], bl.seq)
	t := &try{b: b, kick: kick}
	bl.tries[string(token)] = t
	cmd := b.cmd
	cmd.Flags |= command.FlagServe
	cmd.Args = append(slices.Clip(cmd.Args), token)
	go bl.srv.node.WriteAsync(command.Tx{cmd}, func(res command.TxResult, err error) {
		bl.finish(string(token), t, res, err)
	})
}

// finish handles a try's reply.
func (bl *blocking) finish(token string, t *try, res command.TxResult, err error) {
	bl.mu.Lock()
	defer bl.mu.Unlock()
	b := t.b
	var r command.Result
	switch {
	case err == nil && res.Err != nil:
		r = command.Result{Kind: command.KindError, Err: res.Err}
	case err == nil:
		r = res.Results[0]
	case t.applied:
		// The reply was lost, but this node applied the try already.
		r = t.result()
	default:
		// Unknown outcome: keep the token, to push back what it took if
		// it turns out to have applied; try again with a new one.
		t.lost, t.at = true, time.Now()
		switch {
		case b.cancelled:
			bl.remove(b)
		case errors.Is(err, command.ErrRemoved), errors.Is(err, command.ErrStorageFailed):
			// This node serves no more requests: say so, as to any write.
			bl.reply(b, func(c *conn) { c.out = resp.AppendError(c.out, errorText(err, b.spec.name)) })
		case b.stopping:
			bl.reply(b, stopped)
		case b.expired:
			bl.reply(b, b.ended())
		default:
			b.backoff = min(max(2*b.backoff, 50*time.Millisecond), time.Second)
			time.AfterFunc(b.backoff, func() { bl.retry(b) })
		}
		bl.endTry(b, t, false)
		return
	}
	delete(bl.tries, token)
	took := r.Kind != command.KindError && !isNull(r)
	switch {
	case b.finished || b.cancelled:
		if took {
			bl.pushBack(b, r)
		}
		bl.remove(b)
	case took || (r.Kind == command.KindError && t.kick == nil):
		// Served, or the first try failed (WRONGTYPE): the reply.
		bl.reply(b, func(c *conn) { c.replyResult(b.spec, r) })
	case b.stopping:
		bl.reply(b, stopped)
	case b.expired:
		bl.reply(b, b.ended())
	}
	// Nothing taken (or a later try's error: the key holds another type
	// for now, and redis keeps such a client blocked): b waits on.
	bl.endTry(b, t, took)
}

func isNull(r command.Result) bool {
	return r.Kind == command.KindNil || (r.Kind == command.KindArray && len(r.Array) == 0 && r.Int == -1)
}

// result is what an applied try took, as the executor replied it.
func (t *try) result() command.Result {
	if len(t.elems) == 0 {
		return command.Result{Kind: command.KindNil}
	}
	if t.b.cmd.Op == command.OpLMove {
		return command.Result{Kind: command.KindBulk, Bulk: t.elems[0]}
	}
	if t.b.cmd.Op == command.OpZMPop {
		return zmpopResult(t.key, t.elems)
	}
	el := make([]command.Result, len(t.elems))
	for i, e := range t.elems {
		el[i] = command.Result{Kind: command.KindBulk, Bulk: e}
	}
	return command.Result{Kind: command.KindArray, Array: []command.Result{
		{Kind: command.KindBulk, Bulk: []byte(t.key)}, {Kind: command.KindArray, Array: el}}}
}

// endTry marks b's try over and kicks the queues that may have something
// for their clients now: b's keys that changed meanwhile, or all of them
// if the try took something (the next client may get the rest).
func (bl *blocking) endTry(b *blocked, t *try, took bool) {
	b.trying = false
	if q := t.kick; q != nil {
		q.busy = false
		if len(q.clients) == 0 {
			delete(bl.queues, q.key)
		}
	}
	for _, k := range b.keys {
		if q := bl.queues[k]; q != nil && (q.dirty || took) {
			q.dirty = false
			bl.kickQueue(q)
		}
	}
}

// retry tries b again after a failed proposal.
func (bl *blocking) retry(b *blocked) {
	bl.mu.Lock()
	defer bl.mu.Unlock()
	if !b.finished && !b.trying {
		bl.startTry(b, nil)
	}
}

// signal is Notify's: applying an entry changed key.
func (bl *blocking) signal(db int, key string) {
	bl.mu.Lock()
	defer bl.mu.Unlock()
	if q := bl.queues[blockKey{uint8(db), key}]; q != nil {
		bl.kickQueue(q)
	}
}

// kickAll kicks every queue: the keyspace was replaced.
func (bl *blocking) kickAll() {
	bl.mu.Lock()
	defer bl.mu.Unlock()
	for _, q := range bl.queues {
		bl.kickQueue(q)
	}
}

// kickQueue tries the first armed client of q, unless a try kicked by q
// is in flight; then, or with no armed client (one is in its first try),
// it remembers the change for the try's end.
func (bl *blocking) kickQueue(q *waitQueue) {
	if !q.busy {
		for _, b := range q.clients {
			if !b.trying && !b.finished {
				bl.startTry(b, q)
				return
			}
		}
	}
	q.dirty = true
}

// reply answers b (once) and removes it.
func (bl *blocking) reply(b *blocked, write func(c *conn)) {
	if b.finished {
		return
	}
	bl.remove(b)
	c := b.c
	b.done(func() { write(c) })
}

// stopped ends a wait at shutdown with no reply: the connection closes, as
// redis-server's do.
func stopped(*conn) {}

// timedOut is a blocking command's reply after its timeout: a null array,
// for BLMOVE and BRPOPLPUSH too (redis 7.0).
func timedOut(c *conn) { c.appendNullArray() }

// ended is the reply of a wait that ends unserved: a timeout's, or
// CLIENT UNBLOCK … ERROR's error.
func (b *blocked) ended() func(*conn) {
	if b.unblocked {
		return func(c *conn) { c.out = resp.AppendError(c.out, "UNBLOCKED client unblocked via CLIENT UNBLOCK") }
	}
	return timedOut
}

// unblock is CLIENT UNBLOCK of the client o: if it waits in a blocking
// command, its wait ends as if it timed out (withError: with the
// UNBLOCKED error), and unblock reports true. A try in flight still
// answers with what it takes, as at a timeout.
func (bl *blocking) unblock(o *conn, withError bool) bool {
	if bl.n.Load() == 0 {
		return false
	}
	bl.mu.Lock()
	defer bl.mu.Unlock()
	b := o.blocked
	if b == nil || b.finished || b.expired || b.stopping || b.cancelled {
		return false
	}
	b.unblocked = withError
	if b.trying {
		b.expired = true
		return true
	}
	bl.reply(b, b.ended())
	return true
}

// remove takes b out of the registry.
func (bl *blocking) remove(b *blocked) {
	if b.finished {
		return
	}
	b.finished = true
	if b.c.blocked == b {
		b.c.blocked = nil
	}
	if b.timer != nil {
		b.timer.Stop()
	}
	for _, k := range b.keys {
		q := bl.queues[k]
		if q == nil {
			continue
		}
		q.clients = slices.DeleteFunc(q.clients, func(x *blocked) bool { return x == b })
		if len(q.clients) == 0 && !q.busy {
			delete(bl.queues, k)
		}
	}
	bl.n.Add(-1)
}

func (bl *blocking) expire(b *blocked) {
	bl.mu.Lock()
	defer bl.mu.Unlock()
	if b.trying {
		b.expired = true
		return
	}
	bl.reply(b, timedOut)
}

// cancel ends c's wait: closed, the connection is gone (a try in flight
// that takes something pushes it back); otherwise the server is shutting
// down, and c is closed with no reply (or with what a try in flight
// takes).
func (bl *blocking) cancel(c *conn, closed bool) {
	if bl.n.Load() == 0 {
		return
	}
	bl.mu.Lock()
	defer bl.mu.Unlock()
	b := c.blocked
	if b == nil || b.finished {
		return
	}
	switch {
	case closed && b.trying:
		b.cancelled = true
	case closed:
		bl.remove(b)
	case b.trying:
		b.stopping = true
	default:
		bl.reply(b, stopped)
	}
}

// popped is the keyspace.PopWatcher hook (see Server.Popped).
func (bl *blocking) popped(token []byte, key string, elems [][]byte) {
	if len(token) != 16 || !bytes.Equal(token[:8], bl.prefix[:]) {
		return
	}
	bl.mu.Lock()
	defer bl.mu.Unlock()
	t := bl.tries[string(token)]
	switch {
	case t == nil:
		// Its reply came first and was handled.
	case t.lost:
		delete(bl.tries, string(token))
		if len(elems) > 0 {
			bl.pushBack(t.b, (&try{b: t.b, key: key, elems: elems}).result())
		}
	default:
		t.applied, t.key, t.elems = true, key, elems
	}
	bl.forgetLost()
}

// lostFor bounds how long a lost try is remembered: an entry that has not
// been applied that long after its proposal failed never will be (a
// leader holding it has long been replaced).
const lostFor = time.Minute

func (bl *blocking) forgetLost() {
	for tok, t := range bl.tries {
		if t.lost && time.Since(t.at) > lostFor {
			delete(bl.tries, tok)
		}
	}
}

// pushBack returns what a try took for no one to where it came from: the
// same end of the same list, in the same order, or the same sorted set
// with the same scores. BLMOVE's element is in its destination and stays
// there.
func (bl *blocking) pushBack(b *blocked, r command.Result) {
	if b.cmd.Op == command.OpZMPop {
		if cmd, ok := zaddBack(b.cmd.DB, r); ok {
			go bl.pushUntilDone(command.Tx{cmd}, 50*time.Millisecond)
		}
		return
	}
	if b.cmd.Op != command.OpLMPop || r.Kind != command.KindArray || len(r.Array) != 2 {
		return
	}
	popped := r.Array[1].Array
	cmd := command.Cmd{Op: command.OpLPush, DB: b.cmd.DB, Key: r.Array[0].Bulk, Flags: b.cmd.Flags & command.FlagLeft}
	for i := len(popped) - 1; i >= 0; i-- {
		cmd.Args = append(cmd.Args, popped[i].Bulk)
	}
	go bl.pushUntilDone(command.Tx{cmd}, 50*time.Millisecond)
}

// pushUntilDone proposes a push back until it is applied or the node is
// shutting down. A push whose outcome was unknown may be applied twice.
func (bl *blocking) pushUntilDone(tx command.Tx, backoff time.Duration) {
	bl.srv.node.WriteAsync(tx, func(res command.TxResult, err error) {
		switch {
		case err == nil && res.Err == nil:
			return
		case errors.Is(err, command.ErrShutdown), errors.Is(err, command.ErrRemoved):
		case err == nil:
			err = res.Err
		default:
			time.AfterFunc(backoff, func() { bl.pushUntilDone(tx, min(2*backoff, time.Second)) })
			return
		}
		bl.srv.log.Error("a popped element could not be pushed back for a client that left", "key", string(tx[0].Key), "err", err)
	})
}

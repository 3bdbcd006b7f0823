package session

import (
	"context"
	"sync"
)

// flightGroup shares loads of one session among the concurrent requests
// of this process, without ever handing a request a load that began before
// it arrived: such a load could miss a write acknowledged in between (on
// another server, say), and the user would see their session go back in
// time. So per token at most one load runs; requests that arrive while it
// runs wait for it to end and share the next one, which starts then.
type flightGroup struct {
	mu sync.Mutex
	m  map[string]*tokenFlights
}

type tokenFlights struct {
	running *flight // the load in progress
	next    *flight // the load that starts when running ends; nil if none is wanted
}

type flight struct {
	waiters int           // requests that joined it, beside the one that began it (under flightGroup.mu)
	done    chan struct{} // closed when b, found and err are set
	b       []byte        // shared by every waiter: read-only
	found   bool
	err     error
}

// find loads token's session from s, or shares a load that begins after
// this call did.
func (g *flightGroup) find(ctx context.Context, s Store, token string) ([]byte, bool, error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = map[string]*tokenFlights{}
	}
	tf := g.m[token]
	if tf == nil {
		tf = &tokenFlights{}
		g.m[token] = tf
	}
	var f *flight
	if tf.running == nil {
		f = &flight{done: make(chan struct{})}
		tf.running = f
		g.mu.Unlock()
		// The first caller loads itself. The load goes on if its request
		// is cancelled: others may be waiting for it.
		g.run(context.WithoutCancel(ctx), s, token, f)
	} else {
		if tf.next == nil {
			tf.next = &flight{done: make(chan struct{})}
		}
		f = tf.next
		f.waiters++
		g.mu.Unlock()
	}
	select {
	case <-f.done:
		return f.b, f.found, f.err
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// run performs the load of f, then starts the next flight of token, if
// any request waits for one.
func (g *flightGroup) run(ctx context.Context, s Store, token string, f *flight) {
	f.b, f.found, f.err = s.Find(ctx, token)
	g.mu.Lock()
	tf := g.m[token]
	next := tf.next
	tf.running, tf.next = next, nil
	if next == nil {
		delete(g.m, token)
	}
	g.mu.Unlock()
	close(f.done)
	if next != nil {
		go g.run(ctx, s, token, next)
	}
}

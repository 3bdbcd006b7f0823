package netserve

import (
	"sync"
	"sync/atomic"
)

// Waiter is a session's request in flight: the one operation it waits
// for, whose completion may come from any goroutine, perhaps before the
// call that started it has returned. A session embeds a Waiter, sets Link,
// starts each operation with Await and, when the driver runs it again,
// calls Resume. While busy it parses nothing more, so replies leave in
// request order.
type Waiter struct {
	Link Link // woken when an operation completes

	busy    atomic.Bool
	mu      sync.Mutex
	calling bool   // inside the call that may complete at once
	ready   func() // the continuation, once the operation completed
}

// Busy reports whether an operation is in flight (Session.Busy).
func (w *Waiter) Busy() bool { return w.busy.Load() }

// Await starts an operation: call passes the node a callback that ends in
// done(k), where k, the continuation, then runs on the session's driver.
// An operation that completes before call returns (a read a leader
// answers at once) runs k before Await returns; otherwise the session is
// busy until Resume runs k.
func (w *Waiter) Await(call func(done func(k func()))) {
	w.busy.Store(true)
	w.mu.Lock()
	w.calling = true
	w.mu.Unlock()
	call(w.completed)
	w.mu.Lock()
	w.calling = false
	k := w.ready
	w.ready = nil
	w.mu.Unlock()
	if k != nil {
		w.busy.Store(false)
		k()
	}
}

// completed hands over a continuation and wakes the driver, unless the
// call that started the operation has not returned yet (Await runs it).
func (w *Waiter) completed(k func()) {
	w.mu.Lock()
	w.ready = k
	inline := w.calling
	w.mu.Unlock()
	if !inline {
		w.Link.Wake()
	}
}

// Resume runs a continuation that has been handed over, if any, and
// reports whether it did (a driver may run a session early).
func (w *Waiter) Resume() bool {
	w.mu.Lock()
	k := w.ready
	w.ready = nil
	w.mu.Unlock()
	if k == nil {
		return false
	}
	w.busy.Store(false)
	k()
	return true
}

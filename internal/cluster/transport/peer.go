package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Reconnect backoff: the first retry after a failure waits minBackoff, each
// further one twice as long, up to maxBackoff. A few hundred milliseconds
// is a handful of raft heartbeats: short enough that a restarted peer is
// found again before an election, long enough not to spin on a dead one.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = time.Second
)

var (
	errPeerClosed  = errors.New("peer closed the connection")
	errAddrChanged = errors.New("peer address changed")
)

// peer is the sending side towards one node. Its run goroutine owns the
// message connection: it is the only one to dial, write and close it.
type peer struct {
	t  *Transport
	id uint64

	queue   chan raftpb.Message // filled by Send, drained by run
	changed chan struct{}       // (capacity 1) the address changed
	ctx     context.Context     // cancelled by RemovePeer and Close
	cancel  context.CancelFunc

	mu   sync.Mutex
	addr string

	full      atomic.Bool // the queue overflowed and that was reported; cleared when run makes progress
	snapping  atomic.Bool // a snapshot is in flight
	connected atomic.Bool
	dropped   atomic.Uint64
	up        bool // what report last said; owned by run
}

func newPeer(t *Transport, id uint64, addr string) *peer {
	ctx, cancel := context.WithCancel(context.Background())
	return &peer{
		t:       t,
		id:      id,
		addr:    addr,
		queue:   make(chan raftpb.Message, t.cfg.QueueSize),
		changed: make(chan struct{}, 1),
		ctx:     ctx,
		cancel:  cancel,
	}
}

func (p *peer) address() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

func (p *peer) setAddr(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if addr == p.addr {
		return
	}
	p.addr = addr
	select {
	case p.changed <- struct{}{}:
	default: // already signalled
	}
}

// run dials the peer and writes its queue until the peer is removed or the
// transport closed.
func (p *peer) run() {
	backoff := minBackoff
	var buf []byte // the batch buffer, reused across connections
	for {
		c, err := p.dial()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			p.t.log.Debug("raft peer unreachable", "peer", p.id, "err", err)
			p.unreachable()
			if !p.wait(backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		start := time.Now()
		p.connected.Store(true)
		p.t.log.Info("raft peer connected", "peer", p.id)
		p.report(true, nil)
		err = p.stream(c, &buf)
		p.connected.Store(false)
		if p.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errAddrChanged) {
			backoff = minBackoff
			continue
		}
		p.t.log.Warn("raft peer connection lost", "peer", p.id, "err", err)
		p.report(false, err)
		p.unreachable()
		if time.Since(start) > maxBackoff {
			// A connection that worked for a while: try again at once.
			backoff = minBackoff
			continue
		}
		// One that failed soon after it was made (say, a proxy that accepts
		// and hangs up) is retried with backoff, like a failed dial.
		if !p.wait(backoff) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (p *peer) dial() (net.Conn, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.t.cfg.DialTimeout)
	defer cancel()
	return p.t.cfg.Dial(ctx, p.address())
}

// report tells Config.OnConnection that the stream came up or went down,
// once per change: a reconnection to a new address is neither.
func (p *peer) report(up bool, err error) {
	if up == p.up {
		return
	}
	p.up = up
	if fn := p.t.cfg.OnConnection; fn != nil {
		fn(p.id, up, err)
	}
}

// unreachable reports one failure.
func (p *peer) unreachable() {
	p.full.Store(false)
	p.t.cfg.Handler.ReportUnreachable(p.id)
}

// wait sleeps d while the peer is unreachable, dropping what is sent to it:
// by the time it is back those messages are stale, and raft resends what
// matters. It returns early when the address changes, and false when the
// peer is stopped.
func (p *peer) wait(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	// Drop on the way out too: select may pick the timer over messages
	// that are already queued.
	defer p.drop()
	for {
		select {
		case <-p.queue:
			p.dropped.Add(1)
		case <-timer.C:
			return true
		case <-p.changed:
			return true
		case <-p.ctx.Done():
			return false
		}
	}
}

// drop empties the queue.
func (p *peer) drop() {
	for {
		select {
		case <-p.queue:
			p.dropped.Add(1)
		default:
			return
		}
	}
}

// stream writes the queue to c until c fails, the address changes or the
// peer is stopped. buf is the batch buffer.
func (p *peer) stream(c net.Conn, buf *[]byte) error {
	// Stopping the peer closes c, which ends a Write stuck on it.
	stop := context.AfterFunc(p.ctx, func() { c.Close() })
	defer stop()
	// The receiver never writes on a message stream, so a read returns only
	// when it closes the connection: without this an idle stream would learn
	// that its peer went away only when it next has something to write.
	gone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, c)
		close(gone)
	}()
	defer func() {
		c.Close()
		<-gone
	}()

	wt := p.t.cfg.WriteTimeout
	b := appendHeader((*buf)[:0], kindMessages, p.t.cfg.ID, p.id)
	if err := writeTimeout(c, b, wt); err != nil {
		return err
	}
	for {
		// An address change comes first, so that what is sent after SetPeer
		// returns goes to the new address (select alone picks at random).
		select {
		case <-p.changed:
			return errAddrChanged
		default:
		}
		select {
		case m := <-p.queue:
			b = p.batch(b[:0], &m)
			if len(b) == 0 {
				continue
			}
			if err := writeTimeout(c, b, wt); err != nil {
				return err
			}
			p.full.Store(false)
			if cap(b) > max(keepBuf, p.t.cfg.MaxBatchBytes) {
				b = nil
			}
			*buf = b
		case <-gone:
			return errPeerClosed
		case <-p.changed:
			return errAddrChanged
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
	}
}

// batch appends m and then whatever else is queued, up to MaxBatchBytes.
func (p *peer) batch(b []byte, m *raftpb.Message) []byte {
	for {
		b = p.append(b, m)
		if len(b) >= p.t.cfg.MaxBatchBytes {
			return b
		}
		select {
		case next := <-p.queue:
			*m = next
		default:
			return b
		}
	}
}

// append appends m's frame to b, or drops m if it cannot be sent: a
// message the receiver would refuse would otherwise break the connection
// again on every retry.
func (p *peer) append(b []byte, m *raftpb.Message) []byte {
	b, err := appendFrame(b, m, p.t.cfg.MaxFrameBytes)
	if err != nil {
		p.dropped.Add(1)
		p.t.log.Warn("raft message not sent", "peer", p.id, "type", m.Type.String(), "err", err)
	}
	return b
}

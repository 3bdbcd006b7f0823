package transport

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

var (
	// ErrFrameTooLarge means a frame's length exceeded Config.MaxFrameBytes.
	ErrFrameTooLarge = errors.New("raft frame too large")
	// ErrBadFrame means a frame, chunk or stream header could not be decoded.
	ErrBadFrame = errors.New("bad raft frame")
	// ErrWrongNode means a stream was addressed to another node id.
	ErrWrongNode = errors.New("raft stream addressed to another node")
	// ErrTruncated means a snapshot stream ended before its last chunk, or
	// carried another number of bytes than it announced.
	ErrTruncated = errors.New("snapshot stream truncated")
	// ErrChecksum means a snapshot's data did not match its CRC-32C.
	ErrChecksum = errors.New("snapshot checksum mismatch")
	// ErrSnapshotRejected means the receiver answered that it did not store
	// a snapshot.
	ErrSnapshotRejected = errors.New("peer did not store the snapshot")
	// ErrNotDrained means a Handler returned from ReceiveSnapshot without an
	// error but before reading the data to io.EOF, so it was never verified.
	ErrNotDrained = errors.New("snapshot data not read to the end")
)

// Handler receives what peers send. Its methods are called only from the
// transport's own goroutines (never from the caller of Send, which is
// usually the raft loop the Handler hands things to) and with no transport
// lock held. Receive is called from a connection's reader goroutine and must
// not block for long (the node hands messages to its raft loop); while it
// blocks, that connection is not read.
type Handler interface {
	// Receive takes ownership of msgs and everything they refer to.
	Receive(msgs []raftpb.Message)
	// ReceiveSnapshot reads a snapshot's data (an io.Reader positioned at
	// the data, which fails if the stream is cut or its checksum is wrong),
	// stores it, and then hands m to raft; it returns an error if the
	// snapshot could not be stored. m.Snapshot.Data is empty. Only io.EOF
	// from data means the data is complete and verified, so the handler must
	// read to io.EOF before it treats the snapshot as stored.
	ReceiveSnapshot(m raftpb.Message, data io.Reader) error
	ReportUnreachable(id uint64)
	ReportSnapshot(id uint64, ok bool)
}

// SnapshotSource opens the data of a snapshot this node sends (a MsgSnap's
// metadata). It is called from a snapshot's sending goroutine; the size
// must be the exact number of bytes the reader yields.
type SnapshotSource interface {
	OpenSnapshot(meta raftpb.SnapshotMetadata) (io.ReadCloser, int64, error)
}

// Config configures a Transport. ID, Dial and Handler are required.
type Config struct {
	ID uint64
	// Dial opens a connection to a peer's peer port and says the hello; the
	// transport writes its stream header next.
	Dial    func(ctx context.Context, addr string) (net.Conn, error)
	Handler Handler
	// Snapshots opens the data of outgoing snapshots. If nil, a MsgSnap's own
	// Snapshot.Data is sent.
	Snapshots SnapshotSource
	// QueueSize is the number of messages per peer waiting to be written;
	// default 4096.
	QueueSize int
	// MaxBatchBytes is the number of bytes written per Write; default 1 MiB.
	MaxBatchBytes int
	// MaxFrameBytes bounds one received message (frame); default 1 GiB. It
	// must exceed the largest message raft sends: a MsgApp always carries at
	// least one entry, so the largest log entry plus overhead, and hatcheck's
	// max-value-size defaults to 512 MB. A larger frame closes the connection.
	MaxFrameBytes int
	// DialTimeout bounds one dial (default 1 s); WriteTimeout bounds one
	// Write of a batch or snapshot chunk (default 5 s).
	DialTimeout, WriteTimeout time.Duration
	// OnConnection, if set, hears the message stream to a peer come up
	// (err nil) and go down (err why). It is called from that peer's
	// sending goroutine, which it must not block for long; a dial that
	// fails while the stream is already down is not reported again, so
	// the calls alternate up, down, up for each peer.
	OnConnection func(peer uint64, up bool, err error)
	Logger       *slog.Logger
}

const (
	defaultQueueSize     = 4096
	defaultMaxBatchBytes = 1 << 20
	defaultMaxFrameBytes = 1 << 30
	defaultDialTimeout   = time.Second
	defaultWriteTimeout  = 5 * time.Second
)

// Transport sends raft messages to peers and serves connections from them.
// See the package documentation for its rules.
type Transport struct {
	cfg Config
	log *slog.Logger

	mu      sync.RWMutex
	closed  bool
	peers   map[uint64]*peer
	conns   map[net.Conn]struct{} // connections given to Serve, closed by Close
	inbound map[uint64]*inStream  // the current message stream from each peer

	droppedUnknown atomic.Uint64
	reports        reports
	done           chan struct{}  // closed by Close
	wg             sync.WaitGroup // peer, snapshot, report and Serve goroutines
}

// reports holds what Send found out, for the report goroutine to pass on:
// Send must not call the Handler, whose reports typically wait for the very
// raft loop that is calling Send.
type reports struct {
	mu          sync.Mutex
	unreachable []uint64
	snapFailed  []uint64
	wake        chan struct{} // capacity 1
}

// New returns a transport with no peers. It panics if cfg lacks Dial or
// Handler.
func New(cfg Config) *Transport {
	if cfg.Dial == nil || cfg.Handler == nil {
		panic("transport: Config needs Dial and Handler")
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = defaultQueueSize
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = defaultMaxBatchBytes
	}
	if cfg.MaxFrameBytes <= 0 || cfg.MaxFrameBytes > 1<<32-1 {
		cfg.MaxFrameBytes = defaultMaxFrameBytes
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = defaultWriteTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Transport{
		cfg:     cfg,
		log:     log,
		peers:   map[uint64]*peer{},
		conns:   map[net.Conn]struct{}{},
		inbound: map[uint64]*inStream{},
		reports: reports{wake: make(chan struct{}, 1)},
		done:    make(chan struct{}),
	}
	t.wg.Go(t.runReports)
	return t
}

// SetPeer adds a peer, or changes its address: the peer's goroutine then
// closes its connection and dials the new address, keeping queued messages.
func (t *Transport) SetPeer(id uint64, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if p := t.peers[id]; p != nil {
		p.setAddr(addr)
		return
	}
	p := newPeer(t, id, addr)
	t.peers[id] = p
	t.wg.Go(p.run)
}

// RemovePeer forgets a peer: its connections are closed and its queued
// messages dropped. It returns at once; Close joins the peer's goroutines.
// A snapshot in flight to it is reported failed.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if p != nil {
		p.cancel()
	}
}

// Send queues msgs for their peers and never blocks. See the package
// documentation for what it drops, what it reports, and the ownership of
// msgs' byte slices.
func (t *Transport) Send(msgs []raftpb.Message) {
	var unreachable, snapFailed []uint64
	t.mu.RLock()
	if t.closed {
		t.mu.RUnlock()
		return
	}
	for i := range msgs {
		m := &msgs[i]
		p := t.peers[m.To]
		switch {
		case p == nil:
			t.droppedUnknown.Add(1)
			if m.Type == raftpb.MsgSnap {
				// raft waits for a report before it tries again.
				snapFailed = append(snapFailed, m.To)
			}
		case m.Type == raftpb.MsgSnap:
			if !p.snapping.CompareAndSwap(false, true) {
				p.dropped.Add(1)
				snapFailed = append(snapFailed, m.To)
				continue
			}
			// Safe under the read lock: Close sets closed under the write
			// lock before it waits.
			snap := *m
			t.wg.Go(func() { p.sendSnapshot(snap) })
		default:
			select {
			case p.queue <- *m:
			default:
				p.dropped.Add(1)
				// Once per episode: the flag is cleared when the peer's
				// writer next makes progress or fails.
				if p.full.CompareAndSwap(false, true) {
					unreachable = append(unreachable, m.To)
				}
			}
		}
	}
	t.mu.RUnlock()
	if len(unreachable)+len(snapFailed) > 0 {
		t.report(unreachable, snapFailed)
	}
}

// report hands findings to the report goroutine without blocking.
func (t *Transport) report(unreachable, snapFailed []uint64) {
	r := &t.reports
	r.mu.Lock()
	r.unreachable = append(r.unreachable, unreachable...)
	r.snapFailed = append(r.snapFailed, snapFailed...)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default: // already awake
	}
}

// runReports passes Send's findings to the Handler until Close.
func (t *Transport) runReports() {
	r := &t.reports
	for {
		select {
		case <-r.wake:
		case <-t.done:
			return
		}
		r.mu.Lock()
		unreachable, snapFailed := r.unreachable, r.snapFailed
		r.unreachable, r.snapFailed = nil, nil
		r.mu.Unlock()
		for _, id := range unreachable {
			t.cfg.Handler.ReportUnreachable(id)
		}
		for _, id := range snapFailed {
			t.cfg.Handler.ReportSnapshot(id, false)
		}
	}
}

// Close stops dialing, closes every connection and joins every goroutine.
// It always returns nil; calling it again only waits.
func (t *Transport) Close() error {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		close(t.done)
		for _, p := range t.peers {
			p.cancel()
		}
		for c := range t.conns {
			c.Close()
		}
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

// PeerStats describes one peer.
type PeerStats struct {
	ID        uint64
	Addr      string
	Connected bool   // the message stream is up
	Queued    int    // messages waiting to be written
	Dropped   uint64 // messages discarded without being written (queue full, peer unreachable, snapshot already in flight)
}

// Stats is a snapshot of the transport's counters, for metrics.
type Stats struct {
	Peers          []PeerStats // by ID
	DroppedUnknown uint64      // messages to peers the transport does not know
}

// Stats returns the current counters.
func (t *Transport) Stats() Stats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s := Stats{DroppedUnknown: t.droppedUnknown.Load()}
	for _, p := range t.peers {
		s.Peers = append(s.Peers, PeerStats{
			ID:        p.id,
			Addr:      p.address(),
			Connected: p.connected.Load(),
			Queued:    len(p.queue),
			Dropped:   p.dropped.Load(),
		})
	}
	slices.SortFunc(s.Peers, func(a, b PeerStats) int { return cmp.Compare(a.ID, b.ID) })
	return s
}

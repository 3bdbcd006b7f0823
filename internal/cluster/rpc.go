package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Peer RPC: followers forward commands to the leader, and nodes ask each
// other for membership changes and node information. One connection per
// peer carries many concurrent calls; each frame is
//
//	length uint32 | call id uint64 | type or status byte | payload
//
// where length counts everything after itself. The server answers each
// call from its own goroutine, so a slow write does not hold up reads.

// Request types.
const (
	rpcWrite   byte = 'W' // payload: command.EncodeBatch of one transaction
	rpcControl byte = 'C' // payload: JSON controlRequest
	// The near-cache (near.go): a lease for the asking node, tracking of
	// one key for it, and the leader's invalidations.
	rpcLease      byte = 'L' // payload: the asker's raft id; reply: encodeGrant, or rpcRetry (refused)
	rpcTrack      byte = 'T' // payload: the asker's raft id | key; reply: encodeGrant, or rpcRetry (do not cache)
	rpcInvalidate byte = 'I' // payload: encodeInvalidation; reply: rpcOK once applied
)

// Reply statuses.
const (
	rpcOK    byte = 0 // payload: the encoded result
	rpcRetry byte = 1 // this node cannot serve it now and did nothing; ask the leader again
	rpcError byte = 2 // payload: command.AppendTxResult with Err set; a write's outcome is unknown
)

// maxFrame bounds one frame; a forwarded transaction carries client values.
const maxFrame = 1 << 30

// errConnLost means the connection failed after a call was sent: the call
// may or may not have been executed.
var errConnLost = errors.New("peer connection lost")

// errNotSent means a call never reached the peer.
var errNotSent = errors.New("peer unreachable")

// errAborted means the caller stopped waiting for a reply.
var errAborted = errors.New("stopped waiting for the peer")

type rpcHandler func(ctx context.Context, typ byte, payload []byte) (byte, []byte)

// serveRPC answers calls on one connection until it fails or ctx ends.
func serveRPC(ctx context.Context, c net.Conn, h rpcHandler) {
	defer c.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	r := bufio.NewReaderSize(c, 64<<10)
	var wmu sync.Mutex
	w := bufio.NewWriterSize(c, 64<<10)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		id, typ, payload, err := readFrame(r)
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, out := h(ctx, typ, payload)
			wmu.Lock()
			defer wmu.Unlock()
			if writeFrame(w, id, st, out) == nil {
				_ = w.Flush()
			}
		}()
	}
}

func readFrame(r *bufio.Reader) (uint64, byte, []byte, error) {
	var hdr [13]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 9 || n > maxFrame {
		return 0, 0, nil, fmt.Errorf("peer frame of %d bytes", n)
	}
	payload := make([]byte, n-9)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, 0, nil, err
	}
	return binary.BigEndian.Uint64(hdr[4:12]), hdr[12], payload, nil
}

func writeFrame(w *bufio.Writer, id uint64, typ byte, payload []byte) error {
	var hdr [13]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(9+len(payload)))
	binary.BigEndian.PutUint64(hdr[4:12], id)
	hdr[12] = typ
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// rpcClient is one multiplexed connection to a peer. A caller waits for
// its reply (call) or is called back with it (callAsync, for the event
// loops, which must not wait: their requests are written by the client's
// writer goroutine, several per flush).
type rpcClient struct {
	conn  net.Conn
	wmu   sync.Mutex
	w     *bufio.Writer
	sendq chan rpcFrame // callAsync's requests, for the writer
	dead  chan struct{} // closed when the connection has failed

	mu      sync.Mutex
	next    uint64
	pending map[uint64]pendingCall
	err     error // set once the connection has failed
}

// pendingCall is where a reply goes: a waiting caller's channel, or an
// asynchronous caller's callback (ok false: the connection failed).
type pendingCall struct {
	ch chan rpcReply
	cb func(rep rpcReply, ok bool)
}

type rpcReply struct {
	status  byte
	payload []byte
}

type rpcFrame struct {
	id      uint64
	typ     byte
	payload []byte
}

// sendQueue bounds callAsync's requests waiting for the writer.
const sendQueue = 4096

func newRPCClient(c net.Conn) *rpcClient {
	cl := &rpcClient{conn: c, w: bufio.NewWriterSize(c, 64<<10), pending: map[uint64]pendingCall{},
		sendq: make(chan rpcFrame, sendQueue), dead: make(chan struct{})}
	go cl.readLoop()
	go cl.writeLoop()
	return cl
}

// writeLoop writes callAsync's requests, as many per flush as are queued.
func (cl *rpcClient) writeLoop() {
	for {
		var f rpcFrame
		select {
		case f = <-cl.sendq:
		case <-cl.dead:
			return
		}
		cl.wmu.Lock()
		_ = cl.conn.SetWriteDeadline(time.Now().Add(rpcWriteTimeout))
		err := writeFrame(cl.w, f.id, f.typ, f.payload)
	more:
		for err == nil {
			select {
			case f = <-cl.sendq:
				err = writeFrame(cl.w, f.id, f.typ, f.payload)
			default:
				break more
			}
		}
		if err == nil {
			err = cl.w.Flush()
		}
		cl.wmu.Unlock()
		if err != nil {
			cl.fail(err)
			return
		}
	}
}

// callAsync sends one request without waiting: cb gets the reply, or ok
// false if the connection fails first, on the client's reader goroutine.
// It returns the call's id, and false if the request could not be queued
// (the connection failed, or the queue is full); cb is then never called.
func (cl *rpcClient) callAsync(typ byte, payload []byte, cb func(rep rpcReply, ok bool)) (uint64, bool) {
	cl.mu.Lock()
	if cl.err != nil {
		cl.mu.Unlock()
		return 0, false
	}
	cl.next++
	id := cl.next
	cl.pending[id] = pendingCall{cb: cb}
	cl.mu.Unlock()
	select {
	case cl.sendq <- rpcFrame{id, typ, payload}:
		return id, true
	default:
		cl.forget(id)
		return 0, false
	}
}

func (cl *rpcClient) readLoop() {
	r := bufio.NewReaderSize(cl.conn, 64<<10)
	for {
		id, st, payload, err := readFrame(r)
		if err != nil {
			cl.fail(err)
			return
		}
		cl.mu.Lock()
		p := cl.pending[id]
		delete(cl.pending, id)
		cl.mu.Unlock()
		switch {
		case p.cb != nil:
			p.cb(rpcReply{st, payload}, true)
		case p.ch != nil:
			p.ch <- rpcReply{st, payload}
		}
	}
}

// fail closes the connection and fails every call waiting on it.
func (cl *rpcClient) fail(err error) {
	var cbs []func(rpcReply, bool)
	cl.mu.Lock()
	if cl.err == nil {
		cl.err = err
		close(cl.dead)
	}
	for id, p := range cl.pending {
		if p.cb != nil {
			cbs = append(cbs, p.cb)
		} else {
			close(p.ch)
		}
		delete(cl.pending, id)
	}
	cl.mu.Unlock()
	cl.conn.Close()
	// Outside the lock: a callback may start another call.
	for _, cb := range cbs {
		cb(rpcReply{}, false)
	}
}

func (cl *rpcClient) broken() bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.err != nil
}

// call sends one request and waits for its reply. It returns errNotSent if
// the request never left, errConnLost if the connection failed afterwards,
// errAborted if no reply came within grace after abort was closed.
func (cl *rpcClient) call(ctx context.Context, abort <-chan struct{}, grace time.Duration, typ byte, payload []byte) (byte, []byte, error) {
	ch := make(chan rpcReply, 1)
	cl.mu.Lock()
	if cl.err != nil {
		cl.mu.Unlock()
		return 0, nil, errNotSent
	}
	cl.next++
	id := cl.next
	cl.pending[id] = pendingCall{ch: ch}
	cl.mu.Unlock()

	cl.wmu.Lock()
	_ = cl.conn.SetWriteDeadline(time.Now().Add(rpcWriteTimeout))
	err := writeFrame(cl.w, id, typ, payload)
	if err == nil {
		err = cl.w.Flush()
	}
	cl.wmu.Unlock()
	if err != nil {
		cl.fail(err)
		// Some bytes may have left: only an unflushed header is certainly unsent,
		// and telling the two apart is not worth it for a broken link.
		return 0, nil, errConnLost
	}
	var graceC <-chan time.Time
	for {
		select {
		case rep, ok := <-ch:
			if !ok {
				return 0, nil, errConnLost
			}
			return rep.status, rep.payload, nil
		case <-ctx.Done():
			cl.forget(id)
			return 0, nil, ctx.Err()
		case <-abort:
			// A peer that is still alive answers soon (a leader handing
			// over answers "retry"); one that is paused or cut off does
			// not, and the caller stops waiting for it.
			abort = nil
			t := time.NewTimer(grace)
			defer t.Stop()
			graceC = t.C
		case <-graceC:
			cl.forget(id)
			return 0, nil, errAborted
		}
	}
}

func (cl *rpcClient) forget(id uint64) {
	cl.mu.Lock()
	delete(cl.pending, id)
	cl.mu.Unlock()
}

// rpcWriteTimeout bounds writing one request to a peer.
const rpcWriteTimeout = 5 * time.Second

// peers keeps one RPC client per peer address.
type peers struct {
	mux *peerMux
	mu  sync.Mutex
	cl  map[string]*rpcClient
}

// connected returns the open client for addr, or nil if there is none
// yet (get dials, which takes time).
func (p *peers) connected(addr string) *rpcClient {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cl := p.cl[addr]; cl != nil && !cl.broken() {
		return cl
	}
	return nil
}

func (p *peers) get(addr string) (*rpcClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cl := p.cl[addr]; cl != nil && !cl.broken() {
		return cl, nil
	}
	c, err := p.mux.dial(connRPC, addr, time.Second)
	if err != nil {
		return nil, err
	}
	var ack [1]byte
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := io.ReadFull(c, ack[:]); err != nil || ack[0] != rpcAccepted {
		c.Close()
		return nil, fmt.Errorf("peer %s did not accept the connection: %v", addr, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	cl := newRPCClient(c)
	if p.cl == nil {
		p.cl = map[string]*rpcClient{}
	}
	p.cl[addr] = cl
	return cl, nil
}

// call sends a request to the peer at addr.
func (p *peers) call(ctx context.Context, addr string, typ byte, payload []byte) (byte, []byte, error) {
	return p.callAbortable(ctx, nil, 0, addr, typ, payload)
}

// callAbortable is call that stops waiting for a reply once abort is
// closed and grace has passed since.
func (p *peers) callAbortable(ctx context.Context, abort <-chan struct{}, grace time.Duration, addr string, typ byte, payload []byte) (byte, []byte, error) {
	cl, err := p.get(addr)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errNotSent, err)
	}
	return cl.call(ctx, abort, grace, typ, payload)
}

func (p *peers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, cl := range p.cl {
		cl.fail(errors.New("node closed"))
		delete(p.cl, addr)
	}
}

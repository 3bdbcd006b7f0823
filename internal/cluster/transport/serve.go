package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// inStream is the message stream being read from one peer.
type inStream struct {
	c    net.Conn
	done chan struct{} // closed when its reader has handed on its last messages
}

// Serve serves one connection accepted on the peer port (after the hello)
// until it fails or the transport is closed, and then closes it. It may be
// called from any goroutine; Close waits for it to return.
func (t *Transport) Serve(c net.Conn) {
	if !t.track(c) {
		c.Close()
		return
	}
	defer t.untrack(c)

	var h [headerLen]byte
	_ = c.SetReadDeadline(time.Now().Add(headerTimeout))
	if _, err := io.ReadFull(c, h[:]); err != nil {
		t.log.Debug("raft connection closed before its header", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	kind, from, to := parseHeader(&h)
	if to != t.cfg.ID {
		t.log.Warn("raft connection refused", "peer", from, "to", to, "err", ErrWrongNode)
		return
	}
	switch kind {
	case kindMessages:
		t.serveMessages(c, from)
	case kindSnapshot:
		t.serveSnapshot(c, from)
	default:
		t.log.Warn("raft connection refused", "peer", from, "err", fmt.Errorf("%w: stream kind %q", ErrBadFrame, kind))
	}
}

// track registers a served connection, unless the transport is closed.
func (t *Transport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	t.wg.Add(1) // under the lock, so Close's Wait cannot have started
	return true
}

func (t *Transport) untrack(c net.Conn) {
	c.Close()
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	t.wg.Done()
}

// serveMessages reads frames from a peer's message stream and hands them
// to the Handler, every frame already buffered in one call.
func (t *Transport) serveMessages(c net.Conn, from uint64) {
	// A peer has one message stream. A new one means the peer gave up the
	// old one: close it, and wait until its reader has handed on what it
	// had read, so messages from the two are never interleaved.
	s := &inStream{c: c, done: make(chan struct{})}
	defer close(s.done)
	t.mu.Lock()
	old := t.inbound[from]
	t.inbound[from] = s
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		if t.inbound[from] == s {
			delete(t.inbound, from)
		}
		t.mu.Unlock()
	}()
	if old != nil {
		old.c.Close()
		<-old.done
	}

	r := bufio.NewReaderSize(c, readBufSize)
	var buf []byte
	for {
		var msgs []raftpb.Message // new for each call: the Handler owns it
		var err error
		for {
			if buf, err = readFrame(r, buf, t.cfg.MaxFrameBytes); err != nil {
				break
			}
			msgs = append(msgs, raftpb.Message{})
			// Unmarshal copies every byte field out of buf (see the package
			// documentation), so buf can be reused for the next frame.
			if err = msgs[len(msgs)-1].Unmarshal(buf); err != nil {
				msgs = msgs[:len(msgs)-1]
				err = fmt.Errorf("%w: %v", ErrBadFrame, err)
				break
			}
			if cap(buf) > keepBuf {
				buf = nil
			}
			if !frameBuffered(r) {
				break
			}
		}
		if len(msgs) > 0 {
			t.cfg.Handler.Receive(msgs)
		}
		if err != nil {
			if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrBadFrame) {
				t.log.Warn("raft connection closed: bad frame", "peer", from, "err", err)
			} else {
				t.log.Debug("raft connection closed", "peer", from, "err", err)
			}
			return
		}
	}
}

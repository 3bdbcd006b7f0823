package cluster

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The peer port carries several kinds of traffic. Every connection opens
// with one byte naming its kind; the mux reads it and hands the connection
// to the matching listener. Only Raft exists so far; forwarding and join
// requests get their own bytes.
const (
	connRaft byte = 'R'
)

// peerMux accepts connections on the peer port and routes them by kind.
type peerMux struct {
	ln        net.Listener
	advertise net.Addr
	raft      *streamLayer
	wg        sync.WaitGroup
}

func newPeerMux(addr string, advertise string) (*peerMux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	adv := ln.Addr()
	if advertise != "" {
		if adv, err = net.ResolveTCPAddr("tcp", advertise); err != nil {
			ln.Close()
			return nil, err
		}
	}
	m := &peerMux{ln: ln, advertise: adv}
	m.raft = &streamLayer{mux: m, conns: make(chan net.Conn, 16), closed: make(chan struct{})}
	m.wg.Add(1)
	go m.serve()
	return m, nil
}

// kindTimeout bounds how long a new connection may take to name its kind.
const kindTimeout = 5 * time.Second

func (m *peerMux) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		go m.route(c)
	}
}

func (m *peerMux) route(c net.Conn) {
	var b [1]byte
	_ = c.SetReadDeadline(time.Now().Add(kindTimeout))
	if _, err := c.Read(b[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	switch b[0] {
	case connRaft:
		select {
		case m.raft.conns <- c:
		case <-m.raft.closed:
			c.Close()
		}
	default:
		c.Close()
	}
}

func (m *peerMux) Close() error {
	err := m.ln.Close()
	m.raft.closeOnce.Do(func() { close(m.raft.closed) })
	m.wg.Wait()
	return err
}

// streamLayer is the Raft side of the mux: a net.Listener fed by the mux
// and a Dial that names the kind.
type streamLayer struct {
	mux       *peerMux
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.closed:
		return nil, errors.New("peer port closed")
	}
}

func (s *streamLayer) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

func (s *streamLayer) Addr() net.Addr { return s.mux.advertise }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{connRaft}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

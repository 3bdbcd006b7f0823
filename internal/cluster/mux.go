package cluster

import (
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// The peer port carries every kind of traffic between nodes. Each
// connection opens with a hello:
//
//	kind byte | id length byte | dialing node's id | secret length byte | secret
//
// A Raft connection adds the dialer's advertised peer address:
//
//	address length byte | address
//
// so that a node can answer a member it has not yet learned of from the log
// (a joining node hears from the leader before it has the log that names
// the leader).
//
// With peer TLS (Config.PeerTLS) every connection is TLS from its first
// byte, both ends present certificates and verify the other's, and the
// hello goes inside: a peer without a certificate of the cluster's CA
// never gets as far as saying it.
//
// The mux checks the secret (when the cluster has one) and hands the
// connection to the listener of its kind. The id names the dialer in logs
// and lets a test proxy tell which link a connection belongs to.
const (
	connRaft byte = 'E' // Raft messages and snapshot streams (package transport)
	connRPC  byte = 'F' // forwarded commands and membership requests (rpc.go)

	rpcAccepted byte = 'K' // the mux's answer to an RPC hello
)

// peerMux accepts connections on the peer port and routes them by kind.
type peerMux struct {
	ln        net.Listener
	advertise net.Addr
	id        string
	secret    string
	tls       func() *tls.Config // nil: plain TCP
	log       logger
	raft      func(net.Conn)        // serves one Raft connection
	learn     func(id, addr string) // told each Raft dialer's address
	rpc       func(net.Conn)        // serves one RPC connection
	wg        sync.WaitGroup
	closed    chan struct{}
	closeOnce sync.Once
}

type logger interface {
	Warn(msg string, args ...any)
}

// newPeerMux serves the peer port on ln, or on a new listener on addr if
// ln is nil; with tlsConf, over mutual TLS.
func newPeerMux(ln net.Listener, addr, advertise, id, secret string, tlsConf func() *tls.Config, log logger) (*peerMux, error) {
	if len(id) > 255 || len(secret) > 255 {
		if ln != nil {
			ln.Close()
		}
		return nil, errors.New("node id and cluster secret must be at most 255 bytes")
	}
	var err error
	if ln == nil {
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, err
		}
	}
	adv := ln.Addr()
	if advertise != "" {
		if adv, err = net.ResolveTCPAddr("tcp", advertise); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return &peerMux{ln: ln, advertise: adv, id: id, secret: secret, tls: tlsConf, log: log, closed: make(chan struct{})}, nil
}

// start begins accepting; rpc serves RPC connections, raft Raft's, and
// learn hears where each Raft dialer says it is.
func (m *peerMux) start(rpc, raft func(net.Conn), learn func(id, addr string)) {
	m.rpc = rpc
	m.raft = raft
	m.learn = learn
	m.wg.Add(1)
	go m.serve()
}

// helloTimeout bounds how long a new connection may take to say hello,
// its TLS handshake included.
const helloTimeout = 5 * time.Second

func (m *peerMux) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.route(c)
		}()
	}
}

func (m *peerMux) route(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(helloTimeout))
	if m.tls != nil {
		tc := tls.Server(c, m.tls())
		if err := tc.Handshake(); err != nil {
			m.log.Warn("peer connection refused: TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			c.Close()
			return
		}
		c = tc
	}
	kind, from, secret, err := readHello(c)
	if err != nil {
		c.Close()
		return
	}
	if m.secret == "" && m.tls == nil && !isLoopback(c.RemoteAddr()) {
		// Protected mode, as for clients: without a password or a
		// certificate of the cluster's CA only loopback peers are
		// accepted.
		m.log.Warn("peer connection refused: set --requirepass to accept peers beyond loopback", "remote", c.RemoteAddr().String(), "claims", from)
		c.Close()
		return
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(m.secret)) != 1 {
		m.log.Warn("peer connection refused: wrong cluster secret", "remote", c.RemoteAddr().String(), "claims", from)
		c.Close()
		return
	}
	var addr string
	if kind == connRaft {
		if addr, err = readShortString(c); err != nil {
			c.Close()
			return
		}
	}
	_ = c.SetDeadline(time.Time{})
	switch kind {
	case connRaft:
		m.learn(from, addr)
		m.raft(c)
	case connRPC:
		// Acknowledge, so the dialer knows a node (not just a socket)
		// took the connection before it sends anything that matters.
		if _, err := c.Write([]byte{rpcAccepted}); err != nil {
			c.Close()
			return
		}
		m.rpc(c)
	default:
		c.Close()
	}
}

func isLoopback(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}

// readHello reads a connection's hello.
func readHello(r io.Reader) (kind byte, id, secret string, err error) {
	var b [2]byte
	if _, err = io.ReadFull(r, b[:]); err != nil {
		return
	}
	kind = b[0]
	idb := make([]byte, int(b[1])+1)
	if _, err = io.ReadFull(r, idb); err != nil {
		return
	}
	sec := make([]byte, int(idb[len(idb)-1]))
	if _, err = io.ReadFull(r, sec); err != nil {
		return
	}
	return kind, string(idb[:len(idb)-1]), string(sec), nil
}

func (m *peerMux) hello(kind byte) []byte {
	b := append([]byte{kind, byte(len(m.id))}, m.id...)
	b = append(b, byte(len(m.secret)))
	b = append(b, m.secret...)
	if kind == connRaft {
		addr := m.advertise.String()
		b = append(b, byte(len(addr)))
		b = append(b, addr...)
	}
	return b
}

// readShortString reads a length byte and that many bytes.
func readShortString(r io.Reader) (string, error) {
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", err
	}
	b := make([]byte, n[0])
	_, err := io.ReadFull(r, b)
	return string(b), err
}

// dial opens a peer connection of the given kind.
func (m *peerMux) dial(kind byte, addr string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	if m.tls != nil {
		conf := m.tls()
		// The peer's certificate must name the host it is dialed at (an
		// IP address or a DNS name, as in --peer-advertise and --join).
		conf.ServerName, _, _ = net.SplitHostPort(addr)
		tc := tls.Client(c, conf)
		_ = c.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("peer TLS: %w", err)
		}
		_ = c.SetDeadline(time.Time{})
		c = tc
	}
	if _, err := c.Write(m.hello(kind)); err != nil {
		c.Close()
		return nil, fmt.Errorf("peer hello: %w", err)
	}
	return c, nil
}

func (m *peerMux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		err = m.ln.Close()
		close(m.closed)
	})
	m.wg.Wait()
	return err
}

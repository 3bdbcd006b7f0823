// Package faultproxy puts a controllable TCP proxy in front of each node's
// peer port, so tests can cut and restore links between nodes without root
// or network namespaces. Each node advertises its proxy's address; the proxy
// reads the hello every peer connection opens with (kind, dialing node's id)
// to learn which link a connection belongs to.
package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Network is the set of proxies of one test cluster.
type Network struct {
	mu      sync.Mutex
	proxies map[string]*Proxy // by the id of the node behind it
	cut     map[link]bool
	stalled map[string]bool // nodes whose traffic is held (see Stall)
	resume  chan struct{}   // closed at the next Resume
}

type link struct{ from, to string }

// New returns an empty network.
func New() *Network {
	return &Network{proxies: map[string]*Proxy{}, cut: map[link]bool{}, stalled: map[string]bool{}, resume: make(chan struct{})}
}

// Proxy forwards connections to one node's peer port.
type Proxy struct {
	net    *Network
	id     string
	ln     net.Listener
	mu     sync.Mutex
	target string
	conns  map[net.Conn]string // accepted connection → dialing node's id
	wg     sync.WaitGroup
}

// Listen starts a proxy on a free loopback port for the node id. Set its
// target before the node's peers dial it.
func (nw *Network) Listen(id string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{net: nw, id: id, ln: ln, conns: map[net.Conn]string{}}
	nw.mu.Lock()
	nw.proxies[id] = p
	nw.mu.Unlock()
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the address peers should dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetTarget sets the node's real peer address.
func (p *Proxy) SetTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

// Close stops the proxy and its connections.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// Cut breaks the links between a and b in both directions: open
// connections are closed and new ones refused until Heal.
func (nw *Network) Cut(a, b string) {
	nw.mu.Lock()
	nw.cut[link{a, b}] = true
	nw.cut[link{b, a}] = true
	targets := []*Proxy{nw.proxies[a], nw.proxies[b]}
	nw.mu.Unlock()
	for _, p := range targets {
		if p != nil {
			p.dropFrom(a, b)
		}
	}
}

// CutOneWay breaks only what from dials to to: from's open connections to
// to are closed and new ones refused, while to still reaches from. Peer
// connections carry each node's own messages outward, so from's messages
// no longer arrive at to, but to's arrive at from.
func (nw *Network) CutOneWay(from, to string) {
	nw.mu.Lock()
	nw.cut[link{from, to}] = true
	p := nw.proxies[to]
	nw.mu.Unlock()
	if p != nil {
		p.dropFrom(from)
	}
}

// Isolate cuts every link of id.
func (nw *Network) Isolate(id string) {
	nw.mu.Lock()
	var others []string
	for o := range nw.proxies {
		if o != id {
			others = append(others, o)
		}
	}
	nw.mu.Unlock()
	for _, o := range others {
		nw.Cut(id, o)
	}
}

// Stall holds every byte to and from id on its open connections, and on
// new ones, until Resume: to its peers the node looks paused (SIGSTOP),
// though it runs on. Connections stay open; nothing is lost.
func (nw *Network) Stall(id string) {
	nw.mu.Lock()
	nw.stalled[id] = true
	nw.mu.Unlock()
}

// Resume lets the traffic of every stalled node flow again.
func (nw *Network) Resume() {
	nw.mu.Lock()
	clear(nw.stalled)
	close(nw.resume)
	nw.resume = make(chan struct{})
	nw.mu.Unlock()
}

// waitFlow returns once neither a nor b is stalled.
func (nw *Network) waitFlow(a, b string) {
	for {
		nw.mu.Lock()
		held, resume := nw.stalled[a] || nw.stalled[b], nw.resume
		nw.mu.Unlock()
		if !held {
			return
		}
		<-resume
	}
}

// copyFlowing copies src to dst, holding each chunk while either end of
// the link is stalled.
func (nw *Network) copyFlowing(dst io.Writer, src io.Reader, a, b string) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			nw.waitFlow(a, b)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Heal restores every link.
func (nw *Network) Heal() {
	nw.mu.Lock()
	nw.cut = map[link]bool{}
	nw.mu.Unlock()
}

// Close closes every proxy.
func (nw *Network) Close() {
	nw.mu.Lock()
	ps := make([]*Proxy, 0, len(nw.proxies))
	for _, p := range nw.proxies {
		ps = append(ps, p)
	}
	nw.mu.Unlock()
	for _, p := range ps {
		p.Close()
	}
}

func (nw *Network) isCut(from, to string) bool {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.cut[link{from, to}]
}

// dropFrom closes this proxy's connections dialed by any of ids.
func (p *Proxy) dropFrom(ids ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, from := range p.conns {
		for _, id := range ids {
			if from == id && p.net.isCut(from, p.id) {
				c.Close()
			}
		}
	}
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *Proxy) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	hello, from, err := readHello(c)
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if p.net.isCut(from, p.id) {
		return
	}
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	if target == "" {
		return
	}
	up, err := net.DialTimeout("tcp", target, time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	if _, err := up.Write(hello); err != nil {
		return
	}
	p.mu.Lock()
	p.conns[c] = from
	p.conns[up] = from
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		delete(p.conns, up)
		p.mu.Unlock()
	}()
	// The link may have been cut between the check and the registration.
	if p.net.isCut(from, p.id) {
		return
	}
	done := make(chan struct{}, 2)
	go func() { p.net.copyFlowing(up, c, from, p.id); up.Close(); done <- struct{}{} }()
	go func() { p.net.copyFlowing(c, up, from, p.id); c.Close(); done <- struct{}{} }()
	<-done
	<-done
}

// readHello reads a peer connection's hello (see internal/cluster's
// mux.go) and returns its bytes and the dialing node's id.
func readHello(r io.Reader) ([]byte, string, error) {
	b := make([]byte, 2)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, "", err
	}
	rest := make([]byte, int(b[1])+1)
	if _, err := io.ReadFull(r, rest); err != nil {
		return nil, "", err
	}
	id := string(rest[:len(rest)-1])
	sec := make([]byte, int(rest[len(rest)-1]))
	if _, err := io.ReadFull(r, sec); err != nil {
		return nil, "", err
	}
	if b[0] == 0 {
		return nil, "", errors.New("bad hello")
	}
	out := append(append(b, rest...), sec...)
	return out, id, nil
}

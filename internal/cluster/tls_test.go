package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/testcert"
)

// peerTLS is a node's Config.PeerTLS with a certificate of its own from ca.
func peerTLS(t *testing.T, ca *testcert.CA, name string) func() *tls.Config {
	conf := ca.PeerConfig(ca.Issue(t, name))
	return func() *tls.Config { return conf.Clone() }
}

// TestPeerTLS: a cluster whose peer port is mutual TLS replicates and
// forwards as usual, and the port refuses plain TCP, a TLS client without
// a certificate, and nodes and clients with certificates of another CA.
func TestPeerTLS(t *testing.T) {
	ca, other := testcert.NewCA(t, "cluster"), testcert.NewCA(t, "other")
	nodes := startCluster(t, 3, func(c *Config) { c.PeerTLS = peerTLS(t, ca, c.NodeID) })
	ctx := context.Background()
	for i, w := range nodes {
		key := fmt.Sprint("k", i)
		if res, err := w.Write(ctx, set(key, "v")); err != nil || res.Err != nil {
			t.Fatalf("write via %s: %+v %v", w.ID(), res, err)
		}
		r := nodes[(i+1)%len(nodes)]
		if got, err := r.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte(key)}); err != nil || string(got.Bulk) != "v" {
			t.Fatalf("read via %s: %q %v", r.ID(), got.Bulk, err)
		}
	}

	addr := nodes[0].PeerAddr()
	hello := []byte{connRPC, 2, 'x', 'y', 0}
	// accepted says whether the peer port answers an RPC hello sent over
	// c (which is closed).
	accepted := func(c net.Conn, err error) bool {
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(hello); err != nil {
			return false
		}
		var b [1]byte
		_, err = io.ReadFull(c, b[:])
		return err == nil && b[0] == rpcAccepted
	}
	dialTLS := func(conf *tls.Config) (net.Conn, error) {
		conf.ServerName = "127.0.0.1"
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
	}
	if !accepted(dialTLS(ca.ClientConfig(ca.Issue(t, "tool")))) {
		t.Fatal("a client with a certificate of the cluster's CA was refused")
	}
	if accepted(net.Dial("tcp", addr)) {
		t.Error("plain TCP accepted")
	}
	if accepted(dialTLS(ca.ClientConfig())) {
		t.Error("a TLS client without a certificate accepted")
	}
	if accepted(dialTLS(ca.ClientConfig(other.Issue(t, "stranger")))) {
		t.Error("a TLS client with a certificate of another CA accepted")
	}

	// Neither a node of another CA nor one without TLS can join.
	for name, conf := range map[string]func() *tls.Config{"another CA": peerTLS(t, other, "n9"), "no TLS": nil} {
		n, err := Open(Config{DataDir: t.TempDir(), PeerAddr: "127.0.0.1:0", NodeID: "n9", PeerTLS: conf, Join: []string{addr}})
		if err != nil {
			t.Fatal(err)
		}
		err = n.joinOnce(controlRequest{Op: "join", ID: n.ID(), Addr: n.PeerAddr(), Fresh: true})
		n.Close()
		if err == nil {
			t.Errorf("a node with %s joined", name)
		}
	}
}

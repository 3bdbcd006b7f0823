package tlsconf

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/testcert"
)

// handshake connects a client with cc to a server with sc and returns the
// certificate's name the client saw, or the errors of either end. The
// server writes a byte after its handshake: with TLS 1.3 a client's
// handshake ends before the server has checked the client's certificate,
// and only reading shows the refusal.
func handshake(t *testing.T, sc, cc *tls.Config) (string, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = tls.Server(c, sc).Write([]byte{1})
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	cli := tls.Client(c, cc)
	_, cerr := cli.Read(make([]byte, 1))
	if cerr != nil {
		c.Close()
	}
	if err := errors.Join(cerr, <-done); err != nil {
		return "", err
	}
	return cli.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func TestReloadServesTheNewCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "ca")
	files := ca.WriteFiles(t, dir, "node", ca.Issue(t, "A"))
	r, err := Load(Files(files))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := r.Server(AuthNo)
	if err != nil {
		t.Fatal(err)
	}
	cc := ca.ClientConfig()
	cc.ServerName = "localhost"
	if name, err := handshake(t, sc, cc); err != nil || name != "A" {
		t.Fatalf("before reload: %q %v", name, err)
	}
	ca.WriteFiles(t, dir, "node", ca.Issue(t, "B"))
	if name, _ := handshake(t, sc, cc); name != "A" {
		t.Fatalf("the files were read again before Reload: %q", name)
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if name, err := handshake(t, sc, cc); err != nil || name != "B" {
		t.Fatalf("after reload: %q %v", name, err)
	}
	// A broken file is refused and the certificate in use stays.
	if err := os.WriteFile(files.Key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("a broken key was loaded")
	}
	if name, err := handshake(t, sc, cc); err != nil || name != "B" {
		t.Fatalf("after a failed reload: %q %v", name, err)
	}
}

func TestClientAuth(t *testing.T) {
	dir := t.TempDir()
	ca, other := testcert.NewCA(t, "ca"), testcert.NewCA(t, "other")
	r, err := Load(Files(ca.WriteFiles(t, dir, "node", ca.Issue(t, "node"))))
	if err != nil {
		t.Fatal(err)
	}
	good, stranger := ca.Issue(t, "client"), other.Issue(t, "stranger")
	for _, tc := range []struct {
		auth                ClientAuth
		none, good, foreign bool // whether each client gets through
	}{
		{AuthNo, true, true, true},
		{AuthOptional, true, true, false},
		{AuthYes, false, true, false},
	} {
		sc, err := r.Server(tc.auth)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			certs []testcert.Pair
			want  bool
		}{{nil, tc.none}, {[]testcert.Pair{good}, tc.good}, {[]testcert.Pair{stranger}, tc.foreign}} {
			cc := ca.ClientConfig(c.certs...)
			cc.ServerName = "127.0.0.1"
			if _, err := handshake(t, sc, cc); (err == nil) != c.want {
				t.Errorf("tls-auth-clients %s, client certificates %d: err %v, want success %v", tc.auth, len(c.certs), err, c.want)
			}
		}
	}
	if _, err := r.Server("maybe"); err == nil {
		t.Error("tls-auth-clients maybe accepted")
	}
	noCA, err := Load(Files{Cert: dir + "/node.crt", Key: dir + "/node.key"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noCA.Server(AuthYes); !errors.Is(err, ErrNoCA) {
		t.Errorf("client certificates without a CA: %v", err)
	}
	if _, err := noCA.Peer(); !errors.Is(err, ErrNoCA) {
		t.Errorf("peer TLS without a CA: %v", err)
	}
}

func TestPeerIsMutual(t *testing.T) {
	dir := t.TempDir()
	ca, other := testcert.NewCA(t, "ca"), testcert.NewCA(t, "other")
	r, err := Load(Files(ca.WriteFiles(t, dir, "node", ca.Issue(t, "node"))))
	if err != nil {
		t.Fatal(err)
	}
	peer, err := r.Peer()
	if err != nil {
		t.Fatal(err)
	}
	dial := func() *tls.Config { c := peer(); c.ServerName = "127.0.0.1"; return c }
	if _, err := handshake(t, peer(), dial()); err != nil {
		t.Fatalf("two nodes of one CA: %v", err)
	}
	if _, err := handshake(t, peer(), ca.ClientConfig()); err == nil {
		t.Fatal("a dialer without a certificate was accepted")
	}
	if _, err := handshake(t, peer(), other.ClientConfig(other.Issue(t, "stranger"))); err == nil {
		t.Fatal("a dialer of another CA was accepted")
	}
	if _, err := handshake(t, testcert.ServerConfig(other.Issue(t, "stranger"), nil), dial()); err == nil {
		t.Fatal("a node of another CA was accepted by the dialer")
	}
}

// Package tlsconf turns the certificate files of a node (redis.conf's
// tls-cert-file, tls-key-file and tls-ca-cert-file) into the TLS
// configurations of its ports, and reloads them: every configuration made
// here looks the certificate and the CA up at each handshake, so Reload
// changes what new connections see while connections already open keep
// the keys they agreed on.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// Files names a node's PEM files. CA may be empty when no certificate is
// asked of the other end.
type Files struct {
	Cert, Key, CA string
}

// ClientAuth is what a client port asks of clients: redis's
// tls-auth-clients.
type ClientAuth string

// The values of --tls-auth-clients.
const (
	AuthNo       ClientAuth = "no"       // no client certificate is asked for
	AuthOptional ClientAuth = "optional" // a certificate, if sent, must be signed by the CA
	AuthYes      ClientAuth = "yes"      // a certificate signed by the CA is required
)

// ErrNoCA is returned when a configuration that verifies the other end is
// asked of a Reloader without a CA file.
var ErrNoCA = errors.New("tlsconf: no CA certificate (--tls-ca-cert-file)")

// Reloader holds the certificate, its key and the CA as last read from
// Files. It is safe for concurrent use.
type Reloader struct {
	files Files
	cur   atomic.Pointer[loaded]
}

// loaded is one reading of the files, replaced whole by Reload.
type loaded struct {
	cert *tls.Certificate
	cas  *x509.CertPool // nil without a CA file
}

// Load reads the files.
func Load(f Files) (*Reloader, error) {
	r := &Reloader{files: f}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again. On an error the certificates read before
// stay in use, so a half-written file replacement breaks nothing.
func (r *Reloader) Reload() error {
	cert, err := tls.LoadX509KeyPair(r.files.Cert, r.files.Key)
	if err != nil {
		return fmt.Errorf("tls-cert-file %s, tls-key-file %s: %w", r.files.Cert, r.files.Key, err)
	}
	l := &loaded{cert: &cert}
	if r.files.CA != "" {
		b, err := os.ReadFile(r.files.CA)
		if err != nil {
			return fmt.Errorf("tls-ca-cert-file: %w", err)
		}
		l.cas = x509.NewCertPool()
		if !l.cas.AppendCertsFromPEM(b) {
			return fmt.Errorf("tls-ca-cert-file %s: no PEM certificate in it", r.files.CA)
		}
	}
	r.cur.Store(l)
	return nil
}

// Certificate is the certificate in use (its leaf parsed).
func (r *Reloader) Certificate() *x509.Certificate {
	c := r.cur.Load().cert
	if c.Leaf != nil {
		return c.Leaf
	}
	leaf, _ := x509.ParseCertificate(c.Certificate[0])
	return leaf
}

// Server is the configuration of a client port (Redis, memcached, HTTP),
// asking clients for certificates as auth says.
func (r *Reloader) Server(auth ClientAuth) (*tls.Config, error) {
	mode := tls.NoClientCert
	switch auth {
	case AuthNo, "":
	case AuthOptional:
		mode = tls.VerifyClientCertIfGiven
	case AuthYes:
		mode = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("tls-auth-clients %q: want no, optional or yes", auth)
	}
	if mode != tls.NoClientCert && r.files.CA == "" {
		return nil, ErrNoCA
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.serverConfig(mode), nil
		},
	}, nil
}

// serverConfig is one handshake's configuration, from the files as they
// are now.
func (r *Reloader) serverConfig(mode tls.ClientAuthType) *tls.Config {
	l := r.cur.Load()
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*l.cert}, ClientCAs: l.cas, ClientAuth: mode}
}

// Peer returns what makes the configuration of the peer port, for both
// ends of a connection: each end presents the node's certificate (which
// must therefore allow client as well as server authentication) and
// verifies the other's against the CA; the accepting end requires one.
// The function reads the files as last loaded: call it for every
// connection.
func (r *Reloader) Peer() (func() *tls.Config, error) {
	if r.files.CA == "" {
		return nil, ErrNoCA
	}
	return func() *tls.Config {
		c := r.serverConfig(tls.RequireAndVerifyClientCert)
		c.RootCAs = c.ClientCAs
		return c
	}, nil
}

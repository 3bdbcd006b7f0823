package e2e

import (
	"bufio"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/testbin"
	"github.com/hatcheck/hatcheck/internal/testcert"
)

// TestTLSRedisCLIAndSIGHUP: redis-cli --tls talks to the TLS port; after
// the certificate files are replaced, SIGHUP makes new connections get the
// new certificate while one opened before goes on.
func TestTLSRedisCLIAndSIGHUP(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "ca")
	files := ca.WriteFiles(t, dir, "node", ca.Issue(t, "A"))
	tlsAddr := testbin.FreeAddr(t)
	p := start(t, t.TempDir(), nil, "--tls-redis-addr", tlsAddr,
		"--tls-cert-file", files.Cert, "--tls-key-file", files.Key, "--tls-ca-cert-file", files.CA)

	conf := ca.ClientConfig()
	conf.ServerName = "localhost"
	dial := func() *tls.Conn {
		c, err := tls.Dial("tcp", tlsAddr, conf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		return c
	}
	old := dial()
	oldR := bufio.NewReader(old)
	ping := func() string {
		if _, err := old.Write([]byte("PING\r\n")); err != nil {
			t.Fatal(err)
		}
		l, _ := oldR.ReadString('\n')
		return l
	}
	if got := ping(); got != "+PONG\r\n" {
		t.Fatalf("PING over TLS: %q", got)
	}

	if cli, err := exec.LookPath("redis-cli"); err == nil {
		host, port, _ := net.SplitHostPort(tlsAddr)
		run := redisCLI(t, cli, "--tls", "--cacert", files.CA, "-h", host, "-p", port)
		if got := run("SET", "greeting", "hello", "EX", "60"); got != "OK" {
			t.Fatalf("SET: %q", got)
		}
		if got := run("GET", "greeting"); got != "hello" {
			t.Fatalf("GET: %q", got)
		}
	} else if os.Getenv("CI") != "" {
		t.Fatal("redis-cli not installed; .ci/run must install redis-tools")
	}

	ca.WriteFiles(t, dir, "node", ca.Issue(t, "B"))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c := dial()
		name := c.ConnectionState().PeerCertificates[0].Subject.CommonName
		c.Close()
		if name == "B" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate %q 20 s after SIGHUP", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := ping(); got != "+PONG\r\n" {
		t.Fatalf("the connection opened before SIGHUP: %q", got)
	}
	// The log is read once the process is gone (it is written meanwhile).
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil || !strings.Contains(p.stderr.String(), "certificates reloaded") {
		t.Fatalf("exit %v; stderr:\n%s", err, p.stderr)
	}
}

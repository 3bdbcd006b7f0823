package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/server"
	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/testcert"
)

func TestClusterCommand(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.RequirePass = "pw"; c.NodeID = "solo" })
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	run := func(getenv func(string) string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runCluster(append([]string{"--http-addr", s.HTTPAddr()}, args...), &out, &errb, getenv)
		return code, out.String(), errb.String()
	}

	// The API wants the password.
	code, _, stderr := run(env(nil), "status")
	if code != 1 || !strings.Contains(stderr, "password required") {
		t.Fatalf("status without the password: code %d, stderr %q", code, stderr)
	}
	resp, err := http.Get("http://" + s.HTTPAddr() + "/cluster")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /cluster without auth: %s", resp.Status)
	}

	withPass := env(map[string]string{"HATCHECK_REQUIREPASS": "pw"})
	code, stdout, stderr := run(withPass, "status")
	if code != 0 {
		t.Fatalf("status: code %d, %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.HasPrefix(lines[1], "solo ") ||
		!strings.Contains(lines[1], " leader ") || !strings.Contains(lines[1], s.RedisAddr()) {
		t.Fatalf("status output:\n%s", stdout)
	}
	code, stdout, _ = run(withPass, "--json", "status")
	if code != 0 || !strings.Contains(stdout, `"leader_id": "solo"`) {
		t.Fatalf("status --json: %d\n%s", code, stdout)
	}

	// Errors from the cluster come back as messages.
	code, _, stderr = run(withPass, "remove", "nobody")
	if code != 1 || !strings.Contains(stderr, `no member "nobody"`) {
		t.Fatalf("remove of an unknown member: code %d, stderr %q", code, stderr)
	}
	code, _, stderr = run(withPass, "transfer-leader")
	if code != 1 || stderr == "" {
		t.Fatalf("transfer-leader in a cluster of one: code %d, stderr %q", code, stderr)
	}
	if code, _, _ := run(withPass, "bogus"); code != 2 {
		t.Fatalf("unknown subcommand: code %d, want 2", code)
	}
}

// hatcheck -h lists the commands and the environment variables, and
// --version prints the version, as operators expect of a server binary.
func TestHelpAndVersion(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "help"} {
		var out, errOut strings.Builder
		if code := run([]string{arg}, &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d, %s", arg, code, errOut.String())
		}
		for _, want := range []string{"serve", "cluster", "bench", "version", "HATCHECK_"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: no %q in\n%s", arg, want, out.String())
			}
		}
	}
	for _, arg := range []string{"--version", "-version", "version"} {
		var out, errOut strings.Builder
		if code := run([]string{arg}, &out, &errOut); code != 0 || out.String() != "hatcheck "+server.Version+"\n" {
			t.Errorf("%s: exit %d, %q", arg, code, out.String())
		}
	}
}

// Flags may follow the verb ("cluster status --http-addr X", as the README
// writes it), and a bad flag is one line on stderr, not the usage.
func TestFlagsAfterTheVerbAndOneLineErrors(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.NodeID = "solo" })
	var out, errOut strings.Builder
	if code := run([]string{"cluster", "status", "--http-addr", s.HTTPAddr(), "--json"}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), `"leader_id": "solo"`) {
		t.Fatalf("cluster status --http-addr …: exit %d, %q, %q", code, out.String(), errOut.String())
	}
	for _, args := range [][]string{{"--bogus"}, {"serve", "--maxclients", "many"}, {"cluster", "status", "--nope"}, {"bench", "--nope"}, {"bench", "extra"}, {"cluster"}} {
		var out, errOut strings.Builder
		code := run(args, &out, &errOut)
		lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], "-h") || out.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and one line pointing at -h", args, code, out.String(), errOut.String())
		}
	}
	// -h prints the usage on stdout and succeeds.
	for _, args := range [][]string{{"serve", "-h"}, {"cluster", "-h"}, {"bench", "-h"}} {
		var out, errOut strings.Builder
		if code := run(args, &out, &errOut); code != 0 || !strings.Contains(out.String(), "usage: hatcheck "+args[0]) || errOut.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out.String(), errOut.String())
		}
	}
}

// TestClusterCommandOverHTTPS: with plain HTTP off, the command reaches the
// node over HTTPS, presenting a client certificate where one is required.
func TestClusterCommandOverHTTPS(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	withTLS, files := servertest.TLS(t, ca)
	s := servertest.Start(t, withTLS, func(c *config.Config) { c.HTTPAddr = ""; c.NodeID = "solo"; c.TLSAuthClients = "yes" })
	client := ca.WriteFiles(t, t.TempDir(), "admin", ca.Issue(t, "admin"))
	run := func(env map[string]string) (int, string) {
		var out, errb bytes.Buffer
		code := runCluster([]string{"status"}, &out, &errb, func(k string) string { return env[k] })
		return code, out.String() + errb.String()
	}
	env := map[string]string{"HATCHECK_TLS_HTTP_ADDR": s.TLSHTTPAddr(), "HATCHECK_TLS_CA_CERT_FILE": files.CA}
	if code, out := run(env); code != 1 || !strings.Contains(out, "certificate") {
		t.Fatalf("without a client certificate: code %d\n%s", code, out)
	}
	env["HATCHECK_TLS_CERT_FILE"], env["HATCHECK_TLS_KEY_FILE"] = client.Cert, client.Key
	if code, out := run(env); code != 0 || !strings.Contains(out, "solo ") {
		t.Fatalf("status over HTTPS: code %d\n%s", code, out)
	}
}

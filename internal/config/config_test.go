package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsAreValid(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.RedisAddr != "127.0.0.1:6379" || c.HTTPAddr != "127.0.0.1:7480" || c.PeerAddr != "127.0.0.1:7481" ||
		c.MemcacheAddr != "127.0.0.1:11211" || c.DataDir != "./hatcheck-data" || c.MaxMemoryPolicy != "noeviction" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "h.conf")
	os.WriteFile(file, []byte("# comment\n\nmaxclients 10\ntimeout 20\nmaxmemory 1mb\nrequirepass \"a b\"\nfailover-wait 2s\n"), 0o600)
	c, err := Load([]string{"--config", file, "--maxclients", "30"}, env(map[string]string{
		"HATCHECK_MAXCLIENTS": "40", "HATCHECK_TIMEOUT": "50",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxClients != 30 || c.Timeout != 50 || c.MaxMemory != 1<<20 || c.RequirePass != "a b" || c.FailoverWait != 2*time.Second {
		t.Fatalf("got %+v", c)
	}
	// The config file may also come from the environment.
	c, err = Load(nil, env(map[string]string{"HATCHECK_CONFIG": file}))
	if err != nil || c.MaxClients != 10 {
		t.Fatalf("HATCHECK_CONFIG: %v %d", err, c.MaxClients)
	}
}

func TestJoinListAndPortsOff(t *testing.T) {
	c, err := Load([]string{"--join", "127.0.0.2:7481, 127.0.0.3:7481,", "--redis-addr", "", "--http-addr", "", "--memcache-addr", ""}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.JoinAddrs(); len(got) != 2 || got[0] != "127.0.0.2:7481" || got[1] != "127.0.0.3:7481" {
		t.Fatalf("JoinAddrs = %q", got)
	}
	if c.RedisAddr != "" || c.HTTPAddr != "" || c.MemcacheAddr != "" {
		t.Fatalf("ports not off: %+v", c)
	}
	if got := (&Config{}).JoinAddrs(); got != nil {
		t.Fatalf("no --join: JoinAddrs = %q", got)
	}
}

func TestInvalid(t *testing.T) {
	cases := map[string][]string{
		"maxmemory-policy":   {"--maxmemory-policy", "allkeys-random"},
		"maxclients":         {"--maxclients", "0"},
		"log-format":         {"--log-format", "xml"},
		"redis-addr":         {"--redis-addr", "nonsense"},
		"databases":          {"--databases", "0"},
		"unexpected":         {"extra"},
		"timeout":            {"--timeout", "-1"},
		"invalid size":       {"--maxmemory", "lots"},
		"proto-max-bulk-len": {"--proto-max-bulk-len", "10"},
		"election-timeout":   {"--election-timeout", "10ms"},
		"join":               {"--join", "no-port"},
		`join "b"`:           {"--join", "127.0.0.1:7481,b"},
		"sentinel-name":      {"--sentinel-name", "two words"},
		"commit-wait":        {"--commit-wait", "1s"},
		"event-loops":        {"--event-loops", "5000"},
		"http-addr":          {"--http-addr", "0.0.0.0:7480"},
	}
	for want, args := range cases {
		_, err := Load(args, env(nil))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want mention of %q", args, err, want)
		}
	}
	_, err := Load(nil, env(map[string]string{"HATCHECK_MAXCLIENTS": "many"}))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "HATCHECK_MAXCLIENTS") {
		t.Errorf("bad env value: %v", err)
	}
	file := filepath.Join(t.TempDir(), "h.conf")
	os.WriteFile(file, []byte("bogus 1\n"), 0o600)
	if _, err := Load([]string{"--config", file}, env(nil)); err == nil || !strings.Contains(err.Error(), `unknown setting "bogus"`) {
		t.Errorf("unknown file key: %v", err)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("client-query-buffer-limit"); got != "HATCHECK_CLIENT_QUERY_BUFFER_LIMIT" {
		t.Fatal(got)
	}
}

func TestTLSSettings(t *testing.T) {
	files := []string{"--tls-cert-file", "n.crt", "--tls-key-file", "n.key"}
	withCA := append([]string{"--tls-ca-cert-file", "ca.crt"}, files...)
	refused := map[string][]string{
		"tls-redis-addr needs --tls-cert-file and --tls-key-file":       {"--tls-redis-addr", "127.0.0.1:6380"},
		"tls-memcache-addr needs --tls-cert-file":                       {"--tls-memcache-addr", "127.0.0.1:11212", "--tls-cert-file", "n.crt"},
		"tls-http-addr needs":                                           {"--tls-http-addr", "127.0.0.1:7443", "--tls-key-file", "n.key"},
		"tls-peers needs --tls-cert-file":                               {"--tls-peers"},
		"tls-peers needs --tls-ca-cert-file":                            append([]string{"--tls-peers"}, files...),
		"tls-auth-clients yes needs --tls-ca-cert-file":                 append([]string{"--tls-redis-addr", "127.0.0.1:6380", "--tls-auth-clients", "yes"}, files...),
		`tls-auth-clients "maybe"`:                                      append([]string{"--tls-auth-clients", "maybe"}, withCA...),
		`tls-redis-addr "nonsense"`:                                     append([]string{"--tls-redis-addr", "nonsense"}, files...),
		`tls-http-addr "0.0.0.0:7443" is beyond loopback`:               append([]string{"--tls-http-addr", "0.0.0.0:7443"}, files...),
		`peer-addr "10.0.0.1:7481" is beyond loopback: set --tls-peers`: {"--peer-addr", "10.0.0.1:7481"},
		`peer-addr ":7481" is beyond loopback`:                          {"--peer-addr", ":7481"},
		`peer-advertise "node1.example:7481" is beyond loopback`:        {"--peer-advertise", "node1.example:7481"},
		`join "10.0.0.2:7481" is beyond loopback`:                       {"--join", "10.0.0.2:7481"},
		`join "10.0.0.3:7481" is beyond loopback`:                       {"--join", "127.0.0.1:7481,10.0.0.3:7481"},
	}
	for want, args := range refused {
		if _, err := Load(args, env(nil)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want mention of %q", args, err, want)
		}
	}
	for _, args := range [][]string{
		append([]string{"--tls-redis-addr", "127.0.0.1:6380", "--redis-addr", "", "--tls-memcache-addr", "127.0.0.1:11212",
			"--tls-http-addr", "127.0.0.1:7443", "--http-addr", ""}, files...),
		append([]string{"--tls-redis-addr", "127.0.0.1:6380", "--tls-auth-clients", "optional"}, withCA...),
		append([]string{"--tls-peers", "--peer-addr", "10.0.0.1:7481", "--join", "10.0.0.2:7481"}, withCA...),
		{"--join", "localhost:7481", "--peer-addr", "[::1]:7481"},
	} {
		if _, err := Load(args, env(nil)); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
	// Every TLS setting is also a variable and a config-file line.
	file := filepath.Join(t.TempDir(), "h.conf")
	os.WriteFile(file, []byte("tls-cert-file /etc/hatcheck/node.crt\ntls-key-file /etc/hatcheck/node.key\ntls-peers yes\n"), 0o600)
	c, err := Load([]string{"--config", file}, env(map[string]string{
		"HATCHECK_TLS_CA_CERT_FILE": "/etc/hatcheck/ca.crt", "HATCHECK_TLS_REDIS_ADDR": "127.0.0.1:6380", "HATCHECK_TLS_AUTH_CLIENTS": "yes",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLSPeers || c.TLSCertFile != "/etc/hatcheck/node.crt" || c.TLSKeyFile != "/etc/hatcheck/node.key" ||
		c.TLSCACertFile != "/etc/hatcheck/ca.crt" || c.TLSRedisAddr != "127.0.0.1:6380" || c.TLSAuthClients != "yes" {
		t.Fatalf("got %+v", c)
	}
}

// contrib/hatcheck.conf documents every setting (set or commented out with
// its default) and loads as it is.
func TestExampleConfigDocumentsEverySetting(t *testing.T) {
	path := filepath.Join("..", "..", "contrib", "hatcheck.conf")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "# ")
		if name, _, _ := strings.Cut(line, " "); name != "" {
			keys[name] = true
		}
	}
	c := Default()
	c.FlagSet("x").VisitAll(func(f *flag.Flag) {
		if f.Name != "config" && !keys[f.Name] {
			t.Errorf("contrib/hatcheck.conf does not mention %q", f.Name)
		}
	})
	got, err := Load([]string{"--config", path}, env(nil))
	if err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	if got.DataDir != "/var/lib/hatcheck" {
		t.Fatalf("data-dir = %q", got.DataDir)
	}
}

func TestSlowlogSetting(t *testing.T) {
	if c, err := Load(nil, env(nil)); err != nil || c.SlowlogLogSlowerThan != 10000 {
		t.Fatalf("default slowlog-log-slower-than %d, %v; want redis's 10000", c.SlowlogLogSlowerThan, err)
	}
	if c, err := Load([]string{"--slowlog-log-slower-than", "-1"}, env(nil)); err != nil || c.SlowlogLogSlowerThan != -1 {
		t.Fatalf("-1: %d, %v", c.SlowlogLogSlowerThan, err)
	}
	if _, err := Load([]string{"--slowlog-log-slower-than", "-2"}, env(nil)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "slowlog-log-slower-than") {
		t.Fatalf("-2: %v, want refused", err)
	}
}

package bench

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

func quick(addr, protocol, scenario string) Config {
	return Config{Addrs: []string{addr}, Protocol: protocol, Scenario: scenario, Connections: 4, Pipeline: 2,
		ValueSize: 100, Keys: 200, TTL: time.Minute, Duration: 300 * time.Millisecond, Prefill: true}
}

// checkRun runs a short benchmark and checks that every request type of
// the scenario was sent and none failed.
func checkRun(t *testing.T, cfg Config, kinds ...string) {
	t.Helper()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%s/%s: %v", cfg.Protocol, cfg.Scenario, err)
	}
	if res.Errors != 0 || res.Ops == 0 {
		t.Fatalf("%s/%s: %d ops, %d errors", cfg.Protocol, cfg.Scenario, res.Ops, res.Errors)
	}
	for _, k := range kinds {
		if res.ByKind[k].Count == 0 {
			t.Fatalf("%s/%s: no %s requests: %+v", cfg.Protocol, cfg.Scenario, k, res.ByKind)
		}
	}
	if len(res.ByKind) != len(kinds) {
		t.Fatalf("%s/%s: request types %v, want %v", cfg.Protocol, cfg.Scenario, res.ByKind, kinds)
	}
}

var scenarioKinds = map[string][]string{
	"mix": {"get", "set"}, "writes": {"set"}, "reads": {"get"}, "login": {"setnx"},
	"touch": {"get", "expire"}, "lock": {"lock", "get", "set", "del"}, "memcache-lock": {"lock", "get", "set", "del"},
}

func TestScenariosAgainstHatcheck(t *testing.T) {
	s := servertest.Start(t)
	for _, protocol := range []string{"redis", "memcache-text", "memcache-binary"} {
		addr := s.RedisAddr()
		if protocol != "redis" {
			addr = s.MemcacheAddr()
		}
		for sc, kinds := range scenarioKinds {
			if sc == "memcache-lock" && protocol == "redis" {
				continue
			}
			checkRun(t, quick(addr, protocol, sc), kinds...)
		}
	}
}

// TestScenariosAgainstRealServers checks the codecs against redis-server
// and memcached themselves: a request they reject would count as an error.
func TestScenariosAgainstRealServers(t *testing.T) {
	redisBin := transcript.Reference(t, "redis-server", "redis-server", false)
	mcBin := transcript.Reference(t, "memcached", "memcached", false)
	if redisBin != "" {
		port := transcript.FreePort(t)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		transcript.StartServer(t, addr, redisBin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
		for sc, kinds := range scenarioKinds {
			if sc != "memcache-lock" {
				checkRun(t, quick(addr, "redis", sc), kinds...)
			}
		}
	}
	if mcBin != "" {
		port := transcript.FreePort(t)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0"}
		if os.Geteuid() == 0 {
			args = append(args, "-u", "root")
		}
		transcript.StartServer(t, addr, mcBin, args...)
		for _, protocol := range []string{"memcache-text", "memcache-binary"} {
			for sc, kinds := range scenarioKinds {
				checkRun(t, quick(addr, protocol, sc), kinds...)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		quick("127.0.0.1:1", "redis", "nonsense"),
		quick("127.0.0.1:1", "redis", "memcache-lock"),
		quick("127.0.0.1:1", "gopher", "mix"),
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("config %+v: no error", cfg)
		}
	}
}

// TestWaitReplicas: against a redis-server master with a replica, every
// write is followed by a WAIT that the master answers.
func TestWaitReplicas(t *testing.T) {
	redisBin := transcript.Reference(t, "redis-server", "redis-server", false)
	if redisBin == "" {
		t.Skip("no redis-server")
	}
	port := transcript.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	transcript.StartServer(t, addr, redisBin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	rport := transcript.FreePort(t)
	transcript.StartServer(t, "127.0.0.1:"+strconv.Itoa(rport), redisBin, "--port", strconv.Itoa(rport), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--replicaof", "127.0.0.1", strconv.Itoa(port))
	cfg := quick(addr, "redis", "lock")
	cfg.Duration = time.Second
	cfg.WaitReplicas = 1
	checkRun(t, cfg, "lock", "get", "set", "del")
}

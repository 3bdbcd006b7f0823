package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
)

// TestBenchJSONStaysClean: with --json the result is the only thing on
// stdout; the prefill's progress goes to stderr, and --quiet silences it.
func TestBenchJSONStaysClean(t *testing.T) {
	s := servertest.Start(t)
	run := func(extra ...string) (string, string) {
		var out, errb bytes.Buffer
		args := append([]string{"--addr", s.RedisAddr(), "--scenario", "lock", "--connections", "2", "--keys", "300",
			"--value-size", "100", "--duration", "200ms", "--warmup", "0s", "--json"}, extra...)
		if code := runBench(args, &out, &errb, func(string) string { return "" }); code != 0 {
			t.Fatalf("bench %v: code %d, %s", extra, code, errb.String())
		}
		return out.String(), errb.String()
	}
	stdout, stderr := run()
	var res struct {
		Ops    int64                      `json:"ops"`
		ByKind map[string]json.RawMessage `json:"by_kind"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Ops == 0 || len(res.ByKind) != 4 {
		t.Fatalf("stdout is not the result: %v, %q", err, stdout)
	}
	if !strings.Contains(stderr, "prefill: 300/300 keys (100%) in ") {
		t.Fatalf("no prefill line on stderr: %q", stderr)
	}
	if _, stderr := run("--quiet"); stderr != "" {
		t.Fatalf("--quiet printed %q", stderr)
	}
}

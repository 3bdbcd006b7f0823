// Package testbin holds helpers for tests that run hatcheck: building the
// binary for tests that run it as a separate process (tests/e2e,
// tests/chaos), and quieting client logs in fault tests.
package testbin

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// QuietRedisLogs silences go-redis's own log lines (every failed dial,
// every Sentinel switch), which fault tests cause on purpose, unless
// HATCHECK_TEST_LOG is set.
func QuietRedisLogs() {
	if os.Getenv("HATCHECK_TEST_LOG") == "" {
		goredis.SetLogger(quiet{})
	}
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...interface{}) {}

// Main builds cmd/hatcheck (with extra go build flags, e.g. -race) into a
// temporary directory, sets *binary to its path, runs the tests and exits.
// Call it from TestMain; root is the path from the test package to the
// module root.
func Main(m *testing.M, binary *string, root string, flags ...string) {
	dir, err := os.MkdirTemp("", "hatcheck-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*binary = filepath.Join(dir, "hatcheck")
	args := append(append([]string{"build"}, flags...), "-o", *binary, filepath.Join(root, "cmd", "hatcheck"))
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

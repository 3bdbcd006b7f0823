package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/testbin"
)

// stopBound is how long a stopped process may take to exit before the
// test fails: a failure bound for a machine shared with other tests, not
// a speed claim (systemd's stop timeout is 90 s by default, contrib's 30 s).
const stopBound = 20 * time.Second

// serveArgs are hatcheck serve's flags for dir on the given ports.
func serveArgs(dir, redisAddr, peerAddr string, extra ...string) []string {
	return append([]string{"serve", "--data-dir", dir, "--redis-addr", redisAddr, "--memcache-addr", "",
		"--http-addr", "", "--peer-addr", peerAddr}, extra...)
}

// waitExit waits up to stopBound for cmd to exit and returns its exit
// code; the test fails if it does not.
func waitExit(t *testing.T, cmd *exec.Cmd, stderr *testbin.LockedBuffer) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitCode(err)
	case <-time.After(stopBound):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("hatcheck did not exit within %v of SIGTERM; stderr:\n%s", stopBound, stderr)
		return -1
	}
}

// TestSIGTERMDuringStartup: a node whose start hangs (here its node-id
// file is a named pipe nobody writes, as a read from a hung disk would
// hang) stops on SIGTERM with exit code 0 and says so, and leaves its
// ports free: a start on the same ports and data dir then serves.
func TestSIGTERMDuringStartup(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "node-id"), 0o600); err != nil {
		t.Fatal(err)
	}
	redisAddr, peerAddr := testbin.FreeAddr(t), testbin.FreeAddr(t)
	cmd := exec.Command(binary, serveArgs(dir, redisAddr, peerAddr)...)
	stderr := &testbin.LockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	// The ports are bound before the node is opened: once the Redis port
	// takes connections, the start is stuck reading the node id.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", redisAddr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Redis port was never bound; stderr:\n%s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, stderr); code != 0 {
		t.Fatalf("exit code %d after SIGTERM during startup, want 0; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr.String(), "interrupted during startup") {
		t.Fatalf("no \"interrupted during startup\" in the log:\n%s", stderr)
	}
	// Same ports, same data dir (with a real node id now): it serves.
	if err := os.Remove(filepath.Join(dir, "node-id")); err != nil {
		t.Fatal(err)
	}
	p := startOn(t, dir, redisAddr, peerAddr)
	if err := p.client(t).Ping(context.Background()).Err(); err != nil {
		t.Fatalf("restart on the same ports: %v", err)
	}
}

// TestSIGTERMWhileJoining: a node joining via an address where nobody
// answers keeps trying; SIGTERM stops it (exit 0) and unlocks its data
// dir: a second start gets past the lock.
func TestSIGTERMWhileJoining(t *testing.T) {
	dir := t.TempDir()
	nobody := testbin.FreeAddr(t)
	redisAddr, peerAddr := testbin.FreeAddr(t), testbin.FreeAddr(t)
	p := startOn(t, dir, redisAddr, peerAddr, "--join", nobody)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, p.cmd, p.stderr); code != 0 {
		t.Fatalf("exit code %d after SIGTERM while joining, want 0; stderr:\n%s", code, p.stderr)
	}
	p2 := startOn(t, dir, redisAddr, peerAddr, "--join", nobody)
	if strings.Contains(p2.stderr.String(), "in use") {
		t.Fatalf("the data dir stayed locked:\n%s", p2.stderr)
	}
}

// TestSecondNodeOnLockedDataDir: a second node started on the data dir of
// a running one ends at once (it does not wait for the lock), with an
// error naming the process that holds it, and the first keeps serving.
func TestSecondNodeOnLockedDataDir(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, nil)
	cmd := exec.Command(binary, serveArgs(dir, testbin.FreeAddr(t), testbin.FreeAddr(t))...)
	stderr := &testbin.LockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	code := waitExit(t, cmd, stderr)
	want := "in use by process " + strconv.Itoa(p.cmd.Process.Pid)
	if code != 1 || !strings.Contains(stderr.String(), want) {
		t.Fatalf("second node: exit %d, stderr (want %q):\n%s", code, want, stderr)
	}
	if err := p.client(t).Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the first node after the second's attempt: %v", err)
	}
}

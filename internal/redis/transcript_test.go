package redis_test

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/resp"
	"github.com/hatcheck/hatcheck/internal/server/servertest"
)

// Golden transcripts: each testdata/transcripts/NAME.txt lists requests;
// NAME.golden holds the exact reply bytes redis-server 7.0 gave to each,
// recorded with
//
//	go test ./internal/redis -run TestTranscripts -update
//
// (which needs redis-server on PATH). The test replays every transcript
// against hatcheck and compares byte for byte; where redis-server is
// installed it also replays against it, so that a golden file that no
// longer matches the real server is caught too.
//
// Transcript syntax, one request per line:
//
//	SET k "a b"            inline syntax, sent as a RESP multibulk request
//	raw "*1\r\n$4\r\nPING\r\n"  Go-quoted bytes sent as they are
//	sleep 1100ms           pause (for expiry)
//	# comment
//
// A first line "#! requirepass PASS" starts both servers with a password.
var update = flag.Bool("update", false, "re-record golden transcripts from redis-server")

func TestTranscripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/transcripts/*.txt")
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	redisServer, _ := exec.LookPath("redis-server")
	if *update && redisServer == "" {
		t.Fatal("-update needs redis-server on PATH")
	}
	if redisServer == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not installed; .ci/run must install it so CI re-checks the golden files")
		}
		t.Log("redis-server not installed: replaying against hatcheck only")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			steps, pass := parseTranscript(t, string(src))
			goldenPath := strings.TrimSuffix(f, ".txt") + ".golden"
			if *update {
				addr := startRedisServer(t, redisServer, pass)
				got := play(t, addr, steps)
				if err := os.WriteFile(goldenPath, formatGolden(steps, got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want := readGolden(t, goldenPath, len(steps))
			srv := servertest.Start(t, func(c *servertest.Config) { c.RequirePass = pass })
			compare(t, "hatcheck", steps, want, play(t, srv.RedisAddr(), steps))
			if redisServer != "" {
				compare(t, "redis-server", steps, want, play(t, startRedisServer(t, redisServer, pass), steps))
			}
		})
	}
}

type step struct {
	line string
	req  []byte        // nil for a pause
	wait time.Duration // pause length
}

func parseTranscript(t *testing.T, src string) ([]step, string) {
	var steps []step
	pass := ""
	for i, line := range strings.Split(src, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "#! requirepass "):
			pass = strings.TrimPrefix(line, "#! requirepass ")
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "sleep "):
			d, err := time.ParseDuration(strings.TrimPrefix(line, "sleep "))
			if err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			steps = append(steps, step{line: line, wait: d})
		case strings.HasPrefix(line, "raw "):
			b, err := strconv.Unquote(strings.TrimPrefix(line, "raw "))
			if err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			steps = append(steps, step{line: line, req: []byte(b)})
		default:
			args, ok := resp.SplitArgs([]byte(line), nil)
			if !ok {
				t.Fatalf("line %d: unbalanced quotes", i+1)
			}
			req := resp.AppendArray(nil, len(args))
			for _, a := range args {
				req = resp.AppendBulk(req, a)
			}
			steps = append(steps, step{line: line, req: req})
		}
	}
	return steps, pass
}

// play sends each request on one connection and returns each raw reply;
// a closed connection is recorded as "(closed)".
func play(t *testing.T, addr string, steps []step) [][]byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	out := make([][]byte, len(steps))
	for i, s := range steps {
		if s.req == nil {
			time.Sleep(s.wait)
			continue
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(s.req); err != nil {
			out[i] = []byte("(closed)")
			continue
		}
		reply, err := ReadReply(r)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				out[i] = []byte("(closed)")
				continue
			}
			t.Fatalf("%s: reading reply: %v", s.line, err)
		}
		out[i] = reply
	}
	return out
}

// ReadReply reads one complete RESP2 reply and returns its raw bytes.
func ReadReply(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("malformed reply line %q", line)
	}
	switch line[0] {
	case '+', '-', ':':
		return line, nil
	case '$':
		n, err := strconv.Atoi(string(line[1 : len(line)-2]))
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return line, nil
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		return append(line, body...), nil
	case '*':
		n, err := strconv.Atoi(string(line[1 : len(line)-2]))
		if err != nil {
			return nil, err
		}
		out := line
		for i := 0; i < n; i++ {
			el, err := ReadReply(r)
			if err != nil {
				return nil, err
			}
			out = append(out, el...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown reply type %q", line)
}

func formatGolden(steps []step, replies [][]byte) []byte {
	var b bytes.Buffer
	for i, s := range steps {
		if s.req == nil {
			continue
		}
		fmt.Fprintf(&b, "> %s\n%s\n", s.line, strconv.Quote(string(replies[i])))
	}
	return b.Bytes()
}

func readGolden(t *testing.T, path string, n int) [][]byte {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (record it with -update)", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(src), "\n"), "\n")
	var out [][]byte
	for i := 1; i < len(lines); i += 2 {
		s, err := strconv.Unquote(lines[i])
		if err != nil {
			t.Fatalf("%s:%d: %v", path, i+1, err)
		}
		out = append(out, []byte(s))
	}
	return out
}

func compare(t *testing.T, who string, steps []step, want, got [][]byte) {
	t.Helper()
	j := 0
	for i, s := range steps {
		if s.req == nil {
			continue
		}
		if j >= len(want) {
			t.Fatalf("golden file has fewer replies than the transcript has requests; re-record with -update")
		}
		if !bytes.Equal(got[i], want[j]) {
			t.Errorf("%s: %s\n got: %q\nwant: %q", who, s.line, got[i], want[j])
		}
		j++
	}
}

// startRedisServer runs a throwaway redis-server on a free loopback port.
func startRedisServer(t *testing.T, bin, pass string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}
	if pass != "" {
		args = append(args, "--requirepass", pass)
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("redis-server did not start on %s", addr)
	return ""
}

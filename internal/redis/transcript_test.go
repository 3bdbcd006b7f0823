package redis_test

import (
	"bufio"
	"errors"
	"flag"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/resp"
	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// Golden transcripts (format in package transcript): each
// testdata/transcripts/NAME.txt lists requests; NAME.golden holds the exact
// reply bytes redis-server 7.0 gave to each, recorded with
//
//	go test ./internal/redis -run TestTranscripts -update
//
// (which needs redis-server on PATH). The test replays every transcript
// against hatcheck and compares byte for byte; where redis-server is
// installed it also replays against it, so that a golden file that no
// longer matches the real server is caught too.
//
// A request line is written inline (SET k "a b") and sent as a RESP
// multibulk request; "raw" lines are sent as they are. A first line
// "#! requirepass PASS" starts both servers with a password.
//
// TestTranscriptsThroughAFollower (follower_transcript_test.go) replays
// every transcript again through a follower of a three-node cluster,
// against the same golden file: a reply that differs there only because
// the command went through a follower is a bug to fix, never a reason to
// leave the step out. Only what a follower answers differently by design
// (WAIT counts replicas, ROLE says slave) is marked "#@ single-node
// REASON" before its request; "#! single-node REASON" would leave out a
// whole file (none needs it).
var update = flag.Bool("update", false, "re-record golden transcripts from redis-server")

func TestTranscripts(t *testing.T) {
	redisServer := transcript.Reference(t, "redis-server", "redis-server", *update)
	hatcheck := func(t *testing.T, f transcript.File) [][]byte {
		pass := f.Directives["requirepass"]
		srv := servertest.Start(t, func(c *servertest.Config) { c.RequirePass = pass })
		return play(t, srv.RedisAddr(), f.Steps)
	}
	var reference transcript.Player
	if redisServer != "" {
		reference = func(t *testing.T, f transcript.File) [][]byte {
			return play(t, startRedisServer(t, redisServer, f.Directives["requirepass"]), f.Steps)
		}
	}
	transcript.Run(t, *update, encodeInline, hatcheck, reference)
}

// encodeInline turns an inline-syntax line into a RESP multibulk request.
func encodeInline(line string) ([]byte, error) {
	args, ok := resp.SplitArgs([]byte(line), nil)
	if !ok {
		return nil, errors.New("unbalanced quotes")
	}
	req := resp.AppendArray(nil, len(args))
	for _, a := range args {
		req = resp.AppendBulk(req, a)
	}
	return req, nil
}

// play sends each request on one connection and returns each raw reply;
// a closed connection is recorded as "(closed)".
func play(t *testing.T, addr string, steps []transcript.Step) [][]byte {
	t.Helper()
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c, bufio.NewReader(c)
	}
	c, r := dial()
	defer func() { c.Close() }()
	out := make([][]byte, len(steps))
	for i, s := range steps {
		if s.Reconnect {
			c.Close()
			c, r = dial()
			continue
		}
		if s.Req == nil && !s.Read {
			time.Sleep(s.Wait)
			continue
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if s.Req != nil {
			if _, err := c.Write(s.Req); err != nil {
				out[i] = []byte("(closed)")
				continue
			}
		}
		reply, err := ReadReply(r)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				out[i] = []byte("(closed)")
				continue
			}
			t.Fatalf("%s: reading reply: %v", s.Line, err)
		}
		out[i] = reply
	}
	return out
}

// ReadReply reads one complete reply or push and returns its raw bytes.
func ReadReply(r *bufio.Reader) ([]byte, error) { return resp.ReadReply(r) }

// startRedisServer runs a throwaway redis-server on a free loopback port.
func startRedisServer(t *testing.T, bin, pass string) string {
	t.Helper()
	port := transcript.FreePort(t)
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}
	if pass != "" {
		args = append(args, "--requirepass", pass)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	transcript.StartServer(t, addr, bin, args...)
	return addr
}

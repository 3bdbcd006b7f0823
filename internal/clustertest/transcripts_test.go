package clustertest

import (
	"bufio"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/resp"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// The golden transcripts of the key commands that write through the log
// in ways of their own (RESTORE's payload, SORT … STORE's computed list,
// SWAPDB), replayed through a follower of a three-node cluster: every
// reply byte for byte as redis-server 7.0's (internal/redis's
// TestTranscripts replays them on a single node). WAIT's transcript is
// not among them: a cluster has replicas.
func TestKeyTranscriptsThroughAFollower(t *testing.T) {
	c := Start(t, 3)
	leader := c.Leader()
	addr := c.Others(leader)[0].Cfg.RedisAddr
	ctx := Ctx(t, 60*time.Second)
	for _, name := range []string{"dump", "sort", "swapdb"} {
		if err := leader.Client().FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		base := filepath.Join("..", "redis", "testdata", "transcripts", name)
		f := transcript.Load(t, base+".txt", encodeRequest)
		want := transcript.ReadGolden(t, base+".golden")
		transcript.Compare(t, name+" through a follower", f.Steps, want, playTranscript(t, addr, f.Steps))
	}
}

func encodeRequest(line string) ([]byte, error) {
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

// playTranscript sends each request on one connection (a new one at each
// reconnect) and returns each raw reply.
func playTranscript(t *testing.T, addr string, steps []transcript.Step) [][]byte {
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
		switch {
		case s.Reconnect:
			c.Close()
			c, r = dial()
			continue
		case s.Req == nil && !s.Read:
			time.Sleep(s.Wait)
			continue
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if s.Req != nil {
			if _, err := c.Write(s.Req); err != nil {
				t.Fatalf("%s: %v", s.Line, err)
			}
		}
		reply, err := resp.ReadReply(r)
		if err != nil {
			t.Fatalf("%s: reading reply: %v", s.Line, err)
		}
		out[i] = reply
	}
	return out
}

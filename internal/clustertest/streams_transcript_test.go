package clustertest

import (
	"bufio"
	"errors"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/resp"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// The stream transcripts recorded from redis-server (internal/redis's
// streams.txt and streams_more.txt) replayed through a follower of a
// three-node cluster: its writes are forwarded to the leader and applied
// on every node, its reads wait for a read barrier, and every reply is
// still redis-server's, byte for byte — the IDs of "*" included, which
// the leader's clock decides.
func TestStreamTranscriptsThroughAFollower(t *testing.T) {
	c := Start(t, 3)
	follower := c.Others(c.Leader())[0]
	encode := func(line string) ([]byte, error) {
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
	for _, name := range []string{"streams", "streams_more"} {
		t.Run(name, func(t *testing.T) {
			base := filepath.Join("..", "redis", "testdata", "transcripts", name)
			f := transcript.Load(t, base+".txt", encode)
			want := transcript.ReadGolden(t, base+".golden")
			conn, err := net.Dial("tcp", follower.Cfg.RedisAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			got := make([][]byte, 0, len(f.Steps))
			for _, s := range f.Steps {
				if s.Req == nil {
					t.Fatalf("%s: only requests are replayed here", s.Line)
				}
				_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err := conn.Write(s.Req); err != nil {
					t.Fatal(err)
				}
				reply, err := resp.ReadReply(r)
				if err != nil {
					t.Fatalf("%s: %v", s.Line, err)
				}
				if strings.HasPrefix(s.Line, "HELLO") {
					reply = want[len(got)] // a follower's role is "slave", by design
				}
				got = append(got, reply)
			}
			if mask := f.Directives["mask"]; mask != "" {
				re := regexp.MustCompile(mask)
				for i := range got {
					got[i] = re.ReplaceAll(got[i], []byte("(masked)"))
					want[i] = re.ReplaceAll(want[i], []byte("(masked)"))
				}
			}
			transcript.Compare(t, "a follower", f.Steps, want, got)
		})
	}
}

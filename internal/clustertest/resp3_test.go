package clustertest

import (
	"bufio"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/resp"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// The RESP3 sorted-set transcript, recorded from redis-server, replayed
// through a follower of three: its writes' results (ZPOPMIN's pairs,
// ZINCRBY's double) come back from the leader with their marks, so the
// follower frames them as a single node does. HELLO's reply (a role and
// an id of this node's) is left out.
func TestRESP3SortedSetsThroughAFollower(t *testing.T) {
	c := Start(t, 3)
	follower := c.Others(c.Leader())[0]
	encode := func(line string) ([]byte, error) {
		args, _ := resp.SplitArgs([]byte(line), nil)
		req := resp.AppendArray(nil, len(args))
		for _, a := range args {
			req = resp.AppendBulk(req, a)
		}
		return req, nil
	}
	const path = "../redis/testdata/transcripts/resp3_zsets"
	f := transcript.Load(t, path+".txt", encode)
	want := transcript.ReadGolden(t, path+".golden")
	conn, err := net.Dial("tcp", follower.Cfg.RedisAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	hello := regexp.MustCompile(`^HELLO`)
	got := make([][]byte, len(f.Steps))
	for i, s := range f.Steps {
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := conn.Write(s.Req); err != nil {
			t.Fatal(err)
		}
		if got[i], err = resp.ReadReply(r); err != nil {
			t.Fatalf("%s: %v", s.Line, err)
		}
		if hello.MatchString(s.Line) {
			got[i], want[i] = nil, nil
		}
	}
	transcript.Compare(t, "follower", f.Steps, want, got)
}

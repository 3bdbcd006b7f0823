package redis

import (
	"strings"
	"testing"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/netserve"
)

// slowNode is an in-memory node on which every write and every read
// completes through its callback on another goroutine, as a read behind a
// read barrier does: each command's reply waits for a wake-up.
func slowNode() *memNode {
	m := newMemNode()
	m.slowReads.Store(true)
	m.slowView.Store(true)
	return m
}

// Requests that wait for their completion still answer in request order:
// a pipeline batch with a request refused inside it, an unknown command
// that makes the batch run first, reads after writes.
func TestWaitingRequestsAnswerInOrder(t *testing.T) {
	_, addr := serveNode(t, testConfig(), nil, slowNode())
	c := dial(t, addr)
	c.send("SET a 1\r\nGET a\r\nSET b 2 EX x\r\nINCR n\r\nFOO bar\r\nGET n\r\nPING\r\nGET missing\r\nGET a\r\n")
	c.expect("+OK\r\n$1\r\n1\r\n" +
		"-ERR value is not an integer or out of range\r\n" +
		":1\r\n" +
		"-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n" +
		"$1\r\n1\r\n+PONG\r\n$-1\r\n$1\r\n1\r\n")
	// One at a time, too.
	c.send("GET a\r\n")
	c.expect("$1\r\n1\r\n")
}

// A command queued in MULTI that waits (SCRIPT LOAD goes through the log)
// is answered in its place in EXEC's reply.
func TestExecWithQueuedWaitingCommand(t *testing.T) {
	_, addr := serveNode(t, testConfig(), nil, slowNode())
	c := dial(t, addr)
	sha := command.ScriptSHA([]byte("return 1"))
	c.send("MULTI\r\nSCRIPT LOAD \"return 1\"\r\nSET a 1\r\nPING\r\nGET a\r\nEXEC\r\n")
	c.expect("+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n" +
		"*4\r\n$40\r\n" + sha + "\r\n+OK\r\n+PONG\r\n$1\r\n1\r\n")
	c.send("EVALSHA " + sha + " 0\r\n")
	c.expect(":1\r\n")
}

// A pipeline batch refused whole for maxmemory is answered one command at
// a time, each after the one before completed: the write fails, the read
// and DEL still answer.
func TestBatchOverMaxMemoryAnsweredOneByOne(t *testing.T) {
	node := slowNode()
	_, addr := serveNode(t, testConfig(), nil, node)
	c := dial(t, addr)
	c.send("SET a 1\r\n")
	c.expect("+OK\r\n")
	node.SetMaxMemory(1, command.NoEviction)
	c.send("SET b 2\r\nGET a\r\nDEL a\r\nGET a\r\n")
	c.expect("-" + errOOM + "\r\n$1\r\n1\r\n:1\r\n$-1\r\n")
}

// A pipeline whose replies exceed flushAfter is answered in several runs
// (the connection stops, has its replies written and asks to go on), under
// either driver, with nothing more from the client.
func TestLongPipelineAnsweredInFull(t *testing.T) {
	for _, n := range []int{0, 1} {
		t.Run("loops="+itoa(n), func(t *testing.T) {
			loops, err := netserve.NewLoops(n, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = loops.Stop() })
			cfg := testConfig()
			cfg.Loops = loops
			_, addr := serve(t, cfg, nil)
			c := dial(t, addr)
			value := strings.Repeat("v", 1024)
			c.send("SET k " + value + "\r\n")
			c.expect("+OK\r\n")
			const gets = 300 // 300 KB of replies
			c.send(strings.Repeat("GET k\r\n", gets))
			c.expect(strings.Repeat("$1024\r\n"+value+"\r\n", gets))
		})
	}
}

// Discovery commands whose view must be fetched off the loop answer in
// their place too.
func TestDiscoveryOffTheLoopAnswersInOrder(t *testing.T) {
	_, addr := serveNode(t, testConfig(), nil, slowNode())
	c := dial(t, addr)
	c.send("PING\r\nROLE\r\nSENTINEL get-master-addr-by-name hatcheck\r\nPING\r\n")
	c.expect("+PONG\r\n*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n" +
		"-IDONTKNOW I have not enough information to reply. Please ask another Sentinel.\r\n+PONG\r\n")
}

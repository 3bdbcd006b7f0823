package redis

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hatcheck/hatcheck/internal/command"
)

func multibulk(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

func scriptError(sha, msg string, line int) string {
	return fmt.Sprintf("-%s script: %s, on @user_script:%d.\r\n", msg, sha, line)
}

// Commands that read the clock or the node, or that are not data commands,
// cannot be called from a script: every node must compute the same result.
func TestScriptRefusesNonDeterministicCommands(t *testing.T) {
	_, addr := serve(t, testConfig(), nil)
	c := dial(t, addr)
	for _, name := range []string{"time", "info", "client", "select", "multi", "eval", "evalsha", "subscribe", "psubscribe", "pubsub", "config", "script"} {
		body := "return redis.call('" + name + "')"
		c.send(multibulk("EVAL", body, "0"))
		sha := command.ScriptSHA([]byte(body))
		msg := "ERR This Redis command is not allowed from script"
		if newTable().byName[name] == nil {
			msg = "ERR Unknown Redis command called from script"
		}
		c.expect(scriptError(sha, msg, 1))
	}
	// pcall returns the refusal as an error table instead.
	c.send(multibulk("EVAL", "return redis.pcall('time')['err']", "0"))
	c.expect("$49\r\nERR This Redis command is not allowed from script\r\n")
}

// Over maxmemory, a script's writes that may grow memory are refused inside
// the script; its reads and deletes still run.
func TestScriptOverMaxMemory(t *testing.T) {
	node := newMemNode()
	_, addr := serveNode(t, testConfig(), nil, node)
	c := dial(t, addr)
	c.send(multibulk("SET", "k", "v"))
	c.expect("+OK\r\n")
	node.SetMaxMemory(1, command.NoEviction)
	body := "return redis.call('set', 'x', 'y')"
	c.send(multibulk("EVAL", body, "0"))
	c.expect(scriptError(command.ScriptSHA([]byte(body)), "OOM command not allowed when used memory > 'maxmemory'.", 1))
	c.send(multibulk("EVAL", "local v = redis.call('get', 'k'); redis.call('del', 'k'); return v", "0"))
	c.expect("$1\r\nv\r\n")
}

// EVAL in MULTI and in a pipeline batch answers in its place.
func TestScriptInTransactionAndPipeline(t *testing.T) {
	_, addr := serve(t, testConfig(), nil)
	c := dial(t, addr)
	c.send(multibulk("MULTI") + multibulk("SET", "k", "1") + multibulk("EVAL", "return redis.call('incr', KEYS[1])", "1", "k") + multibulk("EXEC"))
	c.expect("+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:2\r\n")
	c.send(multibulk("SET", "k", "5") + multibulk("EVAL", "return redis.call('incr', KEYS[1])", "1", "k") + multibulk("GET", "k"))
	c.expect("+OK\r\n:6\r\n$1\r\n6\r\n")
}

package redis_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
)

// infoField returns one field of an INFO reply.
func infoField(t *testing.T, info, name string) string {
	t.Helper()
	for _, line := range strings.Split(info, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == name {
			return v
		}
	}
	t.Fatalf("INFO has no %s:\n%s", name, info)
	return ""
}

func infoInt(t *testing.T, info, name string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(infoField(t, info, name), 10, 64)
	if err != nil {
		t.Fatalf("INFO %s: %v", name, err)
	}
	return n
}

// INFO's counters: lookups, commands, bytes, rates, tracking clients,
// keyspace and replication offsets, as the commands run change them.
func TestInfoCounters(t *testing.T) {
	srv := servertest.Start(t)
	w := dialWire(t, srv.RedisAddr())
	w.do("SET k v")
	before := w.do("INFO stats")
	w.do("GET k")         // hit
	w.do("GET nosuch")    // miss
	w.do("MGET k nosuch") // a hit and a miss
	w.do("HGETALL nosuch")
	after := w.do("INFO stats")
	if d := infoInt(t, after, "keyspace_hits") - infoInt(t, before, "keyspace_hits"); d != 2 {
		t.Errorf("keyspace_hits grew by %d, want 2", d)
	}
	if d := infoInt(t, after, "keyspace_misses") - infoInt(t, before, "keyspace_misses"); d != 3 {
		t.Errorf("keyspace_misses grew by %d, want 3", d)
	}
	if d := infoInt(t, after, "total_commands_processed") - infoInt(t, before, "total_commands_processed"); d != 5 {
		t.Errorf("total_commands_processed grew by %d, want 5", d)
	}
	var sent int64
	for _, line := range []string{"GET k", "GET nosuch", "MGET k nosuch", "HGETALL nosuch", "INFO stats"} {
		req, _ := encodeInline(line)
		sent += int64(len(req))
	}
	if d := infoInt(t, after, "total_net_input_bytes") - infoInt(t, before, "total_net_input_bytes"); d != sent {
		t.Errorf("total_net_input_bytes grew by %d, want %d", d, sent)
	}
	if infoInt(t, after, "total_net_output_bytes") <= infoInt(t, before, "total_net_output_bytes") {
		t.Errorf("total_net_output_bytes did not grow")
	}
	for i := 0; i < 300; i++ {
		w.do("PING")
	}
	time.Sleep(3 * time.Duration(100) * time.Millisecond)
	if ops := infoInt(t, w.do("INFO stats"), "instantaneous_ops_per_sec"); ops <= 0 {
		t.Errorf("instantaneous_ops_per_sec %d after 300 commands", ops)
	}

	w.do("CONFIG RESETSTAT")
	if info := w.do("INFO stats"); infoInt(t, info, "keyspace_hits") != 0 || infoInt(t, info, "total_commands_processed") > 2 {
		t.Errorf("after CONFIG RESETSTAT:\n%s", info)
	}

	w.do("SET e v EX 100")
	ks := w.do("INFO keyspace")
	if got := infoField(t, ks, "db0"); !strings.HasPrefix(got, "keys=2,expires=1,avg_ttl=") {
		t.Errorf("db0:%s", got)
	} else if ttl, _ := strconv.Atoi(strings.TrimPrefix(got, "keys=2,expires=1,avg_ttl=")); ttl < 90_000 || ttl > 100_000 {
		t.Errorf("avg_ttl %d, want about 100000", ttl)
	}
	if off := infoInt(t, w.do("INFO replication"), "master_repl_offset"); off <= 0 {
		t.Errorf("master_repl_offset %d", off)
	}
	c := dialWire(t, srv.RedisAddr())
	c.do("HELLO 3")
	c.do("CLIENT TRACKING ON")
	c.do("GET k")
	info := w.do("INFO")
	if infoInt(t, info, "tracking_clients") != 1 || infoInt(t, info, "tracking_total_keys") != 1 {
		t.Errorf("tracking figures:\n%s", info)
	}
}

// MEMORY USAGE is the keyspace's accounting of the key: it grows with the
// value and counts each field of a hash.
func TestMemoryUsage(t *testing.T) {
	srv := servertest.Start(t)
	w := dialWire(t, srv.RedisAddr())
	w.do("SET small v")
	w.do("SET big " + strings.Repeat("x", 1000))
	w.do("HSET h a 1 b 2")
	usage := func(k string) int64 {
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(w.do("MEMORY USAGE "+k), ":"), "\r\n"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	s, b, h := usage("small"), usage("big"), usage("h")
	if s <= int64(len("small")+1) || b-s != 999+int64(len("big")-len("small")) || h <= 4 {
		t.Errorf("MEMORY USAGE small=%d big=%d h=%d", s, b, h)
	}
}

// SLOWLOG keeps redis's entry: id, time, microseconds, the arguments (at
// most 32, each at most 128 bytes, passwords redacted), the client's
// address and name; newest first, at most slowlog-max-len.
func TestSlowlog(t *testing.T) {
	srv := servertest.Start(t)
	w := dialWire(t, srv.RedisAddr())
	w.do("CONFIG SET slowlog-log-slower-than 0")
	w.do("SLOWLOG RESET")
	w.do("CLIENT SETNAME me")
	w.do("ECHO " + strings.Repeat("a", 130))
	args := make([]string, 40)
	for i := range args {
		args[i] = strconv.Itoa(i)
	}
	w.do("DEL " + strings.Join(args, " "))
	w.do("HELLO 2 AUTH default secret")
	got := w.do("SLOWLOG GET 4")
	addr := w.c.LocalAddr().String()
	for _, want := range []string{
		// HELLO, newest first, its password redacted.
		"*5\r\n$5\r\nHELLO\r\n$1\r\n2\r\n$4\r\nAUTH\r\n$10\r\n(redacted)\r\n$10\r\n(redacted)\r\n$" + strconv.Itoa(len(addr)) + "\r\n" + addr + "\r\n$2\r\nme\r\n",
		// DEL: 31 arguments and a note of the 10 more.
		"$2\r\n29\r\n$23\r\n... (10 more arguments)\r\n",
		// ECHO: 128 bytes and a note.
		"$146\r\n" + strings.Repeat("a", 128) + "... (2 more bytes)\r\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("SLOWLOG GET lacks %q:\n%q", want, got)
		}
	}
	if !strings.HasPrefix(got, "*4\r\n*6\r\n:") {
		t.Errorf("SLOWLOG GET 4: %q", got)
	}
	w.do("CONFIG SET slowlog-max-len 2")
	w.do("PING")
	if got := w.do("SLOWLOG LEN"); got != ":2\r\n" {
		t.Errorf("SLOWLOG LEN after slowlog-max-len 2: %q", got)
	}
	w.do("CONFIG SET slowlog-log-slower-than -1")
	w.do("SLOWLOG RESET")
	w.do("PING")
	if got := w.do("SLOWLOG LEN"); got != ":0\r\n" {
		t.Errorf("SLOWLOG LEN with logging off: %q", got)
	}
}

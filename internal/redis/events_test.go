package redis_test

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// eventSession subscribes on one connection (keyspace and keyevent
// patterns, a channel, a channel pattern), makes changes and publishes on
// another, and returns every message the subscriber received, raw, up to
// the final "end" message.
func eventSession(t *testing.T, addr string) []byte {
	return eventSessionOf(t, addr, []string{"PSUBSCRIBE __key*@0__:*", "SUBSCRIBE news", "PSUBSCRIBE n*"}, []string{
		"SET k v EX 100", "EXPIRE k 200", "PERSIST k", "APPEND k x", "INCR n", "DEL k n nosuch",
		"HSET h f v", "HINCRBY h c 1", "HDEL h f c", "SADD s a", "SREM s a", "SET r 1", "RENAME r r2",
		"SELECT 1", "SET other db", "SELECT 0",
		"RPUSH l a b c d", "LPUSH l z", "LPUSHX nol a", "LPOP l", "RPOP l 2", "LSET l 0 x", "LINSERT l BEFORE x w",
		"LREM l 1 w", "LTRIM l 0 0", "RPUSH l2 a b", "LMOVE l l2 LEFT RIGHT", "RPOPLPUSH l2 l3", "LMPOP 1 l2 LEFT COUNT 9",
		"BLPOP l3 0", "RPUSH l4 a", "BLMOVE l4 l4 LEFT RIGHT 0", "LREM l4 0 a", "LTRIM nol 0 1",
		"PUBLISH news hi", "SET e v PX 50",
	}, 1500*time.Millisecond)
}

// eventSessionOf is eventSession with the given subscriptions and
// changes, and a pause before the end (for expiry).
func eventSessionOf(t *testing.T, addr string, subscribe, changes []string, pause time.Duration) []byte {
	t.Helper()
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		return c, bufio.NewReader(c)
	}
	do := func(c net.Conn, r *bufio.Reader, line string) []byte {
		t.Helper()
		req, err := encodeInline(line)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		reply, err := ReadReply(r)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return reply
	}
	a, ar := dial()
	if got := do(a, ar, "CONFIG SET notify-keyspace-events KEA"); string(got) != "+OK\r\n" {
		t.Fatalf("CONFIG SET: %q", got)
	}
	s, sr := dial()
	for _, line := range subscribe {
		do(s, sr, line)
	}
	for _, line := range changes {
		do(a, ar, line)
	}
	time.Sleep(pause)
	do(a, ar, "PUBLISH news end")
	var all []byte
	for {
		msg, err := ReadReply(sr)
		if err != nil {
			t.Fatalf("subscriber: %v after %q", err, all)
		}
		all = append(all, msg...)
		if bytes.HasSuffix(msg, []byte("$4\r\nnews\r\n$3\r\nend\r\n")) {
			return all
		}
	}
}

// Keyspace notifications and PUBLISH, as a subscriber receives them,
// byte for byte as redis-server 7 sends them (events.golden is recorded
// from it with -update).
func TestKeyspaceEventsMatchRedis(t *testing.T) {
	matchRedisEvents(t, "events.golden", eventSession)
}

// The events of the commands of issue 13, in every database (COPY … DB
// and MOVE notify in the destination's), including the changes that
// notify nothing (SETRANGE of nothing, SETBIT of the bit already set, a
// failed BITFIELD INCRBY) and the reads that notify nothing at all.
func TestKeyspaceEventsOfMoreCommandsMatchRedis(t *testing.T) {
	matchRedisEvents(t, "events_cmds.golden", func(t *testing.T, addr string) []byte {
		return eventSessionOf(t, addr, []string{"PSUBSCRIBE __key*__:*", "SUBSCRIBE news"}, []string{
			"GETSET g v", "SETRANGE g 1 xy", "SETRANGE g 1 \"\"", "SETRANGE nokey 0 \"\"",
			"INCRBYFLOAT f 1.5", "SETBIT b 3 1", "SETBIT b 3 1", "SETBIT b 3 0", "SETBIT b 100 0",
			"BITOP OR d b g", "BITOP AND d nokey", "BITOP AND nokey2 nokey",
			"BITFIELD bf SET u8 0 1", "BITFIELD bf SET u8 0 1", "BITFIELD bf GET u8 0",
			"BITFIELD bf2 OVERFLOW FAIL INCRBY u8 0 300", "BITFIELD bf INCRBY u8 0 1",
			"COPY g g2", "COPY g g2 REPLACE", "COPY g g3 DB 2", "MOVE g2 3",
			"HINCRBYFLOAT h x 2.5", "SADD s 1 2 3 4", "SPOP s", "SPOP s 1", "SPOP s 5",
			"SADD a 1 2", "SADD c 3", "SMOVE a c 1", "SMOVE a c 2", "SMOVE c c 3",
			"SADD a 1 2", "SUNIONSTORE u a c", "SINTERSTORE i a c", "SDIFFSTORE df a c", "SDIFFSTORE u nokey",
			"SINTERSTORE nothing a nokey",
			"RANDOMKEY", "TOUCH a", "OBJECT ENCODING a", "GETRANGE g 0 1", "LCS g g3", "SRANDMEMBER a",
			"HRANDFIELD h", "HSCAN h 0", "SSCAN a 0", "SUNION a c", "SINTERCARD 1 a", "BITCOUNT b", "BITPOS b 1",
			"GETBIT b 3", "BITFIELD_RO bf GET u8 0",
			"PUBLISH news end",
		}, 0)
	})
}

// matchRedisEvents compares what a subscriber receives in session from
// hatcheck with testdata/golden, recorded from redis-server with -update
// (and replayed against it when it is installed).
func matchRedisEvents(t *testing.T, name string, session func(t *testing.T, addr string) []byte) {
	golden := filepath.Join("testdata", name)
	eventSession := session
	redisServer := transcript.Reference(t, "redis-server", "redis-server", *update)
	if redisServer != "" {
		got := eventSession(t, startRedisServer(t, redisServer, ""))
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if redisServer != "" {
		if got := eventSession(t, startRedisServer(t, redisServer, "")); !bytes.Equal(got, want) {
			t.Errorf("redis-server no longer matches %s:\n got %q\nwant %q", golden, got, want)
		}
	}
	srv := servertest.Start(t)
	if got := eventSession(t, srv.RedisAddr()); !bytes.Equal(got, want) {
		t.Errorf("hatcheck differs from redis-server:\n got %s\nwant %s", show(got), show(want))
	}
}

func show(b []byte) string { return strings.ReplaceAll(string(b), "\r\n", " ") }

// The events of the sorted set commands: ZADD's "zadd", ZINCRBY's and
// ZADD INCR's "zincr", "zrem", the ZREMRANGEBY commands', the pops' and
// the STORE commands' own, "del" when a sorted set becomes empty or a
// STORE's result is, and nothing for the changes
// that change nothing (ZADD NX of a member there, a score equal to the
// old one) or for reads.
func TestKeyspaceEventsOfSortedSetsMatchRedis(t *testing.T) {
	matchRedisEvents(t, "events_zsets.golden", func(t *testing.T, addr string) []byte {
		return eventSessionOf(t, addr, []string{"PSUBSCRIBE __key*__:*", "SUBSCRIBE news"}, []string{
			"ZADD z 1 a 2 b 3 c 4 d 5 e", "ZADD z NX 9 a", "ZADD z 1 a", "ZADD z XX 1 nosuch", "ZADD z CH 7 a",
			"ZINCRBY z 1 a", "ZADD z INCR 1 b", "ZADD z INCR NX 1 b", "ZINCRBY new 1 m",
			"ZREM z nosuch", "ZREM z a", "ZREM new m",
			"ZREMRANGEBYSCORE z 100 200", "ZREMRANGEBYSCORE z 2 2", "ZREMRANGEBYRANK z 0 0", "ZADD z 0 x 0 y",
			"ZREMRANGEBYLEX z [x [x", "ZPOPMIN z", "ZPOPMAX z", "ZPOPMIN z 0", "ZPOPMAX z 10", "ZPOPMIN z",
			"ZADD l 0 a", "ZREMRANGEBYLEX l - +", "ZADD r 1 a", "ZREMRANGEBYRANK r 0 -1", "ZADD s 1 a", "ZREMRANGEBYSCORE s -inf +inf",
			"ZADD t 1 a", "ZSCORE t a", "ZRANGE t 0 -1", "ZCARD t", "ZCOUNT t 0 1", "ZRANK t a", "COPY t t2", "RENAME t2 t3",
			"ZADD u 1 a 2 b 3 c", "ZRANGESTORE d u 0 1", "ZRANGESTORE d u 5 6", "ZRANGESTORE d u 5 6",
			"ZUNIONSTORE d 2 u t", "ZINTERSTORE d 2 u t", "ZDIFFSTORE d 2 u t", "ZINTERSTORE d 2 u nokey",
			"ZUNION 2 u t", "ZINTER 2 u t", "ZDIFF 2 u t", "ZINTERCARD 2 u t", "ZRANDMEMBER u", "ZSCAN u 0",
			"ZMPOP 2 nokey u MIN", "ZMPOP 1 u MAX COUNT 5", "ZMPOP 1 u MIN",
			"PUBLISH news end",
		}, 0)
	})
}

// The events of DUMP and RESTORE: "restore"; a RESTORE … REPLACE whose
// TTL is already past deletes the key ("del"), one without REPLACE
// notifies nothing; DUMP, a read, nothing. SORT … STORE: "sortstore", or
// "del" when the result is empty and the destination existed. SWAPDB:
// nothing.
func TestKeyspaceEventsOfKeyCommandsMatchRedis(t *testing.T) {
	const payload = `"\x00\x02hi\x09\x00\x7f\x99\xce$\xda\xb7x\xa5"`
	matchRedisEvents(t, "events_keys.golden", func(t *testing.T, addr string) []byte {
		return eventSessionOf(t, addr, []string{"PSUBSCRIBE __key*__:*", "SUBSCRIBE news"}, []string{
			"SET s v", "DUMP s", "RESTORE r 0 " + payload, "RESTORE r 0 " + payload, "RESTORE r 0 " + payload + " REPLACE",
			"RESTORE r 1 " + payload + " ABSTTL REPLACE", "RESTORE gone 1 " + payload + " ABSTTL",
			"RESTORE t 100000 " + payload, "SELECT 2", "RESTORE r 0 " + payload, "SELECT 0",
			"RPUSH l 2 1", "SORT l", "SORT_RO l", "SORT l STORE d", "SORT l STORE d", "SORT l LIMIT 5 1 STORE d",
			"SORT l LIMIT 5 1 STORE d", "SORT nokey STORE l", "SET x 1", "SWAPDB 0 1", "SWAPDB 1 0",
			"PUBLISH news end",
		}, 0)
	})
}

// Stream events, as redis 7.0 publishes them (class t): "xadd", then
// "xtrim" when XADD's MAXLEN or MINID removed entries; "xtrim" and "xdel"
// only when they removed some; "xsetid"; nothing for NOMKSTREAM on a
// missing key, a refused ID, or reads; a stream emptied by XDEL or XTRIM
// stays (no "del").
func TestKeyspaceEventsOfStreamsMatchRedis(t *testing.T) {
	matchRedisEvents(t, "events_streams.golden", func(t *testing.T, addr string) []byte {
		return eventSessionOf(t, addr, []string{"PSUBSCRIBE __key*__:*", "SUBSCRIBE news"}, []string{
			"XADD s 1-1 a 1", "XADD s 2-1 b 2", "XADD s 1-1 c 3", "XADD s NOMKSTREAM 3-1 c 3",
			"XADD nokey NOMKSTREAM 1-1 a 1", "XADD s MAXLEN 10 4-1 d 4", "XADD s MAXLEN 2 5-1 e 5",
			"XADD s MINID 5-1 6-1 f 6", "XTRIM s MAXLEN 5", "XTRIM s MAXLEN 1", "XTRIM nokey MAXLEN 0",
			"XDEL s 9-9", "XDEL s 6-1", "XDEL nokey 1-1", "XSETID s 10-0", "XSETID s 1-1",
			"XLEN s", "XRANGE s - +", "XREVRANGE s + -", "XREAD STREAMS s 0", "XINFO STREAM s",
			"EXISTS s", "COPY s s2", "RENAME s2 s3", "EXPIRE s3 100", "DEL s3",
			"PUBLISH news end",
		}, 0)
	})
}

package redis_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// COMMAND INFO describes every command as redis-server 7.0 does: name,
// arity, flags, key positions, ACL categories and tips are its own
// (cluster clients route by the key positions; others read the flags).
// testdata/command_info.golden is redis-server's reply to COMMAND INFO
// for every command hatcheck has, recorded with
//
//	go test ./internal/redis -run TestCommandInfoMatchesRedis -update
//
// Key specifications and subcommands are not compared: hatcheck reports
// them empty (see appendCommandInfo). A command redis-server does not have
// (SENTINEL, outside Sentinel mode) is null in the recording and skipped.
func TestCommandInfoMatchesRedis(t *testing.T) {
	golden := filepath.Join("testdata", "command_info.golden")
	srv := servertest.Start(t)
	names := commandList(t, srv.RedisAddr())
	req := append([]string{"COMMAND", "INFO"}, names...)
	redisServer := transcript.Reference(t, "redis-server", "redis-server", *update)
	var live []byte
	if redisServer != "" {
		live = request(t, startRedisServer(t, redisServer, ""), req...)
		if *update {
			if err := os.WriteFile(golden, live, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	wantInfo := parseReply(t, want)
	if len(wantInfo.elems) != len(names) {
		t.Fatalf("%s describes %d commands, hatcheck has %d; re-record with -update", golden, len(wantInfo.elems), len(names))
	}
	if live != nil {
		// Subcommands come in the order of a hash table with a random
		// seed: the rest must match.
		compareCommandInfo(t, "redis-server now", names, parseReply(t, live), wantInfo, 9)
	}
	compareCommandInfo(t, "hatcheck", names, parseReply(t, request(t, srv.RedisAddr(), req...)), wantInfo, 8)
}

// compareCommandInfo reports where the first n fields of got's command
// descriptions differ from the recording's.
func compareCommandInfo(t *testing.T, who string, names []string, got, want reply, n int) {
	t.Helper()
	fields := []string{"name", "arity", "flags", "first key", "last key", "key step", "ACL categories", "tips", "key specs"}
	for i, name := range names {
		w, g := want.elems[i], got.elems[i]
		if w.null {
			continue
		}
		if len(g.elems) != 10 || len(w.elems) != 10 {
			t.Errorf("%s: %s: %d elements, recorded %d", who, name, len(g.elems), len(w.elems))
			continue
		}
		for j, f := range fields[:n] {
			if !bytes.Equal(g.elems[j].raw, w.elems[j].raw) {
				t.Errorf("%s: %s: %s %s, recorded %s", who, name, f, show(g.elems[j].raw), show(w.elems[j].raw))
			}
		}
	}
}

// commandList is COMMAND LIST's names.
func commandList(t *testing.T, addr string) []string {
	t.Helper()
	var names []string
	for _, e := range parseReply(t, request(t, addr, "COMMAND", "LIST")).elems {
		names = append(names, string(e.bulk))
	}
	if len(names) == 0 {
		t.Fatal("COMMAND LIST is empty")
	}
	return names
}

// request sends one request and returns the raw reply.
func request(t *testing.T, addr string, args ...string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c, "$%d\r\n%s\r\n", len(a), a)
	}
	reply, err := ReadReply(bufio.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	return reply
}

// reply is a parsed RESP2 reply: its raw bytes, and for an array its
// elements, for a bulk string its contents.
type reply struct {
	raw   []byte
	bulk  []byte
	elems []reply
	null  bool
}

func parseReply(t *testing.T, b []byte) reply {
	t.Helper()
	r, rest, err := parseOne(b)
	if err != nil || len(rest) != 0 {
		t.Fatalf("parsing %q: %v (%d bytes left)", b, err, len(rest))
	}
	return r
}

func parseOne(b []byte) (reply, []byte, error) {
	end := bytes.Index(b, []byte("\r\n"))
	if end < 1 {
		return reply{}, nil, fmt.Errorf("no line in %q", b)
	}
	line, rest := string(b[1:end]), b[end+2:]
	n, _ := strconv.Atoi(line)
	var r reply
	switch b[0] {
	case '$':
		if n >= 0 {
			r.bulk, rest = rest[:n], rest[n+2:]
		} else {
			r.null = true
		}
	case '*':
		r.null = n < 0
		for i := 0; i < n; i++ {
			var e reply
			var err error
			if e, rest, err = parseOne(rest); err != nil {
				return r, nil, err
			}
			r.elems = append(r.elems, e)
		}
	case '+', '-', ':':
	default:
		return r, nil, fmt.Errorf("unknown reply type in %q", b)
	}
	r.raw = b[:len(b)-len(rest)]
	return r, rest, nil
}

// The README's list of Redis commands is the table's: every command the
// table has is named there, and every upper-case word in the list's code
// spans is a command (or one of the options it names).
func TestReadmeListsTheCommands(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, para, ok := strings.Cut(string(readme), "\nRedis compatibility:")
	para, _, _ = strings.Cut(para, "\n\n")
	if !ok {
		t.Fatal(`README.md has no "Redis compatibility:" paragraph`)
	}
	options := map[string]bool{"NX": true, "XX": true, "GT": true, "LT": true, "MATCH": true, "COUNT": true}
	listed := map[string]bool{}
	spans := strings.Split(para, "`")
	for i := 1; i < len(spans); i += 2 {
		for _, w := range strings.Fields(spans[i]) {
			if w == strings.ToUpper(w) && strings.Trim(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == "" {
				listed[strings.ToLower(w)] = true
			}
		}
	}
	srv := servertest.Start(t)
	names := commandList(t, srv.RedisAddr())
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
		if !listed[n] {
			t.Errorf("README.md does not list %s", strings.ToUpper(n))
		}
	}
	for w := range listed {
		if !have[w] && !options[strings.ToUpper(w)] {
			t.Errorf("README.md lists %s, which is no command", strings.ToUpper(w))
		}
	}
}

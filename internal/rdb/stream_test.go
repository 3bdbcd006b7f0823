package rdb

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// streamScripts are the commands that make streams in redis-server, each
// with what makes it hard: fields that change from entry to entry (no
// SAMEFIELDS), integer values (listpack integers), a negative seq
// difference to the master ID, several nodes, values past a node's byte
// bound and past each listpack string length width, deleted entries
// (flagged in their node), XSETID's bookkeeping, a stream emptied by XDEL.
func streamScripts() map[string][][]any {
	m := map[string][][]any{
		"small": {{"XADD", "small", "1-1", "a", "1", "b", "2"}, {"XADD", "small", "2-0", "a", "3", "b", "4"}, {"XADD", "small", "2-1", "c", "x"}},
		"ints":  {{"XADD", "ints", "5-7", "n", "12345", "m", "-5", "big", "9000000000", "neg", "-300000"}, {"XADD", "ints", "6-0", "n", "1", "m", "2", "big", "3", "neg", "4"}},
		"large": {{"XADD", "large", "1-0", "f", strings.Repeat("v", 100)}, {"XADD", "large", "1-1", "f", strings.Repeat("w", 5000)}, {"XADD", "large", "1-2", "f", strings.Repeat("x", 70000), "g", "v"}},
		"setid": {{"XADD", "setid", "3-0", "f", "v"}, {"XADD", "setid", "4-0", "f", "w"}, {"XDEL", "setid", "3-0"}, {"XSETID", "setid", "100-5", "ENTRIESADDED", "50", "MAXDELETEDID", "10-0"}},
		"empty": {{"XADD", "empty", "1-0", "f", "v"}, {"XDEL", "empty", "1-0"}},
	}
	for i := range 250 {
		c := []any{"XADD", "big", fmt.Sprintf("%d-%d", 1000+i/3, i%3), "n", i, "payload", strings.Repeat("p", i%40)}
		if i%7 == 0 {
			c = append(c, "extra", "x")
		}
		m["big"] = append(m["big"], c)
		m["deleted"] = append(m["deleted"], []any{"XADD", "deleted", fmt.Sprintf("%d-1", i+1), "f", i})
		m["trimmed"] = append(m["trimmed"], []any{"XADD", "trimmed", "*", "f", i})
	}
	m["deleted"] = append(m["deleted"], []any{"XDEL", "deleted", "1-1", "50-1", "51-1", "250-1"})
	m["trimmed"] = append(m["trimmed"], []any{"XTRIM", "trimmed", "MAXLEN", "120"})
	return m
}

// redisStream is a stream as redis-server holds it: XRANGE's entries,
// XINFO STREAM's bookkeeping.
func redisStream(t *testing.T, c *goredis.Client, key string) *StreamValue {
	t.Helper()
	ctx := context.Background()
	s := &StreamValue{}
	rng, err := c.Do(ctx, "XRANGE", key, "-", "+").Slice()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", key, err)
	}
	for _, e := range rng {
		e := e.([]any)
		se := StreamEntry{ID: parseID(t, e[0].(string))}
		for _, f := range e[1].([]any) {
			se.Fields = append(se.Fields, []byte(f.(string)))
		}
		s.Entries = append(s.Entries, se)
	}
	info, err := c.Do(ctx, "XINFO", "STREAM", key).Slice()
	if err != nil {
		t.Fatalf("XINFO STREAM %s: %v", key, err)
	}
	for i := 0; i+1 < len(info); i += 2 {
		switch info[i] {
		case "last-generated-id":
			s.Last = parseID(t, info[i+1].(string))
		case "max-deleted-entry-id":
			s.MaxDeleted = parseID(t, info[i+1].(string))
		case "recorded-first-entry-id":
			s.First = parseID(t, info[i+1].(string))
		case "entries-added":
			s.Added = uint64(info[i+1].(int64))
		case "length":
			if n := info[i+1].(int64); n != int64(len(s.Entries)) {
				t.Fatalf("%s: XINFO length %d, XRANGE %d entries", key, n, len(s.Entries))
			}
		}
	}
	return s
}

func parseID(t *testing.T, s string) StreamID {
	ms, seq, _ := strings.Cut(s, "-")
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("stream ID %q", s)
	}
	return StreamID{a, b}
}

// streamText is s for comparisons (nil and empty entries alike).
func streamText(s *StreamValue) string {
	if s == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "last %v first %v maxdel %v added %d, %d entries:", s.Last, s.First, s.MaxDeleted, s.Added, len(s.Entries))
	for _, e := range s.Entries {
		fmt.Fprintf(&b, " %d-%d[", e.ID.Ms, e.ID.Seq)
		for _, f := range e.Fields {
			fmt.Fprintf(&b, "%q ", f)
		}
		b.WriteString("]")
	}
	return b.String()
}

func sameStream(t *testing.T, what string, got, want *StreamValue) {
	t.Helper()
	if g, w := streamText(got), streamText(want); g != w {
		t.Errorf("%s:\n got %.600s\nwant %.600s", what, g, w)
	}
}

// TestStreamsWithRedisServer: streams travel both ways between package rdb
// and redis-server 7.0 (which checks what it loads deeply:
// sanitize-dump-payload yes): redis's DUMP payloads and saved file read as
// the streams it holds (entries, last ID, first ID, largest deleted ID,
// entries added); EncodeDump's payloads RESTORE in it, and a file Writer
// wrote loads in it, as the same streams.
func TestStreamsWithRedisServer(t *testing.T) {
	dir := t.TempDir()
	c := startRedis(t, dir, "dump.rdb", "--sanitize-dump-payload", "yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	want := map[string]*StreamValue{}
	for key, script := range streamScripts() {
		for _, cmd := range script {
			if err := c.Do(ctx, cmd...).Err(); err != nil {
				t.Fatalf("%v: %v", cmd, err)
			}
		}
		want[key] = redisStream(t, c, key)
	}
	// The premise: what makes them hard is there.
	if n := len(want["big"].Entries); n != 250 {
		t.Fatalf("big has %d entries", n)
	}
	if w := want["setid"]; w.Added != 50 || w.MaxDeleted != (StreamID{10, 0}) || w.Last != (StreamID{100, 5}) {
		t.Fatalf("setid: %s", streamText(w))
	}
	if len(want["empty"].Entries) != 0 || len(want["trimmed"].Entries) != 120 {
		t.Fatalf("empty: %s; trimmed: %d entries", streamText(want["empty"]), len(want["trimmed"].Entries))
	}

	for key, w := range want {
		theirs, err := c.Dump(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeDump([]byte(theirs))
		if err != nil {
			t.Fatalf("%s: reading redis-server's DUMP: %v", key, err)
		}
		if got.Type != Stream {
			t.Fatalf("%s: type %v", key, got.Type)
		}
		sameStream(t, key+": redis-server's DUMP", got.Stream, w)

		p, err := EncodeDump(&Record{Type: Stream, Stream: w})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Restore(ctx, key+"-copy", 0, string(p)).Err(); err != nil {
			t.Fatalf("%s: redis-server's RESTORE: %v", key, err)
		}
		sameStream(t, key+": restored in redis-server", redisStream(t, c, key+"-copy"), w)
		// And it goes on as a stream: XADD appends after the restored
		// entries (in their last node when it has room).
		if err := c.Do(ctx, "XADD", key+"-copy", "*", "after", "1").Err(); err != nil {
			t.Fatalf("%s: XADD after RESTORE: %v", key, err)
		}
		if err := c.Do(ctx, "XADD", key, "*", "after", "1").Err(); err != nil {
			t.Fatal(err)
		}
		if g, w := len(redisStream(t, c, key+"-copy").Entries), len(redisStream(t, c, key).Entries); g != w {
			t.Errorf("%s: XADD after RESTORE: %d entries, redis's own %d", key, g, w)
		}
		if err := c.Del(ctx, key+"-copy").Err(); err != nil {
			t.Fatal(err)
		}
		want[key] = redisStream(t, c, key)
	}

	if err := c.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*Record
	for _, r := range readAll(t, data) {
		sameStream(t, string(r.Key)+": in redis-server's file", r.Stream, want[string(r.Key)])
		recs = append(recs, r)
	}
	if len(recs) != len(want) {
		t.Errorf("%d keys in redis-server's file, want %d", len(recs), len(want))
	}

	dir2 := t.TempDir()
	writeFile(t, filepath.Join(dir2, "out.rdb"), recs)
	c2 := startRedis(t, dir2, "out.rdb", "--sanitize-dump-payload", "yes")
	for key, w := range want {
		sameStream(t, key+": loaded by redis-server", redisStream(t, c2, key), w)
	}
	if n, _ := c2.DBSize(ctx).Result(); n != int64(len(want)) {
		t.Errorf("redis-server loaded %d keys, want %d", n, len(want))
	}
}

// TestStreamNodes: Writer's nodes hold at most 100 entries and close past
// redis's 4096 bytes; what it writes reads back the same; a stream with
// consumer groups in a DUMP payload is refused by name; corrupt stream
// nodes are bad data, not a panic.
func TestStreamNodes(t *testing.T) {
	s := &StreamValue{Last: StreamID{9999, 0}, First: StreamID{1, 0}, Added: 777}
	for i := range 1000 {
		f := [][]byte{[]byte("f"), []byte(strconv.Itoa(i))}
		if i%10 == 0 {
			f = append(f, []byte("big"), bytes.Repeat([]byte("b"), 600))
		}
		s.Entries = append(s.Entries, StreamEntry{ID: StreamID{uint64(1 + i), uint64(i % 5)}, Fields: f})
	}
	for _, n := range []int{0, 1, 100, 1000} {
		v := *s
		v.Entries = s.Entries[:n]
		p, err := EncodeDump(&Record{Type: Stream, Stream: &v})
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeDump(p)
		if err != nil {
			t.Fatalf("%d entries: %v", n, err)
		}
		sameStream(t, fmt.Sprint(n, " entries"), got.Stream, &v)
	}
	for i := 0; i < len(s.Entries); {
		lp, n := streamListpack(s.Entries[i:])
		if n < 1 || n > 100 || (n > 1 && len(lp) > streamNodeBytes) {
			t.Fatalf("a node of %d entries, %d bytes", n, len(lp))
		}
		i += n
	}
	if _, err := EncodeDump(&Record{Type: Stream, Stream: &StreamValue{Entries: []StreamEntry{{ID: StreamID{2, 0}}, {ID: StreamID{1, 0}}}}}); err == nil {
		t.Error("entries out of order were encoded")
	}

	// The other stream types: redis 5 and 6's (no first ID, largest
	// deleted ID, entries added: redis takes the first entry's ID and the
	// length) and redis 7.2's (as 7.0's, consumers apart).
	v := &StreamValue{Entries: s.Entries[:3], Last: StreamID{50, 1}, First: StreamID{0, 7}, MaxDeleted: StreamID{0, 9}, Added: 40}
	p19, _ := EncodeDump(&Record{Type: Stream, Stream: v})
	body19 := p19[:len(p19)-10]
	p21 := append([]byte{typeStreamListpacks3}, body19[1:]...)
	if got, err := DecodeDump(appendCRC(append(p21, dumpVersion, 0))); err != nil {
		t.Errorf("type 21: %v", err)
	} else {
		sameStream(t, "type 21", got.Stream, v)
	}
	// 19's tail: length, last ID (2), first ID (2), max deleted (2),
	// added, groups: one byte each here.
	p15 := append([]byte{typeStreamListpacks}, body19[1:len(body19)-6]...)
	p15 = append(p15, 0) // no groups
	if got, err := DecodeDump(appendCRC(append(p15, dumpVersion, 0))); err != nil {
		t.Errorf("type 15: %v", err)
	} else {
		sameStream(t, "type 15", got.Stream, &StreamValue{Entries: v.Entries, Last: v.Last, First: v.Entries[0].ID, Added: 3})
	}

	// A payload with one consumer group (no pending entries, no
	// consumers), as redis writes it.
	p, _ := EncodeDump(&Record{Type: Stream, Stream: &StreamValue{Entries: s.Entries[:1], Last: StreamID{1, 0}, First: StreamID{1, 0}, Added: 1}})
	body := p[:len(p)-11] // without the footer and the 0 groups
	body = appendString(append(body, 1), []byte("g"))
	body = append(body, 0, 0, 0, 0, 0)
	if _, err := DecodeDump(appendCRC(append(body, dumpVersion, 0))); err != ErrDumpGroups {
		t.Errorf("a stream with a consumer group: %v", err)
	}
	// Every truncation and every flipped byte of a stream's payload is
	// refused or read, never a panic.
	good, _ := EncodeDump(&Record{Type: Stream, Stream: &StreamValue{Entries: s.Entries[:20], Last: StreamID{9999, 0}}})
	for i := 1; i < len(good)-10; i++ {
		for _, x := range []byte{1, 0x80, 0xff} {
			b := bytes.Clone(good[:len(good)-8])
			b[i] ^= x
			_, _ = DecodeDump(appendCRC(b))
		}
		_, _ = DecodeDump(appendCRC(append(bytes.Clone(good[:i]), dumpVersion, 0)))
	}
}

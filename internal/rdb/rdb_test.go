package rdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/transcript"
)

func TestCRC64IsRedis(t *testing.T) {
	if got := crcUpdate(0, []byte("123456789")); got != 0xe9c6d914c4b8d9ca {
		t.Fatalf("crc64(123456789) = %#x, want redis's 0xe9c6d914c4b8d9ca", got)
	}
}

// sample is one of each type, with what makes them hard: binary and empty
// strings, lengths past each length-encoding width, expiry, flags,
// several databases, infinite scores.
func sample() []*Record {
	big := bytes.Repeat([]byte("0123456789"), 7000) // a 32-bit length
	mid := bytes.Repeat([]byte("x"), 300)           // a 14-bit length
	return []*Record{
		{DB: 0, Key: []byte("s"), Type: String, Str: []byte("hello")},
		{DB: 0, Key: []byte("bin\x00\xff"), Type: String, Str: []byte("\x00\r\n\xff")},
		{DB: 0, Key: []byte("empty"), Type: String, Str: []byte{}},
		{DB: 0, Key: []byte("big"), Type: String, Str: big, ExpireAt: 4102444800000},
		{DB: 0, Key: []byte("mc"), Type: String, Str: []byte("a:1:{}"), Flags: 3},
		{DB: 3, Key: []byte("h"), Type: Hash, Pairs: [][]byte{[]byte("f1"), []byte("v1"), []byte("f2"), mid}},
		{DB: 3, Key: []byte("set"), Type: Set, Elems: [][]byte{[]byte("a"), []byte("b"), []byte("12")}},
		{DB: 3, Key: []byte("l"), Type: List, Elems: [][]byte{[]byte("x"), []byte("y"), []byte("x")}, ExpireAt: 4102444800123},
		{DB: 15, Key: []byte("z"), Type: ZSet, Members: [][]byte{[]byte("a"), []byte("b"), []byte("c")}, Scores: []float64{1.5, math.Inf(1), math.Inf(-1)}},
	}
}

func writeFile(t *testing.T, path string, recs []*Record) {
	t.Helper()
	var b bytes.Buffer
	w := NewWriter(&b, "hatcheck-ver", "test")
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, data []byte) []*Record {
	t.Helper()
	var got []*Record
	if err := Read(bytes.NewReader(data), func(r *Record) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.rdb")
	want := sample()
	writeFile(t, path, want)
	data, _ := os.ReadFile(path)
	got := readAll(t, data)
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := *got[i], *want[i]
		if len(w.Str) == 0 && w.Type == String {
			w.Str, g.Str = nil, nil
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestCorruptFilesAreRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.rdb")
	writeFile(t, path, sample())
	good, _ := os.ReadFile(path)
	flip := bytes.Clone(good)
	flip[40] ^= 0x01
	// Every truncation, and a flipped bit, fail with ErrBadFile; nothing panics.
	for n := 0; n < len(good)-1; n += 1 + n/50 {
		err := Read(bytes.NewReader(good[:n]), func(*Record) error { return nil })
		if !errors.Is(err, ErrBadFile) {
			t.Fatalf("truncated at %d: %v", n, err)
		}
	}
	if err := Read(bytes.NewReader(flip), func(*Record) error { return nil }); !errors.Is(err, ErrBadFile) {
		t.Fatalf("flipped bit: %v", err)
	}
	if err := Read(strings.NewReader("REDIS0099"), func(*Record) error { return nil }); !errors.Is(err, ErrBadFile) {
		t.Fatalf("future version: %v", err)
	}
	stop := errors.New("stop")
	if err := Read(bytes.NewReader(good), func(*Record) error { return stop }); err != stop {
		t.Fatalf("fn's error: %v", err)
	}
}

func startRedis(t *testing.T, dir, file string, extra ...string) *goredis.Client {
	t.Helper()
	bin := transcript.Reference(t, "redis-server", "redis-server", false)
	if bin == "" {
		t.Skip("redis-server not installed")
	}
	port := transcript.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	transcript.StartServer(t, addr, bin, append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--dbfilename", file, "--appendonly", "no", "--save", ""}, extra...)...)
	c := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRedisServerLoadsWhatWeWrite: the way out. redis-server 7.0 starts on
// a file Writer wrote and serves every key as it was.
func TestRedisServerLoadsWhatWeWrite(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "out.rdb"), sample())
	c := startRedis(t, dir, "out.rdb")
	ctx := context.Background()
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	v, _ := c.Get(ctx, "s").Result()
	check("GET s", v, "hello")
	v, _ = c.Get(ctx, "bin\x00\xff").Result()
	check("GET bin", v, "\x00\r\n\xff")
	v, _ = c.Get(ctx, "big").Result()
	check("len GET big", len(v), 70000)
	pttl, _ := c.PExpireTime(ctx, "big").Result()
	check("PEXPIRETIME big", pttl, 4102444800000*time.Millisecond)
	v, _ = c.Get(ctx, "mc").Result()
	check("GET mc", v, "a:1:{}")
	c3 := goredis.NewClient(&goredis.Options{Addr: c.Options().Addr, DB: 3, Protocol: 2})
	defer c3.Close()
	h, _ := c3.HGetAll(ctx, "h").Result()
	check("HGETALL h", h, map[string]string{"f1": "v1", "f2": strings.Repeat("x", 300)})
	m, _ := c3.SMembers(ctx, "set").Result()
	slices.Sort(m)
	check("SMEMBERS set", m, []string{"12", "a", "b"})
	l, _ := c3.LRange(ctx, "l", 0, -1).Result()
	check("LRANGE l", l, []string{"x", "y", "x"})
	c15 := goredis.NewClient(&goredis.Options{Addr: c.Options().Addr, DB: 15, Protocol: 2})
	defer c15.Close()
	z, _ := c15.ZRangeWithScores(ctx, "z", 0, -1).Result()
	check("ZRANGE z", z, []goredis.Z{{Score: math.Inf(-1), Member: "c"}, {Score: 1.5, Member: "a"}, {Score: math.Inf(1), Member: "b"}})
	n, _ := c.DBSize(ctx).Result()
	check("DBSIZE 0", n, int64(5))
}

// TestWeReadWhatRedisServerWrites: the way in. redis-server 7.0 saves
// every type in its compact and its large encodings (integers, LZF,
// listpacks, intsets, quicklists, skiplists, hash tables), and Read gives
// back what was written.
func TestWeReadWhatRedisServerWrites(t *testing.T) {
	dir := t.TempDir()
	c := startRedis(t, dir, "dump.rdb")
	ctx := context.Background()
	want := map[string]*Record{}
	add := func(db int, r *Record) {
		r.DB = db
		want[fmt.Sprint(db, "/", string(r.Key))] = r
	}
	do := func(db int, args ...any) {
		t.Helper()
		if err := c.Do(ctx, "SELECT", db).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	c = goredis.NewClient(&goredis.Options{Addr: c.Options().Addr, Protocol: 2, PoolSize: 1})
	defer c.Close()
	long := strings.Repeat("compressible ", 100)
	for key, val := range map[string]string{"int": "12345", "neg": "-7", "int32": "2000000000", "big64": "9000000000000", "lzf": long, "bin": "\x00\xff"} {
		do(0, "SET", key, val)
		add(0, &Record{Key: []byte(key), Type: String, Str: []byte(val)})
	}
	do(0, "SET", "ttl", "v", "PXAT", "4102444800000")
	add(0, &Record{Key: []byte("ttl"), Type: String, Str: []byte("v"), ExpireAt: 4102444800000})

	hash := func(n int) (args []any, pairs [][]byte) {
		for i := range n {
			f, v := fmt.Sprint("f", i), fmt.Sprint(i*1000003)
			args = append(args, f, v)
			pairs = append(pairs, []byte(f), []byte(v))
		}
		return
	}
	for key, n := range map[string]int{"hsmall": 3, "hbig": 300} {
		args, pairs := hash(n)
		do(1, append([]any{"HSET", key}, args...)...)
		add(1, &Record{Key: []byte(key), Type: Hash, Pairs: pairs})
	}
	for key, elems := range map[string][]string{
		"sint":  {"1", "-5", "70000", "5000000000"},
		"sstr":  {"a", "b"},
		"sbig":  numbered("m", 600),
		"sbigi": numbered("", 600),
	} {
		args := []any{"SADD", key}
		var es [][]byte
		for _, e := range elems {
			args = append(args, e)
			es = append(es, []byte(e))
		}
		do(2, args...)
		add(2, &Record{Key: []byte(key), Type: Set, Elems: es})
	}
	for key, elems := range map[string][]string{"lsmall": {"a", "1", "-300", "b"}, "lbig": numbered("item-", 5000)} {
		args := []any{"RPUSH", key}
		var es [][]byte
		for _, e := range elems {
			args = append(args, e)
			es = append(es, []byte(e))
		}
		do(3, args...)
		add(3, &Record{Key: []byte(key), Type: List, Elems: es})
	}
	for key, n := range map[string]int{"zsmall": 3, "zbig": 400} {
		args := []any{"ZADD", key}
		r := &Record{Key: []byte(key), Type: ZSet}
		for i := range n {
			s := float64(i) + 0.25
			if i == 1 {
				s = math.Inf(1)
			}
			args = append(args, s, fmt.Sprint("z", i))
			r.Members = append(r.Members, []byte(fmt.Sprint("z", i)))
			r.Scores = append(r.Scores, s)
		}
		do(4, args...)
		add(4, r)
	}
	// The premise: redis holds these in every encoding it saves.
	encodings := map[string]bool{}
	for id := range want {
		db, key, _ := strings.Cut(id, "/")
		do(0, "SELECT", db)
		enc, err := c.ObjectEncoding(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		encodings[enc] = true
	}
	for _, enc := range []string{"int", "embstr", "raw", "listpack", "hashtable", "intset", "quicklist", "skiplist"} {
		if !encodings[enc] {
			t.Errorf("no key is %s-encoded in redis-server (encodings: %v)", enc, encodings)
		}
	}
	if err := c.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, data)
	if len(got) != len(want) {
		t.Errorf("%d keys read, want %d", len(got), len(want))
	}
	for _, g := range got {
		id := fmt.Sprint(g.DB, "/", string(g.Key))
		w := want[id]
		if w == nil {
			t.Errorf("unexpected key %s", id)
			continue
		}
		normalize(g)
		normalize(w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s (%s):\n got %.300v\nwant %.300v", id, g.Type, g, w)
		}
	}
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(prefix, i)
	}
	return out
}

// normalize orders what has no order (set members, hash fields, sorted
// set members by score) so that records compare.
func normalize(r *Record) {
	switch r.Type {
	case Set:
		slices.SortFunc(r.Elems, bytes.Compare)
	case Hash:
		type pair struct{ f, v []byte }
		ps := make([]pair, 0, len(r.Pairs)/2)
		for i := 0; i < len(r.Pairs); i += 2 {
			ps = append(ps, pair{r.Pairs[i], r.Pairs[i+1]})
		}
		slices.SortFunc(ps, func(a, b pair) int { return bytes.Compare(a.f, b.f) })
		r.Pairs = r.Pairs[:0]
		for _, p := range ps {
			r.Pairs = append(r.Pairs, p.f, p.v)
		}
	case ZSet:
		idx := make([]int, len(r.Members))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int { return bytes.Compare(r.Members[a], r.Members[b]) })
		ms, ss := make([][]byte, len(idx)), make([]float64, len(idx))
		for i, j := range idx {
			ms[i], ss[i] = r.Members[j], r.Scores[j]
		}
		r.Members, r.Scores = ms, ss
	}
}

// FuzzRead: no input makes Read panic or allocate without bound.
//
//	go test ./internal/rdb -run XXX -fuzz FuzzRead -fuzztime 5m
func FuzzRead(f *testing.F) {
	var b bytes.Buffer
	w := NewWriter(&b)
	for _, r := range sample() {
		_ = w.Write(r)
	}
	_ = w.Close()
	f.Add(b.Bytes())
	var bs bytes.Buffer
	w = NewWriter(&bs)
	_ = w.Write(&Record{Key: []byte("x"), Type: Stream, Stream: &StreamValue{Last: StreamID{9, 9}, Added: 3, Entries: []StreamEntry{
		{ID: StreamID{1, 5}, Fields: [][]byte{[]byte("f"), []byte("12")}},
		{ID: StreamID{2, 0}, Fields: [][]byte{[]byte("f"), []byte("v")}},
		{ID: StreamID{3, 0}, Fields: [][]byte{[]byte("g"), []byte("w")}},
	}}})
	_ = w.Close()
	f.Add(bs.Bytes())
	f.Add([]byte("REDIS0011\xfe\x00\x0d\x01k\x0b\x0b\x00\x00\x00\x01\x00\x02\x00\x00\x00\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = Read(bytes.NewReader(data), func(*Record) error { return nil })
	})
}

// TestSkipUnsupportedWithRedisServer: redis-server 7.0 saves streams (one
// bare, one with two consumer groups, pending entries and consumers, one
// with an expiry) and a function library beside ordinary keys. Read
// refuses the file for its library; ReadWith with SkipUnsupported hands
// over every key, the streams with their entries, and counts the
// consumer groups it read past; with Library it hands over the library's
// code and refuses the stream with consumer groups, naming it.
func TestSkipUnsupportedWithRedisServer(t *testing.T) {
	dir := t.TempDir()
	c := startRedis(t, dir, "dump.rdb")
	ctx := context.Background()
	do := func(args ...any) {
		t.Helper()
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	do("SET", "a", "1")
	for i := range 300 { // several listpack nodes
		do("XADD", "events", "*", "n", i, "payload", strings.Repeat("p", i%40))
	}
	do("XADD", "grouped", "*", "f", "v")
	do("XADD", "grouped", "*", "f", "w")
	do("XGROUP", "CREATE", "grouped", "g1", "0")
	do("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "1", "STREAMS", "grouped", ">")
	do("XREADGROUP", "GROUP", "g1", "bob", "STREAMS", "grouped", ">")
	do("XGROUP", "CREATECONSUMER", "grouped", "g1", "carol")
	do("XGROUP", "CREATE", "grouped", "g2", "$")
	do("XADD", "ttl-stream", "*", "f", "v")
	do("PEXPIREAT", "ttl-stream", "4102444800000")
	do("HSET", "h", "f", "v")
	do("RPUSH", "l", "x", "y")
	const lib = "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)"
	do("FUNCTION", "LOAD", lib)
	if err := c.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}

	err = Read(bytes.NewReader(data), func(*Record) error { return nil })
	var ue *UnsupportedError
	if !errors.Is(err, ErrUnsupported) || !errors.As(err, &ue) {
		t.Fatalf("Read: %v, want an UnsupportedError", err)
	}
	// Functions come before the keys in redis's files.
	if ue.What != "function library" || ue.Key != nil {
		t.Fatalf("Read refused %q (key %q), want the function library first", ue.What, ue.Key)
	}
	var keys []string
	st, err := ReadWith(bytes.NewReader(data), ReadOptions{SkipUnsupported: true}, func(r *Record) error {
		keys = append(keys, string(r.Key))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"a", "events", "grouped", "h", "l", "ttl-stream"}) {
		t.Errorf("keys read: %v", keys)
	}
	if want := map[string]int{"stream consumer group": 2, "function library": 1}; !reflect.DeepEqual(st.Skipped, want) {
		t.Errorf("skipped %v, want %v", st.Skipped, want)
	}

	var libs []string
	_, err = ReadWith(bytes.NewReader(data), ReadOptions{Library: func(code []byte) error {
		libs = append(libs, string(code))
		return nil
	}}, func(*Record) error { return nil })
	if !errors.As(err, &ue) || ue.What != "stream consumer group" || string(ue.Key) != "grouped" ||
		!strings.Contains(err.Error(), `key "grouped" is a stream with consumer groups`) {
		t.Fatalf("with Library only: %v, want the stream with consumer groups refused", err)
	}
	if !slices.Equal(libs, []string{lib}) {
		t.Errorf("libraries %q, want %q", libs, lib)
	}
	// Every truncation of a file with streams is still a bad file.
	for n := 9; n < len(data)-1; n += 1 + n/20 {
		_, err := ReadWith(bytes.NewReader(data[:n]), ReadOptions{SkipUnsupported: true}, func(*Record) error { return nil })
		if !errors.Is(err, ErrBadFile) {
			t.Fatalf("truncated at %d: %v", n, err)
		}
	}
}

func TestModuleTypeName(t *testing.T) {
	// ReJSON-RL, encoding version 3: as redis's moduleTypeEncodeId makes it.
	const cset = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var id uint64
	for _, c := range "ReJSON-RL" {
		id = id<<6 | uint64(strings.IndexRune(cset, c))
	}
	if got := moduleTypeName(id<<10 | 3); got != "ReJSON-RL" {
		t.Fatalf("moduleTypeName = %q", got)
	}
}

// TestSkipModuleValues: a module's value (annotated, as redis's
// RDB_TYPE_MODULE_2) and a module's auxiliary data are skipped when asked,
// and refused by name otherwise.
func TestSkipModuleValues(t *testing.T) {
	const cset = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var id uint64
	for _, c := range "ReJSON-RL" {
		id = id<<6 | uint64(strings.IndexRune(cset, c))
	}
	id = id<<10 | 3
	moduleBody := func(b []byte) []byte {
		b = appendLen(b, moduleUint)
		b = appendLen(b, 12345)
		b = appendLen(b, moduleString)
		b = appendString(b, []byte(`{"a":1}`))
		b = appendLen(b, moduleDouble)
		b = append(b, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f)
		b = appendLen(b, moduleFloat)
		b = append(b, 0, 0, 0x80, 0x3f)
		return appendLen(b, moduleEOF)
	}
	b := []byte("REDIS0009")
	b = append(b, opModuleAux)
	b = appendLen(b, id)
	b = appendLen(b, moduleUint)
	b = appendLen(b, 2)
	b = moduleBody(b)
	b = append(b, typeString)
	b = appendString(b, []byte("before"))
	b = appendString(b, []byte("1"))
	b = append(b, typeModule2)
	b = appendString(b, []byte("doc"))
	b = appendLen(b, id)
	b = moduleBody(b)
	b = append(b, typeString)
	b = appendString(b, []byte("after"))
	b = appendString(b, []byte("2"))
	b = append(b, opEOF)
	b = binary.LittleEndian.AppendUint64(b, crcUpdate(0, b))

	var keys []string
	st, err := ReadWith(bytes.NewReader(b), ReadOptions{SkipUnsupported: true}, func(r *Record) error {
		keys = append(keys, string(r.Key))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"before", "after"}) {
		t.Errorf("keys %v", keys)
	}
	if want := map[string]int{"module data": 1, "module type ReJSON-RL": 1}; !reflect.DeepEqual(st.Skipped, want) {
		t.Errorf("skipped %v, want %v", st.Skipped, want)
	}
	var ue *UnsupportedError
	if err := Read(bytes.NewReader(b), func(*Record) error { return nil }); !errors.As(err, &ue) || ue.What != "module data" {
		t.Fatalf("Read: %v, want the module data refused", err)
	}
}

// TestLibrariesRoundTrip: WriteLibrary's libraries come back through
// ReadWith's Library, in order, beside the keys.
func TestLibrariesRoundTrip(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	libs := []string{"#!lua name=a\nredis.register_function('f', function() return 1 end)", strings.Repeat("-- long\n", 5000)}
	for _, l := range libs {
		if err := w.WriteLibrary([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write(&Record{Key: []byte("k"), Type: String, Str: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	keys := 0
	if _, err := ReadWith(bytes.NewReader(b.Bytes()), ReadOptions{Library: func(code []byte) error {
		got = append(got, string(code))
		return nil
	}}, func(*Record) error { keys++; return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, libs) || keys != 1 {
		t.Fatalf("libraries %d (equal: %v), keys %d", len(got), slices.Equal(got, libs), keys)
	}
}

package bench

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// hexBytes reads bytes written as hex pairs, spaces and '|' ignored.
func hexBytes(t *testing.T, s string) []byte {
	t.Helper()
	s = strings.NewReplacer(" ", "", "|", "", "\n", "", "\t", "").Replace(s)
	b := make([]byte, len(s)/2)
	for i := range b {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			t.Fatalf("hex %q: %v", s, err)
		}
		b[i] = byte(v)
	}
	return b
}

// TestBinaryEncodingMatchesTheSpec: the requests are byte for byte the
// examples of memcached's doc/protocol-binary.txt (get, add, delete; the
// add with flags 0, since sessions are stored with flags 0), the touch and
// set built the same way after protocol_binary.h, and the opaque carries
// the request's id.
func TestBinaryEncodingMatchesTheSpec(t *testing.T) {
	hello, world := []byte("Hello"), []byte("World")
	key := "48656c6c6f" // Hello
	for _, c := range []struct {
		name string
		r    request
		want string
	}{
		{"get (4.2.1)", request{kind: OpGet, key: hello},
			"80 00 0005 | 00 00 0000 | 00000005 | 00000000 | 0000000000000000 |" + key},
		{"add (4.3.1), flags 0", request{kind: OpSetNX, key: hello, value: world, ttl: 7200},
			"80 02 0005 | 08 00 0000 | 00000012 | 00000000 | 0000000000000000 | 00000000 00001c20 |" + key + "576f726c64"},
		{"add as a lock", request{kind: OpLock, key: hello, value: world, ttl: 7200},
			"80 02 0005 | 08 00 0000 | 00000012 | 00000000 | 0000000000000000 | 00000000 00001c20 |" + key + "576f726c64"},
		{"set", request{kind: OpSet, key: hello, value: world, ttl: 7200},
			"80 01 0005 | 08 00 0000 | 00000012 | 00000000 | 0000000000000000 | 00000000 00001c20 |" + key + "576f726c64"},
		{"delete (4.4.1)", request{kind: OpDel, key: hello},
			"80 04 0005 | 00 00 0000 | 00000005 | 00000000 | 0000000000000000 |" + key},
		{"touch", request{kind: OpExpire, key: hello, ttl: 7200},
			"80 1c 0005 | 04 00 0000 | 00000009 | 00000000 | 0000000000000000 | 00001c20 |" + key},
		{"opaque", request{kind: OpGet, key: hello, id: 0x01020304},
			"80 00 0005 | 00 00 0000 | 00000005 | 01020304 | 0000000000000000 |" + key},
	} {
		if got, want := (binaryCodec{}).encode([]byte("x"), &c.r), append([]byte("x"), hexBytes(t, c.want)...); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got % x\nwant % x", c.name, got, want)
		}
	}
}

// TestBinaryReplyChecks: the get reply of doc/protocol-binary.txt 4.2.1 is
// accepted; a reply whose magic, opcode, opaque or lengths are wrong is an
// error; a status the request cannot expect is a failed request.
func TestBinaryReplyChecks(t *testing.T) {
	spec := "81 00 0000 | 04 00 0000 | 00000009 | 00000000 | 0000000000000001 | deadbeef | 576f726c64"
	read := func(reply string, r request) (bool, error) {
		raw := hexBytes(t, reply)
		br := bufio.NewReader(bytes.NewReader(append(raw, 0xee)))
		failed, err := (binaryCodec{}).read(br, &r)
		if err == nil {
			if b, _ := br.ReadByte(); b != 0xee {
				t.Errorf("reply %s: the body was not consumed exactly", reply)
			}
		}
		return failed, err
	}
	if failed, err := read(spec, request{kind: OpGet}); failed || err != nil {
		t.Fatalf("spec's get reply: failed %v, %v", failed, err)
	}
	for name, reply := range map[string]string{
		"magic":   "80" + spec[2:],
		"opcode":  "81 01" + spec[5:],
		"opaque":  strings.Replace(spec, "| 00000000 |", "| 00000007 |", 1),
		"lengths": strings.Replace(spec, "00000009", "00000003", 1),
		"extras":  "81 00 0000 | 00 00 0000 | 00000005 | 00000000 | 0000000000000001 | 576f726c64",
	} {
		if _, err := read(reply, request{kind: OpGet}); err == nil {
			t.Errorf("wrong %s accepted", name)
		}
	}
	status := func(op string, st string) string {
		return "81 " + op + " 0000 | 00 00 " + st + " | 00000000 | 00000000 | 0000000000000000"
	}
	for _, c := range []struct {
		op, status string
		kind       Kind
		failed     bool
	}{
		{"00", "0001", OpGet, false},
		{"1c", "0001", OpExpire, false},
		{"04", "0001", OpDel, false},
		{"02", "0002", OpLock, false},
		{"02", "0002", OpSetNX, false},
		{"01", "0002", OpSet, true},
		{"01", "0001", OpSet, true},
		{"02", "0005", OpLock, true},
		{"00", "0081", OpGet, true},
		{"01", "0082", OpSet, true},
		{"01", "0000", OpSet, false},
	} {
		failed, err := read(status(c.op, c.status), request{kind: c.kind})
		if err != nil || failed != c.failed {
			t.Errorf("status %s to %s: failed %v, %v; want failed %v", c.status, c.kind, failed, err, c.failed)
		}
	}
}

// item is what a server holds for a key, as read back by other means than
// the binary protocol.
type item struct {
	value string
	flags int
	ttl   int // seconds left
}

// binaryStep sends r with the codec, checks that the codec accepts the
// reply and that its status is want, and returns the reply's extras and
// value.
func binaryStep(t *testing.T, c net.Conn, br *bufio.Reader, r request, want uint16) (extras, value []byte) {
	t.Helper()
	if _, err := c.Write((binaryCodec{}).encode(nil, &r)); err != nil {
		t.Fatal(err)
	}
	var raw [binHeaderLen]byte
	if _, err := io.ReadFull(br, raw[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(raw[8:]))
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatal(err)
	}
	failed, err := (binaryCodec{}).read(bufio.NewReader(bytes.NewReader(append(raw[:], body...))), &r)
	st := binary.BigEndian.Uint16(raw[6:])
	if err != nil || failed || st != want {
		t.Fatalf("%s %s: status %#x, failed %v, %v; want status %#x (reply % x)", r.kind, r.key, st, failed, err, want, append(raw[:], body...))
	}
	ext := int(raw[4])
	return body[:ext], body[ext+int(binary.BigEndian.Uint16(raw[2:])):]
}

// checkBinaryAgainst runs a session's life over the binary protocol at
// addr and reads every write back with inspect, so that a wrong byte in a
// key, value, flags or expiration shows.
func checkBinaryAgainst(t *testing.T, addr string, inspect func(key []byte) (item, bool)) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	key := SessionKey("memcache-binary", int(time.Now().UnixNano()%1e9))
	lock := append(append([]byte{}, key...), ".lock"...)
	id := uint32(100)
	step := func(kind Kind, k []byte, value string, ttl int, want uint16) (extras, v []byte) {
		id++
		return binaryStep(t, c, br, request{kind: kind, key: k, value: []byte(value), ttl: ttl, id: id}, want)
	}
	expect := func(k []byte, want item) {
		t.Helper()
		got, ok := inspect(k)
		if !ok || got.value != want.value || got.flags != want.flags || got.ttl > want.ttl || got.ttl < want.ttl-5 {
			t.Fatalf("%s holds %+v (found %v), want %+v", k, got, ok, want)
		}
	}
	missing := func(k []byte) {
		t.Helper()
		if got, ok := inspect(k); ok {
			t.Fatalf("%s holds %+v, want nothing", k, got)
		}
	}

	step(OpGet, key, "", 0, binNotFound)
	step(OpSetNX, key, "World", 7200, binOK)
	expect(key, item{"World", 0, 7200})
	step(OpSetNX, key, "again", 7200, binExists)
	step(OpSet, key, "Hello, World", 3600, binOK)
	expect(key, item{"Hello, World", 0, 3600})
	extras, value := step(OpGet, key, "", 0, binOK)
	if !bytes.Equal(extras, []byte{0, 0, 0, 0}) || string(value) != "Hello, World" {
		t.Fatalf("get: extras % x, value %q", extras, value)
	}
	step(OpExpire, key, "", 60, binOK)
	expect(key, item{"Hello, World", 0, 60})
	step(OpLock, lock, "1", 30, binOK)
	expect(lock, item{"1", 0, 30})
	step(OpLock, lock, "1", 30, binExists)
	step(OpDel, lock, "", 0, binOK)
	missing(lock)
	step(OpDel, lock, "", 0, binNotFound)
	step(OpExpire, lock, "", 60, binNotFound)
	step(OpDel, key, "", 0, binOK)
	step(OpGet, key, "", 0, binNotFound)
	missing(key)
}

// ask sends one text request on a new connection and returns the reply's
// first line and the reader, for whatever follows.
func ask(t *testing.T, addr, request string) (string, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("%q: %v", request, err)
	}
	return strings.TrimSuffix(line, "\r\n"), br
}

// readValue reads a text reply's n-byte data block.
func readValue(t *testing.T, br *bufio.Reader, n string) string {
	t.Helper()
	size, err := strconv.Atoi(n)
	if err != nil {
		t.Fatalf("value length %q", n)
	}
	b := make([]byte, size+2)
	if _, err := io.ReadFull(br, b); err != nil {
		t.Fatal(err)
	}
	return string(b[:size])
}

// TestBinaryCodecAgainstMemcached checks the binary client against
// memcached itself, reading every write back with the meta command mg,
// which reports value, flags and remaining TTL.
func TestBinaryCodecAgainstMemcached(t *testing.T) {
	bin := transcript.Reference(t, "memcached", "memcached", false)
	if bin == "" {
		t.Skip("no memcached")
	}
	port := transcript.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	transcript.StartServer(t, addr, bin, args...)
	checkBinaryAgainst(t, addr, func(key []byte) (item, bool) {
		// "VA <len> t<ttl> f<flags>" and the value, or "EN" on a miss.
		line, br := ask(t, addr, fmt.Sprintf("mg %s t f v\r\n", key))
		f := strings.Fields(line)
		if line == "EN" {
			return item{}, false
		}
		if len(f) != 4 || f[0] != "VA" || f[2][0] != 't' || f[3][0] != 'f' {
			t.Fatalf("mg: %q", line)
		}
		ttl, err1 := strconv.Atoi(f[2][1:])
		flags, err2 := strconv.Atoi(f[3][1:])
		if err1 != nil || err2 != nil {
			t.Fatalf("mg: %q", line)
		}
		return item{value: readValue(t, br, f[1]), flags: flags, ttl: ttl}, true
	})
}

// TestBinaryCodecAgainstHatcheck checks the same against hatcheck, reading
// value and flags back with a text get and the TTL with the Redis TTL
// command (both protocols serve one keyspace).
func TestBinaryCodecAgainstHatcheck(t *testing.T) {
	s := servertest.Start(t)
	checkBinaryAgainst(t, s.MemcacheAddr(), func(key []byte) (item, bool) {
		line, br := ask(t, s.MemcacheAddr(), fmt.Sprintf("get %s\r\n", key))
		if line == "END" {
			return item{}, false
		}
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "VALUE" || f[1] != string(key) {
			t.Fatalf("get: %q", line)
		}
		flags, err := strconv.Atoi(f[2])
		if err != nil {
			t.Fatalf("get: %q", line)
		}
		it := item{value: readValue(t, br, f[3]), flags: flags}
		ttl, _ := ask(t, s.RedisAddr(), fmt.Sprintf("*2\r\n$3\r\nTTL\r\n$%d\r\n%s\r\n", len(key), key))
		if it.ttl, err = strconv.Atoi(strings.TrimPrefix(ttl, ":")); err != nil {
			t.Fatalf("TTL: %q", ttl)
		}
		return it, true
	})
}

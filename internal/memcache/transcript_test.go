package memcache_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/memcache"
	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/transcript"
)

// Golden transcripts (file format in package transcript): each
// testdata/transcripts/NAME.txt lists requests; NAME.golden holds the
// replies memcached 1.6 gave to each, recorded with
//
//	go test ./internal/memcache -run TestTranscripts -update
//
// (which needs memcached on PATH). The test replays every transcript
// against hatcheck and, where memcached is installed, against memcached
// too, and compares byte for byte.
//
// Directives: "#! binary" makes it a binary-protocol transcript;
// "#! max-item-size N" starts both servers with that item size limit.
//
// Text transcripts: a line is a request, Go escapes allowed ("set k 0 0 5\r\nhello"),
// sent with "\r\n" appended; "send "..."" sends Go-quoted bytes as they are.
//
// Binary transcripts: a line is "<op> field=value ...", op a name from
// binOps or 0xNN; fields key, value (Go escapes allowed), extras (hex),
// cas, opaque, and flags/exp/delta/initial, from which the extras the op
// takes are built. "send "..."" sends a hand-made frame.
//
// In both, "raw "..."" sends bytes that must make the server close the
// connection: the reply is what came before the close.
//
// After each request the player sends a marker request ("version", or a
// binary NOOP with opaque 0xfffffff0) and reads up to its reply, so that a
// missing reply (noreply, quiet commands) is recorded as such. CAS values
// differ between servers, so replies show them as $1, $2 … in order of
// first appearance, and a request may name one the same way (cas=$1,
// "cas k 0 0 1 $1").
var update = flag.Bool("update", false, "re-record golden transcripts from memcached")

func TestTranscripts(t *testing.T) {
	memcached := transcript.Reference(t, "memcached", "memcached", *update)
	// Requests are built at play time, when the CAS values they name are
	// known; loading keeps the lines.
	keep := func(l string) ([]byte, error) { return []byte(l), nil }
	hatcheck := func(t *testing.T, f transcript.File) [][]byte {
		srv := servertest.Start(t, func(c *servertest.Config) { c.MaxItemSize = config.Size(itemSize(t, f)) })
		return play(t, srv.MemcacheAddr(), isBinary(f), f.Steps)
	}
	var reference transcript.Player
	if memcached != "" {
		reference = func(t *testing.T, f transcript.File) [][]byte {
			return play(t, startMemcached(t, memcached, itemSize(t, f)), isBinary(f), f.Steps)
		}
	}
	transcript.Run(t, *update, keep, hatcheck, reference)
}

func isBinary(f transcript.File) bool { _, ok := f.Directives["binary"]; return ok }

// itemSize is the transcript's max-item-size directive, else memcached's 1 MB.
func itemSize(t *testing.T, f transcript.File) int {
	v := f.Directives["max-item-size"]
	if v == "" {
		return 1 << 20
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("max-item-size: %v", err)
	}
	return n
}

// casVars numbers the CAS values a server gave, in order of appearance.
type casVars struct {
	byValue map[uint64]int
	values  []uint64
}

func (v *casVars) name(cas uint64) string {
	if cas == 0 {
		return "0"
	}
	if v.byValue == nil {
		v.byValue = map[uint64]int{}
	}
	n, ok := v.byValue[cas]
	if !ok {
		v.values = append(v.values, cas)
		n = len(v.values)
		v.byValue[cas] = n
	}
	return "$" + strconv.Itoa(n)
}

// value resolves "$n" or a number.
func (v *casVars) value(s string) (uint64, error) {
	if strings.HasPrefix(s, "$") {
		n, err := strconv.Atoi(s[1:])
		if err != nil || n < 1 {
			return 0, fmt.Errorf("bad CAS variable %q", s)
		}
		if n > len(v.values) {
			return 1 << 62, nil // not seen (yet): a value no item has
		}
		return v.values[n-1], nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// encode builds a request followed by the marker request.
func encode(line string, bin bool, vars casVars) ([]byte, error) {
	if bin {
		b, err := encodeBinary(line, vars)
		return append(b, binMarker...), err
	}
	b, err := encodeText(line, vars)
	return append(b, textMarker...), err
}

var casVar = regexp.MustCompile(`\$[0-9]+`)

func encodeText(line string, vars casVars) ([]byte, error) {
	if q, ok := strings.CutPrefix(line, "send "); ok {
		s, err := strconv.Unquote(q)
		return []byte(s), err
	}
	var err error
	line = casVar.ReplaceAllStringFunc(line, func(s string) string {
		v, verr := vars.value(s)
		if verr != nil {
			err = verr
		}
		return strconv.FormatUint(v, 10)
	})
	if err != nil {
		return nil, err
	}
	s, err := strconv.Unquote(`"` + strings.ReplaceAll(line, `"`, `\"`) + `"`)
	if err != nil {
		return nil, err
	}
	return []byte(s + "\r\n"), nil
}

var binOps = map[string]byte{
	"get": 0x00, "set": 0x01, "add": 0x02, "replace": 0x03, "delete": 0x04, "incr": 0x05, "decr": 0x06,
	"quit": 0x07, "flush": 0x08, "getq": 0x09, "noop": 0x0a, "version": 0x0b, "getk": 0x0c, "getkq": 0x0d,
	"append": 0x0e, "prepend": 0x0f, "stat": 0x10, "setq": 0x11, "addq": 0x12, "replaceq": 0x13,
	"deleteq": 0x14, "incrq": 0x15, "decrq": 0x16, "quitq": 0x17, "flushq": 0x18, "appendq": 0x19,
	"prependq": 0x1a, "verbosity": 0x1b, "touch": 0x1c, "gat": 0x1d, "gatq": 0x1e,
	"sasl_list": 0x20, "sasl_auth": 0x21, "sasl_step": 0x22, "gatk": 0x23, "gatkq": 0x24,
}

func binOpName(op byte) string {
	for n, o := range binOps {
		if o == op {
			return n
		}
	}
	return fmt.Sprintf("0x%02x", op)
}

// encodeBinary builds one binary request from "<op> field=value ...".
func encodeBinary(line string, vars casVars) ([]byte, error) {
	if q, ok := strings.CutPrefix(line, "send "); ok {
		s, err := strconv.Unquote(q)
		return []byte(s), err
	}
	fields := strings.Fields(line)
	op, ok := binOps[fields[0]]
	if !ok {
		n, err := strconv.ParseUint(fields[0], 0, 8)
		if err != nil {
			return nil, fmt.Errorf("unknown op %q", fields[0])
		}
		op = byte(n)
	}
	var key, value, extras []byte
	var cas uint64
	var opaque uint32
	num := map[string]uint64{}
	for _, f := range fields[1:] {
		name, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("field %q: want name=value", f)
		}
		switch name {
		case "key", "value":
			s, err := strconv.Unquote(`"` + v + `"`)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if name == "key" {
				key = []byte(s)
			} else {
				value = []byte(s)
			}
		case "extras":
			b, err := hex.DecodeString(v)
			if err != nil {
				return nil, err
			}
			extras = b
		case "cas":
			c, err := vars.value(v)
			if err != nil {
				return nil, err
			}
			cas = c
		case "opaque", "flags", "exp", "delta", "initial":
			n, err := strconv.ParseUint(v, 0, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if name == "opaque" {
				opaque = uint32(n)
			} else {
				num[name] = n
			}
		default:
			return nil, fmt.Errorf("unknown field %q", name)
		}
	}
	if extras == nil && len(num) > 0 {
		switch fields[0] {
		case "set", "setq", "add", "addq", "replace", "replaceq":
			extras = binary.BigEndian.AppendUint32(extras, uint32(num["flags"]))
			extras = binary.BigEndian.AppendUint32(extras, uint32(num["exp"]))
		case "incr", "incrq", "decr", "decrq":
			extras = binary.BigEndian.AppendUint64(extras, num["delta"])
			extras = binary.BigEndian.AppendUint64(extras, num["initial"])
			extras = binary.BigEndian.AppendUint32(extras, uint32(num["exp"]))
		default:
			extras = binary.BigEndian.AppendUint32(extras, uint32(num["exp"]))
		}
	}
	return binRequest(op, key, extras, value, cas, opaque), nil
}

func binRequest(op byte, key, extras, value []byte, cas uint64, opaque uint32) []byte {
	h := make([]byte, 24, 24+len(extras)+len(key)+len(value))
	h[0] = 0x80
	h[1] = op
	binary.BigEndian.PutUint16(h[2:], uint16(len(key)))
	h[4] = byte(len(extras))
	binary.BigEndian.PutUint32(h[8:], uint32(len(extras)+len(key)+len(value)))
	binary.BigEndian.PutUint32(h[12:], opaque)
	binary.BigEndian.PutUint64(h[16:], cas)
	return append(append(append(h, extras...), key...), value...)
}

const markerOpaque = 0xfffffff0

var (
	textMarker  = []byte("version\r\n")
	textMarkerR = []byte("VERSION " + memcache.Version + "\r\n")
	binMarker   = binRequest(0x0a, nil, nil, nil, 0, markerOpaque)
)

// play sends each step on one connection and returns each reply in its
// golden form.
func play(t *testing.T, addr string, bin bool, steps []transcript.Step) [][]byte {
	t.Helper()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := dial()
	defer func() { c.Close() }()
	vars := &casVars{}
	out := make([][]byte, len(steps))
	var pending []byte // bytes read past the last reply
	var err error
	for i, s := range steps {
		if s.Reconnect {
			c.Close()
			c, pending = dial(), nil
			continue
		}
		if s.Req == nil {
			time.Sleep(s.Wait)
			continue
		}
		var req []byte
		switch {
		case s.Raw:
			req = s.Req
		default:
			req, err = encode(s.Line, bin, *vars)
		}
		if err != nil {
			t.Fatalf("%s: %v", s.Line, err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(req); err != nil {
			out[i] = []byte("(closed)")
			continue
		}
		var reply []byte
		var closed bool
		reply, pending, closed, err = readReply(c, pending, bin, s.Raw)
		if err != nil {
			t.Fatalf("%s: reading reply: %v", s.Line, err)
		}
		switch {
		case bin:
			out[i] = formatBinary(t, reply, vars)
		default:
			out[i] = normalizeText(reply, vars)
		}
		if closed {
			out[i] = append(out[i], "(closed)"...)
		}
	}
	return out
}

// readReply reads up to the marker's reply (or, for a raw step, up to the
// close) and returns what came before it.
func readReply(c net.Conn, buf []byte, bin, raw bool) (reply, rest []byte, closed bool, err error) {
	chunk := make([]byte, 64*1024)
	for {
		if !raw {
			if end, next, ok := findMarker(buf, bin); ok {
				return buf[:end], buf[next:], false, nil
			}
		}
		n, err := c.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				return buf, nil, true, nil
			}
			return nil, nil, false, fmt.Errorf("%w (have %q)", err, buf)
		}
	}
}

// findMarker finds the marker's reply in buf: where it starts and ends.
func findMarker(buf []byte, bin bool) (start, end int, ok bool) {
	if !bin {
		// Nothing follows the marker's reply, and a "version" step's own
		// reply comes before it.
		i := bytes.LastIndex(buf, textMarkerR)
		return i, len(buf), i >= 0 && i+len(textMarkerR) == len(buf)
	}
	for p := 0; p+24 <= len(buf); {
		body := int(binary.BigEndian.Uint32(buf[p+8:]))
		if p+24+body > len(buf) {
			return 0, 0, false
		}
		if buf[p+1] == 0x0a && binary.BigEndian.Uint32(buf[p+12:]) == markerOpaque {
			return p, p + 24 + body, true
		}
		p += 24 + body
	}
	return 0, 0, false
}

// metaCodes are the reply codes of the meta commands.
var metaCodes = map[string]bool{"VA": true, "HD": true, "EN": true, "NS": true, "EX": true, "NF": true, "MN": true}

// normalizeText replaces the CAS values of VALUE lines and of meta
// replies' c flags with their names.
func normalizeText(b []byte, vars *casVars) []byte {
	var out []byte
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			return append(out, b...)
		}
		line := b[:i+2]
		b = b[i+2:]
		f := strings.Fields(string(line))
		if len(f) >= 1 && metaCodes[f[0]] {
			// Meta replies: a c flag carries a CAS value; a VA line a
			// data block.
			for j, tok := range f[1:] {
				if cas, err := strconv.ParseUint(strings.TrimPrefix(tok, "c"), 10, 64); err == nil && tok[0] == 'c' {
					f[j+1] = "c" + vars.name(cas)
				}
			}
			line = []byte(strings.Join(f, " ") + "\r\n")
			if f[0] == "VA" && len(f) >= 2 {
				if n, err := strconv.Atoi(f[1]); err == nil && n+2 <= len(b) {
					line = append(line, b[:n+2]...)
					b = b[n+2:]
				}
			}
		}
		if len(f) >= 4 && f[0] == "VALUE" {
			if len(f) == 5 {
				if cas, err := strconv.ParseUint(f[4], 10, 64); err == nil {
					line = []byte(strings.Join(append(f[:4], vars.name(cas)), " ") + "\r\n")
				}
			}
			if n, err := strconv.Atoi(f[3]); err == nil && n+2 <= len(b) {
				line = append(line, b[:n+2]...)
				b = b[n+2:]
			}
		}
		out = append(out, line...)
	}
	return out
}

// formatBinary renders binary responses one per line.
func formatBinary(t *testing.T, b []byte, vars *casVars) []byte {
	var out []byte
	for len(b) >= 24 {
		if b[0] != 0x81 {
			break
		}
		kl, el := int(binary.BigEndian.Uint16(b[2:])), int(b[4])
		bl := int(binary.BigEndian.Uint32(b[8:]))
		if 24+bl > len(b) || kl+el > bl {
			break
		}
		body := b[24 : 24+bl]
		out = fmt.Appendf(out, "%s status=0x%04x opaque=%d cas=%s", binOpName(b[1]), binary.BigEndian.Uint16(b[6:]),
			binary.BigEndian.Uint32(b[12:]), vars.name(binary.BigEndian.Uint64(b[16:])))
		if el > 0 {
			out = fmt.Appendf(out, " extras=%x", body[:el])
		}
		if kl > 0 {
			out = fmt.Appendf(out, " key=%q", body[el:el+kl])
		}
		if len(body) > el+kl {
			out = fmt.Appendf(out, " value=%q", body[el+kl:])
		}
		out = append(out, '\n')
		b = b[24+bl:]
	}
	if len(b) > 0 {
		out = fmt.Appendf(out, "undecoded %q\n", b)
	}
	return out
}

// startMemcached runs a throwaway memcached on a free loopback port.
func startMemcached(t *testing.T, bin string, itemSize int) string {
	t.Helper()
	port := transcript.FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-I", strconv.Itoa(itemSize)}
	if itemSize < 512<<10 {
		// memcached refuses an item size below its slab chunk size.
		args = append(args, "-o", "slab_chunk_max="+strconv.Itoa(itemSize))
	}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	transcript.StartServer(t, addr, bin, args...)
	return addr
}

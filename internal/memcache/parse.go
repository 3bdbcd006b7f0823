package memcache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// errIncomplete means more input is needed before a request can be parsed.
var errIncomplete = errors.New("memcache: incomplete request")

// errCloseConn means the input cannot be answered and the connection must
// close (memcached closes on a runaway line or a bad binary magic).
var errCloseConn = errors.New("memcache: closing connection")

// errHTTP is a request line that looks like HTTP: memcached closes the
// connection without sending the replies it still holds for the requests
// before it in the same read.
var errHTTP = fmt.Errorf("%w: an HTTP request", errCloseConn)

const (
	maxKeyLen = 250
	// maxLine is the longest command line memcached reads before giving up
	// on a client; multi-key get lines may be longer (maxGetLine).
	maxLine    = 2048
	maxGetLine = 1 << 20
)

// textReq is one parsed text request.
type textReq struct {
	cmd     string   // command name as sent
	args    [][]byte // tokens after the name
	data    []byte   // data block of a storage command
	noreply bool
	// errReply, when set, is sent instead of running the command; swallow
	// is how many bytes after the request to discard (an oversized value),
	// and dropKey a key to delete (the key of a refused set).
	errReply string
	swallow  int
	dropKey  []byte
	meta     metaFlags // ms's flags, parsed with its data block
}

var storageCmds = map[string]bool{"set": true, "add": true, "replace": true, "append": true, "prepend": true, "cas": true}

// textCmds interns the names of the text commands, so that parsing a known
// command allocates nothing for its name.
var textCmds = func() map[string]string {
	m := map[string]string{}
	for _, c := range []string{"get", "gets", "gat", "gats", "set", "add", "replace", "append", "prepend", "cas",
		"delete", "incr", "decr", "touch", "version", "verbosity", "flush_all", "stats", "quit",
		"mg", "ms", "md", "ma", "mn", "me"} {
		m[c] = c
	}
	return m
}()

// parseText parses one text request from the front of buf and returns it
// with the number of bytes it used. The request's tokens are appended to
// toks[:0], so a connection that passes the same slice every time parses
// without allocating; they are valid until the next call.
func parseText(buf []byte, maxItem int, toks [][]byte) (textReq, int, error) {
	limit := maxLine
	if isGetLine(buf) {
		limit = maxGetLine
	}
	// A line longer than the limit closes the connection whether or not
	// its end has arrived yet, so the outcome does not depend on how the
	// input was split into reads.
	i := bytes.IndexByte(buf[:min(len(buf), limit+1)], '\n')
	if i < 0 {
		if len(buf) > limit {
			return textReq{}, 0, errCloseConn
		}
		return textReq{}, 0, errIncomplete
	}
	line := buf[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	n := i + 1
	toks = toks[:0]
	for t := range bytes.FieldsSeq(line) {
		toks = append(toks, t)
	}
	if len(toks) == 0 {
		return textReq{errReply: "ERROR"}, n, nil
	}
	name, ok := textCmds[string(toks[0])]
	if !ok {
		if looksLikeHTTP(toks) {
			return textReq{}, 0, errHTTP
		}
		name = string(toks[0])
	}
	r := textReq{cmd: name, args: toks[1:]}
	if r.cmd == "ms" {
		return parseMetaSet(buf, n, r, maxItem)
	}
	if !storageCmds[r.cmd] {
		return r, n, nil
	}
	// <cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply]
	want := 4
	if r.cmd == "cas" {
		want = 5
	}
	if len(r.args) < want || len(r.args) > want+1 {
		return textReq{errReply: "ERROR"}, n, nil
	}
	size, err := strconv.ParseInt(string(r.args[3]), 10, 32)
	if err != nil || size < 0 || !validKey(r.args[0]) || !isUint64(r.args[1]) || !isInt(r.args[2]) ||
		(r.cmd == "cas" && !isUint64(r.args[4])) {
		return textReq{errReply: "CLIENT_ERROR bad command line format"}, n, nil
	}
	r.noreply = len(r.args) == want+1 && string(r.args[want]) == "noreply"
	if int(size) > maxItem {
		tl := textReq{errReply: "SERVER_ERROR object too large for cache", swallow: int(size) + 2, noreply: r.noreply}
		if r.cmd == "set" {
			tl.dropKey = r.args[0]
		}
		return tl, n, nil
	}
	end := n + int(size)
	if len(buf) < end+2 {
		return textReq{}, 0, errIncomplete
	}
	if buf[end] != '\r' || buf[end+1] != '\n' {
		return textReq{errReply: "CLIENT_ERROR bad data chunk"}, end + 2, nil
	}
	r.data = buf[n:end]
	return r, end + 2, nil
}

// parseMetaSet parses "ms <key> <datalen> <flags>*" and its data block,
// whose line ends at n, checking in memcached's order: an error found
// before the data length is known is answered at once; one found after it
// swallows the data block first. A data length that does not fit a signed
// 32-bit integer is refused, as for set (see parseText).
func parseMetaSet(buf []byte, n int, r textReq, maxItem int) (textReq, int, error) {
	bad := textReq{errReply: "CLIENT_ERROR bad command line format"}
	switch a := r.args; {
	case len(a) == 0:
		return textReq{errReply: "ERROR"}, n, nil
	case !metaKeyOK(a[0]) || len(a) == 1:
		return bad, n, nil
	case len(a)+2 > maxMetaTokens:
		return textReq{errReply: "CLIENT_ERROR options flags too long"}, n, nil
	}
	size, err := strconv.ParseInt(string(r.args[1]), 10, 32)
	if err != nil || size < 0 || size > math.MaxInt32-2 {
		return bad, n, nil
	}
	f, errstr := parseMetaFlags(r.args[0], r.args[2:])
	if errstr == "" {
		errstr = metaSetCheck(&f)
	}
	if errstr != "" {
		return textReq{errReply: errstr, swallow: int(size) + 2}, n, nil
	}
	if int(size) > maxItem {
		// memcached drops the old value whatever the mode.
		return textReq{errReply: "SERVER_ERROR object too large for cache", swallow: int(size) + 2, dropKey: f.key}, n, nil
	}
	end := n + int(size)
	if len(buf) < end+2 {
		return textReq{}, 0, errIncomplete
	}
	if buf[end] != '\r' || buf[end+1] != '\n' {
		return textReq{errReply: "CLIENT_ERROR bad data chunk"}, end + 2, nil
	}
	r.data, r.meta = buf[n:end], f
	return r, end + 2, nil
}

// looksLikeHTTP reports whether memcached would close the connection on
// this request line, as it does for one that looks like HTTP: a command
// its dispatch does not know (not a two-letter m command, not one starting
// with g s a c i d or t, none of its other names) whose last token — of
// the first 23, which is all memcached's tokenizer splits — starts with
// "HTTP/". "GET / HTTP/1.0", "PUT /x HTTP/1.1" and "DELETE HTTP/1.1" close;
// "get / HTTP/1.0" is a get.
func looksLikeHTTP(toks [][]byte) bool {
	name := toks[0]
	if len(name) < 2 || (name[0] == 'm' && len(name) == 2) || bytes.IndexByte([]byte("gsacidt"), name[0]) >= 0 {
		return false
	}
	switch string(name) {
	case "replace", "prepend", "bget", "flush_all", "version", "quit", "lru_crawler", "watch", "verbosity", "lru":
		return false
	}
	return bytes.HasPrefix(toks[min(len(toks), 23)-1], []byte("HTTP/"))
}

func isGetLine(b []byte) bool {
	for _, p := range []string{"get ", "gets ", "gat ", "gats "} {
		if bytes.HasPrefix(b, []byte(p)) {
			return true
		}
	}
	return false
}

// validKey: 1..250 bytes, no whitespace or control characters.
func validKey(k []byte) bool {
	if len(k) == 0 || len(k) > maxKeyLen {
		return false
	}
	for _, c := range k {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

func isUint64(b []byte) bool { _, err := strconv.ParseUint(string(b), 10, 64); return err == nil }
func isInt(b []byte) bool    { _, err := strconv.ParseInt(string(b), 10, 64); return err == nil }

// Binary protocol framing.
const (
	magicRequest  = 0x80
	magicResponse = 0x81
	headerLen     = 24
)

// binReq is one binary request.
type binReq struct {
	op      byte
	opaque  uint32
	cas     uint64
	extras  []byte
	key     []byte
	value   []byte
	bodyLen int
}

// parseBinary parses one binary request from the front of buf. A body
// longer than maxBody is not buffered: the caller answers it and discards
// the value as it arrives (tooLarge is true, n covers the header, extras
// and key).
func parseBinary(buf []byte, maxBody int) (r binReq, n int, tooLarge bool, err error) {
	if len(buf) < headerLen {
		if len(buf) > 0 && buf[0] != magicRequest {
			return r, 0, false, errCloseConn
		}
		return r, 0, false, errIncomplete
	}
	if buf[0] != magicRequest {
		return r, 0, false, errCloseConn
	}
	r.op = buf[1]
	keyLen := int(binary.BigEndian.Uint16(buf[2:4]))
	extLen := int(buf[4])
	r.bodyLen = int(binary.BigEndian.Uint32(buf[8:12]))
	r.opaque = binary.BigEndian.Uint32(buf[12:16])
	r.cas = binary.BigEndian.Uint64(buf[16:24])
	if keyLen+extLen > r.bodyLen {
		return r, 0, false, errCloseConn
	}
	if r.bodyLen > maxBody {
		// The extras and key are small; wait for them so that the caller
		// knows which key the refused request named.
		n = headerLen + extLen + keyLen
		if len(buf) < n {
			return r, 0, false, errIncomplete
		}
		r.extras = buf[headerLen : headerLen+extLen]
		r.key = buf[headerLen+extLen : n]
		return r, n, true, nil
	}
	if len(buf) < headerLen+r.bodyLen {
		return r, 0, false, errIncomplete
	}
	body := buf[headerLen : headerLen+r.bodyLen]
	r.extras = body[:extLen]
	r.key = body[extLen : extLen+keyLen]
	r.value = body[extLen+keyLen:]
	return r, headerLen + r.bodyLen, false, nil
}

// appendBinResponse appends a response header and body.
func appendBinResponse(dst []byte, op byte, status uint16, opaque uint32, cas uint64, extras, key, value []byte) []byte {
	var h [headerLen]byte
	h[0] = magicResponse
	h[1] = op
	binary.BigEndian.PutUint16(h[2:4], uint16(len(key)))
	h[4] = byte(len(extras))
	binary.BigEndian.PutUint16(h[6:8], status)
	binary.BigEndian.PutUint32(h[8:12], uint32(len(extras)+len(key)+len(value)))
	binary.BigEndian.PutUint32(h[12:16], opaque)
	binary.BigEndian.PutUint64(h[16:24], cas)
	dst = append(dst, h[:]...)
	dst = append(dst, extras...)
	dst = append(dst, key...)
	return append(dst, value...)
}

package bench

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Kind is one request type of a session workload.
type Kind uint8

// The request types. Each protocol encodes them its own way.
const (
	OpGet    Kind = iota // GET k / get k
	OpSet                // SET k v EX ttl / set k 0 ttl
	OpSetNX              // SET k v NX EX ttl / add k 0 ttl
	OpLock               // SET k v NX PX ms / add k 0 ttl (a lock)
	OpExpire             // EXPIRE k ttl / touch k ttl
	OpDel                // DEL k / delete k
	numKinds
)

var kindNames = [numKinds]string{"get", "set", "setnx", "lock", "expire", "del"}

func (k Kind) String() string { return kindNames[k] }

// request is one operation to send.
type request struct {
	kind  Kind
	key   []byte
	value []byte
	ttl   int    // seconds (ms for OpLock over Redis)
	id    uint32 // sent as the binary protocol's opaque, which the reply must echo
}

// codec encodes requests and reads their replies for one protocol. A reply
// that is an expected outcome (a miss, a refused NX) is not an error.
type codec interface {
	encode(dst []byte, r *request) []byte
	// read reads the reply to r; failed reports a server error reply.
	read(br *bufio.Reader, r *request) (failed bool, err error)
}

func newCodec(protocol string) (codec, error) {
	switch protocol {
	case "redis":
		return redisCodec{}, nil
	case "memcache-text":
		return textCodec{}, nil
	case "memcache-binary":
		return binaryCodec{}, nil
	}
	return nil, fmt.Errorf("unknown protocol %q (want redis, memcache-text or memcache-binary)", protocol)
}

// --- Redis (RESP2) ---

type redisCodec struct{}

func appendBulk(dst, b []byte) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

func appendCommand(dst []byte, args ...[]byte) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = appendBulk(dst, a)
	}
	return dst
}

var (
	bGET, bSET, bEX, bPX, bNX = []byte("GET"), []byte("SET"), []byte("EX"), []byte("PX"), []byte("NX")
	bEXPIRE, bDEL             = []byte("EXPIRE"), []byte("DEL")
)

func (redisCodec) encode(dst []byte, r *request) []byte {
	ttl := strconv.AppendInt(nil, int64(r.ttl), 10)
	switch r.kind {
	case OpGet:
		return appendCommand(dst, bGET, r.key)
	case OpSet:
		return appendCommand(dst, bSET, r.key, r.value, bEX, ttl)
	case OpSetNX:
		return appendCommand(dst, bSET, r.key, r.value, bNX, bEX, ttl)
	case OpLock:
		return appendCommand(dst, bSET, r.key, r.value, bNX, bPX, ttl)
	case OpExpire:
		return appendCommand(dst, bEXPIRE, r.key, ttl)
	case OpDel:
		return appendCommand(dst, bDEL, r.key)
	}
	panic("unknown request kind")
}

func (redisCodec) read(br *bufio.Reader, _ *request) (bool, error) {
	return readRESP(br)
}

// readRESP reads and discards one RESP2 reply, reporting error replies.
func readRESP(br *bufio.Reader) (bool, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	if len(line) < 3 {
		return false, fmt.Errorf("malformed reply %q", line)
	}
	switch line[0] {
	case '+', ':':
		return false, nil
	case '-':
		return true, nil
	case '$':
		n, err := strconv.Atoi(string(line[1 : len(line)-2]))
		if err != nil {
			return false, err
		}
		if n >= 0 {
			_, err = br.Discard(n + 2)
		}
		return false, err
	case '*':
		n, err := strconv.Atoi(string(line[1 : len(line)-2]))
		if err != nil {
			return false, err
		}
		failed := false
		for i := 0; i < n; i++ {
			f, err := readRESP(br)
			if err != nil {
				return false, err
			}
			failed = failed || f
		}
		return failed, nil
	}
	return false, fmt.Errorf("unknown reply %q", line)
}

// --- memcached text ---

type textCodec struct{}

func (textCodec) encode(dst []byte, r *request) []byte {
	store := func(cmd string) []byte {
		dst = append(dst, cmd...)
		dst = append(dst, ' ')
		dst = append(dst, r.key...)
		dst = append(dst, " 0 "...)
		dst = strconv.AppendInt(dst, int64(r.ttl), 10)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(len(r.value)), 10)
		dst = append(dst, '\r', '\n')
		dst = append(dst, r.value...)
		return append(dst, '\r', '\n')
	}
	switch r.kind {
	case OpGet:
		dst = append(dst, "get "...)
	case OpSet:
		return store("set")
	case OpSetNX, OpLock:
		return store("add")
	case OpExpire:
		dst = append(dst, "touch "...)
		dst = append(dst, r.key...)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(r.ttl), 10)
		return append(dst, '\r', '\n')
	case OpDel:
		dst = append(dst, "delete "...)
	}
	dst = append(dst, r.key...)
	return append(dst, '\r', '\n')
}

func (textCodec) read(br *bufio.Reader, r *request) (bool, error) {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return false, err
		}
		s := string(line)
		switch {
		case strings.HasPrefix(s, "VALUE "):
			f := strings.Fields(s)
			if len(f) < 4 {
				return false, fmt.Errorf("malformed %q", s)
			}
			n, err := strconv.Atoi(f[3])
			if err != nil {
				return false, err
			}
			if _, err := br.Discard(n + 2); err != nil {
				return false, err
			}
			continue // END follows
		case strings.HasPrefix(s, "ERROR"), strings.HasPrefix(s, "CLIENT_ERROR"), strings.HasPrefix(s, "SERVER_ERROR"):
			return true, nil
		}
		return false, nil // END, STORED, NOT_STORED, EXISTS, NOT_FOUND, DELETED, TOUCHED
	}
}

// --- memcached binary ---

// binaryCodec speaks memcached's binary protocol as php-memcached does by
// default (libmemcached). Packet layout, opcodes and statuses are those of
// memcached's protocol_binary.h and doc/protocol-binary.txt: a 24-byte
// header (magic, opcode, key length, extras length, data type, reserved or
// status, total body length, opaque, CAS), then extras, key and value.
// Every request carries its id as the opaque, and a reply must echo the
// request's opcode and opaque: anything else means the stream is out of
// step, which is an error, not a failed request.
type binaryCodec struct{}

// Magic bytes, opcodes and statuses of the binary protocol.
const (
	binRequest  = 0x80
	binResponse = 0x81

	binGet    = 0x00
	binSet    = 0x01
	binAdd    = 0x02
	binDelete = 0x04
	binTouch  = 0x1c

	binOK        = 0x0000
	binNotFound  = 0x0001 // KEY_ENOENT
	binExists    = 0x0002 // KEY_EEXISTS: add on a key that exists
	binHeaderLen = 24
)

// binaryOpcode is the opcode that carries a request kind.
func binaryOpcode(k Kind) byte {
	switch k {
	case OpGet:
		return binGet
	case OpSet:
		return binSet
	case OpSetNX, OpLock:
		return binAdd
	case OpExpire:
		return binTouch
	case OpDel:
		return binDelete
	}
	panic("unknown request kind")
}

func (binaryCodec) encode(dst []byte, r *request) []byte {
	op := binaryOpcode(r.kind)
	extras, value := 0, []byte(nil)
	switch op {
	case binSet, binAdd:
		extras, value = 8, r.value // flags, expiration
	case binTouch:
		extras = 4 // expiration
	}
	var h [binHeaderLen]byte
	h[0] = binRequest
	h[1] = op
	binary.BigEndian.PutUint16(h[2:], uint16(len(r.key)))
	h[4] = byte(extras)
	// h[5] data type and h[6:8] reserved stay 0.
	binary.BigEndian.PutUint32(h[8:], uint32(extras+len(r.key)+len(value)))
	binary.BigEndian.PutUint32(h[12:], r.id)
	// h[16:24] CAS stays 0: store unconditionally.
	dst = append(dst, h[:]...)
	switch extras {
	case 8:
		dst = binary.BigEndian.AppendUint32(dst, 0) // flags: PHP's serialized session, as the handler stores it
		dst = binary.BigEndian.AppendUint32(dst, uint32(r.ttl))
	case 4:
		dst = binary.BigEndian.AppendUint32(dst, uint32(r.ttl))
	}
	dst = append(dst, r.key...)
	return append(dst, value...)
}

// binaryHeader is a response header's fields.
type binaryHeader struct {
	opcode    byte
	keyLen    int
	extrasLen int
	status    uint16
	bodyLen   int
	opaque    uint32
	cas       uint64
}

// readBinaryHeader reads a response header and checks that it is one and
// that its lengths agree; the body is left to read.
func readBinaryHeader(br *bufio.Reader) (binaryHeader, error) {
	var b [binHeaderLen]byte
	if _, err := io.ReadFull(br, b[:]); err != nil {
		return binaryHeader{}, err
	}
	if b[0] != binResponse {
		return binaryHeader{}, fmt.Errorf("binary reply: magic %#x, want %#x", b[0], binResponse)
	}
	// b[5], the data type, is always 0 (raw bytes).
	h := binaryHeader{opcode: b[1], keyLen: int(binary.BigEndian.Uint16(b[2:])), extrasLen: int(b[4]),
		status: binary.BigEndian.Uint16(b[6:]), bodyLen: int(binary.BigEndian.Uint32(b[8:])),
		opaque: binary.BigEndian.Uint32(b[12:]), cas: binary.BigEndian.Uint64(b[16:])}
	if h.extrasLen+h.keyLen > h.bodyLen {
		return h, fmt.Errorf("binary reply: extras %d + key %d > body %d", h.extrasLen, h.keyLen, h.bodyLen)
	}
	return h, nil
}

// read reads the reply to r and checks it: the opcode and opaque must be
// r's; a status the request can expect (a miss, an add on a taken key)
// is not a failure, any other non-zero status is.
func (binaryCodec) read(br *bufio.Reader, r *request) (bool, error) {
	h, err := readBinaryHeader(br)
	if err != nil {
		return false, err
	}
	if _, err := br.Discard(h.bodyLen); err != nil {
		return false, err
	}
	return checkBinary(h, r)
}

func checkBinary(h binaryHeader, r *request) (bool, error) {
	if op := binaryOpcode(r.kind); h.opcode != op {
		return false, fmt.Errorf("binary reply: opcode %#x to a request of opcode %#x", h.opcode, op)
	}
	if h.opaque != r.id {
		return false, fmt.Errorf("binary reply: opaque %d to request %d", h.opaque, r.id)
	}
	switch {
	case h.status == binOK:
		if r.kind == OpGet && h.extrasLen != 4 {
			return false, fmt.Errorf("binary get reply: %d bytes of extras, want 4 (flags)", h.extrasLen)
		}
		return false, nil
	case h.status == binNotFound && (r.kind == OpGet || r.kind == OpExpire || r.kind == OpDel):
		return false, nil
	case h.status == binExists && (r.kind == OpSetNX || r.kind == OpLock):
		return false, nil
	}
	return true, nil
}

package bench

import (
	"bufio"
	"encoding/binary"
	"errors"
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

type binaryCodec struct{}

const (
	binGet, binSet, binAdd, binDelete, binTouch = 0x00, 0x01, 0x02, 0x04, 0x1c
)

func (binaryCodec) encode(dst []byte, r *request) []byte {
	var op byte
	var extras []byte
	value := []byte(nil)
	switch r.kind {
	case OpGet:
		op = binGet
	case OpSet, OpSetNX, OpLock:
		op = binSet
		if r.kind != OpSet {
			op = binAdd
		}
		extras = binary.BigEndian.AppendUint32(make([]byte, 4, 8), uint32(r.ttl)) // flags 0, expiry
		value = r.value
	case OpExpire:
		op = binTouch
		extras = binary.BigEndian.AppendUint32(nil, uint32(r.ttl))
	case OpDel:
		op = binDelete
	}
	var h [24]byte
	h[0] = 0x80
	h[1] = op
	binary.BigEndian.PutUint16(h[2:], uint16(len(r.key)))
	h[4] = byte(len(extras))
	binary.BigEndian.PutUint32(h[8:], uint32(len(extras)+len(r.key)+len(value)))
	dst = append(dst, h[:]...)
	dst = append(dst, extras...)
	dst = append(dst, r.key...)
	return append(dst, value...)
}

func (binaryCodec) read(br *bufio.Reader, _ *request) (bool, error) {
	var h [24]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return false, err
	}
	if h[0] != 0x81 {
		return false, errors.New("not a binary response")
	}
	if _, err := br.Discard(int(binary.BigEndian.Uint32(h[8:]))); err != nil {
		return false, err
	}
	switch binary.BigEndian.Uint16(h[6:]) {
	case 0x00, 0x01, 0x02, 0x05: // ok, not found, exists, not stored
		return false, nil
	}
	return true, nil
}

// Package resp implements the Redis serialization protocol: a parser for
// client requests (the same in RESP2 and RESP3) that enforces size limits
// before allocating, and allocation-free Append* encoders for RESP2 and
// RESP3 replies.
//
// The parser is a pure function over bytes so that it can be fuzzed and fed
// input split at any position; the connection loop owns the buffer.
package resp

import (
	"bytes"
	"errors"
	"strconv"
)

// ErrIncomplete means the buffer holds only part of a request: read more
// bytes and call Parse again with the same (grown) buffer.
var ErrIncomplete = errors.New("resp: incomplete request")

// ProtocolError is a malformed or over-limit request. Its text is exactly
// what redis-server 7 sends after "-ERR "; the connection must be closed
// after replying, as redis-server does, because the stream cannot be resynced.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

// Limits bound what one request may claim. Zero values are not valid; use
// DefaultLimits and override fields.
type Limits struct {
	MaxMultibulk int   // elements in one request (redis: 1024*1024)
	MaxBulk      int64 // bytes in one argument (redis proto-max-bulk-len: 512 MB)
	MaxInline    int   // bytes in one inline command line (redis: 64 KB)
	// Unauthenticated clients are held to small frames so that a client
	// without the password cannot make the server allocate much (the fix
	// redis made for CVE-2021-32675).
	Unauthenticated bool
}

// DefaultLimits are redis-server 7.0's defaults.
func DefaultLimits() Limits {
	return Limits{MaxMultibulk: 1024 * 1024, MaxBulk: 512 * 1024 * 1024, MaxInline: 64 * 1024}
}

const (
	unauthMaxMultibulk = 10
	unauthMaxBulk      = 16384
)

// Parse reads one request from the front of buf. It returns the arguments
// (slices of buf, valid until buf is reused), the number of bytes consumed,
// and an error: ErrIncomplete when more input is needed, *ProtocolError when
// the input is malformed or over a limit. An empty inline line yields zero
// arguments and a positive n; callers skip it, as redis-server does.
func Parse(buf []byte, lim Limits, args [][]byte) ([][]byte, int, error) {
	args = args[:0]
	if len(buf) == 0 {
		return args, 0, ErrIncomplete
	}
	if buf[0] != '*' {
		return parseInline(buf, lim, args)
	}
	line, pos, ok := readLine(buf, 1)
	// A count line longer than an inline request is refused whether or not
	// its newline has arrived yet, so the outcome never depends on how the
	// input was split into reads.
	if (!ok && len(buf) > lim.MaxInline) || pos > lim.MaxInline {
		return args, 0, &ProtocolError{"too big mbulk count string"}
	}
	if !ok {
		return args, 0, ErrIncomplete
	}
	n, err := strconv.ParseInt(string(line), 10, 64)
	if err != nil || n > int64(lim.MaxMultibulk) {
		return args, 0, &ProtocolError{"invalid multibulk length"}
	}
	if lim.Unauthenticated && n > unauthMaxMultibulk {
		return args, 0, &ProtocolError{"unauthenticated multibulk length"}
	}
	if n <= 0 {
		// "*0" and "*-1" are empty requests that redis-server skips.
		return args, pos, nil
	}
	for i := int64(0); i < n; i++ {
		if pos >= len(buf) {
			return args, 0, ErrIncomplete
		}
		if buf[pos] != '$' {
			return args, 0, &ProtocolError{"expected '$', got '" + string(buf[pos]) + "'"}
		}
		line, next, ok := readLine(buf, pos+1)
		if (!ok && len(buf)-pos > lim.MaxInline) || next-pos > lim.MaxInline {
			return args, 0, &ProtocolError{"too big bulk count string"}
		}
		if !ok {
			return args, 0, ErrIncomplete
		}
		size, err := strconv.ParseInt(string(line), 10, 64)
		if err != nil || size < 0 || size > lim.MaxBulk {
			return args, 0, &ProtocolError{"invalid bulk length"}
		}
		if lim.Unauthenticated && size > unauthMaxBulk {
			return args, 0, &ProtocolError{"unauthenticated bulk length"}
		}
		end := int64(next) + size
		if end+2 > int64(len(buf)) {
			return args, 0, ErrIncomplete
		}
		if buf[end] != '\r' || buf[end+1] != '\n' {
			// redis-server reads the two bytes after the payload without
			// checking them; we refuse them, since anything else there means
			// the client and server disagree about framing.
			return args, 0, &ProtocolError{"invalid bulk length"}
		}
		args = append(args, buf[next:end:end])
		pos = int(end + 2)
	}
	return args, pos, nil
}

// readLine returns the bytes from start up to "\r\n" and the index after it.
func readLine(buf []byte, start int) ([]byte, int, bool) {
	i := bytes.IndexByte(buf[start:], '\n')
	if i < 0 {
		return nil, 0, false
	}
	end := start + i
	line := buf[start:end]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, end + 1, true
}

// parseInline splits a telnet-style line into arguments the way redis-server's
// sdssplitargs does: spaces separate, double quotes allow \n \r \t \b \a \\
// \" and \xHH escapes, single quotes allow only \'.
func parseInline(buf []byte, lim Limits, args [][]byte) ([][]byte, int, error) {
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		if len(buf) > lim.MaxInline {
			return args, 0, &ProtocolError{"too big inline request"}
		}
		return args, 0, ErrIncomplete
	}
	if i > lim.MaxInline {
		return args, 0, &ProtocolError{"too big inline request"}
	}
	line := buf[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	args, ok := SplitArgs(line, args)
	if !ok {
		return args[:0], 0, &ProtocolError{"unbalanced quotes in request"}
	}
	if lim.Unauthenticated && len(args) > unauthMaxMultibulk {
		return args[:0], 0, &ProtocolError{"unauthenticated multibulk length"}
	}
	return args, i + 1, nil
}

// SplitArgs splits an inline command line. It reports false on unbalanced
// quotes or a closing quote not followed by a space.
func SplitArgs(line []byte, args [][]byte) ([][]byte, bool) {
	p := 0
	for {
		for p < len(line) && isSpace(line[p]) {
			p++
		}
		if p >= len(line) {
			return args, true
		}
		var cur []byte
		inq, insq, done := false, false, false
		for !done {
			if inq {
				if p >= len(line) {
					return args, false
				}
				c := line[p]
				switch {
				case c == '\\' && p+3 < len(line) && line[p+1] == 'x' && isHex(line[p+2]) && isHex(line[p+3]):
					cur = append(cur, hexVal(line[p+2])<<4|hexVal(line[p+3]))
					p += 3
				case c == '\\' && p+1 < len(line):
					p++
					switch line[p] {
					case 'n':
						cur = append(cur, '\n')
					case 'r':
						cur = append(cur, '\r')
					case 't':
						cur = append(cur, '\t')
					case 'b':
						cur = append(cur, '\b')
					case 'a':
						cur = append(cur, '\a')
					default:
						cur = append(cur, line[p])
					}
				case c == '"':
					if p+1 < len(line) && !isSpace(line[p+1]) {
						return args, false
					}
					done = true
				default:
					cur = append(cur, c)
				}
			} else if insq {
				if p >= len(line) {
					return args, false
				}
				c := line[p]
				switch {
				case c == '\\' && p+1 < len(line) && line[p+1] == '\'':
					p++
					cur = append(cur, '\'')
				case c == '\'':
					if p+1 < len(line) && !isSpace(line[p+1]) {
						return args, false
					}
					done = true
				default:
					cur = append(cur, c)
				}
			} else {
				if p >= len(line) {
					break
				}
				switch c := line[p]; {
				case isSpace(c):
					done = true
				case c == '"':
					inq = true
				case c == '\'':
					insq = true
				default:
					cur = append(cur, c)
				}
			}
			if p < len(line) {
				p++
			}
		}
		if cur == nil {
			cur = []byte{}
		}
		args = append(args, cur)
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f'
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

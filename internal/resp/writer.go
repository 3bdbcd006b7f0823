package resp

import "strconv"

// The Append* functions encode one reply onto dst and return the extended
// slice, so that a connection can build a whole pipeline's replies in one
// buffer without allocating per reply. The RESP2 ones come first; the RESP3
// types hatcheck's replies use (null, map, set, push, verbatim string) follow,
// for connections that chose RESP3 with HELLO 3. Which one a reply uses is
// the connection's business: these functions know nothing of protocols.

// AppendSimple appends a status reply such as "+OK".
func AppendSimple(dst []byte, s string) []byte {
	dst = append(dst, '+')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendError appends an error reply. msg must already carry its code
// ("ERR ...", "WRONGTYPE ..."); line breaks are replaced by spaces, as
// redis-server does, so that an error can never break framing.
func AppendError(dst []byte, msg string) []byte {
	dst = append(dst, '-')
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, '\r', '\n')
}

// AppendInt appends an integer reply.
func AppendInt(dst []byte, n int64) []byte {
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\r', '\n')
}

// AppendBulk appends a bulk string reply.
func AppendBulk(dst []byte, b []byte) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// AppendBulkString appends a bulk string reply from a string.
func AppendBulkString(dst []byte, s string) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendNull appends the RESP2 null bulk string ("$-1").
func AppendNull(dst []byte) []byte { return append(dst, '$', '-', '1', '\r', '\n') }

// AppendNullArray appends the RESP2 null array ("*-1"), used by EXEC when a
// transaction was aborted and by a few commands that reply "no array".
func AppendNullArray(dst []byte) []byte { return append(dst, '*', '-', '1', '\r', '\n') }

// AppendArray appends an array header for n elements; the caller appends
// the elements.
func AppendArray(dst []byte, n int) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\r', '\n')
}

// RESP3 types.

// AppendNull3 appends the RESP3 null ("_"), which replaces both RESP2 nulls.
func AppendNull3(dst []byte) []byte { return append(dst, '_', '\r', '\n') }

// AppendMap appends a RESP3 map header for n key/value pairs; the caller
// appends 2n elements.
func AppendMap(dst []byte, n int) []byte { return appendHeader(dst, '%', n) }

// AppendSet appends a RESP3 set header for n elements.
func AppendSet(dst []byte, n int) []byte { return appendHeader(dst, '~', n) }

// AppendPush appends a RESP3 push header for n elements: out-of-band data
// (pub/sub messages, invalidations) that is no reply to a request.
func AppendPush(dst []byte, n int) []byte { return appendHeader(dst, '>', n) }

// AppendDouble appends a RESP3 double whose text is num, as the number is
// written in RESP2's bulk string ("1.5", "1e+20", "inf", "-inf").
func AppendDouble(dst []byte, num []byte) []byte {
	dst = append(dst, ',')
	dst = append(dst, num...)
	return append(dst, '\r', '\n')
}

// AppendVerbatim appends a RESP3 verbatim string: format is three bytes
// ("txt", "mkd"), followed by a colon and s.
func AppendVerbatim(dst []byte, format, s string) []byte {
	dst = append(dst, '=')
	dst = strconv.AppendInt(dst, int64(len(format)+1+len(s)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, format...)
	dst = append(dst, ':')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

func appendHeader(dst []byte, kind byte, n int) []byte {
	dst = append(dst, kind)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\r', '\n')
}

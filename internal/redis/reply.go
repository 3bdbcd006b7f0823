package redis

import (
	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/resp"
)

// Replies in the connection's protocol. A connection speaks RESP2 until
// HELLO 3 switches it to RESP3 (and HELLO 2 back). The two differ only in
// how some replies are framed, never in their content, so every command
// writes its reply through these helpers and one field, conn.proto,
// selects the framing: nulls, maps (HGETALL, CONFIG GET, HELLO), sets
// (SMEMBERS, SINTER…), pushes (pub/sub messages, invalidations) and
// verbatim strings (INFO, CLIENT LIST) are RESP3 types that RESP2 writes as
// null bulks, flat arrays and bulk strings. What redis-server 7.0 sends for
// each command was recorded from it (testdata/transcripts/resp3*.txt).
//
// Sorted sets' scores are RESP3 doubles, and members with their scores
// come as [member, score] pairs. Whether a reply holds scores, and pairs,
// depends on the request's options (WITHSCORES, a count), so the executor
// marks them in the result (command.Result's Form and Pairs), and the one
// rule is appendReply's: a FormDouble bulk is a RESP3 double, a Pairs array
// nests its pairs. The marks travel with a result forwarded between nodes,
// so a reply through a follower is the same, and a script's redis.call
// reads the reply it would get under its protocol (redis.setresp).

// replyShape is how a command's array reply is framed in RESP3; RESP2
// frames all of them as flat arrays.
type replyShape uint8

const (
	shapeArray replyShape = iota
	shapeMap              // key, value, key, value… (HGETALL, LCS IDX)
	shapeSet              // unordered members (SMEMBERS, SINTER, SPOP with a count)
)

// resp3 reports whether the connection speaks RESP3.
func (c *conn) resp3() bool { return c.proto.Load() == 3 }

// protocol is the connection's protocol version, 2 or 3.
func (c *conn) protocol() int { return int(c.proto.Load()) }

// appendNull writes a missing value: "$-1" in RESP2, "_" in RESP3.
func (c *conn) appendNull() { c.out = appendNull(c.out, c.protocol()) }

// appendNullArray writes RESP2's null array ("*-1"), "_" in RESP3.
func (c *conn) appendNullArray() {
	if c.resp3() {
		c.out = resp.AppendNull3(c.out)
		return
	}
	c.out = resp.AppendNullArray(c.out)
}

// appendMap writes the header of a map of n pairs.
func (c *conn) appendMap(n int) {
	if c.resp3() {
		c.out = resp.AppendMap(c.out, n)
		return
	}
	c.out = resp.AppendArray(c.out, 2*n)
}

// appendSet writes the header of a set of n members.
func (c *conn) appendSet(n int) {
	if c.resp3() {
		c.out = resp.AppendSet(c.out, n)
		return
	}
	c.out = resp.AppendArray(c.out, n)
}

// appendVerbatim writes a text reply (INFO, CLIENT LIST): a bulk string,
// or in RESP3 a verbatim string of format "txt", as redis-server does.
func (c *conn) appendVerbatim(s string) {
	if c.resp3() {
		c.out = resp.AppendVerbatim(c.out, "txt", s)
		return
	}
	c.out = resp.AppendBulkString(c.out, s)
}

func appendNull(out []byte, proto int) []byte {
	if proto == 3 {
		return resp.AppendNull3(out)
	}
	return resp.AppendNull(out)
}

// appendPush writes the header of out-of-band data of n elements: a
// RESP3 push, or the array a RESP2 subscriber reads as a message.
func appendPush(out []byte, proto, n int) []byte {
	if proto == 3 {
		return resp.AppendPush(out, n)
	}
	return resp.AppendArray(out, n)
}

// appendResult encodes a result that is the same in both protocols (SCRIPT
// EXISTS's integers) as RESP2.
func appendResult(out []byte, r command.Result) []byte { return appendReply(out, r, 2, shapeArray) }

// appendReply encodes a data command's result in protocol proto; shape
// frames a top-level array in RESP3.
func appendReply(out []byte, r command.Result, proto int, shape replyShape) []byte {
	switch r.Kind {
	case command.KindNil:
		return appendNull(out, proto)
	case command.KindOK:
		return resp.AppendSimple(out, "OK")
	case command.KindStatus:
		return resp.AppendSimple(out, r.Str)
	case command.KindInt:
		if r.Form == command.FormBool && proto == 3 {
			if r.Int != 0 {
				return append(out, "#t\r\n"...)
			}
			return append(out, "#f\r\n"...)
		}
		return resp.AppendInt(out, r.Int)
	case command.KindBulk:
		switch {
		case proto != 3:
		case r.Form == command.FormDouble:
			return resp.AppendDouble(out, r.Bulk)
		case r.Form == command.FormBigNumber:
			out = append(out, '(')
			out = append(out, r.Bulk...)
			return append(out, '\r', '\n')
		case r.Form == command.FormVerbatim:
			return resp.AppendVerbatim(out, r.Str, string(r.Bulk))
		}
		return resp.AppendBulk(out, r.Bulk)
	case command.KindArray:
		if len(r.Array) == 0 && r.Int == -1 {
			// A null array (see command.nullArray): "*-1", "_" in RESP3.
			if proto == 3 {
				return resp.AppendNull3(out)
			}
			return resp.AppendNullArray(out)
		}
		switch {
		case proto != 3:
			out = resp.AppendArray(out, len(r.Array))
		case shape == shapeMap || r.Form == command.FormMap:
			out = resp.AppendMap(out, len(r.Array)/2)
		case shape == shapeSet || r.Form == command.FormSet:
			out = resp.AppendSet(out, len(r.Array))
		case r.Pairs:
			// Field/value or member/score pairs (HRANDFIELD
			// WITHVALUES, ZRANGE WITHSCORES): RESP3 nests each pair
			// in an array of two.
			out = resp.AppendArray(out, len(r.Array)/2)
			for i := 0; i+1 < len(r.Array); i += 2 {
				out = resp.AppendArray(out, 2)
				out = appendReply(out, r.Array[i], proto, shapeArray)
				out = appendReply(out, r.Array[i+1], proto, shapeArray)
			}
			return out
		default:
			out = resp.AppendArray(out, len(r.Array))
		}
		for _, e := range r.Array {
			out = appendReply(out, e, proto, shapeArray)
		}
		return out
	case command.KindError:
		return resp.AppendError(out, errorText(r.Err, ""))
	}
	return resp.AppendError(out, "ERR internal error: unknown result")
}

package command

import (
	"bytes"
	"hash/fnv"
	"slices"
	"strconv"
)

// HSCAN and SSCAN. Like redis, a small collection (one redis keeps as a
// listpack or an intset) is returned whole, with cursor 0, whatever the
// cursor and COUNT. A larger one is scanned by bucket: each member falls in
// one of scanBuckets buckets by a hash of its bytes, the cursor is the
// next bucket to visit, and a call returns whole buckets until it has at
// least COUNT members. So, as redis guarantees, a member present for the
// whole scan is returned at least once, whatever else is added or removed
// between calls; and, since buckets depend only on the members, the cursor
// means the same on every node.

const scanBuckets = 1 << 16

func scanBucket(m string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(m))
	return h.Sum64() % scanBuckets
}

// scanMembers returns the members (given in the collection's order) of
// the buckets from cursor on, at least count of them unless the end comes
// first, and the next cursor (0 at the end).
func scanMembers(members []string, cursor uint64, count int) ([]string, uint64) {
	type mb struct {
		b uint64
		m string
	}
	var rest []mb
	for _, m := range members {
		if b := scanBucket(m); b >= cursor {
			rest = append(rest, mb{b, m})
		}
	}
	slices.SortStableFunc(rest, func(x, y mb) int {
		switch {
		case x.b < y.b:
			return -1
		case x.b > y.b:
			return 1
		}
		return 0
	})
	var out []string
	for i, r := range rest {
		if len(out) >= count && r.b != rest[i-1].b {
			return out, r.b
		}
		out = append(out, r.m)
	}
	return out, 0
}

// parseScanArgs reads the MATCH and COUNT options of an OpHScan or
// OpSScan, as given: redis checks them only once the key is found.
func parseScanArgs(c *Cmd) (pattern []byte, count int, err error) {
	count = 10
	opts := c.Args
	for i := 0; i < len(opts); i += 2 {
		if i+1 >= len(opts) {
			return nil, 0, errSyntax
		}
		switch string(bytes.ToLower(opts[i])) {
		case "count":
			n, ok := ParseInt(opts[i+1])
			if !ok {
				return nil, 0, ErrNotInteger
			}
			if n < 1 {
				return nil, 0, errSyntax
			}
			count = int(min(n, 1<<20))
		case "match":
			pattern = opts[i+1]
			if string(pattern) == "*" {
				pattern = nil
			}
		default:
			return nil, 0, errSyntax
		}
	}
	return pattern, count, nil
}

// scanCollection answers HSCAN or SSCAN over an existing collection's
// members, given in its order; reply gives a member's elements.
func scanCollection(c *Cmd, members []string, compact bool, reply func(m string) []Result) Result {
	pattern, count, err := parseScanArgs(c)
	if err != nil {
		return resErr(err)
	}
	next := uint64(0)
	if !compact {
		cursor := uint64(c.N)
		if c.N < 0 {
			cursor = scanBuckets // past the end
		}
		members, next = scanMembers(members, cursor, count)
	}
	var out []Result
	for _, m := range members {
		if len(pattern) == 0 || Match(pattern, []byte(m)) {
			out = append(out, reply(m)...)
		}
	}
	return scanReply(next, out)
}

// scanReply is a SCAN-family reply: the next cursor and the elements.
func scanReply(next uint64, elems []Result) Result {
	if elems == nil {
		elems = []Result{}
	}
	return Result{Kind: KindArray, Array: []Result{resBulk(strconv.AppendUint(nil, next, 10)), {Kind: KindArray, Array: elems}}}
}

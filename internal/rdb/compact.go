package rdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// The compact encodings redis stores small collections in, each read into
// its flat list of elements (strings; integers as their decimal text).

var errShort = errors.New("truncated compact encoding")

// intsetElems reads an intset: encoding (element width 2, 4 or 8 bytes),
// count, then the sorted integers, all little-endian.
func intsetElems(b []byte) ([][]byte, error) {
	if len(b) < 8 {
		return nil, errShort
	}
	width, n := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
	b = b[8:]
	if width != 2 && width != 4 && width != 8 {
		return nil, fmt.Errorf("intset element width %d", width)
	}
	if uint64(len(b)) != uint64(n)*uint64(width) {
		return nil, fmt.Errorf("intset of %d elements in %d bytes", n, len(b))
	}
	out := make([][]byte, n)
	for i := range out {
		var v int64
		switch width {
		case 2:
			v = int64(int16(binary.LittleEndian.Uint16(b)))
		case 4:
			v = int64(int32(binary.LittleEndian.Uint32(b)))
		default:
			v = int64(binary.LittleEndian.Uint64(b))
		}
		out[i] = strconv.AppendInt(nil, v, 10)
		b = b[width:]
	}
	return out, nil
}

// ziplistElems reads a ziplist: total bytes, tail offset, count (all
// little-endian), then entries of previous-length, encoding, data, then
// 0xff.
func ziplistElems(b []byte) ([][]byte, error) {
	if len(b) < 11 || int(binary.LittleEndian.Uint32(b)) != len(b) || b[len(b)-1] != 0xff {
		return nil, errors.New("bad ziplist header")
	}
	p := b[10 : len(b)-1]
	var out [][]byte
	for len(p) > 0 {
		// previous entry's length: one byte, or 0xfe and four
		if p[0] == 0xfe {
			if len(p) < 5 {
				return nil, errShort
			}
			p = p[5:]
		} else {
			p = p[1:]
		}
		if len(p) == 0 {
			return nil, errShort
		}
		enc := p[0]
		var n, hdr int
		switch enc >> 6 {
		case 0:
			n, hdr = int(enc&0x3f), 1
		case 1:
			if len(p) < 2 {
				return nil, errShort
			}
			n, hdr = int(enc&0x3f)<<8|int(p[1]), 2
		case 2:
			if len(p) < 5 {
				return nil, errShort
			}
			n, hdr = int(binary.BigEndian.Uint32(p[1:])), 5
		}
		if enc>>6 != 3 {
			if len(p) < hdr+n {
				return nil, errShort
			}
			out = append(out, append([]byte(nil), p[hdr:hdr+n]...))
			p = p[hdr+n:]
			continue
		}
		var v int64
		var size int
		switch {
		case enc == 0xc0:
			size = 2
		case enc == 0xd0:
			size = 4
		case enc == 0xe0:
			size = 8
		case enc == 0xf0:
			size = 3
		case enc == 0xfe:
			size = 1
		case enc >= 0xf1 && enc <= 0xfd:
			v = int64(enc&0x0f) - 1
		default:
			return nil, fmt.Errorf("ziplist encoding %#x", enc)
		}
		if len(p) < 1+size {
			return nil, errShort
		}
		d := p[1 : 1+size]
		switch size {
		case 1:
			v = int64(int8(d[0]))
		case 2:
			v = int64(int16(binary.LittleEndian.Uint16(d)))
		case 3:
			v = int64(int32(uint32(d[0])<<8|uint32(d[1])<<16|uint32(d[2])<<24) >> 8)
		case 4:
			v = int64(int32(binary.LittleEndian.Uint32(d)))
		case 8:
			v = int64(binary.LittleEndian.Uint64(d))
		}
		out = append(out, strconv.AppendInt(nil, v, 10))
		p = p[1+size:]
	}
	return out, nil
}

// listpackElems reads a listpack: total bytes and count (little-endian),
// entries of encoding, data and a back-length, then 0xff.
func listpackElems(b []byte) ([][]byte, error) {
	if len(b) < 7 || int(binary.LittleEndian.Uint32(b)) != len(b) || b[len(b)-1] != 0xff {
		return nil, errors.New("bad listpack header")
	}
	p := b[6 : len(b)-1]
	var out [][]byte
	for len(p) > 0 {
		enc := p[0]
		var v int64
		var str []byte
		isInt := true
		var size int // encoding and data, without the back-length
		need := func(n int) bool { return len(p) >= n }
		switch {
		case enc&0x80 == 0: // 0xxxxxxx: 7-bit unsigned
			v, size = int64(enc&0x7f), 1
		case enc&0xc0 == 0x80: // 10xxxxxx: 6-bit string length
			n := int(enc & 0x3f)
			if !need(1 + n) {
				return nil, errShort
			}
			str, size, isInt = p[1:1+n], 1+n, false
		case enc&0xe0 == 0xc0: // 110xxxxx yyyyyyyy: 13-bit signed
			if !need(2) {
				return nil, errShort
			}
			u := uint64(enc&0x1f)<<8 | uint64(p[1])
			v, size = int64(u<<51)>>51, 2
		case enc&0xf0 == 0xe0: // 1110xxxx yyyyyyyy: 12-bit string length
			if !need(2) {
				return nil, errShort
			}
			n := int(enc&0x0f)<<8 | int(p[1])
			if !need(2 + n) {
				return nil, errShort
			}
			str, size, isInt = p[2:2+n], 2+n, false
		case enc == 0xf0: // 32-bit string length
			if !need(5) {
				return nil, errShort
			}
			n := int(binary.LittleEndian.Uint32(p[1:]))
			if n < 0 || !need(5+n) {
				return nil, errShort
			}
			str, size, isInt = p[5:5+n], 5+n, false
		case enc >= 0xf1 && enc <= 0xf4: // 16, 24, 32, 64-bit signed
			w := [4]int{2, 3, 4, 8}[enc-0xf1]
			if !need(1 + w) {
				return nil, errShort
			}
			var u uint64
			for i := w; i >= 1; i-- {
				u = u<<8 | uint64(p[i])
			}
			shift := 64 - 8*uint(w)
			v, size = int64(u<<shift)>>shift, 1+w
		default:
			return nil, fmt.Errorf("listpack encoding %#x", enc)
		}
		if isInt {
			out = append(out, strconv.AppendInt(nil, v, 10))
		} else {
			out = append(out, append([]byte(nil), str...))
		}
		back := backLenSize(size)
		if len(p) < size+back {
			return nil, errShort
		}
		p = p[size+back:]
	}
	return out, nil
}

// backLenSize is how many bytes a listpack entry's back-length takes for
// an entry (encoding and data) of n bytes: 7 bits per byte, with redis's
// bounds (lpEncodeBacklen: one byte up to 127, two below 16383, …).
func backLenSize(n int) int {
	switch {
	case n <= 127:
		return 1
	case n < 16383:
		return 2
	case n < 2097151:
		return 3
	case n < 268435455:
		return 4
	}
	return 5
}

// lzfDecompress expands LZF data (the compressor redis uses for long
// strings) to exactly n bytes.
func lzfDecompress(in []byte, n int) ([]byte, error) {
	// Each input byte expands to at most 132 (a 264-byte back reference
	// costs 2 bytes): a larger n is corrupt, and must not be allocated.
	if n > 132*len(in) {
		return nil, fmt.Errorf("lzf: %d bytes cannot expand to %d", len(in), n)
	}
	out := make([]byte, 0, n)
	for i := 0; i < len(in); {
		ctrl := int(in[i])
		i++
		if ctrl < 32 { // a literal run of ctrl+1 bytes
			l := ctrl + 1
			if i+l > len(in) || len(out)+l > n {
				return nil, errors.New("lzf: literal run overflows")
			}
			out = append(out, in[i:i+l]...)
			i += l
			continue
		}
		l := ctrl >> 5 // a back reference
		if l == 7 {
			if i >= len(in) {
				return nil, errors.New("lzf: truncated")
			}
			l += int(in[i])
			i++
		}
		if i >= len(in) {
			return nil, errors.New("lzf: truncated")
		}
		ref := len(out) - ((ctrl & 0x1f) << 8) - 1 - int(in[i])
		i++
		l += 2
		if ref < 0 || len(out)+l > n {
			return nil, errors.New("lzf: bad back reference")
		}
		for j := 0; j < l; j++ { // byte by byte: the source may overlap
			out = append(out, out[ref+j])
		}
	}
	if len(out) != n {
		return nil, fmt.Errorf("lzf: %d bytes, want %d", len(out), n)
	}
	return out, nil
}

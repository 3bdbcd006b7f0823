package rdb

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Writer writes an RDB file: NewWriter writes the header, Write one key,
// Close the end marker and the checksum.
type Writer struct {
	bw  *bufio.Writer
	crc uint64
	db  int
	buf []byte
	err error
}

// NewWriter starts an RDB file on w. aux are auxiliary fields written
// after the header (name, value, name, value …), such as what wrote it.
func NewWriter(w io.Writer, aux ...string) *Writer {
	wr := &Writer{bw: bufio.NewWriterSize(w, 1<<16), db: -1}
	b := fmt.Appendf(nil, "REDIS%04d", writeVersion)
	for i := 0; i+1 < len(aux); i += 2 {
		b = append(b, opAux)
		b = appendString(b, []byte(aux[i]))
		b = appendString(b, []byte(aux[i+1]))
	}
	wr.write(b)
	return wr
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	w.crc = crcUpdate(w.crc, b)
	_, w.err = w.bw.Write(b)
}

// Write adds one key.
func (w *Writer) Write(r *Record) error {
	b := w.buf[:0]
	if r.DB != w.db {
		b = append(b, opSelectDB)
		b = appendLen(b, uint64(r.DB))
		w.db = r.DB
	}
	if r.Flags != 0 {
		b = append(b, opAux)
		b = appendString(b, []byte(flagsAux))
		b = appendString(b, strconv.AppendUint(nil, uint64(r.Flags), 10))
	}
	if r.ExpireAt != 0 {
		b = append(b, opExpireMS)
		b = binary.LittleEndian.AppendUint64(b, uint64(r.ExpireAt))
	}
	typ, err := valueType(r)
	if err != nil {
		return err
	}
	b = append(b, typ)
	b = appendString(b, r.Key)
	if b, err = appendValue(b, r, false); err != nil {
		return err
	}
	w.buf = b
	w.write(b)
	return w.err
}

// WriteLibrary adds a function library: its code, as FUNCTION LOAD takes
// it (redis 7.0's RDB_OPCODE_FUNCTION2). redis-server 7.0 and later load
// it; earlier ones refuse a file that holds one. Write libraries before
// the keys, as redis does.
func (w *Writer) WriteLibrary(code []byte) error {
	b := append(w.buf[:0], opFunction2)
	b = appendString(b, code)
	w.buf = b
	w.write(b)
	return w.err
}

// valueType is the file's type byte for r's value, in the plain
// encodings Writer and EncodeDump write.
func valueType(r *Record) (byte, error) {
	switch r.Type {
	case String:
		return typeString, nil
	case List:
		return typeList, nil
	case Set:
		return typeSet, nil
	case Hash:
		return typeHash, nil
	case ZSet:
		return typeZSet2, nil
	case Stream:
		return typeStreamListpacks2, nil
	}
	return 0, fmt.Errorf("rdb: key %q of unknown type %d", r.Key, r.Type)
}

// appendValue appends r's value (after its type byte and key) in the plain
// encodings; with ints, strings that are 32-bit integers take the integer
// encoding, as redis writes them.
func appendValue(b []byte, r *Record, ints bool) ([]byte, error) {
	str := func(b, s []byte) []byte {
		if ints {
			if out, ok := appendIntString(b, s); ok {
				return out
			}
		}
		return appendString(b, s)
	}
	switch r.Type {
	case String:
		b = str(b, r.Str)
	case List, Set:
		b = appendLen(b, uint64(len(r.Elems)))
		for _, e := range r.Elems {
			b = str(b, e)
		}
	case Hash:
		if len(r.Pairs)%2 != 0 {
			return nil, fmt.Errorf("rdb: hash %q with an odd number of fields and values", r.Key)
		}
		b = appendLen(b, uint64(len(r.Pairs)/2))
		for _, p := range r.Pairs {
			b = str(b, p)
		}
	case ZSet:
		if len(r.Members) != len(r.Scores) {
			return nil, fmt.Errorf("rdb: zset %q with %d members and %d scores", r.Key, len(r.Members), len(r.Scores))
		}
		b = appendLen(b, uint64(len(r.Members)))
		for i, m := range r.Members {
			b = str(b, m)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Scores[i]))
		}
	case Stream:
		return appendStream(b, r.Key, r.Stream)
	default:
		return nil, fmt.Errorf("rdb: key %q of unknown type %d", r.Key, r.Type)
	}
	return b, nil
}

// Close writes the end marker and the checksum, and flushes. It does not
// close the underlying writer.
func (w *Writer) Close() error {
	w.write([]byte{opEOF})
	if w.err == nil {
		w.err = binary.Write(w.bw, binary.LittleEndian, w.crc)
	}
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	return w.err
}

// appendLen appends redis's length encoding: 6 bits, 14 bits, 32 or 64.
func appendLen(b []byte, n uint64) []byte {
	switch {
	case n < 1<<6:
		return append(b, byte(n))
	case n < 1<<14:
		return append(b, 0x40|byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0x80), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0x81), n)
}

func appendString(b, s []byte) []byte {
	return append(appendLen(b, uint64(len(s))), s...)
}

package rdb

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
)

// MaxString bounds one string in a file Read accepts (redis's own
// proto-max-bulk-len default), so that a corrupt length cannot make it
// allocate without bound.
const MaxString = 512 << 20

// Read reads an RDB file from r and calls fn for each key, in file order.
// Keys that had expired when the file was written are handed over too,
// with their ExpireAt; the caller decides. An error from fn stops Read and
// is returned. The checksum at the end is verified (a zero checksum, as
// redis-server writes with rdbchecksum off, is not).
func Read(r io.Reader, fn func(*Record) error) error {
	_, err := ReadWith(r, ReadOptions{}, fn)
	return err
}

// ReadOptions adjust ReadWith.
type ReadOptions struct {
	// SkipUnsupported skips what hatcheck cannot hold instead of failing
	// with an *UnsupportedError: keys whose values are a module's type,
	// modules' auxiliary data, function libraries when Library is nil,
	// and streams' consumer groups (the stream itself, its entries, is
	// handed over). ReadStats counts what was skipped.
	SkipUnsupported bool
	// Library, when set, is called with each function library in the
	// file: its code, as FUNCTION LOAD takes it (the first line names the
	// engine and the library). An error from it stops ReadWith.
	Library func(code []byte) error
}

// ReadStats is what ReadWith skipped (ReadOptions.SkipUnsupported), by
// kind: "module type NAME" (a module's value, by the module type's name),
// "module data" (a module's auxiliary data), "function library", "stream
// consumer group" (each group of a stream that was read).
type ReadStats struct {
	Skipped map[string]int
}

// UnsupportedError is the error for the first thing in a file that
// hatcheck cannot hold, when it is not skipped. It wraps ErrUnsupported.
type UnsupportedError struct {
	Key  []byte // the key, if it is a key's value
	What string // as ReadStats names it
}

// whatGroup is the kind of a stream's consumer group.
const whatGroup = "stream consumer group"

func (e *UnsupportedError) Error() string {
	if e.Key != nil && e.What == whatGroup {
		return fmt.Sprintf("%v: key %q is a stream with consumer groups", ErrUnsupported, e.Key)
	}
	if e.Key != nil {
		return fmt.Sprintf("%v: key %q is a %s", ErrUnsupported, e.Key, e.What)
	}
	return fmt.Sprintf("%v: the file holds %s", ErrUnsupported, e.What)
}

func (e *UnsupportedError) Unwrap() error { return ErrUnsupported }

// ReadWith is Read with options; it reports what it skipped.
func ReadWith(r io.Reader, opts ReadOptions, fn func(*Record) error) (ReadStats, error) {
	d := &reader{br: bufio.NewReaderSize(r, 1<<16), opts: opts, stats: ReadStats{Skipped: map[string]int{}}}
	err := d.run(fn)
	if err != nil && d.err != nil && err == d.err {
		return d.stats, fmt.Errorf("%w: %v", ErrBadFile, err)
	}
	return d.stats, err
}

type reader struct {
	br    *bufio.Reader
	crc   uint64
	err   error // the first read error
	opts  ReadOptions
	stats ReadStats
	// groups is the number of consumer groups of the stream value last
	// read (read past).
	groups int
}

// unsupported skips what (counting it) when asked to, else returns the
// error for it.
func (d *reader) unsupported(key []byte, what string) error {
	if !d.opts.SkipUnsupported {
		return &UnsupportedError{Key: key, What: what}
	}
	d.stats.Skipped[what]++
	return nil
}

func (d *reader) fail(format string, a ...any) error {
	if d.err == nil {
		d.err = fmt.Errorf(format, a...)
	}
	return d.err
}

func (d *reader) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > MaxString {
		d.fail("a string of %d bytes", n)
		return nil
	}
	var b []byte
	if n <= 1<<16 {
		b = make([]byte, n)
		if _, err := io.ReadFull(d.br, b); err != nil {
			d.fail("truncated: %v", err)
			return nil
		}
	} else {
		// Grown as the data arrives: a corrupt length in a short file
		// costs no more than the file.
		var buf bytes.Buffer
		if _, err := io.CopyN(&buf, d.br, int64(n)); err != nil {
			d.fail("truncated: %v", err)
			return nil
		}
		b = buf.Bytes()
	}
	d.crc = crcUpdate(d.crc, b)
	return b
}

func (d *reader) byte() byte {
	b := d.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

// length reads a length; special is true for the 11xxxxxx string
// encodings, whose number is then returned.
func (d *reader) length() (n uint64, special bool) {
	first := d.byte()
	switch first >> 6 {
	case 0:
		return uint64(first & 0x3f), false
	case 1:
		return uint64(first&0x3f)<<8 | uint64(d.byte()), false
	case 3:
		return uint64(first & 0x3f), true
	}
	switch first {
	case 0x80:
		b := d.bytes(4)
		if b == nil {
			return 0, false
		}
		return uint64(binary.BigEndian.Uint32(b)), false
	case 0x81:
		b := d.bytes(8)
		if b == nil {
			return 0, false
		}
		return binary.BigEndian.Uint64(b), false
	}
	d.fail("bad length byte %#x", first)
	return 0, false
}

// count reads a length that counts elements; each takes at least one byte,
// so a count beyond MaxString is corrupt.
func (d *reader) count() int {
	n, special := d.length()
	if special || n > MaxString {
		d.fail("bad element count")
		return 0
	}
	return int(n)
}

// string reads a string in any of its encodings.
func (d *reader) string() []byte {
	n, special := d.length()
	if !special {
		return d.bytes(n)
	}
	switch n {
	case encInt8:
		return strconv.AppendInt(nil, int64(int8(d.byte())), 10)
	case encInt16:
		b := d.bytes(2)
		if b == nil {
			return nil
		}
		return strconv.AppendInt(nil, int64(int16(binary.LittleEndian.Uint16(b))), 10)
	case encInt32:
		b := d.bytes(4)
		if b == nil {
			return nil
		}
		return strconv.AppendInt(nil, int64(int32(binary.LittleEndian.Uint32(b))), 10)
	case encLZF:
		clen, _ := d.length()
		ulen, _ := d.length()
		if ulen > MaxString {
			d.fail("a compressed string of %d bytes", ulen)
			return nil
		}
		c := d.bytes(clen)
		if c == nil {
			return nil
		}
		out, err := lzfDecompress(c, int(ulen))
		if err != nil {
			d.fail("%v", err)
			return nil
		}
		return out
	}
	d.fail("bad string encoding %d", n)
	return nil
}

func (d *reader) run(fn func(*Record) error) error {
	head := d.bytes(9)
	if d.err != nil || string(head[:5]) != "REDIS" {
		return fmt.Errorf("%w: no REDIS header", ErrBadFile)
	}
	version, err := strconv.Atoi(string(head[5:]))
	if err != nil || version < 1 || version > maxVersion {
		return fmt.Errorf("%w: version %q (this reads 1 to %d)", ErrBadFile, head[5:], maxVersion)
	}
	db := 0
	var expireAt int64
	var flags uint32
	for d.err == nil {
		op := d.byte()
		switch op {
		case opEOF:
			if version >= 5 {
				want := d.crc
				sum := d.bytes(8)
				if sum == nil {
					return d.err
				}
				if got := binary.LittleEndian.Uint64(sum); got != 0 && got != want {
					return fmt.Errorf("%w: checksum %#x, computed %#x", ErrBadFile, got, want)
				}
			}
			return nil
		case opSelectDB:
			n, _ := d.length()
			db = int(n)
		case opResizeDB:
			d.length()
			d.length()
		case opExpireMS:
			if b := d.bytes(8); b != nil {
				expireAt = int64(binary.LittleEndian.Uint64(b))
			}
		case opExpireSec:
			if b := d.bytes(4); b != nil {
				expireAt = int64(binary.LittleEndian.Uint32(b)) * 1000
			}
		case opIdle:
			d.length()
		case opFreq:
			d.byte()
		case opAux:
			name, value := d.string(), d.string()
			if string(name) == flagsAux {
				f, err := strconv.ParseUint(string(value), 10, 32)
				if err != nil {
					return d.fail("bad %s %q", flagsAux, value)
				}
				flags = uint32(f)
			}
		case opModuleAux:
			// The module's id, then "when" as a module UINT, then the
			// module's own data.
			d.length()
			if when, _ := d.length(); when != moduleUint {
				return d.fail("module data: bad when opcode %d", when)
			}
			d.length()
			d.skipModuleValue()
			if d.err != nil {
				return d.err
			}
			if err := d.unsupported(nil, "module data"); err != nil {
				return err
			}
		case opFunction2:
			code := d.string()
			if d.err != nil {
				return d.err
			}
			if d.opts.Library != nil {
				if err := d.opts.Library(code); err != nil {
					return err
				}
			} else if err := d.unsupported(nil, "function library"); err != nil {
				return err
			}
		case opFunctionPre:
			return fmt.Errorf("%w: function libraries of a redis 7.0 release candidate (opcode %#x)", ErrUnsupported, op)
		default:
			rec := &Record{DB: db, ExpireAt: expireAt, Flags: flags, Key: d.string()}
			what := d.value(op, rec)
			if d.err != nil {
				return d.err
			}
			if rec.Type == Stream && d.groups > 0 {
				if !d.opts.SkipUnsupported {
					return &UnsupportedError{Key: rec.Key, What: whatGroup}
				}
				d.stats.Skipped[whatGroup] += d.groups
			}
			if rec.Type == 0 {
				if what == "" {
					return fmt.Errorf("%w: key %q has value type %d, which this does not know", ErrUnsupported, rec.Key, op)
				}
				if err := d.unsupported(rec.Key, what); err != nil {
					return err
				}
			} else if err := fn(rec); err != nil {
				return err
			}
			expireAt, flags = 0, 0
		}
	}
	return d.err
}

// value reads a value of RDB type typ into rec. For a value of a type
// hatcheck does not hold (a module's type), it reads past it and says
// what it was, with rec.Type 0; for a type it does not know, it reads
// nothing and returns "". A stream's consumer groups are read past and
// counted in d.groups.
func (d *reader) value(typ byte, rec *Record) (unsupported string) {
	d.groups = 0
	switch typ {
	case typeStreamListpacks, typeStreamListpacks2, typeStreamListpacks3:
		d.groups = d.stream(typ, rec)
	case typeModule2:
		id, _ := d.length()
		d.skipModuleValue()
		return "module type " + moduleTypeName(id)
	case typeString:
		rec.Type, rec.Str = String, d.string()
	case typeList, typeSet:
		rec.Type = List
		if typ == typeSet {
			rec.Type = Set
		}
		n := d.count()
		for i := 0; i < n && d.err == nil; i++ {
			rec.Elems = append(rec.Elems, d.string())
		}
	case typeHash:
		rec.Type = Hash
		n := d.count()
		for i := 0; i < n && d.err == nil; i++ {
			rec.Pairs = append(rec.Pairs, d.string(), d.string())
		}
	case typeZSet, typeZSet2:
		rec.Type = ZSet
		n := d.count()
		for i := 0; i < n && d.err == nil; i++ {
			rec.Members = append(rec.Members, d.string())
			rec.Scores = append(rec.Scores, d.score(typ == typeZSet2))
		}
	case typeListZiplist, typeSetIntset, typeZSetZiplist, typeHashZiplist, typeHashListpack, typeZSetListpack, typeSetListpack:
		blob := d.string()
		if d.err != nil {
			return
		}
		var elems [][]byte
		var err error
		switch typ {
		case typeSetIntset:
			elems, err = intsetElems(blob)
		case typeListZiplist, typeZSetZiplist, typeHashZiplist:
			elems, err = ziplistElems(blob)
		default:
			elems, err = listpackElems(blob)
		}
		if err != nil {
			d.fail("key %q: %v", rec.Key, err)
			return
		}
		d.fromElems(typ, elems, rec)
	case typeListQuicklist, typeListQuicklist2:
		rec.Type = List
		n := d.count()
		for i := 0; i < n && d.err == nil; i++ {
			container := uint64(2) // packed
			if typ == typeListQuicklist2 {
				container, _ = d.length()
			}
			blob := d.string()
			if d.err != nil {
				return
			}
			if container == 1 { // a plain node: one large element
				rec.Elems = append(rec.Elems, blob)
				continue
			}
			var elems [][]byte
			var err error
			if typ == typeListQuicklist {
				elems, err = ziplistElems(blob)
			} else {
				elems, err = listpackElems(blob)
			}
			if err != nil {
				d.fail("key %q: %v", rec.Key, err)
				return
			}
			rec.Elems = append(rec.Elems, elems...)
		}
	case typeHashZipmap:
		d.fail("key %q: the zipmap encoding of redis before 2.6 is not read", rec.Key)
	}
	return ""
}

// Module value opcodes (redis's RDB_MODULE_OPCODE_*).
const (
	moduleEOF    = 0
	moduleSint   = 1
	moduleUint   = 2
	moduleFloat  = 3
	moduleDouble = 4
	moduleString = 5
)

// skipModuleValue reads past a module's annotated value, up to its EOF
// opcode (as redis-check-rdb does).
func (d *reader) skipModuleValue() {
	for d.err == nil {
		op, _ := d.length()
		switch op {
		case moduleEOF:
			return
		case moduleSint, moduleUint:
			d.length()
		case moduleFloat:
			d.bytes(4)
		case moduleDouble:
			d.bytes(8)
		case moduleString:
			d.string()
		default:
			d.fail("module value: bad opcode %d", op)
		}
	}
}

// moduleTypeName is the 9-character name of a module type, from the
// upper 54 bits of its id (redis's moduleTypeNameByID).
func moduleTypeName(id uint64) string {
	const cset = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var name [9]byte
	id >>= 10
	for j := 8; j >= 0; j-- {
		name[j] = cset[id&63]
		id >>= 6
	}
	return string(name[:])
}

// fromElems fills rec from the flat element list of a compact encoding.
func (d *reader) fromElems(typ byte, elems [][]byte, rec *Record) {
	switch typ {
	case typeListZiplist:
		rec.Type, rec.Elems = List, elems
	case typeSetIntset, typeSetListpack:
		rec.Type, rec.Elems = Set, elems
	case typeHashZiplist, typeHashListpack:
		if len(elems)%2 != 0 {
			d.fail("key %q: a hash with an odd number of elements", rec.Key)
			return
		}
		rec.Type, rec.Pairs = Hash, elems
	case typeZSetZiplist, typeZSetListpack:
		if len(elems)%2 != 0 {
			d.fail("key %q: a sorted set with an odd number of elements", rec.Key)
			return
		}
		rec.Type = ZSet
		for i := 0; i < len(elems); i += 2 {
			s, err := strconv.ParseFloat(string(elems[i+1]), 64)
			if err != nil {
				d.fail("key %q: score %q", rec.Key, elems[i+1])
				return
			}
			rec.Members = append(rec.Members, elems[i])
			rec.Scores = append(rec.Scores, s)
		}
	}
}

// score reads a sorted set's score: 8 bytes of IEEE 754 (ZSET_2), or a
// length-prefixed decimal with 253 = NaN, 254 = +inf, 255 = -inf.
func (d *reader) score(binaryScore bool) float64 {
	if binaryScore {
		b := d.bytes(8)
		if b == nil {
			return 0
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	}
	switch n := d.byte(); n {
	case 253:
		return math.NaN()
	case 254:
		return math.Inf(1)
	case 255:
		return math.Inf(-1)
	default:
		s, err := strconv.ParseFloat(string(d.bytes(uint64(n))), 64)
		if err != nil {
			d.fail("bad score")
		}
		return s
	}
}

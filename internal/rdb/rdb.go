// Package rdb reads and writes Redis's RDB files: the way data comes into
// hatcheck from a redis-server, and goes out to one. hatcheck's backups are
// RDB files too.
//
// Writer produces version 9 files (loaded by redis-server 5.0 and later)
// with the plain encodings — a string is its bytes, a hash its field and
// value strings — which every redis-server reads; function libraries
// (WriteLibrary) are redis 7.0's opcode and streams redis 7.0's type
// (RDB_TYPE_STREAM_LISTPACKS_2, see stream.go), which only 7.0 and later
// load. Read accepts what redis-server 7.0 writes (versions 1 to 11):
// integer and LZF-compressed strings; lists as quicklists of ziplists or
// listpacks; sets as intsets, listpacks or plain; hashes and sorted sets
// as ziplists, listpacks or plain; streams of redis 5 to 7.2 (their
// consumer groups are not held: refused, or skipped and counted);
// function libraries through ReadWith's Library. Modules' values and data
// (and function libraries without Library, streams' consumer groups) are
// refused with ErrUnsupported, unless ReadWith is asked to skip them (and
// count them).
//
// DUMP and RESTORE's payloads are one value of such a file with redis's
// footer (EncodeDump, DecodeDump).
//
// What redis does not store — a memcached item's client flags — travels in
// an auxiliary field before the key ("hatcheck-flags"), which redis-server
// skips when it loads the file.
package rdb

import (
	"errors"
	"hash/crc64"
)

// Type is a value's type as this package hands it over.
type Type uint8

// Types.
const (
	String Type = iota + 1
	List
	Set
	Hash
	ZSet
	Stream
)

func (t Type) String() string {
	switch t {
	case String:
		return "string"
	case List:
		return "list"
	case Set:
		return "set"
	case Hash:
		return "hash"
	case ZSet:
		return "zset"
	case Stream:
		return "stream"
	}
	return "unknown"
}

// Record is one key.
type Record struct {
	DB       int
	Key      []byte
	Type     Type
	ExpireAt int64    // Unix ms; 0 means none
	Flags    uint32   // memcached client flags (hatcheck's own files only)
	Str      []byte   // String
	Elems    [][]byte // List (in order), Set
	Pairs    [][]byte // Hash: field, value, field, value …
	Members  [][]byte // ZSet members, with Scores
	Scores   []float64
	Stream   *StreamValue // Stream
}

// Errors.
var (
	// ErrBadFile: the data is not an RDB file, or it is corrupt.
	ErrBadFile = errors.New("rdb: not an RDB file, or a corrupt one")
	// ErrUnsupported: the file holds something hatcheck cannot take (a
	// module's value, a function library, a stream's consumer groups).
	ErrUnsupported = errors.New("rdb: unsupported content")
)

// Opcodes and value types of the format (redis's rdb.h).
const (
	opFunction2   = 0xf5
	opFunctionPre = 0xf6
	opModuleAux   = 0xf7
	opIdle        = 0xf8
	opFreq        = 0xf9
	opAux         = 0xfa
	opResizeDB    = 0xfb
	opExpireMS    = 0xfc
	opExpireSec   = 0xfd
	opSelectDB    = 0xfe
	opEOF         = 0xff

	typeString           = 0
	typeList             = 1
	typeSet              = 2
	typeZSet             = 3
	typeHash             = 4
	typeZSet2            = 5
	typeModule2          = 7
	typeHashZipmap       = 9
	typeListZiplist      = 10
	typeSetIntset        = 11
	typeZSetZiplist      = 12
	typeHashZiplist      = 13
	typeListQuicklist    = 14
	typeStreamListpacks  = 15
	typeHashListpack     = 16
	typeZSetListpack     = 17
	typeListQuicklist2   = 18
	typeStreamListpacks2 = 19
	typeSetListpack      = 20
	typeStreamListpacks3 = 21

	// string encodings after a length byte 11xxxxxx
	encInt8  = 0
	encInt16 = 1
	encInt32 = 2
	encLZF   = 3
)

// writeVersion is the version Writer writes; maxVersion the newest Read
// accepts (redis 7.2).
const (
	writeVersion = 9
	maxVersion   = 11
)

// flagsAux is the auxiliary field that carries a memcached item's client
// flags, for the key that follows it.
const flagsAux = "hatcheck-flags"

// crcTable is redis's CRC-64 (Jones polynomial, reflected, no initial or
// final inversion): crc64 of "123456789" is 0xe9c6d914c4b8d9ca.
var crcTable = crc64.MakeTable(0x95ac9329ac4bc9b5)

// crcUpdate continues redis's CRC-64 over p. Go's crc64 inverts before
// and after; inverting around it undoes both.
func crcUpdate(crc uint64, p []byte) uint64 {
	return ^crc64.Update(^crc, crcTable, p)
}
